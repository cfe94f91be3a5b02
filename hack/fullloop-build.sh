#!/usr/bin/env bash
# Builds the full-loop suite's heavy binaries once and caches them outside the
# clone, keyed by the wrapper module's go.mod, go.sum and the Go version, so a
# warm run does not rebuild. Prints the cache folder of each tool asked for.
#
#   hack/fullloop-build.sh kube      # kube-apiserver, kube-controller-manager, kube-scheduler
#   hack/fullloop-build.sh argocd    # Argo CD v2's multicall binary (argocd)
#
# Cold builds take minutes and GBs, so they run under the shared heavy-job lock.
# RBD_DR_TOOL_CACHE moves the cache (default /var/cache/argocd-rbd-dr).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${RBD_DR_TOOL_CACHE:-/var/cache/argocd-rbd-dr}"
lock="${RBD_DR_HEAVY_LOCK:-/tmp/rbd-dr-heavy.lock}"

# The version the binaries report (Argo CD and the controllers read it from the
# API server; without it Kubernetes says v0.0.0-master).
ldflags() {
  case "$1" in
    kube) local v; v="$(cd "$root/test/fullloop/tools/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
      local minor="${v#v1.}"; minor="${minor%%.*}"
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean ' "$p" "$v" "$p" "$p" "$minor" "$p"
      done ;;
    argocd) local v; v="$(cd "$root/test/fullloop/tools/argocd" && go list -m -f '{{.Version}}' github.com/argoproj/argo-cd/v2)"
      printf -- '-X github.com/argoproj/argo-cd/v2/common.version=%s ' "${v#v}" ;;
  esac
}

# packages of each wrapper: output-name=package
pkgs() {
  case "$1" in
    kube) echo "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver
kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler" ;;
    argocd) echo "argocd=github.com/argoproj/argo-cd/v2/cmd" ;;
    *) echo "hack/fullloop-build.sh: unknown tool \"$1\"; known: kube, argocd" >&2; return 1 ;;
  esac
}

build() {
  local name="$1" mod="$root/test/fullloop/tools/$1" list key out flags
  list="$(pkgs "$name")"
  flags="-s -w $(ldflags "$name")"
  key="$( { cat "$mod/go.mod" "$mod/go.sum"; echo "$flags"; go version; go env GOOS GOARCH; } | sha256sum | cut -c1-16)"
  out="$cache/$name-$key"
  if [ ! -f "$out/.complete" ]; then
    mkdir -p "$cache"
    # Under the lock, check again: another run may have built it meanwhile.
    flock "$lock" bash -c '
      set -euo pipefail
      out="$1" mod="$2" list="$3" flags="$4"
      [ -f "$out/.complete" ] && exit 0
      tmp="$(mktemp -d "$out.tmp.XXXXXX")"
      trap '\''rm -rf "$tmp"'\'' EXIT
      while IFS="=" read -r bin pkg; do
        start=$(date +%s)
        echo "fullloop-build: building $bin ($pkg)" >&2
        (cd "$mod" && CGO_ENABLED=0 GOFLAGS="-mod=readonly" go build -trimpath -ldflags "$flags" -o "$tmp/$bin" "$pkg")
        echo "fullloop-build: $bin built in $(( $(date +%s) - start )) s" >&2
      done <<< "$list"
      touch "$tmp/.complete"
      rm -rf "$out"
      mv "$tmp" "$out"
      trap - EXIT
    ' _ "$out" "$mod" "$list" "$flags"
  fi
  echo "$out"
}

[ $# -gt 0 ] || { echo "usage: hack/fullloop-build.sh kube|argocd..." >&2; exit 2; }
for t in "$@"; do build "$t"; done
