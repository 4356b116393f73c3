#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the operator's tests, built from the Go
# module proxy once per machine and cached under target/kube-testenv/ (keyed by version).
#
#   scripts/kube-testenv.sh build     builds etcd, kube-apiserver, kube-controller-manager,
#                                     kube-scheduler, kubectl and helm (skips what is cached)
#   scripts/kube-testenv.sh bin       prints the folder that holds them
#
# k8s.io/kubernetes is a dependency of a small wrapper module here: it requires its staging
# modules at v0.0.0 and points them at ./staging with replace lines, which Go ignores in a
# dependency, so the wrapper replaces each with its published v0.<minor>.<patch> release.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S=1.37.2
STAGING="v0.$(echo "$K8S" | cut -d. -f2,3)"
ETCD=3.6.16
HELM=4.3.2
ROOT="$PWD/target/kube-testenv"
BIN="$ROOT/k8s-$K8S-etcd-$ETCD-helm-$HELM/bin"

say() { echo "kube-testenv: $*" >&2; }

build_k8s() {
  local src="$ROOT/src/kubernetes-$K8S"
  mkdir -p "$src" "$BIN"
  cd "$src"
  cat > go.mod <<MOD
module zooid.test/kubebins

go 1.26

require k8s.io/kubernetes v$K8S
MOD
  cat > tools.go <<'GO'
//go:build tools

// Keeps the commands built from k8s.io/kubernetes in the module graph.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  local staging
  # The modules kubernetes points at its own ./staging tree.
  staging=$(grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging' "$gomod" | awk '{print $1}' | sort -u)
  say "$(echo "$staging" | wc -l) staging modules, each replaced by its $STAGING release"
  for m in $staging; do
    go mod edit -replace="$m=$m@$STAGING"
  done
  go mod tidy -e >/dev/null
  local ldflags="-s -w" minor
  minor=$(echo "$K8S" | cut -d. -f2)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$cmd" ] && continue
    say "building $cmd $K8S"
    CGO_ENABLED=0 go build -trimpath -tags=selinux,notest -ldflags "$ldflags" \
      -o "$BIN/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

build_etcd() {
  [ -x "$BIN/etcd" ] && return
  local src="$ROOT/src/etcd-$ETCD"
  mkdir -p "$src" "$BIN"
  cd "$src"
  cat > go.mod <<MOD
module zooid.test/etcd

go 1.26

require go.etcd.io/etcd/server/v3 v$ETCD
MOD
  cat > main.go <<'GO'
// etcd's own server entry point, built from its module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod tidy >/dev/null
  say "building etcd $ETCD"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .
}

build_helm() {
  [ -x "$BIN/helm" ] && return
  say "building helm $HELM"
  GOBIN="$BIN" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM" \
    "helm.sh/helm/v4/cmd/helm@v$HELM"
}

case "${1:-build}" in
  build)
    (build_etcd)
    (build_helm)
    (build_k8s)
    say "ready in $BIN"
    ;;
  bin) echo "$BIN" ;;
  *) echo "usage: $0 build|bin" >&2; exit 2 ;;
esac
