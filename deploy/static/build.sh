#!/usr/bin/env bash
# deploy/static/build.sh [TARGET...]: statically linked release binaries of
# Portico, for gateways whose own libc it must not depend on (an OpenWrt
# router's musl, an old Debian's glibc). Targets (default: both):
#   x86_64-unknown-linux-gnu    with the toolchain cargo runs, glibc's libc.a
#   aarch64-unknown-linux-gnu   with Debian's rustc-web and its standard
#                               library for arm64 (libstd-rust-web-dev:arm64),
#                               linked by gcc-aarch64-linux-gnu
# Both are linked with `-C target-feature=+crt-static`, so the binary needs
# nothing from the system but the kernel. Writes dist/portico-<target> and
# prints each one's size.
#
# Why static, and not only for the router: a dynamically linked aarch64
# binary under qemu-user (the way a build machine runs it) never gets past
# glibc's first pthread_create, burning CPU; a program of five lines that
# starts one thread shows the same. Linked statically, it starts at once.
#
# Debian bookworm packages (apt-get install): for aarch64 `dpkg
# --add-architecture arm64`, then rustc-web libstd-rust-web-dev:arm64
# gcc-aarch64-linux-gnu libc6-dev-arm64-cross; qemu-user-static to run it.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() {
    echo "build.sh: $*" >&2
    exit 1
}

targets=("$@")
((${#targets[@]})) || targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu)
mkdir -p dist
for target in "${targets[@]}"; do
    case $target in
        x86_64-unknown-linux-gnu)
            env=()
            # Not position-independent: a static-pie carries its relocations
            # (6,420,992 bytes against 6,185,624).
            flags="-C relocation-model=static"
            ;;
        aarch64-unknown-linux-gnu)
            [[ -x /usr/bin/rustc && -d /usr/lib/rustlib/aarch64-unknown-linux-gnu ]] ||
                die "no Rust standard library for aarch64: apt-get install rustc-web libstd-rust-web-dev:arm64"
            command -v aarch64-linux-gnu-gcc >/dev/null ||
                die "no aarch64 linker: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
            flags=
            env=(RUSTC=/usr/bin/rustc
                CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
                CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc)
            ;;
        *) die "unknown target $target (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu)" ;;
    esac
    echo "building $target..." >&2
    env "${env[@]}" RUSTFLAGS="-C target-feature=+crt-static $flags" \
        cargo build --locked --release --target "$target" --target-dir target/static >&2
    cp "target/static/$target/release/portico" "dist/portico-$target"
    file "dist/portico-$target" | grep -Eq "statically linked|static-pie linked" || die "dist/portico-$target is not static"
    echo "dist/portico-$target $(stat -c %s "dist/portico-$target") bytes"
done
