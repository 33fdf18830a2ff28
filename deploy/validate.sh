#!/usr/bin/env bash
# Validates the container and deployment files without a Docker engine or a cluster:
#   - docker-compose.yml resolves (docker compose / docker-compose config);
#   - every YAML and JSON file under deploy/ parses;
#   - the Grafana dashboard is well formed and every metric it queries is an instrument the
#     service defines;
#   - when the tools are installed: the Kustomize builds (kubectl or kustomize) and the Prometheus
#     configuration (promtool).
# Exits non-zero on the first failing group, after printing every problem found in it.
#
# Needs on Debian: apt-get install -y docker-compose python3-yaml
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
elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f docker-compose.yml config --quiet || fail "docker-compose config"
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

# Instruments the service defines: Create*<T>("name", ...) in its sources.
defined = set()
for source in glob.glob("src/MultiHeadServe/**/*.cs", recursive=True):
    text = open(source, encoding="utf-8").read()
    defined.update(re.findall(r'Create\w*(?:<[^>]*>)?\(\s*"(mhs_[a-z0-9_]+)"', text))
if not defined:
    problems.append("no mhs_* instruments found in src/MultiHeadServe")

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
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                problems.append(f"{path}: panel '{title}': unbalanced brackets in {expr}")
            for metric in re.findall(r"\b(mhs_[a-z0-9_]+)", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", metric)
                if metric not in defined and base not in defined:
                    problems.append(f"{path}: panel '{title}' queries {metric}, which the service does not define")

for problem in problems:
    print(problem, file=sys.stderr)
print(f"{len(files) + 1} YAML files, {len(dashboards)} dashboard(s), {len(defined)} instruments")
sys.exit(1 if problems else 0)
PY

step "Kustomize builds"
kustomize_build=""
if command -v kustomize >/dev/null 2>&1; then
    kustomize_build="kustomize build"
elif command -v kubectl >/dev/null 2>&1; then
    kustomize_build="kubectl kustomize"
fi
if [ -n "$kustomize_build" ]; then
    for overlay in deploy/kubernetes/base deploy/kubernetes/gpu; do
        $kustomize_build "$overlay" >/dev/null || fail "$kustomize_build $overlay"
        echo "$overlay builds"
    done
else
    echo "skipped: neither kustomize nor kubectl is installed"
fi

step "Prometheus configuration"
if command -v promtool >/dev/null 2>&1; then
    promtool check config deploy/prometheus/prometheus.yml || fail "promtool check config"
else
    echo "skipped: promtool is not installed (Debian: apt-get install -y prometheus)"
fi

echo "deploy/ is valid"
