# syntax=docker/dockerfile:1
#
# Builds pysfx and the release pysfx-stub on CentOS 7, so both link against glibc 2.17 and run
# on CentOS 7 and every newer x86_64 Linux. From the repository root:
#
#   docker build -f docker/build.Dockerfile --output type=local,dest=target/centos7 .
#
# writes target/centos7/out/pysfx and target/centos7/out/pysfx-stub. See docker/README.md.

# manylinux2014 is CentOS 7 (glibc 2.17) with a C toolchain (devtoolset) already installed;
# `--build-arg BASE=centos:7` builds on the plain image instead.
ARG BASE=quay.io/pypa/manylinux2014_x86_64
FROM ${BASE} AS build

# rustc needs a C compiler as its linker (`cc`). manylinux2014 has one; plain centos:7 has none,
# and since CentOS 7's end of life (2024-06-30) its stock repo files point at mirrorlist.centos.org
# and mirror.centos.org, which no longer serve 7: point yum at the frozen tree on vault.centos.org.
RUN set -eux; \
    if ! command -v cc >/dev/null; then \
        sed -i -e 's|^mirrorlist=|#mirrorlist=|' \
               -e 's|^#[[:space:]]*baseurl=http://mirror\.centos\.org|baseurl=http://vault.centos.org|' \
               -e 's|http://mirror\.centos\.org|http://vault.centos.org|' \
               /etc/yum.repos.d/CentOS-*.repo; \
        yum install -y gcc; \
        yum clean all; \
        rm -rf /var/cache/yum; \
    fi

# Rust from rustup, not from yum: the locked dependencies need Rust 1.89 or newer (zip 9.8) and
# Cargo.lock is version 4. Rust's x86_64 Linux toolchain still targets glibc 2.17.
ARG RUST_TOOLCHAIN=stable
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:$PATH
RUN curl --proto '=https' -sSf https://sh.rustup.rs \
        | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "$RUST_TOOLCHAIN" \
    && rustc --version && cargo --version

# Only what cargo needs, named one by one so a host target/ (built against a newer glibc) never
# enters the image. tests/ is a workspace member: cargo reads its manifest even when not building it.
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY stub stub
COPY packer packer
COPY tests tests

# --locked: build exactly the dependency versions the repository pins. Starting the binaries
# afterwards proves that glibc 2.17's loader accepts them (a symbol from a newer glibc would fail
# here, not on a server).
# The stub as scripts/build-stub.sh builds it (docs/stub.md): std rebuilt for size.
RUN rustup component add rust-src \
    && cargo build --release --locked -p pysfx \
    && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zlocation-detail=none" cargo build --release --locked \
        -p pysfx-stub --target x86_64-unknown-linux-gnu \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
    && mkdir /out \
    && cp target/release/pysfx target/x86_64-unknown-linux-gnu/release/pysfx-stub /out/ \
    && /out/pysfx --version \
    && /out/pysfx-stub --version

# Nothing but the two binaries, for `--output type=local` (or `docker create` + `docker cp`).
FROM scratch AS out
COPY --from=build /out/ /out/
