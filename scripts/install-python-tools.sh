#!/usr/bin/env bash
# Create the Python virtualenv .tools/venv with the tools the interop tests use:
# confluent-kafka (a second, independent Kafka client, with the Confluent
# schema-registry client and Avro serdes) and Apache's avro package (its
# compatibility checker cross-checks our Avro compatibility verdicts).
# Exact versions are pinned in scripts/python-requirements.txt.
#
# Idempotent: does nothing if the venv was built from the current requirements
# file and the packages import. Quiet on success. Needs python3 (>= 3.10) with
# the venv module, and network access to PyPI on the first run.
# Tests find the interpreter at .tools/venv/bin/python (EVENTFOLD_TEST_PYTHON).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/venv"
REQUIREMENTS="$ROOT/scripts/python-requirements.txt"
STAMP="$VENV/.eventfold-requirements.sha256"
IMPORT_CHECK='import confluent_kafka, confluent_kafka.admin, confluent_kafka.schema_registry.avro, avro.schema, avro.compatibility, fastavro'

die() {
    echo "install-python-tools.sh: error: $*" >&2
    exit 1
}

[[ -f "$REQUIREMENTS" ]] || die "missing $REQUIREMENTS"
command -v python3 >/dev/null 2>&1 || die "python3 is required (apt-get install python3 python3-venv)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 >= 3.10 is required, found $(python3 --version 2>&1)"

# What the venv must have been built from: the requirements and the base Python.
want="$(
    {
        cat "$REQUIREMENTS"
        python3 -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
)"

venv_ok() {
    [[ -x "$VENV/bin/python" ]] &&
        [[ "$(cat "$STAMP" 2>/dev/null || true)" == "$want" ]] &&
        "$VENV/bin/python" -c "$IMPORT_CHECK" >/dev/null 2>&1 </dev/null
}

if venv_ok; then
    exit 0
fi

mkdir -p "$ROOT/.tools"
log="$(mktemp "${TMPDIR:-/tmp}/eventfold-venv.XXXXXX")"
trap 'rm -f "$log"' EXIT

# Rebuild from scratch if the venv's interpreter is broken or came from another
# base Python; otherwise just bring the packages in line with the pins.
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1 ||
    [[ "$("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null)" != "$(python3 -c 'import sys; print(sys.version)')" ]]; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >"$log" 2>&1; then
        cat "$log" >&2
        rm -rf "$VENV"
        die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
    fi
fi
rm -f "$STAMP"

if ! "$VENV/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --prefer-binary -r "$REQUIREMENTS" >"$log" 2>&1 </dev/null; then
    cat "$log" >&2
    die "pip install -r scripts/python-requirements.txt failed (see pip output above)"
fi

if ! "$VENV/bin/python" -c "$IMPORT_CHECK" >"$log" 2>&1 </dev/null; then
    cat "$log" >&2
    die "the packages installed but do not import (see the error above)"
fi

echo "$want" >"$STAMP"
