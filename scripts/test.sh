#!/usr/bin/env bash
# The project's test command: scripts/test.sh [extra args for cargo test]
#
# 1. installs the Tansu broker, Tansu's durable (libsql) build for the crash tests
#    and the Python tools if missing (cached in .tools/; the durable build is
#    compiled once per machine and cached in ~/.cache/eventfold/),
# 2. starts a Tansu broker on 127.0.0.1:PORT (PORT = $EVENTFOLD_BROKER_PORT, else
#    19092; if that port is taken by something other than tansu, the next free
#    one), or reuses a tansu broker already answering there, and stops it on exit
#    if this script started it,
# 3. exports EVENTFOLD_TEST_BROKERS=127.0.0.1:PORT and
#    EVENTFOLD_TEST_PYTHON=<repo>/.tools/venv/bin/python for the tests,
# 4. runs cargo fmt --check, cargo clippy -D warnings, cargo test --all-targets,
#    scripts/validate-deploy.sh (compose, Helm and Kubernetes manifest checks) and
#    scripts/fuzz.sh ci (every fuzz target: corpus replay, then a short bounded run)
#    (all of them, even if one fails) and exits non-zero if any of them failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() {
    echo "test.sh: error: $*" >&2
    exit 1
}

if ! command -v cargo >/dev/null 2>&1; then
    cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
    [[ -x "$cargo_bin/cargo" ]] || die "cargo not found on PATH nor in $cargo_bin (install Rust with rustup)"
    export PATH="$cargo_bin:$PATH"
fi

scripts/install-broker.sh
scripts/install-durable-broker.sh
scripts/install-python-tools.sh

# Pick the port: reuse a tansu broker that already answers, start one on a free
# port, skip ports taken by anything else.
port="${EVENTFOLD_BROKER_PORT:-19092}"
[[ "$port" =~ ^[0-9]+$ ]] || die "EVENTFOLD_BROKER_PORT must be a port number, got '$port'"
started_port=""

cleanup() {
    if [[ -n "$started_port" ]]; then
        scripts/broker.sh stop "$started_port" || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

found=""
for _ in $(seq 1 20); do
    rc=0
    msg="$(scripts/broker.sh status "$port")" || rc=$?
    case "$rc" in
    0)
        found=1 # a tansu broker (or one we cannot identify that speaks Kafka) answers: use it
        break
        ;;
    3)
        started_port="$port"
        scripts/broker.sh start "$port"
        found=1
        break
        ;;
    4)
        echo "test.sh: $msg; trying port $((port + 1))" >&2
        port=$((port + 1))
        ;;
    *)
        die "scripts/broker.sh status $port failed: $msg"
        ;;
    esac
done
[[ -n "$found" ]] || die "found no usable port for the broker (tried 20 ports up to $port)"

# PostgreSQL (the store suite runs against it): start the local cluster if it is installed
# but stopped; the suite itself fails with a clear message when none answers.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]]; then
        for version in /etc/postgresql/*; do
            pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
        done
    fi
fi

export EVENTFOLD_TEST_BROKERS="127.0.0.1:$port"
export EVENTFOLD_TEST_PYTHON="$ROOT/.tools/venv/bin/python"

failed=()
cargo fmt --all -- --check || failed+=("cargo fmt --all -- --check")
cargo clippy --all-targets -- -D warnings || failed+=("cargo clippy --all-targets -- -D warnings")
cargo test --all-targets "$@" || failed+=("cargo test --all-targets $*")
scripts/validate-deploy.sh || failed+=("scripts/validate-deploy.sh")
scripts/fuzz.sh ci || failed+=("scripts/fuzz.sh ci")

if ((${#failed[@]})); then
    printf 'test.sh: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
