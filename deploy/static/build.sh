#!/usr/bin/env bash
# deploy/static/build.sh [TARGET...]: statically linked release binaries of
# Portico, for gateways whose own libc it must not depend on (an OpenWrt
# router's musl, an old Debian's glibc). Targets (default: all three):
#   x86_64-unknown-linux-gnu    with the toolchain cargo runs, glibc's libc.a
#   aarch64-unknown-linux-gnu   with Debian's rustc-web and its standard
#                               library for arm64 (libstd-rust-web-dev:arm64),
#                               linked by gcc-aarch64-linux-gnu
#   armv7-unknown-linux-gnueabihf  the same for armhf (32-bit ARM routers)
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
# gcc-aarch64-linux-gnu libc6-dev-arm64-cross; for armv7 the same with
# armhf and gcc-arm-linux-gnueabihf; qemu-user-static to run them.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() {
    echo "build.sh: $*" >&2
    exit 1
}

targets=("$@")
((${#targets[@]})) || targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
mkdir -p dist
for target in "${targets[@]}"; do
    case $target in
        x86_64-unknown-linux-gnu)
            env=()
            # Not position-independent: a static-pie carries its relocations
            # (6,420,992 bytes against 6,185,624).
            flags="-C relocation-model=static"
            ;;
        aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf)
            # Debian's names: the architecture of the std package, the
            # prefix of the cross gcc.
            case $target in
                aarch64-*) arch=arm64 gcc=aarch64-linux-gnu ;;
                *) arch=armhf gcc=arm-linux-gnueabihf ;;
            esac
            [[ -x /usr/bin/rustc && -d /usr/lib/rustlib/$target ]] ||
                die "no Rust standard library for $target: apt-get install rustc-web libstd-rust-web-dev:$arch"
            command -v "$gcc-gcc" >/dev/null ||
                die "no $target linker: apt-get install gcc-$gcc libc6-dev-$arch-cross"
            flags=
            triple=${target//-/_}
            env=(RUSTC=/usr/bin/rustc
                "CARGO_TARGET_${triple^^}_LINKER=$gcc-gcc"
                "CC_$triple=$gcc-gcc")
            ;;
        *) die "unknown target $target (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" ;;
    esac
    echo "building $target..." >&2
    env "${env[@]}" RUSTFLAGS="-C target-feature=+crt-static $flags" \
        cargo build --locked --release --target "$target" --target-dir target/static >&2
    cp "target/static/$target/release/portico" "dist/portico-$target"
    file "dist/portico-$target" | grep -Eq "statically linked|static-pie linked" || die "dist/portico-$target is not static"
    echo "dist/portico-$target $(stat -c %s "dist/portico-$target") bytes"
done
