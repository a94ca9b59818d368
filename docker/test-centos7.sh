#!/usr/bin/env bash
# Entry point of test-centos7.Dockerfile: installs the artifact at /work/site.sfx with CentOS 7's
# python3 (3.6) and with Software Collections' rh-python38, and checks that a second run on the
# same release changes nothing. Exits non-zero, with a line saying why, on the first failure.
#
#   PYSFX_CHECK_IMPORT   module to import from each venv; unset: `django` if the release is the
#                        example site (holds mysite/manage.py), else none; empty: none
#
# The other PYSFX_* variables below only exist so the script can be tried outside the container.
set -euo pipefail

ARTIFACT=${PYSFX_ARTIFACT:-/work/site.sfx}
RELEASES=${PYSFX_RELEASES:-/srv/app/releases}
BASE_PYTHON=${PYSFX_BASE_PYTHON:-/usr/bin/python3}
SCL_PYTHON=${PYSFX_SCL_PYTHON:-/opt/rh/rh-python38/root/usr/bin/python3}

fail() {
    echo "test-centos7: FAIL: $*" >&2
    exit 1
}
step() { printf '\n== %s\n' "$*" >&2; }

# Runs the artifact with --json into DEST and checks its exit code and "changed".
install() {
    local python=$1 destination=$2 expected=$3 report code=0 changed
    step "$ARTIFACT -d $destination --python $python --json (expect \"changed\": $expected)"
    report=$("$ARTIFACT" -d "$destination" --python "$python" --json) || code=$?
    printf '%s\n' "$report"
    ((code == 0)) || fail "the artifact exited $code installing into $destination with $python"
    # stdout is exactly one JSON object (docs/operator-guide.md); this python3 is CentOS's 3.6.
    changed=$(printf '%s' "$report" |
        python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["changed"]))') ||
        fail "the artifact's stdout is not a JSON object with \"changed\""
    [[ $changed == "$expected" ]] ||
        fail "installing into $destination with $python reported \"changed\": $changed, expected $expected"
}

# Imports a module with the venv's own interpreter, from /, so only the venv can provide it.
check_import() {
    local destination=$1 module=${PYSFX_CHECK_IMPORT-}
    if [[ -z ${PYSFX_CHECK_IMPORT+set} && -f $destination/mysite/manage.py ]]; then
        module=django
    fi
    if [[ -z $module ]]; then
        step "no import check (PYSFX_CHECK_IMPORT is empty, or unset and this is not the example site)"
        return
    fi
    step "$destination/venv/bin/python -c 'import $module'"
    (cd / && "$destination/venv/bin/python" -c "import $module; print('$module', getattr($module, '__version__', ''), 'from', $module.__file__)") ||
        fail "the venv in $destination cannot import $module"
}

# One interpreter: install into a fresh DEST, import, install again.
check_python() {
    local python=$1 destination=$2
    [[ -x $python ]] || fail "no interpreter at $python"
    [[ ! -e $destination ]] || fail "$destination already exists; start from a fresh container"
    install "$python" "$destination" true
    check_import "$destination"
    install "$python" "$destination" false
}

[[ -f $ARTIFACT && -x $ARTIFACT ]] ||
    fail "no executable artifact at $ARTIFACT; mount one: docker run -v \"\$PWD/site.sfx:$ARTIFACT:ro\" …"

step "$ARTIFACT --verify"
"$ARTIFACT" --verify || fail "the artifact's payload does not verify (exit $?)"

mkdir -p "$RELEASES"
check_python "$BASE_PYTHON" "$RELEASES/1"

# SCL interpreters carry no rpath to their own libpython; `scl enable rh-python38` would export
# this. Set it only if the bare interpreter cannot start, so the test stays as close as it can to
# an operator passing the interpreter's path.
if ! "$SCL_PYTHON" -c '' 2>/dev/null; then
    scl_lib=${SCL_PYTHON%/bin/*}/lib64
    step "$SCL_PYTHON needs LD_LIBRARY_PATH=$scl_lib"
    export LD_LIBRARY_PATH=$scl_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
check_python "$SCL_PYTHON" "$RELEASES/2"

step "test-centos7: OK: $(basename "$ARTIFACT") installed with $BASE_PYTHON and $SCL_PYTHON"
