#!/usr/bin/env bash
# The cargo-fuzz targets in tests/fuzz (docs/fuzzing.md).
#
#   scripts/fuzz.sh ci                    every target: replay the committed corpus, then fuzz
#                                         for EVENTFOLD_FUZZ_SECONDS (default 45) seconds,
#                                         EVENTFOLD_FUZZ_JOBS (default: the cores) targets at
#                                         a time; prints the executions per target; fails on
#                                         any crash, panic, timeout (10 s) or out-of-memory
#   scripts/fuzz.sh run <target> [secs]   one target for longer (default 600 s); the inputs
#                                         it finds stay in tests/fuzz/target/corpus/<target>
#   scripts/fuzz.sh build                 install cargo-fuzz and build every target, no run
#   scripts/fuzz.sh list                  the targets
#
# Installs cargo-fuzz (pinned, `cargo install --locked`) once into
# ${XDG_CACHE_HOME:-~/.cache}/eventfold/cargo-fuzz-<version> (EVENTFOLD_FUZZ_TOOLS overrides),
# so a second run costs nothing. Builds with the machine's stable toolchain: cargo-fuzz's
# nightly features are unlocked with RUSTC_BOOTSTRAP=1. The build is optimised, with debug
# assertions and overflow checks on, and without a sanitizer (--sanitizer none): eventfold
# and its parsers are safe Rust, and AddressSanitizer would double the build of the whole
# dependency tree and halve the executions for bugs safe code cannot have
# (EVENTFOLD_FUZZ_SANITIZER=address turns it on). Build output goes to tests/fuzz/target
# (EVENTFOLD_FUZZ_TARGET_DIR overrides).
set -euo pipefail

CARGO_FUZZ_VERSION="0.13.2"
TARGETS=(wire_format avro_decode pipeline_file collector_body registry_request)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="tests/fuzz"
cd "$ROOT"

die() {
    echo "fuzz.sh: error: $*" >&2
    exit 1
}

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

if ! command -v cargo >/dev/null 2>&1; then
    cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
    [[ -x "$cargo_bin/cargo" ]] || die "cargo not found on PATH nor in $cargo_bin (install Rust with rustup)"
    export PATH="$cargo_bin:$PATH"
fi

tools="${EVENTFOLD_FUZZ_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/eventfold/cargo-fuzz-$CARGO_FUZZ_VERSION}"
target_dir="${EVENTFOLD_FUZZ_TARGET_DIR:-$ROOT/$FUZZ_DIR/target}"
sanitizer="${EVENTFOLD_FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

install_cargo_fuzz() {
    if [[ -x "$tools/bin/cargo-fuzz" ]] &&
        [[ "$("$tools/bin/cargo-fuzz" --version 2>/dev/null)" == "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
        return
    fi
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION into $tools"
    local partial="$tools.partial.$$"
    rm -rf "$partial"
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$partial" ||
        die "cargo install cargo-fuzz $CARGO_FUZZ_VERSION failed"
    rm -rf "$tools"
    mkdir -p "$(dirname "$tools")"
    mv "$partial" "$tools"
}

# Every cargo-fuzz call takes the same options: build and run must agree, or run rebuilds.
# 16 codegen units instead of cargo-fuzz's 1: the cold build takes 5 min instead of 9 on
# 2 cores, for somewhat fewer executions per second.
cargo_fuzz() {
    local command="$1"
    shift
    "$tools/bin/cargo-fuzz" "$command" --fuzz-dir "$FUZZ_DIR" --sanitizer "$sanitizer" \
        --codegen-units 16 --target-dir "$target_dir" "$@"
}

is_target() {
    local t
    for t in "${TARGETS[@]}"; do
        [[ "$t" == "$1" ]] && return 0
    done
    return 1
}

# Runs one target over its committed corpus (replayed first) and the scratch corpus
# `$2`, for `$3` seconds; the log goes to `$4`. Returns libFuzzer's status.
fuzz_target() {
    local target="$1" scratch="$2" seconds="$3" log="$4"
    mkdir -p "$scratch" "$FUZZ_DIR/artifacts/$target"
    cargo_fuzz run "$target" "$scratch" "$FUZZ_DIR/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 >"$log" 2>&1
}

build_targets() {
    install_cargo_fuzz
    local started=$SECONDS
    cargo_fuzz build || die "cargo fuzz build failed"
    echo "fuzz.sh: built the ${#TARGETS[@]} targets in $((SECONDS - started)) s"
}

executions() {
    grep -o 'stat::number_of_executed_units: *[0-9]*' "$1" | grep -o '[0-9]*$' | tail -n 1
}

command="${1:-}"
case "$command" in
list)
    printf '%s\n' "${TARGETS[@]}"
    ;;
build)
    build_targets
    ;;
ci)
    seconds="${EVENTFOLD_FUZZ_SECONDS:-45}"
    [[ "$seconds" =~ ^[0-9]+$ ]] || die "EVENTFOLD_FUZZ_SECONDS must be a number of seconds, got '$seconds'"
    lanes="${EVENTFOLD_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
    [[ "$lanes" =~ ^[1-9][0-9]*$ ]] || die "EVENTFOLD_FUZZ_JOBS must be a positive number, got '$lanes'"
    started=$SECONDS
    cargo fmt --manifest-path "$FUZZ_DIR/Cargo.toml" --check || die "the fuzz targets are not formatted (cargo fmt --manifest-path $FUZZ_DIR/Cargo.toml)"
    build_targets
    work="$(mktemp -d "${TMPDIR:-/tmp}/eventfold-fuzz.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    # One libFuzzer process per core at a time, each target on its own.
    for target in "${TARGETS[@]}"; do
        while (($(jobs -rp | wc -l) >= lanes)); do
            wait -n || true
        done
        (
            status=0
            fuzz_target "$target" "$work/corpus/$target" "$seconds" "$work/$target.log" || status=$?
            echo "$status" >"$work/$target.status"
        ) &
    done
    wait
    failed=()
    for target in "${TARGETS[@]}"; do
        log="$work/$target.log"
        if [[ "$(cat "$work/$target.status")" == 0 ]]; then
            seeds="$(find "$FUZZ_DIR/corpus/$target" -type f | wc -l)"
            echo "fuzz.sh: $target: $(executions "$log") executions in $seconds s (the $seeds committed inputs replayed first), no crash"
        else
            echo "fuzz.sh: $target: FAILED; libFuzzer's report:" >&2
            grep -v '^INFO:\|^#[0-9]\|^ *[0-9]*: \|^ *at ' "$log" | head -n 60 >&2
            failed+=("$target")
        fi
    done
    echo "fuzz.sh: fuzz stage took $((SECONDS - started)) s"
    if ((${#failed[@]})); then
        die "crash in: ${failed[*]} (the inputs are in $FUZZ_DIR/artifacts/<target>/; fix it, add a unit test with the exact input, see docs/fuzzing.md)"
    fi
    ;;
run)
    target="${2:-}"
    seconds="${3:-600}"
    is_target "$target" || die "unknown target '$target' (targets: ${TARGETS[*]})"
    [[ "$seconds" =~ ^[0-9]+$ ]] || die "seconds must be a number, got '$seconds'"
    install_cargo_fuzz
    log="$target_dir/fuzz-$target.log"
    mkdir -p "$target_dir"
    echo "fuzz.sh: fuzzing $target for $seconds s (log: $log)"
    status=0
    fuzz_target "$target" "$target_dir/corpus/$target" "$seconds" "$log" || status=$?
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|SUMMARY|panicked|Test unit written|ERROR' "$log" || true
    echo "fuzz.sh: $target: $(executions "$log") executions in $seconds s"
    ((status == 0)) || die "$target crashed (status $status); the input is in $FUZZ_DIR/artifacts/$target/"
    ;;
*)
    usage
    ;;
esac
