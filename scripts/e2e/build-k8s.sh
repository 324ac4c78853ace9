#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 from Debian's
# `kubernetes` source package, the way its debian/rules does, and caches them
# outside the repository. A cache whose binaries still match the sha256 recorded
# at build time is reused as is.
set -euo pipefail

CACHE=${KUBE_BUNDLE_CACHE:-/var/cache/kube-bundle}
OUT="$CACHE/k8s-v1.20.2"
BINS=(kube-apiserver kube-controller-manager kube-scheduler)

log() { printf 'build-k8s: %s\n' "$*" >&2; }

cache_intact() {
    [[ -f "$OUT/SHA256SUMS" ]] || return 1
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
    # deb-src entries for exactly the Debian archives apt already uses here, so that no
    # mirror or release is named in this script: the URIs whose release origin is Debian
    # (from `apt-cache policy`), and for each, the deb822 stanza (or sources.list line)
    # that configures it, turned into deb-src with the same suites and Signed-By.
    debian_uris=$(apt-cache policy | awk '
        $1 ~ /^[0-9]+$/ && $2 ~ /^(https?|file):/ && $NF == "Packages" { uri=$2; next }
        /^ *release / && uri != "" { if ($0 ~ /o=Debian[,]/) print uri; uri="" }
    ' | sed 's:/*$::' | sort -u)
    [[ -n $debian_uris ]] || { log "apt knows no Debian archive to take deb-src entries from"; exit 1; }
    entries=$(
        shopt -s nullglob
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ $f == "$src_list" ]] && continue
            awk -v uris="$debian_uris" '
                BEGIN { n = split(uris, u, "\n"); for (i = 1; i <= n; i++) ok[u[i]] = 1 }
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && enabled) {
                        m = split(urilist, us, " "); keep = 0
                        for (i = 1; i <= m; i++) { x = us[i]; sub(/\/+$/, "", x); if (x in ok) keep = 1 }
                        if (keep) { print "Types: deb-src"; printf "%s", body; print "" }
                    }
                    types = ""; urilist = ""; body = ""; enabled = 1
                }
                BEGIN { enabled = 1 }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^Types:/ { t = $0; sub(/^Types:[ \t]*/, "", t); types = t; next }
                /^Enabled:[ \t]*no/ { enabled = 0 }
                /^URIs:/ { t = $0; sub(/^URIs:[ \t]*/, "", t); urilist = t }
                { body = body $0 "\n" }
                END { flush() }
            ' "$f"
        done
    )
    oneline=$({ cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
        awk -v uris="$debian_uris" '
            BEGIN { n = split(uris, u, "\n"); for (i = 1; i <= n; i++) ok[u[i]] = 1 }
            $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                x = $i; sub(/\/+$/, "", x); if (x in ok) { sub(/^deb /, "deb-src "); print } }
        ')
    [[ -n $entries || -n $oneline ]] || { log "found no apt source entry for the Debian archives ($debian_uris)"; exit 1; }
    log "enabling deb-src for the machine's Debian archives in $src_list"
    printf '%s\n' "$entries" >"$src_list"
    if [[ -n $oneline ]]; then
        printf '%s\n' "$oneline" >"${src_list%.sources}.list"
    fi
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
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >"$CACHE/build.log" 2>&1 \
    || { tail -n 30 "$CACHE/build.log" >&2; exit 1; }

mkdir -p "$OUT"
for b in "${BINS[@]}"; do
    install -m 0755 "_output/bin/$b" "$OUT/$b.new"
    mv -f "$OUT/$b.new" "$OUT/$b"
done
(cd "$OUT" && sha256sum "${BINS[@]}" >SHA256SUMS.new && mv -f SHA256SUMS.new SHA256SUMS)
"$OUT/kube-controller-manager" --version
log "cached in $OUT"
