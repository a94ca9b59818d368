#!/usr/bin/env bash
# Runs examples/ansible/deploy.yml against a fleet of six "hosts" on this
# machine (local connection, each its own pysfx_root and gunicorn port, one
# shared SQLite database as the fleet's database), two at a time (serial: 2):
#
#   tests/ansible-fleet.sh ARTIFACT
#
# 1. release 1 everywhere: every host changed, none failed, each serving;
#    a stale copied artifact (site-0.sfx) is removed;
# 2. release 2 with web3's health check made to fail: web3 goes back to
#    release 1 and still serves, the play fails for web3 only, and the other
#    batches go on (max_fail_percentage 50: one of two is not more than half);
# 3. release 2 again, nothing new: changed=0 on every host (web3 keeps
#    release 1: release 2 is marked bad there).
# Prints the per-host outcome table, stops every gunicorn, removes the temp
# dir.  ANSIBLE_VENV reuses a venv that has ansible-core; PYTHON is the
# site's interpreter (the artifact must hold a wheel set for it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PLAYBOOK_DIR=$ROOT/examples/ansible
HOSTS=(web1 web2 web3 web4 web5 web6)
FAILING=web3

die() { echo "fleet: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: tests/ansible-fleet.sh ARTIFACT"
ARTIFACT=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[[ -x $ARTIFACT ]] || die "$1 is not an executable file"
PYTHON=${PYTHON:-python3}
SITE_PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)')

started=$SECONDS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pysfx-fleet.XXXXXX")
stop_all() {
    local host pid
    for host in "${HOSTS[@]}"; do
        [[ -x $TMP/$host/bin/sitectl ]] && "$TMP/$host/bin/sitectl" stop >/dev/null 2>&1 || true
        pid=$(cat "$TMP/$host/run/gunicorn.pid" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null || true
    done
}
cleanup() {
    local rc=$?
    stop_all
    if [[ ${KEEP_TMP:-} == 1 ]]; then echo "fleet: kept $TMP" >&2; else rm -rf "$TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${ANSIBLE_VENV:-} && -x $ANSIBLE_VENV/bin/ansible-playbook ]]; then
    ANSIBLE_PLAYBOOK=$ANSIBLE_VENV/bin/ansible-playbook
else
    echo "== fleet: installing ansible-core"
    export PIP_CACHE_DIR=$TMP/pip-cache PIP_DISABLE_PIP_VERSION_CHECK=1
    "$PYTHON" -m venv "$TMP/ansible-venv"
    "$TMP/ansible-venv/bin/python" -m pip install -q "${ANSIBLE_CORE:-ansible-core==2.18.*}"
    ANSIBLE_PLAYBOOK=$TMP/ansible-venv/bin/ansible-playbook
fi
export ANSIBLE_CONFIG=$PLAYBOOK_DIR/ansible.cfg
export ANSIBLE_HOME=$TMP/ansible-home
export ANSIBLE_LOCAL_TEMP=$TMP/ansible-home/tmp
export ANSIBLE_REMOTE_TEMP=$TMP/ansible-home/remote-tmp
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
unset ANSIBLE_INVENTORY ANSIBLE_ROLES_PATH

declare -A PORT
read -r -a ports <<<"$("$PYTHON" -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
for i in "${!HOSTS[@]}"; do PORT[${HOSTS[$i]}]=${ports[$i]}; done

mkdir -p "$TMP/db" "$TMP/web1/artifacts"
echo stale >"$TMP/web1/artifacts/site-0.sfx"
VARS=$TMP/vars.yml
(umask 077 && cat >"$VARS" <<EOF
pysfx_secret_key: "fleet-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
pysfx_artifact: "$ARTIFACT"
pysfx_python: "$SITE_PYTHON"
pysfx_database_path: "$TMP/db/db.sqlite3"
pysfx_workers: 1
pysfx_health_retries: 3
pysfx_serial: 2
EOF
)

# inventory FILE [FAILING_HOST]
inventory() {
    local host line
    {
        echo "[pysfx]"
        for host in "${HOSTS[@]}"; do
            line="$host ansible_connection=local ansible_python_interpreter=$ANSIBLE_PYTHON pysfx_root=$TMP/$host pysfx_port=${PORT[$host]}"
            [[ $host == "${2:-}" ]] && line+=" pysfx_health_path=/broken-on-purpose"
            echo "$line"
        done
    } >"$1"
}
ANSIBLE_PYTHON=$(dirname "$ANSIBLE_PLAYBOOK")/python

declare -A OUTCOME
# play NAME RELEASE [FAILING_HOST]: runs the play; its status in $rc, the
# recap of each host in OUTCOME[NAME,HOST].
play() {
    local name=$1 release=$2 host recap t=$SECONDS
    inventory "$TMP/$name.ini" "${3:-}"
    rc=0
    (cd "$PLAYBOOK_DIR" && "$ANSIBLE_PLAYBOOK" -i "$TMP/$name.ini" deploy.yml \
        -e "@$VARS" -e "pysfx_release=$release") >"$TMP/$name.log" 2>&1 || rc=$?
    for host in "${HOSTS[@]}"; do
        recap=$(grep -E "^$host +: ok=" "$TMP/$name.log" || true)
        OUTCOME[$name,$host]="changed=$(field changed "$recap") failed=$(field failed "$recap")"
    done
    echo "   exit $rc, $((SECONDS - t)) s"
}
field() { sed -nE "s/.* $1=([0-9]+).*/\\1/p" <<<"$2"; }
show() { echo "---- $TMP/$1.log" >&2; cat "$TMP/$1.log" >&2; }
current_of() { basename "$(readlink "$TMP/$1/current" 2>/dev/null || echo none)"; }
healthy() { [[ $(curl -fsS --max-time 3 "http://127.0.0.1:${PORT[$1]}/health" 2>/dev/null) == ok ]]; }

echo "== fleet: run 1 (release 1 on ${#HOSTS[@]} hosts, serial 2)"
play run1 1
((rc == 0)) || { show run1; die "run 1 failed"; }
for host in "${HOSTS[@]}"; do
    [[ ${OUTCOME[run1,$host]} == "changed="[1-9]*" failed=0" ]] || { show run1; die "run 1 on $host: ${OUTCOME[run1,$host]}"; }
    [[ $(current_of "$host") == 1 ]] || die "$host serves $(current_of "$host"), not release 1"
    healthy "$host" || die "$host does not answer /health"
done
[[ ! -e $TMP/web1/artifacts/site-0.sfx ]] || die "the stale artifact site-0.sfx was not removed"
[[ -e $TMP/web1/artifacts/site-1.sfx ]] || die "the artifact of release 1 was removed"

echo "== fleet: run 2 (release 2, $FAILING's health check fails)"
play run2 2 "$FAILING"
((rc != 0)) || { show run2; die "run 2 succeeded though $FAILING failed its health check"; }
for host in "${HOSTS[@]}"; do
    if [[ $host == "$FAILING" ]]; then
        [[ ${OUTCOME[run2,$host]} == *"failed=1" ]] || { show run2; die "$host should have failed: ${OUTCOME[run2,$host]}"; }
        [[ $(current_of "$host") == 1 ]] || { show run2; die "$host was not rolled back: it serves $(current_of "$host")"; }
        [[ -f $TMP/$host/bad-releases/2 ]] || die "$host has no bad mark for release 2"
    else
        [[ ${OUTCOME[run2,$host]} == "changed="[1-9]*" failed=0" ]] || { show run2; die "run 2 on $host: ${OUTCOME[run2,$host]}"; }
        [[ $(current_of "$host") == 2 ]] || { show run2; die "$host serves $(current_of "$host"), not release 2"; }
    fi
    healthy "$host" || { show run2; die "$host does not answer /health after run 2"; }
done
grep -q "release 2 failed its health check" "$TMP/run2.log" || { show run2; die "the failure message is missing"; }

echo "== fleet: run 3 (release 2 again, nothing new)"
play run3 2
((rc == 0)) || { show run3; die "run 3 failed"; }
for host in "${HOSTS[@]}"; do
    [[ ${OUTCOME[run3,$host]} == "changed=0 failed=0" ]] || { show run3; die "run 3 on $host: ${OUTCOME[run3,$host]}"; }
    healthy "$host" || die "$host does not answer /health after run 3"
done

printf '\n%-6s %-20s %-20s %-20s %-8s %s\n' host run1 run2 run3 current health
for host in "${HOSTS[@]}"; do
    health=down
    healthy "$host" && health=ok
    printf '%-6s %-20s %-20s %-20s %-8s %s\n' "$host" "${OUTCOME[run1,$host]}" \
        "${OUTCOME[run2,$host]}" "${OUTCOME[run3,$host]}" "$(current_of "$host")" "$health"
done
stop_all
for host in "${HOSTS[@]}"; do
    if pgrep -f "$TMP/$host/" >/dev/null; then die "processes of $host still run"; fi
done
echo "fleet: $((SECONDS - started)) s; $FAILING rolled back to release 1, the others on release 2"
