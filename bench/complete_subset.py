"""complete_subset.py WHEELS OUT [EXTRA]: links into OUT a complete set made of WHEELS, as
pysfx requires one (every Requires-Dist met, markers evaluated for this interpreter).

The popular corpus is 200 distributions pinned one by one and meant to be installed --no-deps:
some need distributions it does not hold, or versions other than those it pins. With EXTRA, a
distribution it lacks is downloaded into EXTRA (the newest binary wheel meeting the first
requirement that names it, for this interpreter on manylinux2014 x86_64), repeatedly. Then the
wheels whose requirements are still unmet are left out, and those that needed them, until what
remains is complete. Prints what was added and left out.
"""
import os
import subprocess
import sys
import zipfile

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name


def metadata(path):
    with zipfile.ZipFile(path) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        text = wheel.read(name).decode("utf-8", "replace")
    headers = text.split("\n\n", 1)[0]
    fields = {"Requires-Dist": []}
    for line in headers.splitlines():
        key, _, value = line.partition(":")
        if key == "Requires-Dist":
            fields["Requires-Dist"].append(value.strip())
        elif key in ("Name", "Version"):
            fields[key] = value.strip()
    return fields


def read(directory, wheels):
    for file in sorted(os.listdir(directory)):
        if file.endswith(".whl"):
            info = metadata(os.path.join(directory, file))
            wheels.setdefault(canonicalize_name(info["Name"]), (os.path.join(directory, file), info))


def applies(requirement, extras):
    """Whether a requirement applies with no extra or with one of `extras` requested."""
    if not requirement.marker:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in [""] + sorted(extras))


def active_extras(wheels):
    """The extras requested of each distribution by the set's own requirements (`name[x]`),
    which make its `extra == 'x'` requirements apply too, as the stub's check has them."""
    extras = {name: set() for name in wheels}
    changed = True
    while changed:
        changed = False
        for name, (_, info) in wheels.items():
            for text in info["Requires-Dist"]:
                requirement = Requirement(text)
                target = canonicalize_name(requirement.name)
                if target in extras and applies(requirement, extras[name]):
                    new = set(requirement.extras) - extras[target]
                    if new:
                        extras[target] |= new
                        changed = True
    return extras


def requirements(wheels):
    """Every (distribution, requirement text, requirement) that applies in the set."""
    extras = active_extras(wheels)
    for name, (_, info) in wheels.items():
        for text in info["Requires-Dist"]:
            requirement = Requirement(text)
            if applies(requirement, extras[name]):
                yield name, text, requirement


def absent(wheels):
    """Requirements naming a distribution the set does not hold at all."""
    wanted = {}
    for _, _, requirement in requirements(wheels):
        name = canonicalize_name(requirement.name)
        if name not in wheels:
            wanted.setdefault(name, str(requirement).split(";")[0])
    return wanted


def fetch(wanted, extra):
    """One pip for all of them; one each only when that fails (a requirement with no wheel)."""
    version = "%d.%d.%d" % sys.version_info[:3]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--implementation", "cp", "--python-version", version,
               "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
               "--platform", "any", "-d", extra]
    run = lambda texts: subprocess.run(
        command + texts, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")).returncode == 0
    texts = [text for _, text in sorted(wanted.items())]
    if not run(texts):
        for text in texts:
            run([text])


def main(source, out, extra=None):
    wheels = {}
    read(source, wheels)
    if extra:
        os.makedirs(extra, exist_ok=True)
        for _ in range(6):
            read(extra, wheels)
            wanted = absent(wheels)
            if not wanted:
                break
            fetch(wanted, extra)
        read(extra, wheels)
    dropped = {}
    while True:
        unmet = {}
        for name, text, requirement in requirements(wheels):
            if name in unmet:
                continue
            other = wheels.get(canonicalize_name(requirement.name))
            if other is None or not requirement.specifier.contains(other[1]["Version"], prereleases=True):
                unmet[name] = text
        if not unmet:
            break
        for name, text in unmet.items():
            dropped[name] = text
            del wheels[name]
    os.makedirs(out, exist_ok=True)
    for file in os.listdir(out):
        os.unlink(os.path.join(out, file))
    for path, _ in wheels.values():
        os.symlink(os.path.abspath(path), os.path.join(out, os.path.basename(path)))
    print("%d wheels form a complete set; %d left out" % (len(wheels), len(dropped)))
    for name, text in sorted(dropped.items()):
        print("  left out %s (needs %s)" % (name, text))


if __name__ == "__main__":
    main(*sys.argv[1:4])
