#!/usr/bin/env bash
# Validates the container and deployment files without a Docker engine or a cluster:
#   - docker-compose.yml resolves (docker compose / docker-compose config), with and without the
#     redis profile;
#   - every Kubernetes, Prometheus Operator and KServe manifest matches the schema of its kind,
#     unknown fields and value types included (deploy/validate, a .NET program: built-in kinds
#     against the Kubernetes client library's models, generated from the Kubernetes OpenAPI spec;
#     PodMonitor and InferenceService against the JSON Schemas in deploy/schema); the Kustomize
#     builds are checked as rendered when kubectl or kustomize is installed, their resource files
#     otherwise;
#   - every YAML and JSON file under deploy/ parses;
#   - the Grafana dashboard and the alert rules are well formed and every metric they query is
#     one the service exports;
#   - when the tools are installed: the Kustomize builds (kubectl or kustomize) and the Prometheus
#     configuration (promtool).
# Exits non-zero on the first failing group, after printing every problem found in it.
#
# Needs on Debian: apt-get install -y docker-compose python3-yaml, and the .NET SDK.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# A python3 that has PyYAML (python3-yaml installs it for the system interpreter).
python=""
for candidate in "${PYTHON:-python3}" /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' >/dev/null 2>&1; then
        python="$candidate"
        break
    fi
done
[ -n "$python" ] || fail "python3 with PyYAML is required (Debian: apt-get install -y python3-yaml)"

step "docker-compose.yml"
if docker compose version >/dev/null 2>&1; then
    docker compose -f docker-compose.yml config --quiet || fail "docker compose config"
    docker compose -f docker-compose.yml --profile redis config --quiet || fail "docker compose --profile redis config"
elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f docker-compose.yml config --quiet || fail "docker-compose config"
    docker-compose -f docker-compose.yml --profile redis config --quiet || fail "docker-compose --profile redis config"
else
    fail "docker compose or docker-compose is required (Debian: apt-get install -y docker-compose)"
fi

step "YAML and JSON under deploy/, Grafana dashboard against the service's instruments"
"$python" - <<'PY' || fail "file checks"
import glob, json, re, sys
import yaml

problems = []

files = sorted(glob.glob("deploy/**/*.yaml", recursive=True) + glob.glob("deploy/**/*.yml", recursive=True))
for path in files + ["docker-compose.yml"]:
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            problems.append(f"{path}: no YAML document")
    except yaml.YAMLError as e:
        problems.append(f"{path}: {e}")

# Kubernetes manifests: the fields every object needs (kustomization files and patches excepted).
for path in glob.glob("deploy/kubernetes/**/*.yaml", recursive=True):
    if path.endswith("kustomization.yaml"):
        continue
    try:
        docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d is not None]
    except yaml.YAMLError:
        continue
    for doc in docs:
        for field in ("apiVersion", "kind"):
            if field not in doc:
                problems.append(f"{path}: a document has no {field}")
        if not (doc.get("metadata") or {}).get("name"):
            problems.append(f"{path}: {doc.get('kind')} has no metadata.name")

dashboards = []
for path in sorted(glob.glob("deploy/**/*.json", recursive=True)):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        problems.append(f"{path}: {e}")
        continue
    if "panels" in data:
        dashboards.append((path, data))

# What the service exports, in Prometheus' names: its instruments, Create*<T>("mhs.name", "unit", ...) in its
# sources, named as OpenTelemetry's Prometheus exporter writes them (dots to underscores, the unit s or By as
# _seconds or _bytes, _total on counters; histograms add _bucket, _sum and _count).
defined = set()
instrument = re.compile(r'Create(Counter|Histogram|ObservableGauge|ObservableCounter|UpDownCounter|Gauge)(?:<[^>]*>)?\(\s*"(mhs\.[a-z0-9_.]+)"\s*(?:,\s*(?:unit:\s*)?(?:"([^"]*)"|null))?')
for source in glob.glob("src/MultiHeadServe/**/*.cs", recursive=True):
    text = open(source, encoding="utf-8").read()
    for kind, name, unit in instrument.findall(text):
        exported = name.replace(".", "_") + {"s": "_seconds", "By": "_bytes"}.get(unit or "", "")
        if kind in ("Counter", "ObservableCounter"):
            exported += "_total"
        defined.add(exported)
        if kind == "Histogram":
            defined.update(exported + suffix for suffix in ("_bucket", "_sum", "_count"))
if not defined:
    problems.append("no mhs.* instruments found in src/MultiHeadServe")

def check_query(where, expr):
    if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
        problems.append(f"{where}: unbalanced brackets in {expr}")
    for metric in re.findall(r"\b(mhs_[a-z0-9_]+)", expr):
        if metric not in defined:
            problems.append(f"{where} queries {metric}, which the service does not export")

rules = 0
for path in sorted(glob.glob("deploy/prometheus/*rules*.yml") + glob.glob("deploy/prometheus/alerts*.yml")):
    for group in (yaml.safe_load(open(path, encoding="utf-8")) or {}).get("groups", []):
        for rule in group.get("rules", []):
            rules += 1
            name = rule.get("alert") or rule.get("record")
            if not name or not rule.get("expr"):
                problems.append(f"{path}: a rule needs a name and an expr")
                continue
            check_query(f"{path}: rule {name}", rule["expr"])

for path, dashboard in dashboards:
    if not dashboard.get("uid") or not dashboard.get("title"):
        problems.append(f"{path}: the dashboard needs a uid and a title")
    ids = [p.get("id") for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        problems.append(f"{path}: panel ids are not unique")
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            continue
        title = panel.get("title", "?")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{path}: panel '{title}' has no query")
        for target in targets:
            expr = target.get("expr", "")
            if not expr:
                problems.append(f"{path}: panel '{title}' has an empty query")
            check_query(f"{path}: panel '{title}'", expr)

for problem in problems:
    print(problem, file=sys.stderr)
print(f"{len(files) + 1} YAML files, {len(dashboards)} dashboard(s), {rules} alert rule(s), {len(defined)} exported series names")
sys.exit(1 if problems else 0)
PY

step "Kubernetes, Prometheus Operator and KServe manifests against their schemas"
command -v dotnet >/dev/null 2>&1 || fail "the .NET SDK is required for the schema checks (see global.json)"
# deploy/validate: built-in kinds against KubernetesClient's models (generated from the Kubernetes OpenAPI spec),
# custom resources against deploy/schema/*.schema.json. Built once here, in the configuration dotnet test builds.
build_log="$(dotnet build deploy/validate -nologo -v:q 2>&1)" || { printf '%s\n' "$build_log" >&2; fail "dotnet build deploy/validate"; }
validate_manifests() { dotnet deploy/validate/bin/Debug/net10.0/validate-manifests.dll "$@"; }

kustomize_build=""
if command -v kustomize >/dev/null 2>&1; then
    kustomize_build="kustomize build"
elif command -v kubectl >/dev/null 2>&1; then
    kustomize_build="kubectl kustomize"
fi
kustomizations=(deploy/kubernetes/base deploy/kubernetes/gpu deploy/kubernetes/monitoring deploy/kserve)
for dir in "${kustomizations[@]}"; do
    if [ -n "$kustomize_build" ]; then
        rendered="$($kustomize_build "$dir")" || fail "$kustomize_build $dir"
        printf '%s\n' "$rendered" | validate_manifests --label "$dir (rendered)" - || fail "$dir: manifests do not match their schemas"
    else
        # Without a Kustomize builder: each resource file as written (overlays' patches are not applied).
        mapfile -t resources < <("$python" -c 'import sys, os, yaml; d = sys.argv[1]; [print(os.path.join(d, r)) for r in yaml.safe_load(open(os.path.join(d, "kustomization.yaml")))["resources"] if os.path.isfile(os.path.join(d, r))]' "$dir")
        if [ ${#resources[@]} -gt 0 ]; then
            validate_manifests "${resources[@]}" || fail "$dir: manifests do not match their schemas"
        fi
    fi
done
[ -n "$kustomize_build" ] || echo "note: neither kustomize nor kubectl is installed, so the overlays were not rendered"
# Manifests outside the Kustomize builds.
validate_manifests deploy/kubernetes/secret.example.yaml || fail "secret.example.yaml does not match its schema"

step "Prometheus configuration"
if command -v promtool >/dev/null 2>&1; then
    promtool check config deploy/prometheus/prometheus.yml || fail "promtool check config"
else
    echo "skipped: promtool is not installed (Debian: apt-get install -y prometheus)"
fi

echo "deploy/ is valid"
