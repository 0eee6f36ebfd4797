#!/usr/bin/env bash
# Builds the Lambda layer: target/layer/lure-<arch>.zip, holding one executable,
# `bootstrap`, at its root (Lambda unpacks a layer into /opt).
#
#   layer/build.sh                 x86_64
#   layer/build.sh --arch arm64    Graviton; needs the Rust target aarch64-unknown-linux-gnu
#
# The binary must run on Amazon Linux 2023 (glibc 2.34) and Amazon Linux 2 (glibc 2.26),
# so it may need no glibc symbol newer than 2.26. Linking against this machine's glibc
# would not give that, so the build links with Zig, which ships stubs for any glibc
# version (cargo-zigbuild's `TRIPLE.2.26` target), and also compiles the vendored Lua
# with `zig cc`. Zig and cargo-zigbuild come from PyPI, into a venv under target/.
# Needs: cargo and rustc, python3 with venv and pip, a path to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

# Amazon Linux 2's glibc: the oldest one the layer must run on.
GLIBC=2.26
# Pinned so that a layer built today and one built next month link the same way.
ZIGLANG=0.17.1
CARGO_ZIGBUILD=0.24.0
TOOLS=target/layer-tools
OUT=target/layer
# Its own target dir: no waiting on the lock of a `cargo build --release` running beside it.
BUILD=$OUT/build

die() {
    echo "layer/build.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: layer/build.sh [--arch x86_64|arm64]"
}

arch=x86_64
while [ $# -gt 0 ]; do
    case $1 in
    --arch) [ $# -ge 2 ] || { usage >&2; exit 2; }; arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

case $arch in
x86_64 | amd64) arch=x86_64; triple=x86_64-unknown-linux-gnu ;;
arm64 | aarch64) arch=arm64; triple=aarch64-unknown-linux-gnu ;;
*) die "unknown --arch '$arch' (Lambda has x86_64 and arm64)" ;;
esac

# The Rust standard library for the target must be installed: there is nothing to
# download it from on a machine that reaches only package registries.
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$triple/lib" ]; then
    die "the Rust target $triple is not installed for $(rustc --version).
Install it where rustup can download (\`rustup target add $triple\`), then run this again."
fi

# Zig and cargo-zigbuild, installed once; a stamp records which versions are there.
stamp="$TOOLS/versions"
wanted="ziglang==$ZIGLANG cargo-zigbuild==$CARGO_ZIGBUILD"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "== installing $wanted into $TOOLS"
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check $wanted
    echo "$wanted" >"$stamp"
fi
# cargo-zigbuild runs `python3 -m ziglang` when no `zig` is on PATH: the venv's python.
export PATH="$PWD/$TOOLS/bin:$PATH"

echo "== cargo zigbuild --release --target $triple.$GLIBC"
cargo zigbuild --release --target "$triple.$GLIBC" --target-dir "$BUILD"
binary="$BUILD/$triple/release/lure"

# Refuse to package a binary Amazon Linux 2 could not load.
newest=$(readelf --dyn-syms --wide "$binary" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
if [ -n "$newest" ] && [ "$(printf '%s\n%s\n' "$newest" "$GLIBC" | sort -V | tail -n 1)" != "$GLIBC" ]; then
    die "$binary needs glibc $newest, newer than $GLIBC"
fi

# A zip whose only entry is an executable `bootstrap`, with a fixed timestamp so the
# same binary gives the same zip (and the same CodeSha256).
mkdir -p "$OUT"
zip="$OUT/lure-$arch.zip"
python3 - "$binary" "$zip" <<'PY'
import sys, zipfile

binary, out = sys.argv[1:]
entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
entry.create_system = 3  # Unix, so the mode below is honoured when unpacked
entry.external_attr = 0o100755 << 16  # a regular file, rwxr-xr-x
entry.compress_type = zipfile.ZIP_DEFLATED
with open(binary, "rb") as f, zipfile.ZipFile(out, "w") as z:
    z.writestr(entry, f.read(), compresslevel=9)
PY

echo "== $zip: $(wc -c <"$zip") bytes (bootstrap: $(wc -c <"$binary") bytes, needs glibc ${newest:-none} or later)"
