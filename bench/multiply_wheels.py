"""Writes COPIES copies of every wheel in SRC into DST, each copy a distinct distribution
(`name` becomes `name_cN`: its file name, .dist-info/.data directories, METADATA Name and
RECORD rows renamed), so that one payload can hold them all.

    python bench/multiply_wheels.py SRC DST COPIES

The renamed METADATA no longer matches its RECORD hash, so that row's hash is dropped (RECORD
allows an empty hash). Everything else is copied byte for byte.
"""
import os
import re
import sys
import zipfile


def rename(source, destination, dist, version, copy):
    new = "%s_c%d" % (dist, copy)
    old_prefix = "%s-%s." % (dist, version)
    new_prefix = "%s-%s." % (new, version)
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            member = info.filename
            if member.startswith(old_prefix):
                member = new_prefix + member[len(old_prefix):]
            if member.endswith(".dist-info/METADATA"):
                data = re.sub(rb"(?m)^Name: .*$", ("Name: " + new).encode(), data, count=1)
            if member.endswith(".dist-info/RECORD"):
                rows = []
                for row in data.decode("utf-8").splitlines():
                    if row.startswith(old_prefix):
                        row = new_prefix + row[len(old_prefix):]
                    if re.match(r"^[^,]*\.dist-info/METADATA,", row):
                        row = row.split(",")[0] + ",,"
                    rows.append(row)
                data = ("\n".join(rows) + "\n").encode("utf-8")
            copied = zipfile.ZipInfo(member, info.date_time)
            copied.external_attr = info.external_attr
            copied.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(copied, data)


def main():
    source, destination, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(destination, exist_ok=True)
    for name in sorted(os.listdir(source)):
        if not name.endswith(".whl"):
            continue
        dist, version, rest = name.split("-", 2)
        for copy in range(copies):
            target = os.path.join(destination, "%s_c%d-%s-%s" % (dist, copy, version, rest))
            if not os.path.exists(target):
                rename(os.path.join(source, name), target + ".part", dist, version, copy)
                os.rename(target + ".part", target)


if __name__ == "__main__":
    main()
