"""Writes a copy of WHEEL into DST_DIR with one module changed: one comment line appended to
its first top-level package's `__init__.py`, and that file's RECORD row given the new hash and
size. The file name, the version and every other member stay as they are (names, times,
permissions, compression), so the copy is the same on every run and differs from WHEEL, as a
rebuilt wheel would: the bench's "one wheel changed" for thin artifacts.

    python bench/change_wheel.py WHEEL DST_DIR
"""
import base64
import hashlib
import os
import sys
import zipfile

MARK = b"# changed by pysfx bench/change_wheel.py\n"


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def main(source, directory):
    destination = os.path.join(directory, os.path.basename(source))
    with zipfile.ZipFile(source) as zin:
        infos = zin.infolist()
        target = next(
            info.filename
            for info in infos
            if info.filename.endswith("/__init__.py")
            and info.filename.count("/") == 1
            and ".dist-info/" not in info.filename
        )
        changed = zin.read(target) + MARK
        with zipfile.ZipFile(destination, "w") as zout:
            for info in infos:
                data = zin.read(info)
                if info.filename == target:
                    data = changed
                elif info.filename.endswith(".dist-info/RECORD"):
                    rows = []
                    for row in data.decode("utf-8").splitlines():
                        if row.split(",", 1)[0] == target:
                            row = "%s,%s,%d" % (target, record_hash(changed), len(changed))
                        rows.append(row)
                    data = ("\n".join(rows) + "\n").encode("utf-8")
                # A fresh ZipInfo: writestr fills in sizes and CRC, which must not touch the
                # source's.
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.external_attr = info.external_attr
                copy.create_system = info.create_system
                copy.compress_type = info.compress_type
                zout.writestr(copy, data)
    print("%s: %s changed" % (destination, target))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
