#!/usr/bin/env bash
# make k8s-lint: render every overlay with the locked kubectl's kustomize, validate the result
# strictly against the Kubernetes API schemas, and run checkov on it. Offline: the schemas and
# checkov's policies come with their packages.
set -euo pipefail

# The oldest release these manifests need (the preStop sleep handler is on by default from
# 1.30) and kubectl's own.
KUBERNETES_VERSIONS=(1.30 1.37)

tools=$(cd "$(dirname "$0")" && pwd)
k8s=$(dirname "$tools")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A copy, so prod's Secret can be rendered from the committed example: its secrets.env is
# never committed, and a real one on this machine is neither read nor copied.
tar -C "$k8s" --exclude=./tools --exclude=./overlays/prod/secrets.env -cf - . | tar -C "$work" -xf -
cp "$work/overlays/prod/secrets.env.example" "$work/overlays/prod/secrets.env"

mkdir "$work/rendered"
for overlay in "$work"/overlays/*/; do
  name=$(basename "$overlay")
  "$tools/.venv/bin/kubectl" kustomize "$overlay" > "$work/rendered/$name.yaml"
  for version in "${KUBERNETES_VERSIONS[@]}"; do
    "$tools/.venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$version" \
      "$work/rendered/$name.yaml"
  done
  echo "deploy/k8s/overlays/$name: renders, valid for Kubernetes ${KUBERNETES_VERSIONS[*]}"
done

# Every check must pass or be skipped in the manifest itself, with its reason.
"$tools/.venv/bin/checkov" --directory "$work/rendered" --framework kubernetes --skip-download \
  --compact --quiet
