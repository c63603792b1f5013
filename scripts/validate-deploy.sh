#!/usr/bin/env bash
# Checks the deployment files offline, without a Docker engine or a cluster:
#   - the Dockerfile lints (hadolint);
#   - docker-compose.yml parses and resolves (compose's own `config -q`), with and without the
#     confluent-registry profile;
#   - the Helm chart lints (--strict) and renders with its default values and with
#     helm/values-production.yaml (and with secrets given inline), and every rendered manifest
#     validates against the Kubernetes 1.32 schemas (kubernetes-validate --strict; only the
#     ServiceMonitor, a custom resource, may go unchecked);
#   - the rendered eventfold.toml is valid TOML with [kafka.properties] last, and the SASL init
#     container's script appends credentials that read back exactly;
#   - renders that must fail do, with the expected message (no external registry URL, more
#     workers than partitions, SASL without credentials, PostgreSQL without a URL, a value the
#     values.schema.json refuses).
# Installs its tools first (scripts/install-deploy-tools.sh, cached in .tools/). Prints one
# line per check and ends with "deploy checks: N passed, M failed"; exits 1 if any failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/install-deploy-tools.sh"

BIN="$ROOT/.tools/deploy/bin"
HELM="$BIN/helm"
COMPOSE="$BIN/docker-compose"
KV="$BIN/kubernetes-validate"
# The Python of the venv kubernetes-validate lives in (it has PyYAML).
PY="$(dirname "$(readlink -f "$KV")")/python"
K8S_VERSION=1.32.0
CHART="$ROOT/helm"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/eventfold-validate-deploy.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# Helm and compose get a private, writable HOME (no user config, no cache outside $WORK).
export HOME="$WORK/home"
mkdir -p "$HOME"
export DOCKER_CONFIG="$HOME/.docker"

passed=0
failed=0

ok() {
    passed=$((passed + 1))
    printf 'ok    %s\n' "$1"
}

not_ok() {
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$1"
    if [[ -s "${2:-}" ]]; then
        tail -n 40 "$2" | sed 's/^/      /'
    fi
}

# check NAME COMMAND...: passes when COMMAND exits 0.
check() {
    local name="$1"
    shift
    if "$@" >"$WORK/out" 2>&1 </dev/null; then
        ok "$name"
    else
        not_ok "$name" "$WORK/out"
    fi
}

# render NAME OUTPUT-FILE HELM-TEMPLATE-ARGS...: helm template into a file.
render() {
    local name="$1" out="$2"
    shift 2
    if "$HELM" template eventfold "$CHART" --namespace analytics "$@" >"$out" 2>"$WORK/err" </dev/null; then
        ok "$name"
    else
        cp "$WORK/err" "$WORK/out"
        not_ok "$name" "$WORK/out"
        : >"$out"
    fi
}

# kube_validate NAME MANIFESTS-FILE: kubernetes-validate --strict; the only warning allowed is
# the missing schema of the ServiceMonitor custom resource.
kube_validate() {
    local name="$1" file="$2" rc=0
    if [[ ! -s "$file" ]]; then
        not_ok "$name (nothing rendered)"
        return
    fi
    "$KV" --strict -k "$K8S_VERSION" - <"$file" >"$WORK/out" 2>&1 || rc=$?
    local resources unexpected crd
    resources="$(grep -c '^INFO - passed for resource' "$WORK/out" || true)"
    crd="$(grep -c "^WARN - Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1" "$WORK/out" || true)"
    unexpected="$(grep -v '^INFO - passed for resource' "$WORK/out" |
        grep -v "^WARN - Couldn't find schema for kind ServiceMonitor with api version monitoring.coreos.com/v1" |
        grep -c . || true)"
    if [[ "$rc" -eq 0 && "$unexpected" -eq 0 && "$resources" -gt 0 ]]; then
        if [[ "$crd" -gt 0 ]]; then
            ok "$name ($resources resources valid; ServiceMonitor not checked: custom resource)"
        else
            ok "$name ($resources resources valid)"
        fi
    else
        grep -v '^INFO - passed for resource' "$WORK/out" >"$WORK/problems" || true
        not_ok "$name (exit $rc, $resources valid, $unexpected other lines)" "$WORK/problems"
    fi
}

# expect_render_failure NAME EXPECTED-TEXT HELM-TEMPLATE-ARGS...: the render must fail and say so.
expect_render_failure() {
    local name="$1" expected="$2" rc=0
    shift 2
    "$HELM" template eventfold "$CHART" "$@" >"$WORK/out" 2>&1 </dev/null || rc=$?
    if [[ "$rc" -eq 0 ]]; then
        not_ok "$name (rendered, but must fail)"
    elif grep -qF -- "$expected" "$WORK/out"; then
        ok "$name (refused: exit $rc)"
    else
        echo "expected the message to contain: $expected" >>"$WORK/out"
        not_ok "$name (failed without the expected message)" "$WORK/out"
    fi
}

# --- Dockerfile (no engine here: lint only) ----------------------------------------------------
# DL3008 (pin apt package versions) is ignored on purpose: Debian replaces a package version
# with each point release, so pinned versions stop installing; the base image tag pins the
# release instead.
check "hadolint Dockerfile" "$BIN/hadolint" --no-color --ignore DL3008 "$ROOT/Dockerfile"

# --- docker-compose.yml ---------------------------------------------------------------------
check "docker-compose config (default services)" \
    "$COMPOSE" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" config -q
check "docker-compose config (--profile confluent-registry)" \
    "$COMPOSE" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" --profile confluent-registry config -q

# --- Helm: lint, render, validate ---------------------------------------------------------------
check "helm lint --strict (default values)" "$HELM" lint --strict "$CHART"
check "helm lint --strict (values-production.yaml)" \
    "$HELM" lint --strict "$CHART" -f "$CHART/values-production.yaml"

# Secrets given inline (the chart creates them), mutual TLS, one ingress host, HPAs.
cat >"$WORK/values-inline.yaml" <<'EOF'
kafka:
  bootstrapServers: broker-1:9093,broker-2:9093
  sasl: {enabled: true, mechanism: PLAIN, username: eventfold, password: 's3cr"et\'}
  tls:
    enabled: true
    clientAuth: true
    verifyHostname: false
    caCert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    clientCert: "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
    clientKey: "-----BEGIN PRIVATE KEY-----\nMIID\n-----END PRIVATE KEY-----\n"
  properties: {compression.type: zstd, queue.buffering.max.ms: 10}
store:
  backend: postgres
  postgres: {url: "postgres://eventfold:pw@db:5432/eventfold"}
collector: {autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 4, targetCPUUtilizationPercentage: 60, targetMemoryUtilizationPercentage: 75}}
query: {autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 3, targetCPUUtilizationPercentage: 60}}
ingress: {enabled: true, className: nginx, tls: {enabled: true}}
EOF

render "helm template (default values)" "$WORK/default.yaml"
render "helm template (values-production.yaml)" "$WORK/production.yaml" -f "$CHART/values-production.yaml"
render "helm template (inline Secrets, mTLS, HPAs, ingress)" "$WORK/inline.yaml" -f "$WORK/values-inline.yaml"
kube_validate "kubernetes-validate $K8S_VERSION (default values)" "$WORK/default.yaml"
kube_validate "kubernetes-validate $K8S_VERSION (values-production.yaml)" "$WORK/production.yaml"
kube_validate "kubernetes-validate $K8S_VERSION (inline Secrets, mTLS, HPAs, ingress)" "$WORK/inline.yaml"

# --- the rendered eventfold.toml and the SASL init container --------------------------------
# shellcheck disable=SC2016 # Python source: $(...) and backticks are test data, not shell.
TOML_CHECK='
import os, stat, subprocess, sys, tempfile
import yaml
try:
    import tomllib
except ImportError:
    sys.exit("needs Python >= 3.11 (tomllib)")

USER = "svc-eventfold"
# Quotes, backslashes, shell syntax, a tab and non-ASCII: all must survive the init script.
PASSWORD = "p@ss\"wo\\rd\\\\x'"'"'$(id)`id` \u00fc\t;"

def check_toml(text, where):
    data = tomllib.loads(text)
    for section in ("kafka", "registry", "worker", "store", "query", "log"):
        if section not in data:
            sys.exit(f"{where}: eventfold.toml has no [{section}]")
    headers = [l.strip() for l in text.splitlines() if l.strip().startswith("[")]
    if headers[-1] != "[kafka.properties]":
        sys.exit(f"{where}: [kafka.properties] must be the last table (the init container appends to it), not {headers[-1]}")

def run_init(script, text, where):
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(tmp + "/etc/eventfold/config")
        os.makedirs(tmp + "/run/eventfold")
        with open(tmp + "/etc/eventfold/config/eventfold.toml", "w") as f:
            f.write(text)
        script = script.replace("/etc/eventfold/", tmp + "/etc/eventfold/").replace("/run/eventfold/", tmp + "/run/eventfold/")
        env = dict(os.environ, KAFKA_SASL_USERNAME=USER, KAFKA_SASL_PASSWORD=PASSWORD)
        subprocess.run(["sh", "-ec", script], env=env, check=True)
        merged_path = tmp + "/run/eventfold/eventfold.toml"
        if stat.S_IMODE(os.stat(merged_path).st_mode) != 0o600:
            sys.exit(f"{where}: the merged eventfold.toml is not private (0600)")
        with open(merged_path, "rb") as f:
            props = tomllib.load(f)["kafka"]["properties"]
        for key, want in (("sasl.username", USER), ("sasl.password", PASSWORD)):
            got = props.get(key)
            if got != want:
                sys.exit(f"{where}: {key} reads back as {got!r}, not {want!r}")
        env["KAFKA_SASL_PASSWORD"] = "two\nlines"
        if subprocess.run(["sh", "-ec", script], env=env, capture_output=True).returncode == 0:
            sys.exit(f"{where}: the init script accepted a multi-line password")

inits = 0
for path in sys.argv[1:]:
    with open(path) as f:
        rendered = [d for d in yaml.safe_load_all(f) if d]
    maps = [d for d in rendered if d["kind"] == "ConfigMap"]
    if len(maps) != 1:
        sys.exit(f"{path}: expected one ConfigMap, found {len(maps)}")
    text = maps[0]["data"]["eventfold.toml"]
    check_toml(text, path)
    for d in rendered:
        if d["kind"] in ("Deployment", "Job"):
            for init in d["spec"]["template"]["spec"].get("initContainers", []):
                run_init(init["args"][0], text, path + " " + d["metadata"]["name"])
                inits += 1
if inits == 0:
    sys.exit("no SASL init container was rendered: nothing checked the credential merge")
'
check "eventfold.toml renders as TOML; SASL init container appends credentials exactly" \
    "$PY" -c "$TOML_CHECK" "$WORK/default.yaml" "$WORK/production.yaml" "$WORK/inline.yaml"

# --- renders that must fail ---------------------------------------------------------------------
expect_render_failure "helm refuses registry.enabled=false without registry.externalUrl" \
    "registry.externalUrl is required when registry.enabled=false" \
    --set registry.enabled=false
expect_render_failure "helm refuses worker.replicas > kafka.topicPartitions" \
    "worker.replicas (7) must not exceed kafka.topicPartitions (6)" \
    --set worker.replicas=7 --set kafka.topicPartitions=6
expect_render_failure "helm refuses kafka.sasl.enabled without credentials" \
    "kafka.sasl.enabled=true needs kafka.sasl.existingSecret" \
    --set kafka.sasl.enabled=true
expect_render_failure "helm refuses store.backend=postgres without a URL" \
    "store.backend=postgres needs store.postgres.existingSecret or store.postgres.url" \
    --set store.backend=postgres
expect_render_failure "values.schema.json refuses store.backend=mysql" \
    "/store/backend" \
    --set store.backend=mysql
expect_render_failure "values.schema.json refuses unknown keys (worker.replica)" \
    "'replica' not allowed" \
    --set worker.replica=3

echo "deploy checks: $passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
