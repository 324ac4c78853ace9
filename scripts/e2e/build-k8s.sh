#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager v1.20.2 from Debian's
# `kubernetes` source package, the way its debian/rules does, and caches them
# outside the repository. A cache whose binaries still match the sha256 recorded
# at build time is reused as is.
set -euo pipefail

CACHE=${KUBE_BUNDLE_CACHE:-/var/cache/kube-bundle}
OUT="$CACHE/k8s-v1.20.2"
BINS=(kube-apiserver kube-controller-manager)

log() { printf 'build-k8s: %s\n' "$*" >&2; }

if [[ -f "$OUT/SHA256SUMS" ]] && (cd "$OUT" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1); then
    log "cache $OUT is intact, reusing it"
    exit 0
fi

[[ $EUID -eq 0 ]] || { log "needs root to install build dependencies"; exit 2; }

src_list=/etc/apt/sources.list.d/kube-bundle-src.sources
if [[ ! -f $src_list ]]; then
    log "enabling deb-src for bookworm in $src_list"
    cat >"$src_list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
fi
if ! command -v go >/dev/null || ! command -v rsync >/dev/null || ! command -v dpkg-source >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go rsync dpkg-dev >/dev/null
fi

mkdir -p "$CACHE/src"
cd "$CACHE/src"
tree=$(find . -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -n1)
if [[ -z $tree ]]; then
    log "fetching the kubernetes source package"
    apt-get source -qq kubernetes >/dev/null 2>&1
    tree=$(find . -maxdepth 1 -type d -name 'kubernetes-1.20*' | head -n1)
fi
[[ -n $tree ]] || { log "apt-get source kubernetes gave no 1.20 tree"; exit 1; }
cd "$tree"

# debian/rules builds through a GOPATH whose k8s.io/kubernetes points at the tree.
mkdir -p .go/src/k8s.io
[[ -L .go/src/k8s.io/kubernetes ]] || ln -s ../../.. .go/src/k8s.io/kubernetes
log "building ${BINS[*]} (about 5 minutes on 2 cores)"
env GOPATH="$PWD/.go" CGO_ENABLED=0 PATH="/usr/lib/go/bin:$PATH" \
    GOCACHE="$CACHE/go-build" HOME="$CACHE/home" \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$CACHE/build.log" 2>&1 \
    || { tail -n 30 "$CACHE/build.log" >&2; exit 1; }

mkdir -p "$OUT"
for b in "${BINS[@]}"; do
    install -m 0755 "_output/bin/$b" "$OUT/$b.new"
    mv -f "$OUT/$b.new" "$OUT/$b"
done
(cd "$OUT" && sha256sum "${BINS[@]}" >SHA256SUMS.new && mv -f SHA256SUMS.new SHA256SUMS)
"$OUT/kube-controller-manager" --version
log "cached in $OUT"
