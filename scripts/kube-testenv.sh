#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for the operator's tests, built from the Go
# module proxy once per machine and cached under target/kube-testenv/ (keyed by version).
#
#   scripts/kube-testenv.sh build     builds etcd, kube-apiserver, kube-controller-manager,
#                                     kube-scheduler, kubectl and helm (skips what is cached)
#   scripts/kube-testenv.sh bin       prints the folder that holds them
#   scripts/kube-testenv.sh start DIR starts etcd, kube-apiserver and kube-controller-manager
#                                     on loopback with envtest's flags, state and certificates
#                                     in DIR; writes DIR/kubeconfig (a system:masters client
#                                     certificate) and waits for the API server to be ready
#   scripts/kube-testenv.sh stop DIR  stops them
#
# KUBE_TESTENV_POD_GATEWAY=ADDR (scripts/e2e-operator.sh sets it, inside network namespaces
# of its own): pods reach the API server at ADDR, so it listens on every address of that
# namespace, advertises ADDR (the `kubernetes` Service's endpoint) and its certificate names it.
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

# Go's module and build caches for the build live beside the binaries and go once the binaries
# are there (several GB that CI's disk needs for the Rust build; nothing reads them again).
GO_CACHES="$ROOT/go-caches"
export GOMODCACHE="$GO_CACHES/mod" GOCACHE="$GO_CACHES/build"

build_k8s() {
  local missing=0
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$cmd" ] || missing=1
  done
  [ "$missing" = 1 ] || return 0
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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir="$1"
  [ -x "$BIN/kube-apiserver" ] || { say "not built: run $0 build"; exit 1; }
  mkdir -p "$dir/pki" "$dir/etcd" "$dir/logs"
  dir=$(cd "$dir" && pwd)
  local pki="$dir/pki"
  # A CA, the API server's serving certificate, the admin's client certificate, the service
  # account signing key.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=kube-testenv CA" -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  issue() { # name subject san
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
      -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
      -CAcreateserial -days 2 -out "$pki/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
  }
  local gateway=${KUBE_TESTENV_POD_GATEWAY:-} bind=127.0.0.1 advertise=()
  if [ -n "$gateway" ]; then bind=0.0.0.0; advertise=(--advertise-address "$gateway"); fi
  issue apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,IP:10.0.0.1${gateway:+,IP:$gateway}"
  issue admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null

  local etcd_port peer_port api_port
  etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
  "$BIN/etcd" --data-dir "$dir/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --unsafe-no-fsync=true \
    >"$dir/logs/etcd.log" 2>&1 &
  echo $! > "$dir/etcd.pid"
  "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --secure-port "$api_port" --bind-address "$bind" "${advertise[@]}" --cert-dir "$dir/apiserver" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode RBAC --allow-privileged=true \
    --service-account-issuer "https://127.0.0.1:$api_port/" \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    >"$dir/logs/kube-apiserver.log" 2>&1 &
  echo $! > "$dir/kube-apiserver.pid"
  cat > "$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: testenv
  context: {cluster: testenv, user: admin, namespace: default}
current-context: testenv
KUBECONFIG
  for _ in $(seq 300); do
    "$BIN/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null 2>&1 && break
    sleep 0.2
  done
  "$BIN/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null || {
    tail -20 "$dir/logs/kube-apiserver.log" >&2
    say "the API server did not become ready"
    exit 1
  }
  "$BIN/kube-controller-manager" --kubeconfig "$dir/kubeconfig" --leader-elect=false \
    --controllers statefulset-controller,garbage-collector-controller,disruption-controller,replicaset-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,endpointslice-controller,persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,root-ca-certificate-publisher-controller,deployment-controller \
    --root-ca-file "$pki/ca.crt" --service-account-private-key-file "$pki/sa.key" \
    --bind-address 127.0.0.1 --secure-port 0 \
    >"$dir/logs/kube-controller-manager.log" 2>&1 &
  echo $! > "$dir/kube-controller-manager.pid"
  say "API server ready: KUBECONFIG=$dir/kubeconfig"
}

stop() { # SIGTERM, then SIGKILL whatever is still there after 10 s (an API server whose
  # etcd is gone can wait on it for ever)
  local dir="$1" p pid
  for p in kube-controller-manager kube-apiserver etcd; do
    [ -f "$dir/$p.pid" ] || continue
    pid=$(cat "$dir/$p.pid")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

case "${1:-build}" in
  build)
    (build_etcd)
    (build_helm)
    (build_k8s)
    if [ -d "$GO_CACHES" ]; then
      chmod -R u+w "$GO_CACHES" && rm -rf "$GO_CACHES"
    fi
    say "ready in $BIN"
    ;;
  bin) echo "$BIN" ;;
  start) start "${2:?start DIR}" ;;
  stop) stop "${2:?stop DIR}" ;;
  *) echo "usage: $0 build|bin|start DIR|stop DIR" >&2; exit 2 ;;
esac
