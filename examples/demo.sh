#!/usr/bin/env bash
# End-to-end demo: build pysfx, pack the example Django site into one
# self-extracting file, install it into a release dir, migrate, serve it with
# gunicorn and fetch a few pages.  Needs cargo, curl and a CPython >= 3.6.
#
#   PYTHON=python3.11 examples/demo.sh        # interpreter to build and run with
#   PYSFX_STUB=/path/to/pysfx-stub examples/demo.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
OUT=$ROOT/examples/out
SFX=$OUT/site.sfx
DEST=$OUT/releases/1

step() { printf '\n== %s\n' "$*"; }

command -v curl >/dev/null || { echo "demo: curl is needed" >&2; exit 1; }

step "build"
cargo build --release -p pysfx
# The stub every artifact starts with, built for glibc 2.17 (CentOS 7 and newer) with
# cargo-zigbuild and put next to the packer, where `pysfx pack` finds it.
if [[ -z "${PYSFX_STUB:-}" ]]; then
    bash scripts/build-stub.sh >/dev/null
fi

stub_args=()
if [[ -n "${PYSFX_STUB:-}" ]]; then
    stub_args=(--stub "$PYSFX_STUB")
fi

step "pack"
mkdir -p "$OUT"
# ${a[@]+"${a[@]}"}: an empty array trips `set -u` on bash < 4.4.
target/release/pysfx pack \
    --app examples/site/mysite \
    -r examples/site/requirements.txt \
    --python "$PYTHON" \
    --static examples/site/extra-static \
    ${stub_args[@]+"${stub_args[@]}"} \
    -o "$SFX"
target/release/pysfx inspect "$SFX"

step "install into $DEST"
# A fresh release dir each run keeps the demo repeatable.
rm -rf "$DEST"
"$SFX" -d "$DEST" --python "$PYTHON"

step "configure and migrate"
# The venv's .pth hooks load this into os.environ and put DEST/mysite on
# sys.path at interpreter start, so nothing is exported here on purpose.
cat > "$DEST/environment.json" <<'EOF'
{"SECRET_KEY": "demo-not-secret", "DEBUG": false, "GREETING": "Hello from a pysfx release"}
EOF
VENV_PY=$DEST/venv/bin/python
# From / so neither the cwd nor the script's dir can be what finds the app.
(cd / && "$VENV_PY" -c 'import os, mysite.settings as s; print("hooks: app at %s, GREETING=%r" % (s.BASE_DIR, os.environ["GREETING"]))')
"$VENV_PY" "$DEST/mysite/manage.py" migrate --noinput
"$VENV_PY" "$DEST/mysite/manage.py" collectstatic --noinput

step "serve"
PORT=$("$VENV_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$OUT/gunicorn.log
server_pid=
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM
"$DEST/venv/bin/gunicorn" --bind "127.0.0.1:$PORT" --chdir "$DEST/mysite" mysite.wsgi >"$LOG" 2>&1 &
server_pid=$!

BASE=http://127.0.0.1:$PORT
ready=
for _ in $(seq 1 40); do
    if curl -fsS "$BASE/health" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.5
done
if [[ -z "$ready" ]]; then
    echo "demo: gunicorn did not answer on $BASE/health within 20 s; its log:" >&2
    cat "$LOG" >&2
    exit 1
fi

echo "GET /health -> $(curl -fsS "$BASE/health")"
echo "GET / ->"
curl -fsS "$BASE/"
# The app's own css and the robots.txt packed with --static (static.in/0),
# both gathered by collectstatic into DEST/static.
for asset in static/hello/site.css static/robots.txt; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' "$BASE/$asset")
    echo "GET /$asset -> $code"
    [[ $code == 200 ]] || { echo "demo: /$asset not served" >&2; exit 1; }
done

stop_server
server_pid=
echo "demo: the site answered on 127.0.0.1:$PORT from ${DEST#"$ROOT"/}"
