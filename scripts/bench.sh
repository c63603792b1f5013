#!/usr/bin/env bash
# Runs a benchmark against a local broker: scripts/bench.sh ingest [--events N ...],
# scripts/bench.sh worker [...], scripts/bench.sh query [--rate 1000 --seconds 10
# --events-per-second 10000 ...] (query read latency and ack-to-visible freshness).
# Starts the broker (cached in .tools/) unless one answers on $EVENTFOLD_BROKER_PORT (default
# 19092), builds the release binary and runs `eventfold bench "$@"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v cargo >/dev/null 2>&1 || export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
port="${EVENTFOLD_BROKER_PORT:-19092}"
scripts/install-broker.sh
started=""
if ! scripts/broker.sh status "$port" >/dev/null 2>&1; then
    scripts/broker.sh start "$port"
    started=1
fi
trap '[[ -n "$started" ]] && scripts/broker.sh stop "$port" || true' EXIT
export EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$port"
export EVENTFOLD__LOG__FILTER="${EVENTFOLD__LOG__FILTER:-warn}"
cargo build --release --quiet
"${CARGO_TARGET_DIR:-target}/release/eventfold" bench "$@"
