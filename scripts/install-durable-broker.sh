#!/usr/bin/env bash
# Install Tansu's durable build (SQLite storage through libsql; its data survives
# kill -9) to .tools/bin/tansu-libsql, for the broker-restart and overload tests
# (tests/crash.rs). The everyday broker (scripts/install-broker.sh) keeps memory
# storage only; see shared/BROKER.md for why there are two builds and for this
# one's caveats (no snappy, deleting a topic deletes all, ~8x slower).
#
# No prebuilt binary of this build exists, so it is compiled from crates.io
# (`cargo install tansu --locked --version 0.6.0 --no-default-features
# --features libsql`: crates.io checks every crate's checksum against the
# published Cargo.lock). That takes 10-15 minutes on 2 cores, once per machine:
# the binary is cached in ${XDG_CACHE_HOME:-$HOME/.cache}/eventfold/, keyed by
# version and features, where every clone on the machine finds it, and linked
# into this clone's .tools/bin/.
#
# Idempotent and quiet when the binary is already there. Concurrent runs wait for
# each other (flock). Honours CARGO_BUILD_JOBS; set
# EVENTFOLD_DURABLE_BROKER_NICE=19 to build at the lowest CPU priority.
set -euo pipefail

VERSION="0.6.0"
FEATURES="libsql"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
LINK="$BIN_DIR/tansu-libsql"
CACHE_ROOT="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/eventfold"
CACHE="$CACHE_ROOT/tansu-$VERSION-$FEATURES"
CACHED="$CACHE/bin/tansu"

die() {
    echo "install-durable-broker.sh: error: $*" >&2
    exit 1
}

tansu_works() {
    [[ -x "$1" ]] && "$1" --version </dev/null 2>&1 | grep -q "$VERSION"
}

link_cached() {
    mkdir -p "$BIN_DIR"
    ln -sfn "$CACHED" "$LINK"
}

if tansu_works "$LINK"; then
    exit 0
fi
if tansu_works "$CACHED"; then
    link_cached
    exit 0
fi

if ! command -v cargo >/dev/null 2>&1; then
    cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
    [[ -x "$cargo_bin/cargo" ]] || die "cargo not found on PATH nor in $cargo_bin (install Rust with rustup)"
    export PATH="$cargo_bin:$PATH"
fi
command -v flock >/dev/null 2>&1 || die "flock is required (util-linux)"

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE.lock"
flock 9
# Another run may have built it while this one waited for the lock.
if tansu_works "$CACHED"; then
    link_cached
    exit 0
fi

staging="$(mktemp -d "$CACHE_ROOT/tansu-$VERSION-$FEATURES.building.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
echo "install-durable-broker.sh: building tansu $VERSION with --features $FEATURES (once per machine, 10-15 min on 2 cores)" >&2
if ! env -u CARGO_TARGET_DIR nice -n "${EVENTFOLD_DURABLE_BROKER_NICE:-0}" \
    cargo install tansu --locked --version "$VERSION" \
    --no-default-features --features "$FEATURES" \
    --root "$staging/root" --target-dir "$staging/target" \
    >"$staging/build.log" 2>&1 </dev/null; then
    tail -n 40 "$staging/build.log" >&2
    die "cargo install tansu $VERSION failed (see the output above)"
fi
tansu_works "$staging/root/bin/tansu" || die "the freshly built tansu does not run"

# Move it into place atomically: an interrupted run never leaves a half-written cache.
mkdir -p "$staging/final/bin"
mv "$staging/root/bin/tansu" "$staging/final/bin/tansu"
rm -rf "$CACHE"
mv "$staging/final" "$CACHE"
link_cached
