#!/usr/bin/env bash
# Builds the release pysfx-stub for x86_64 Linux with glibc 2.17 (CentOS 7) and newer, and puts
# it next to the release packer (target/release/pysfx-stub), where `pysfx pack` looks for it.
#
# A plain `cargo build` links against this machine's glibc and may need symbols CentOS 7 lacks;
# cargo-zigbuild links against glibc 2.17's symbol versions instead. Installs what it needs:
# ziglang from PyPI (into target/zig-venv), cargo-zigbuild from crates.io, and the toolchain's
# rust-src component (rustup).
#
# Size: the stub ships in every artifact, with a budget of 1.70 MiB (docs/stub.md says why). The release profile already
# optimises for size; on top of that the standard library is rebuilt with the stub
# (`-Z build-std`, through RUSTC_BOOTSTRAP=1 on the stable toolchain) for size, without its
# backtrace symboliser, and without panic locations. A panic still prints its message. If that
# build is not possible (no rust-src, a toolchain that changed the unstable flags), the stub is
# built the plain way, which works the same but is about 1.35 MB, and a warning says so.
#
#   scripts/build-stub.sh            build, check glibc <= 2.17, print the size
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TARGET=x86_64-unknown-linux-gnu
GLIBC=2.17
PYTHON=${PYTHON:-python3}

zig_venv=$ROOT/target/zig-venv
if [[ ! -x $zig_venv/bin/python ]] || ! "$zig_venv/bin/python" -m ziglang version >/dev/null 2>&1; then
    echo "build-stub: installing ziglang from PyPI into $zig_venv" >&2
    "$PYTHON" -m venv "$zig_venv"
    "$zig_venv/bin/python" -m pip install -q --disable-pip-version-check ziglang
fi
# cargo-zigbuild runs `python3 -m ziglang` when no zig is on PATH; put the venv first.
export PATH=$zig_venv/bin:$PATH

if ! command -v cargo-zigbuild >/dev/null; then
    echo "build-stub: installing cargo-zigbuild from crates.io" >&2
    cargo install --locked cargo-zigbuild
fi

small_build() {
    rustup component list --installed 2>/dev/null | grep -q '^rust-src' ||
        rustup component add rust-src >&2 || return 1
    # No unwind tables: panics abort, so nothing unwinds; they were 157 KB (.eh_frame), 9 %
    # of the stub (docs/stub.md).
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="${RUSTFLAGS:-} -Zlocation-detail=none -Cforce-unwind-tables=no" \
        cargo zigbuild --release --target "$TARGET.$GLIBC" -p pysfx-stub \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
}
if [[ ${PYSFX_STUB_BUILD_STD:-1} == 1 ]] && small_build; then
    :
else
    echo "build-stub: WARNING: building without -Z build-std (rust-src missing or the toolchain" \
        "refused it); the stub works the same but is over its budget" >&2
    cargo zigbuild --release --target "$TARGET.$GLIBC" -p pysfx-stub
fi
mkdir -p target/release
cp "target/$TARGET/release/pysfx-stub" target/release/pysfx-stub

checker=$ROOT/../shared/tools/check-glibc.sh
if [[ -x $checker || -f $checker ]]; then
    bash "$checker" target/release/pysfx-stub "$GLIBC" >&2
fi
size=$(stat -c %s target/release/pysfx-stub)
echo "build-stub: target/release/pysfx-stub is $size bytes (budget 1700000)" >&2
echo "$ROOT/target/release/pysfx-stub"
