#!/usr/bin/env bash
# The install benchmark (issue: speed). One command, one run, every number measured side by side:
#
#   bench/run.sh [RUNS]            # default 5 runs per method, medians
#
# Two corpora: the pinned Django/Wagtail site (CPython 3.11 and 3.6) and 200 popular PyPI
# distributions (CPython 3.11; corpus/popular-py311.txt). Fetches them with pip when absent,
# builds the release packer and the glibc 2.17 stub, packs the corpus, then times — cold, a fresh
# DEST on tmpfs every run — pysfx --no-compile, pysfx (with byte-code), uv (empty cache) with and
# without --compile-bytecode, the pip way (venv + pip install, which compiles), and `cp -a` of the
# installed tree; also the no-op re-run, pack time, peak RSS (/usr/bin/time) and stub size.
# Prints ratios against uv and pip measured in the same run.
#   CORPORA="django:3.11.7 django:3.6.15 popular:3.11.7"   corpus:pyenv version pairs to measure
#   THIN=0                    skips the thin-artifact size step (django corpora: the next
#                             release with one wheel changed, packed --thin-from the full one)
#   BULK=10                   also install a payload BULK times the 3.11 corpus (distinct
#                             copies of every wheel) and report its peak RSS; BULK=0 skips it
#   BENCH_TMP=/dev/shm/pysfx-bench   where DESTs go (tmpfs: stable numbers)
#   BENCH_DISK=$BENCH_DATA/linked-disk   where the linked section also times on disk
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${1:-5}
SHARED=$ROOT/../shared/bench
DATA=${BENCH_DATA:-/tmp/bench-data}
TMP=${BENCH_TMP:-/dev/shm/pysfx-bench}
CORPORA=${CORPORA:-"django:3.11.7 django:3.6.15 popular:3.11.7"}
HOST_PY=${HOST_PY:-/root/.pyenv/versions/3.11.7/bin/python}
[[ -d $SHARED ]] || { echo "bench: $SHARED not found (shared/ beside the repository)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

mkdir -p "$DATA" "$TMP"
log() { printf 'bench: %s\n' "$*" >&2; }

# Tools: uv from PyPI in its own venv.
if [[ ! -x $DATA/tools/venv/bin/uv ]]; then
    log "installing uv into $DATA/tools/venv"
    "$HOST_PY" -m venv "$DATA/tools/venv"
    "$DATA/tools/venv/bin/pip" install -q --disable-pip-version-check uv
fi
UV=$DATA/tools/venv/bin/uv

log "building the release packer and stub"
cargo build --release -q -p pysfx
STUB=$(bash scripts/build-stub.sh 2>/dev/null)
PYSFX=$ROOT/target/release/pysfx

# time_run NAME CMD...: one timed run; appends "NAME wall rss_kib" to $RESULTS. The wall time
# is read from the clock in nanoseconds around the run (/usr/bin/time's %e has 10 ms steps, a
# twentieth of a linked install); /usr/bin/time gives the peak RSS.
time_run() {
    local name=$1; shift
    local out start took
    start=$(date +%s%N)
    out=$(/usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1) || { echo "bench: $name failed: $out" >&2; exit 1; }
    took=$(( $(date +%s%N) - start ))
    printf '%s %d.%06d %s\n' "$name" $((took / 1000000000)) $(((took / 1000) % 1000000)) "$out" >> "$RESULTS"
}

# measure NAME RUNS SETUP CMD...: a warm-up, then RUNS timed runs, SETUP (a shell snippet) before each.
measure() {
    local name=$1 runs=$2 setup=$3; shift 3
    eval "$setup"; "$@" >/dev/null 2>&1 || { echo "bench: $name failed" >&2; "$@"; exit 1; }
    for ((i = 0; i < runs; i++)); do
        eval "$setup"
        time_run "$name" "$@"
    done
}

for entry in $CORPORA; do
    corpus=${entry%%:*}
    version=${entry#*:}
    PY=/root/.pyenv/versions/$version/bin/python
    short=$(echo "$version" | cut -d. -f1,2 | tr -d .)
    if [[ $corpus == popular ]]; then
        reqs=$SHARED/corpus/popular-py$short.txt
        WHEELS=$DATA/wheels/popular-py$short
    else
        reqs=$SHARED/corpus/requirements-py$short.txt
        WHEELS=$DATA/wheels/py$short
    fi
    if [[ ! -d $WHEELS ]] || [[ $(ls "$WHEELS"/*.whl 2>/dev/null | wc -l) -eq 0 ]]; then
        log "fetching the $corpus corpus for $version"
        DL_PY=$HOST_PY sh "$SHARED/corpus/fetch.sh" "$PY" "$reqs" "$WHEELS" >&2
    fi
    if [[ $corpus == popular ]]; then
        # pysfx installs complete sets only: the corpus's missing dependencies are fetched and
        # what still cannot be met is left out (bench/complete_subset.py says what).
        if [[ ! -f $WHEELS-complete/.complete ]]; then
            log "making the popular corpus a complete set"
            "$PY" bench/complete_subset.py "$WHEELS" "$WHEELS-complete" "$WHEELS-extra" >&2
            touch "$WHEELS-complete/.complete"
        fi
        WHEELS=$WHEELS-complete
    fi
    RESULTS=$TMP/results-$corpus-$short.txt
    : > "$RESULTS"
    # DEST alone in its directory: a release beside it would be linked from (linked installs),
    # and this is the plain install's time.
    D=$TMP/plain/dest
    rm -rf "$TMP/plain"; mkdir -p "$TMP/plain"
    ART=$TMP/corpus-$short.sfx
    ART_LATE=$TMP/corpus-$short-late.sfx

    log "$corpus, CPython $version: packing $(ls "$WHEELS"/*.whl | wc -l) wheels"
    start=$("$HOST_PY" -c 'import time; print(time.time())')
    # --python: the set's interpreter is at hand, so byte-code is compiled at pack time.
    "$PYSFX" pack -q --app examples/site/mysite --wheels "$WHEELS" --python "$PY" --no-bootstrap --stub "$STUB" -o "$ART"
    pack_s=$("$HOST_PY" -c 'import sys, time; print(time.time() - float(sys.argv[1]))' "$start")
    # Without --python (every --target pack for CentOS 7): byte-code is compiled at install.
    "$PYSFX" pack -q --app examples/site/mysite --wheels "$WHEELS" --no-bootstrap --stub "$STUB" -o "$ART_LATE"

    log "$corpus, CPython $version: timing ($RUNS runs each)"
    # --no-compile: no .pyc is written, as uv cold (without --compile-bytecode) writes none
    # (on $ART_LATE, packed without byte-code, so the artifact is the plain payload).
    measure pysfx-nocompile "$RUNS" 'rm -rf $D' "$ART_LATE" -q -d "$D" --python "$PY" --no-compile
    measure pysfx "$RUNS" 'rm -rf $D' "$ART" -q -d "$D" --python "$PY"
    measure pysfx-compile-late "$RUNS" 'rm -rf $D' "$ART_LATE" -q -d "$D" --python "$PY"
    rm -rf "$D"
    "$ART" -q -d "$D" --python "$PY"
    measure pysfx-noop "$RUNS" ':' "$ART" -q -d "$D" --python "$PY"
    cp -a "$D" "$TMP/installed"
    measure cp-a "$RUNS" ':' sh "$SHARED/limit-cp.sh" "$TMP/installed/venv" "$D-cp"
    measure uv-cold "$RUNS" ':' env UV="$UV" sh "$SHARED/anchor-uv.sh" "$PY" "$WHEELS" "$D-uv"
    if [[ $short != 36 ]]; then
        measure uv-cold-compile "$RUNS" ':' env UV="$UV" sh "$SHARED/anchor-uv.sh" "$PY" "$WHEELS" "$D-uv" --compile-bytecode
    fi
    pip_env=()
    if [[ $short == 36 ]]; then
        # The venv's pip 18.1 rejects manylinux2014 wheels: upgrade it offline first (BASELINE.md).
        mkdir -p "$DATA/bootstrap36"
        ls "$DATA"/bootstrap36/pip-21.3.1-*.whl >/dev/null 2>&1 ||
            "$HOST_PY" -m pip download -q --no-deps pip==21.3.1 -d "$DATA/bootstrap36"
        pip_env=(env PIP_BOOTSTRAP="$(ls "$DATA"/bootstrap36/pip-21.3.1-*.whl)")
    fi
    if [[ $corpus == django ]]; then
        measure pip "$(( RUNS < 3 ? RUNS : 3 ))" ':' "${pip_env[@]}" sh "$SHARED/anchor-pip.sh" "$PY" "$WHEELS" "$D-pip"
    fi
    rm -rf "$D" "$D-cp" "$D-uv" "$D-pip" "$TMP/installed" "$ART_LATE"

    "$HOST_PY" - "$RESULTS" "$corpus, CPython $version" "$pack_s" "$(stat -c %s "$STUB")" "$(stat -c %s "$ART")" "$corpus" <<'PY'
import statistics, sys
path, version, pack_s, stub, artifact, corpus = sys.argv[1:]
rows = {}
for line in open(path):
    name, wall, rss = line.split()
    rows.setdefault(name, []).append((float(wall), int(rss)))
med = {name: statistics.median(w for w, _ in runs) for name, runs in rows.items()}
peak = {name: max(r for _, r in runs) / 1024 for name, runs in rows.items()}
print("\n== %s (medians of %s; DEST on tmpfs)" % (version, ", ".join("%s=%d" % (n, len(r)) for n, r in rows.items())))
print("%-18s %9s %10s" % ("method", "wall s", "peak MiB"))
for name in rows:
    print("%-18s %9.3f %10.1f" % (name, med[name], peak[name]))
def ratio(a, b, target=None, less=True):
    if a in med and b in med:
        value = med[a] / med[b]
        verdict = ""
        if target is not None:
            verdict = "  [target %s %.2f: %s]" % ("<=" if less else ">=", target, "met" if (value <= target if less else value >= target) else "MISSED")
        print("%-44s %6.2fx%s" % ("%s / %s" % (a, b), value, verdict))
print()
ratio("pysfx-nocompile", "uv-cold", 0.40)
ratio("pysfx-nocompile", "cp-a", 1.25 if corpus == "django" else None)
ratio("pysfx", "uv-cold-compile", 0.5)
ratio("pysfx-compile-late", "uv-cold-compile", 0.75)
if "pip" in med and "pysfx" in med:
    speedup = med["pip"] / med["pysfx"]
    print("%-44s %6.2fx  [target >= 8: %s]" % ("pip / pysfx (speed-up)", speedup, "met" if speedup >= 8 else "MISSED"))
if "pysfx-noop" in med:
    print("%-44s %6.0f ms  [target <= 50 ms: %s]" % ("no-op re-run", med["pysfx-noop"] * 1000, "met" if med["pysfx-noop"] <= 0.05 else "MISSED"))
# The stub's own memory, the highest of every run (peak MiB is already the max over runs). A
# compile-late run's figure is a compile worker's (a Python process, a child of the stub).
worst = max(peak.get("pysfx", 0), peak.get("pysfx-nocompile", 0))
print("%-44s %6.1f MiB  [target <= 32: %s]" % ("pysfx peak RSS, every run", worst, "met" if worst <= 32 else "MISSED"))
print("%-44s %6.1f s (byte-code compiled at pack time)" % ("pack time", float(pack_s)))
print("%-44s %d bytes; artifact %d bytes" % ("stub size", int(stub), int(artifact)))
PY

    # Thin artifact (SPEC "Thin artifacts"): the next release with one wheel changed, packed
    # --thin-from the full artifact above, with the same options. "One wheel changed" is
    # sqlparse (a small dependency, as a patch release would change) rebuilt by
    # bench/change_wheel.py: one comment line appended to sqlparse/__init__.py and its RECORD
    # row updated, every other byte kept. Offline and deterministic: the same wheel, so the same
    # sizes, on every run. Goal: the thin artifact <= 2 % of the full one.
    if [[ $corpus == django && ${THIN:-1} != 0 ]]; then
        V2=$TMP/wheels-v2-$short
        THIN_ART=$TMP/corpus-$short-thin.sfx
        rm -rf "$V2"
        mkdir -p "$V2"
        changed=$(ls "$WHEELS"/sqlparse-*.whl)
        for wheel in "$WHEELS"/*.whl; do
            [[ $wheel == "$changed" ]] || cp "$wheel" "$V2/"
        done
        "$HOST_PY" bench/change_wheel.py "$changed" "$V2" >&2
        log "$corpus, CPython $version: packing the next release thin (sqlparse changed)"
        "$PYSFX" pack -q --app examples/site/mysite --wheels "$V2" --python "$PY" --no-bootstrap --stub "$STUB" --thin-from "$ART" -o "$THIN_ART"
        stub_bytes=$("$PYSFX" inspect --json "$THIN_ART" | "$HOST_PY" -c 'import json, sys; print(json.load(sys.stdin)["stub_bytes"])')
        "$HOST_PY" - "$corpus, CPython $version" "$ART" "$THIN_ART" "$stub_bytes" <<'PY'
import collections, os, sys, zipfile
name, full_path, thin_path, stub = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
full, thin = os.path.getsize(full_path), os.path.getsize(thin_path)
ratio = thin / full
print("\n== %s: thin artifact, one wheel (sqlparse) changed" % name)
print("%-44s %d bytes; full %d bytes" % ("thin artifact", thin, full))
if "3.11" in name:
    print("%-44s %6.2f %%  [target <= 2 %%: %s]" % ("thin / full", ratio * 100, "met" if ratio <= 0.02 else "MISSED"))
else:
    # The target is the main corpus's (CPython 3.11): on this smaller artifact the stub alone
    # is %.2f %% of it.
    print("%-44s %6.2f %%  (the target is the 3.11 corpus's; the stub alone is %.2f %% here)"
          % ("thin / full", ratio * 100, stub * 100 / full))
print("%-44s %6.2f %%  (the stub, %d bytes, is in both)" % ("thin / full, payloads only", (thin - stub) * 100.0 / (full - stub), stub))
# Where the thin artifact's bytes go: the stub, then the payload by top-level directory
# (thin/ holds the husks, wheels/ the changed wheel, .pysfx/ the manifest and SBOMs).
parts = collections.Counter()
for info in zipfile.ZipFile(thin_path).infolist():
    parts[info.filename.split("/")[0]] += info.compress_size
print("%-44s stub %d, %s" % ("thin artifact's bytes", stub, ", ".join("%s %d" % item for item in parts.most_common())))
PY
        rm -rf "$V2" "$THIN_ART"
    fi
done

# A payload BULK times the corpus: every 3.11 wheel copied under BULK new distribution names.
# Memory must stay bounded by the batch, not grow with the payload.
BULK=${BULK:-10}
if (( BULK > 0 )); then
    version=3.11.7
    PY=/root/.pyenv/versions/$version/bin/python
    BIG=$DATA/wheels/py311-x$BULK
    if [[ ! -f $BIG/.complete ]]; then
        log "writing $BULK copies of the 3.11 corpus into $BIG"
        "$HOST_PY" bench/multiply_wheels.py "$DATA/wheels/py311" "$BIG" "$BULK"
        touch "$BIG/.complete"
    fi
    RESULTS=$TMP/results-bulk.txt
    : > "$RESULTS"
    # DEST alone in its directory: a release beside it would be linked from (linked installs),
    # and this is the plain install's time.
    D=$TMP/plain/dest
    rm -rf "$TMP/plain"; mkdir -p "$TMP/plain"
    ART=$TMP/bulk.sfx
    log "CPython $version: packing $(ls "$BIG"/*.whl | wc -l) wheels (${BULK}x the corpus)"
    start=$("$HOST_PY" -c 'import time; print(time.time())')
    "$PYSFX" pack -q --app examples/site/mysite --wheels "$BIG" --python "$PY" --no-bootstrap --stub "$STUB" -o "$ART"
    pack_s=$("$HOST_PY" -c 'import sys, time; print(time.time() - float(sys.argv[1]))' "$start")
    runs=$(( RUNS < 3 ? RUNS : 3 ))
    log "CPython $version: timing the ${BULK}x payload ($runs runs each)"
    measure pysfx-nocompile "$runs" 'rm -rf $D' "$ART" -q -d "$D" --python "$PY" --no-compile
    measure pysfx "$runs" 'rm -rf $D' "$ART" -q -d "$D" --python "$PY"
    rm -rf "$D"
    "$HOST_PY" - "$RESULTS" "$BULK" "$pack_s" "$(stat -c %s "$ART")" <<'PY'
import statistics, sys
path, bulk, pack_s, artifact = sys.argv[1:]
rows = {}
for line in open(path):
    name, wall, rss = line.split()
    rows.setdefault(name, []).append((float(wall), int(rss)))
print("\n== CPython 3.11, a payload %sx the corpus (%d bytes; medians of %s; DEST on tmpfs)" % (
    bulk, int(artifact), ", ".join("%s=%d" % (n, len(r)) for n, r in rows.items())))
print("%-18s %9s %10s" % ("method", "wall s", "peak MiB"))
for name, runs in rows.items():
    print("%-18s %9.3f %10.1f" % (name, statistics.median(w for w, _ in runs), max(r for _, r in runs) / 1024))
worst = max(r for runs in rows.values() for _, r in runs) / 1024
print()
print("%-44s %6.1f MiB  [target <= 32: %s]" % ("pysfx peak RSS, %sx payload" % bulk, worst, "met" if worst <= 32 else "MISSED"))
print("%-44s %6.1f s (byte-code compiled at pack time)" % ("pack time", float(pack_s)))
PY
    rm -f "$ART"
fi

# Linked installs (SPEC, "Releases over time"): release 2 of the Django corpus for CPython 3.11,
# installed beside release 1 of an artifact that differs from it in one wheel, against a plain
# install of the same artifact (a parent with no release in it) in the same run; and ten
# releases in one parent on disk (`du -s` counts a hard-linked file once) against one.
#   LINKED=1                  this section; LINKED=0 skips it
# The changed wheel is six: the corpus pins 1.17.0, release 2 carries six 1.16.0 instead, a
# pinned pure wheel of 11 KB (fetched once into $DATA/linked with pip download) that every
# requirement on six in the corpus (python-dateutil: six>=1.5) accepts, so both artifacts are
# complete sets and differ in exactly one wheel, the same one on every run.
LINKED=${LINKED:-1}
if (( LINKED > 0 )); then
    version=3.11.7
    PY=/root/.pyenv/versions/$version/bin/python
    WHEELS=$DATA/wheels/py311
    if [[ ! -d $WHEELS ]] || [[ $(ls "$WHEELS"/*.whl 2>/dev/null | wc -l) -eq 0 ]]; then
        log "fetching the django corpus for $version"
        DL_PY=$HOST_PY sh "$SHARED/corpus/fetch.sh" "$PY" "$SHARED/corpus/requirements-py311.txt" "$WHEELS" >&2
    fi
    SWAP=$DATA/linked
    mkdir -p "$SWAP"
    ls "$SWAP"/six-1.16.0-*.whl >/dev/null 2>&1 ||
        "$HOST_PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: six==1.16.0 -d "$SWAP"
    [[ -f $WHEELS/six-1.17.0-py2.py3-none-any.whl ]] || { echo "bench: the corpus no longer pins six 1.17.0" >&2; exit 1; }
    WHEELS2=$TMP/linked-wheels
    rm -rf "$WHEELS2"
    mkdir -p "$WHEELS2"
    cp "$WHEELS"/*.whl "$WHEELS2"/
    rm "$WHEELS2"/six-1.17.0-*.whl
    cp "$SWAP"/six-1.16.0-*.whl "$WHEELS2"/
    ART1=$TMP/linked-1.sfx
    ART2=$TMP/linked-2.sfx
    log "linked installs, CPython $version: packing release 1 and release 2 (six 1.17.0 -> 1.16.0)"
    # --python: byte-code compiled at pack time, as in the sections above.
    "$PYSFX" pack -q --app examples/site/mysite --wheels "$WHEELS" --python "$PY" --no-bootstrap --stub "$STUB" -o "$ART1"
    "$PYSFX" pack -q --app examples/site/mysite --wheels "$WHEELS2" --python "$PY" --no-bootstrap --stub "$STUB" -o "$ART2"
    # Release 2 thin as well: it hashes only what it carries (one wheel), not the 95 MB the
    # full artifact's payload digest covers, so the two show what that digest costs.
    ART2T=$TMP/linked-2-thin.sfx
    "$PYSFX" pack -q --app examples/site/mysite --wheels "$WHEELS2" --python "$PY" --no-bootstrap --stub "$STUB" --thin-from "$ART1" -o "$ART2T"
    RESULTS=$TMP/results-linked.txt
    : > "$RESULTS"
    L=$TMP/linked
    PLAIN=$TMP/linked-plain
    rm -rf "$L" "$PLAIN"
    log "linked installs, CPython $version: timing ($RUNS runs each)"
    measure plain "$RUNS" 'rm -rf $PLAIN' "$ART2" -q -d "$PLAIN/2" --python "$PY"
    # Each run is release 2 installed beside a release 1 installed just before (untimed), as in
    # a deploy. Removing the release 2 of the run before would move the ctime of every file
    # it shared with release 1 and so void release 1's stamps: that run would measure the
    # slower path that reads and hashes each file (the operator guide, "Linked installs").
    measure linked "$RUNS" 'rm -rf $L; "$ART1" -q -d "$L/1" --python "$PY"' "$ART2" -q -d "$L/2" --python "$PY"
    measure linked-thin "$RUNS" 'rm -rf $L; "$ART1" -q -d "$L/1" --python "$PY"' "$ART2T" -q -d "$L/2" --python "$PY"
    # The same two on a disk filesystem, where a server keeps its releases (BENCH_DISK, default
    # beside the corpus in $DATA; skipped when that is a tmpfs too): a plain install there also
    # waits for the filesystem to take 250 MB of new files, which a linked one does not. `sync`
    # after each setup, so that no run pays for the writeback (or, on a filesystem mounted with
    # `discard`, the trims) of the release removed before it.
    DISK=${BENCH_DISK:-$DATA/linked-disk}
    mkdir -p "$DISK"
    if [[ $(stat -f -c %T "$DISK") != tmpfs ]]; then
        log "linked installs, CPython $version: timing on $DISK ($(df -T "$DISK" | awk 'NR == 2 { print $2 }'))"
        measure plain-disk "$RUNS" 'rm -rf $DISK/plain; sync' "$ART2" -q -d "$DISK/plain/2" --python "$PY"
        measure linked-disk "$RUNS" 'rm -rf $DISK/linked; "$ART1" -q -d "$DISK/linked/1" --python "$PY"; sync' \
            "$ART2" -q -d "$DISK/linked/2" --python "$PY"
    fi
    rm -rf "$DISK"
    # An anchor for what the kernel alone costs here: `cp -al` of release 1's venv (hard links
    # and directories only, on one core, nothing checked, nothing planned).
    rm -rf "$L"
    "$ART1" -q -d "$L/1" --python "$PY"
    CPAL=$TMP/linked-cp-al
    measure cp-al "$RUNS" 'rm -rf $CPAL' cp -al "$L/1/venv" "$CPAL"
    rm -rf "$CPAL"
    # And the floor: bench/link_floor.c asks the kernel for exactly what release 2 asks of it
    # when every file links by its stamp — each directory of release 1's venv made, each file
    # lstat'ed, linked and lstat'ed again, on as many threads as the install uses — and nothing
    # else (no interpreter, digest, plan, RECORD or stamps). Needs a C compiler (cc).
    if command -v cc >/dev/null 2>&1; then
        cc -O2 -pthread bench/link_floor.c -o "$TMP/link_floor"
        (cd "$L/1/venv" && { find . -mindepth 1 -type d | sed 's/^/d /'; find . -type f | sed 's/^/f /'; }) > "$TMP/link-floor.list"
        threads=$(nproc); (( threads > 8 )) && threads=8
        for ((i = 0; i < RUNS; i++)); do
            rm -rf "$CPAL"
            ms=$("$TMP/link_floor" "$L/1/venv" "$CPAL" "$TMP/link-floor.list" "$threads")
            echo "kernel-floor $(awk -v ms="$ms" 'BEGIN { printf "%.4f", ms / 1000 }') 0" >> "$RESULTS"
        done
        rm -rf "$CPAL" "$TMP/link_floor" "$TMP/link-floor.list"
    fi
    rm -rf "$L" "$PLAIN"
    "$ART1" -q -d "$L/1" --python "$PY"
    linked_json=$("$ART2" -q -d "$L/2" --python "$PY" --json)
    one_kib=$(du -sk "$L/1" | cut -f1)
    # Ten releases, each differing from the one before in the changed wheel (1, 3, 5, … are of
    # release 1's artifact, 2, 4, … of release 2's), as successive deploys would.
    for n in 3 4 5 6 7 8 9 10; do
        if (( n % 2 )); then art=$ART1; else art=$ART2; fi
        "$art" -q -d "$L/$n" --python "$PY"
    done
    ten_kib=$(du -sk "$L" | cut -f1)
    rm -rf "$L" "$PLAIN" "$WHEELS2" "$ART1" "$ART2" "$ART2T"

    "$HOST_PY" - "$RESULTS" "$linked_json" "$one_kib" "$ten_kib" <<'PY'
import json, statistics, sys
path, linked_json, one_kib, ten_kib = sys.argv[1:]
rows = {}
for line in open(path):
    name, wall, rss = line.split()
    rows.setdefault(name, []).append((float(wall), int(rss)))
med = {name: statistics.median(w for w, _ in runs) for name, runs in rows.items()}
result = json.loads(linked_json)
print("\n== linked installs, django corpus, CPython 3.11: release 2 (one wheel changed) beside release 1 (medians of %s; DEST on tmpfs, -disk: on disk)"
      % ", ".join("%s=%d" % (n, len(r)) for n, r in rows.items()))
print("%-18s %9s %10s" % ("method", "wall s", "peak MiB"))
for name, runs in rows.items():
    print("%-18s %9.3f %10.1f" % (name, med[name], max(r for _, r in runs) / 1024))
print()
print("%-44s %s files, %s bytes of %s files" % ("linked by release 2", result.get("linked_files", "(no linked_files)"),
      result.get("linked_bytes", "(no linked_bytes)"), result.get("files")))
value = med["linked"] / med["plain"]
print("%-44s %6.2fx  [target <= 0.30: %s]" % ("on tmpfs: linked / plain install", value, "met" if value <= 0.3 else "MISSED"))
print("%-44s %6.2fx  (no target: the same release 2, its payload digest over 1 wheel, not 82)"
      % ("linked from a thin artifact / plain install", med["linked-thin"] / med["plain"]))
print("%-44s %6.2fx  (no target: the kernel's links and directories alone, one core)"
      % ("cp -al of release 1's venv / plain install", med["cp-al"] / med["plain"]))
if "kernel-floor" in med:
    print("%-44s %6.2fx  (no target: its directories, and lstat, link, lstat of each file, on the install's threads; nothing else)"
          % ("the kernel's floor for release 2 / plain", med["kernel-floor"] / med["plain"]))
if "plain-disk" in med:
    value = med["linked-disk"] / med["plain-disk"]
    print("%-44s %6.2fx  (no target: the goal is read on tmpfs; %.2f s against %.2f s)" % ("on disk: linked / plain install",
          value, med["linked-disk"], med["plain-disk"]))
value = int(ten_kib) / int(one_kib)
print("%-44s %6.2fx  [target <= 1.50: %s]" % ("du -s of ten releases / one release", value, "met" if value <= 1.5 else "MISSED"))
print("%-44s %d KiB; one release %d KiB" % ("ten releases on disk", int(ten_kib), int(one_kib)))
PY
fi
