#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
# v1.20.2 from Debian's `kubernetes` source package, the way its debian/rules does, and
# caches them outside the repository. A cache whose binaries are all listed in its
# SHA256SUMS and still match it is reused as is; one that lacks any (a cache from before
# the workers) is rebuilt, quickly when the Go build cache under $CACHE/go-build is warm.
set -euo pipefail

CACHE=${KUBE_BUNDLE_CACHE:-/var/cache/kube-bundle}
OUT="$CACHE/k8s-v1.20.2"
BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# Kubernetes 1.20 vendors github.com/modern-go/reflect2 v1.0.1, which Go 1.18 and newer
# break: kube-apiserver then panics decoding any object with a map (a SubjectAccessReview
# from a component's delegated authorization answers 500). v1.0.2 fixes it; builds made
# with it say so in this file, and a cache without it is rebuilt.
BUILD_NOTE="reflect2 v1.0.2"

# shellcheck source=scripts/apt-debian.sh
source "$(dirname "$0")/../apt-debian.sh"

log() { printf 'build-k8s: %s\n' "$*" >&2; }

cache_intact() {
    [[ -f "$OUT/SHA256SUMS" ]] || return 1
    grep -qxF "$BUILD_NOTE" "$OUT/BUILD-NOTES" 2>/dev/null || return 1
    local b
    for b in "${BINS[@]}"; do grep -q "  $b\$" "$OUT/SHA256SUMS" || return 1; done
    (cd "$OUT" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1)
}
if cache_intact; then
    log "cache $OUT is intact, reusing it"
    exit 0
fi

[[ $EUID -eq 0 ]] || { log "needs root to install build dependencies"; exit 2; }

src_list=/etc/apt/sources.list.d/kube-bundle-src.sources
if ! apt-cache showsrc kubernetes >/dev/null 2>&1; then
    # deb-src entries for exactly the Debian archives apt already uses here (see
    # scripts/apt-debian.sh), so that no mirror or release is named in this script.
    [[ -n $(apt_debian_uris) ]] || { log "apt knows no Debian archive to take deb-src entries from"; exit 1; }
    entries=$(apt_debian_deb_src_stanzas "$src_list")
    oneline=$(apt_debian_deb_src_lines)
    [[ -n $entries || -n $oneline ]] || { log "found no apt source entry for the Debian archives ($(apt_debian_uris | xargs))"; exit 1; }
    log "enabling deb-src for the machine's Debian archives in $src_list"
    printf '%s\n' "$entries" >"$src_list"
    if [[ -n $oneline ]]; then
        printf '%s\n' "$oneline" >"${src_list%.sources}.list"
    fi
    apt-get update -qq
fi
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
if ! command -v go >/dev/null || ! command -v rsync >/dev/null || ! command -v dpkg-source >/dev/null ||
    [[ ! -f $REFLECT2/go_above_118.go ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go rsync dpkg-dev golang-github-modern-go-reflect2-dev >/dev/null
fi
[[ -f $REFLECT2/go_above_118.go ]] || { log "golang-github-modern-go-reflect2-dev gave no reflect2 v1.0.2 in $REFLECT2"; exit 1; }

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

if grep -q 'modern-go/reflect2 v1.0.1' go.mod vendor/modules.txt; then
    log "vendoring reflect2 v1.0.2 from $REFLECT2 in place of v1.0.1"
    rm -rf vendor/github.com/modern-go/reflect2
    mkdir -p vendor/github.com/modern-go/reflect2
    cp "$REFLECT2"/*.go "$REFLECT2"/*.s vendor/github.com/modern-go/reflect2/
    sed -i 's|modern-go/reflect2 v1.0.1|modern-go/reflect2 v1.0.2|g' go.mod vendor/modules.txt
fi

# debian/rules builds through a GOPATH whose k8s.io/kubernetes points at the tree.
mkdir -p .go/src/k8s.io
[[ -L .go/src/k8s.io/kubernetes ]] || ln -s ../../.. .go/src/k8s.io/kubernetes
# dh exports SOURCE_DATE_EPOCH from the changelog, and hack/lib/version.sh takes the
# binaries' build date from it: the same tree then gives the same binaries, byte for byte.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l debian/changelog -STimestamp)
log "building ${BINS[*]} (about 8 minutes on 2 cores from cold, 1 with the tree's Go build cache)"
# CGO_ENABLED=0 for all five, kubelet included: debian/rules exports it for the whole
# build, so Debian's kubelet is static too (upstream's hack/lib/golang.sh would otherwise
# link the kubelet, which is not in its KUBE_STATIC_LIBRARIES, with cgo).
# hack/lib/golang.sh sets GOCACHE to _output/local/go/cache, so the Go build cache stays
# in this tree under $CACHE/src: keeping $CACHE keeps a rebuild to about a minute.
env GOPATH="$PWD/.go" CGO_ENABLED=0 PATH="/usr/lib/go/bin:$PATH" \
    SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" HOME="$CACHE/home" \
    make WHAT="${BINS[*]/#/cmd/}" >"$CACHE/build.log" 2>&1 \
    || { tail -n 30 "$CACHE/build.log" >&2; exit 1; }

mkdir -p "$OUT"
for b in "${BINS[@]}"; do
    install -m 0755 "_output/bin/$b" "$OUT/$b.new"
    mv -f "$OUT/$b.new" "$OUT/$b"
done
(cd "$OUT" && sha256sum "${BINS[@]}" >SHA256SUMS.new && mv -f SHA256SUMS.new SHA256SUMS)
printf '%s\n' "$BUILD_NOTE" >"$OUT/BUILD-NOTES"
for b in "${BINS[@]}"; do "$OUT/$b" --version; done
log "cached in $OUT"
