#!/usr/bin/env bash
# The project's demo command: scripts/demo.sh [extra args for `eventfold demo`]
#
# Installs and starts a local Kafka-protocol broker (Tansu, cached in .tools/) on
# 127.0.0.1:$EVENTFOLD_BROKER_PORT (default 19092) unless one already answers there, then
# runs `eventfold demo` against it on the embedded defaults (SQLite store in .data/) with
# short consumer-group timeouts. Ctrl-C stops the demo and the broker it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin:$PATH"
fi

port="${EVENTFOLD_BROKER_PORT:-19092}"
scripts/install-broker.sh
started=""
if ! scripts/broker.sh status "$port" >/dev/null 2>&1; then
    scripts/broker.sh start "$port"
    started=1
fi
cleanup() { [[ -n "$started" ]] && scripts/broker.sh stop "$port" || true; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export EVENTFOLD__KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$port"
export EVENTFOLD__KAFKA__SESSION_TIMEOUT_MS="${EVENTFOLD__KAFKA__SESSION_TIMEOUT_MS:-6000}"
export EVENTFOLD__KAFKA__HEARTBEAT_INTERVAL_MS="${EVENTFOLD__KAFKA__HEARTBEAT_INTERVAL_MS:-1000}"
cargo build --release --quiet
target/release/eventfold demo "$@"
