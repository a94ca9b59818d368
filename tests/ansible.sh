#!/usr/bin/env bash
# Runs examples/ansible/deploy.yml for real against this machine, twice:
#
#   tests/ansible.sh ARTIFACT        # e.g. examples/out/site.sfx from examples/demo.sh
#
# 1. installs ansible-core into a venv in a temp dir;
# 2. deploys ARTIFACT (an artifact of the example site) as release 1 under a
#    temp pysfx_root: the recap must show changed > 0 and failed=0, and the
#    gunicorn that sitectl started must answer /health with "ok";
# 3. deploys it again: the recap must show changed=0 and failed=0, and the
#    same gunicorn still answers;
# 4. deploys the same artifact as release 2: changed > 0, `current` moves to
#    it, the handler restarts gunicorn (a new pid, working in release 2), and
#    migrate reports no change (the database is shared between releases);
# 5. deploys release 3 with an interpreter that does not exist: the play must
#    fail with the artifact's JSON error in the message, and `current` must
#    still point at release 2.
# Then it stops gunicorn and removes the temp dir.  Nothing outside the temp
# dir is written (pip's cache and Ansible's home are in it too).
#
#   PYTHON          runs ansible and is the site's interpreter (the artifact
#                   must hold a wheel set for it); default: pyenv's 3.11.7 if
#                   present, else python3
#   SITE_PYTHON     the site's interpreter, if it should differ from PYTHON
#   ANSIBLE_CORE    pip requirement for ansible-core (default by Python version)
#   ANSIBLE_VENV    a venv for ansible-core: reused if it has it, else made
#                   there (default: in the temp dir)
#   KEEP_TMP=1      keep the temp dir (the server is stopped all the same)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PLAYBOOK_DIR=$ROOT/examples/ansible

die() { echo "ansible: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: tests/ansible.sh ARTIFACT"
ARTIFACT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -f $ARTIFACT && -x $ARTIFACT ]] || die "$1 is not an executable file"
command -v curl >/dev/null || die "curl is needed"

default_python=python3
[[ -x /root/.pyenv/versions/3.11.7/bin/python ]] && default_python=/root/.pyenv/versions/3.11.7/bin/python
PYTHON=${PYTHON:-$default_python}
SITE_PYTHON=${SITE_PYTHON:-$PYTHON}
# The site's interpreter as an absolute path: the artifact runs from the
# playbook, whose PATH need not be ours.
SITE_PYTHON=$("$SITE_PYTHON" -c 'import sys; print(sys.executable)')

# ansible-core's controller needs a recent Python: 2.15 takes 3.9, 2.17 3.10,
# 2.18 3.11-3.13, 2.20 3.12+.
if [[ -z ${ANSIBLE_CORE:-} ]]; then
    pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    case $pyver in
        3.9) ANSIBLE_CORE='ansible-core==2.15.*' ;;
        3.10) ANSIBLE_CORE='ansible-core==2.17.*' ;;
        3.11 | 3.12 | 3.13) ANSIBLE_CORE='ansible-core==2.18.*' ;;
        *) die "ansible-core needs Python 3.9 or newer to run, $PYTHON is $pyver (set PYTHON, and SITE_PYTHON for the site)" ;;
    esac
fi

started=$SECONDS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pysfx-ansible.XXXXXX")
SITE_ROOT=$TMP/srv
cleanup() {
    local rc=$?
    # Stop the server whatever happened; kill it outright if sitectl can't.
    if [[ -f $SITE_ROOT/run/gunicorn.pid ]]; then
        local pid
        pid=$(cat "$SITE_ROOT/run/gunicorn.pid" 2>/dev/null || true)
        if [[ -x $SITE_ROOT/bin/sitectl ]]; then
            "$SITE_ROOT/bin/sitectl" stop >/dev/null 2>&1 || true
        fi
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [[ ${KEEP_TMP:-} == 1 ]]; then
        echo "ansible: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ANSIBLE_VENV: where the venv goes (kept, and reused when it has ansible-playbook).
venv=${ANSIBLE_VENV:-$TMP/ansible-venv}
if [[ ! -x $venv/bin/ansible-playbook ]]; then
    echo "== ansible: installing $ANSIBLE_CORE with $PYTHON"
    export PIP_CACHE_DIR=$TMP/pip-cache PIP_DISABLE_PIP_VERSION_CHECK=1
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q "$ANSIBLE_CORE"
fi
ANSIBLE_PLAYBOOK=$venv/bin/ansible-playbook
ANSIBLE_VERSION=$("$ANSIBLE_PLAYBOOK" --version)
ANSIBLE_VERSION=${ANSIBLE_VERSION%%$'\n'*}
echo "$ANSIBLE_VERSION"

# Ansible's own state goes to the temp dir, and only our ansible.cfg is read.
export ANSIBLE_CONFIG=$PLAYBOOK_DIR/ansible.cfg
export ANSIBLE_HOME=$TMP/ansible-home
export ANSIBLE_LOCAL_TEMP=$TMP/ansible-home/tmp
export ANSIBLE_REMOTE_TEMP=$TMP/ansible-home/remote-tmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
unset ANSIBLE_INVENTORY ANSIBLE_ROLES_PATH

PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The secret goes in a vars file, not on the command line (ps would show it).
VARS=$TMP/vars.yml
SECRET=test-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && cat >"$VARS" <<EOF
pysfx_secret_key: "$SECRET"
pysfx_greeting: "Hello from the Ansible test"
EOF
)

# run_playbook NAME [-e ...]: runs deploy.yml, log in $TMP/NAME.log; prints
# the recap line for localhost.  Its exit status is the playbook's.
run_playbook() {
    local name=$1 rc=0
    shift
    (cd "$PLAYBOOK_DIR" && "$ANSIBLE_PLAYBOOK" -i inventory.ini deploy.yml \
        -e "pysfx_artifact=$ARTIFACT" -e "pysfx_root=$SITE_ROOT" \
        -e "pysfx_python=$SITE_PYTHON" -e "pysfx_port=$PORT" -e "@$VARS" \
        "$@") >"$TMP/$name.log" 2>&1 || rc=$?
    recap=$(grep -E '^localhost +: ok=' "$TMP/$name.log" || true)
    return "$rc"
}

show_log() {
    echo "---- $TMP/$1.log" >&2
    cat "$TMP/$1.log" >&2
    if [[ -f $SITE_ROOT/log/gunicorn.log ]]; then
        echo "---- $SITE_ROOT/log/gunicorn.log" >&2
        tail -n 30 "$SITE_ROOT/log/gunicorn.log" >&2
    fi
}

recap_field() { sed -nE "s/.* $1=([0-9]+).*/\\1/p" <<<"$recap"; }

wait_for_health() {
    local body='' deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        body=$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT/health" 2>/dev/null) && [[ $body == ok ]] && return 0
        sleep 0.5
    done
    echo "ansible: http://127.0.0.1:$PORT/health did not answer \"ok\" within 20 s (last body: ${body:-none})" >&2
    return 1
}

gunicorn_pid() { cat "$SITE_ROOT/run/gunicorn.pid" 2>/dev/null || true; }

echo "== ansible: first run (release 1, pysfx_root $SITE_ROOT, port $PORT)"
t=$SECONDS
run_playbook first -e pysfx_release=1 || { show_log first; die "the first run failed"; }
echo "$recap ($((SECONDS - t)) s)"
[[ $(recap_field failed) == 0 && $(recap_field changed) -gt 0 ]] ||
    { show_log first; die "the first run should change something and fail nothing"; }
[[ $(readlink "$SITE_ROOT/current") == "$SITE_ROOT/releases/1" ]] ||
    die "current -> $(readlink "$SITE_ROOT/current"), expected releases/1"
[[ $(stat -c %a "$SITE_ROOT/releases/1/environment.json") == 600 ]] ||
    die "environment.json is not mode 0600"
grep -qF "$SECRET" "$TMP/first.log" && die "the secret appears in the playbook's output"
wait_for_health || { show_log first; exit 1; }
pid1=$(gunicorn_pid)
# The greeting came from environment.json through the venv's hooks.
curl -fsS "http://127.0.0.1:$PORT/" | grep -q "Hello from the Ansible test" ||
    die "/ does not show the greeting from environment.json"
[[ -f $SITE_ROOT/shared/db.sqlite3 ]] || die "DATABASE_PATH was not used: no shared/db.sqlite3"
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/static/robots.txt")
[[ $code == 200 ]] || die "GET /static/robots.txt -> $code"

echo "== ansible: second run (same release)"
t=$SECONDS
run_playbook second -e pysfx_release=1 || { show_log second; die "the second run failed"; }
echo "$recap ($((SECONDS - t)) s)"
[[ $(recap_field changed) == 0 && $(recap_field failed) == 0 ]] ||
    { show_log second; die "the second run should report changed=0 failed=0"; }
wait_for_health || { show_log second; exit 1; }
[[ $(gunicorn_pid) == "$pid1" ]] || die "gunicorn was restarted by a run that changed nothing"

echo "== ansible: upgrade run (release 2: the same artifact in a new release dir)"
t=$SECONDS
run_playbook upgrade -e pysfx_release=2 || { show_log upgrade; die "the upgrade run failed"; }
echo "$recap ($((SECONDS - t)) s)"
[[ $(recap_field failed) == 0 && $(recap_field changed) -gt 0 ]] ||
    { show_log upgrade; die "the upgrade run should change something and fail nothing"; }
[[ $(readlink "$SITE_ROOT/current") == "$SITE_ROOT/releases/2" ]] ||
    die "current -> $(readlink "$SITE_ROOT/current"), expected releases/2"
wait_for_health || { show_log upgrade; exit 1; }
pid2=$(gunicorn_pid)
[[ -n $pid2 && $pid2 != "$pid1" ]] || die "the upgrade did not restart gunicorn"
[[ $(readlink "/proc/$pid2/cwd") == "$SITE_ROOT/releases/2/mysite" ]] ||
    die "gunicorn runs in $(readlink "/proc/$pid2/cwd"), not in release 2"
# The migrations ran against the shared database in release 1 already.
grep -A1 'Apply the database migrations' "$TMP/upgrade.log" | grep -q '^ok:' ||
    { show_log upgrade; die "migrate reported a change for an up-to-date shared database"; }

echo "== ansible: failing run (release 3, an interpreter that does not exist)"
if run_playbook failing -e pysfx_release=3 -e pysfx_python=/nonexistent/python3; then
    show_log failing
    die "a run with a missing interpreter succeeded"
fi
echo "$recap"
[[ $(recap_field failed) == 1 ]] || { show_log failing; die "the failing run should report failed=1"; }
grep -q "exited 4: cannot run the interpreter /nonexistent/python3" "$TMP/failing.log" ||
    { show_log failing; die "the failure does not show the artifact's error"; }
[[ ! -e $SITE_ROOT/releases/3 ]] || die "the failed install left releases/3"
[[ $(readlink "$SITE_ROOT/current") == "$SITE_ROOT/releases/2" ]] || die "the failed run moved current"
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null || die "the site went down after the failed run"

"$SITE_ROOT/bin/sitectl" stop
pid=$(gunicorn_pid)
[[ -z $pid ]] || die "the pid file remains after sitectl stop"
if pgrep -f "$SITE_ROOT/" >/dev/null; then
    pgrep -af "$SITE_ROOT/" >&2
    die "processes from $SITE_ROOT are still running"
fi

echo "ansible: ${ANSIBLE_VERSION}, $((SECONDS - started)) s"
echo "ansible: first run changed, second run unchanged, site answered on 127.0.0.1:$PORT"
