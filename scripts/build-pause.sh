#!/usr/bin/env bash
# Builds the pod sandbox (pause) image offline, the same bytes every time:
#   scripts/build-pause.sh OUT.tar
# compiles build/pause/linux/pause.c of the Kubernetes source tree that
# scripts/e2e/build-k8s.sh fetches ($KUBE_BUNDLE_CACHE/src/kubernetes-1.20*/, or
# $KUBERNETES_SRC) with `gcc -static -O2`, strips it, and writes a one-layer OCI image
# archive whose entrypoint is /pause (scripts/oci-image.sh), ready for
# `ctr -n k8s.io images import OUT.tar`.
# The name is k8s.gcr.io/pause:3.2 ($PAUSE_IMAGE to change it): the default of kubelet
# v1.20.2's --pod-infra-container-image (cmd/kubelet/app/options/container_runtime.go), so
# a kubelet or a containerd sandbox_image left at that default finds it. The tree's
# pause.c is the one of pause 3.4 (build/pause/Makefile), which `pause -v` reports; 3.4
# changed the build, not what the program does. File dates are the source package's
# changelog date (or $SOURCE_DATE_EPOCH).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/oci-image.sh
source "$HERE/oci-image.sh"

[[ $# -eq 1 && -n $1 && $1 != -* ]] || oci_image_die 2 "usage: scripts/build-pause.sh OUT.tar"
out=$1
name=${PAUSE_IMAGE:-k8s.gcr.io/pause:3.2}
oci_image_check_name "$name"
[[ -d $(dirname "$out") ]] || oci_image_die 2 "the folder of $out does not exist"

tree=${KUBERNETES_SRC:-}
if [[ -z $tree ]]; then
    tree=$(find "${KUBE_BUNDLE_CACHE:-/var/cache/kube-bundle}/src" -maxdepth 1 -type d \
        -name 'kubernetes-1.20*' 2>/dev/null | LC_ALL=C sort | head -n1)
fi
src=$tree/build/pause/linux/pause.c
[[ -n $tree && -f $src ]] ||
    oci_image_die 2 "no Kubernetes source tree with build/pause/linux/pause.c${tree:+ in $tree}; hint: scripts/e2e/build-k8s.sh fetches it"
for cmd in gcc strip dpkg-parsechangelog; do
    command -v "$cmd" >/dev/null || oci_image_die 1 "\`$cmd\` is not installed; run: sudo scripts/deps.sh e2e"
done

tag=$(sed -n 's/^TAG = //p' "$tree/build/pause/Makefile")
version=$(dpkg-parsechangelog -l "$tree/debian/changelog" -SVersion)
[[ -n $tag && -n $version ]] || oci_image_die 1 "cannot read the pause TAG or the package version in $tree"
epoch=$(oci_image_epoch "$tree/debian/changelog")

oci_image_mktemp work
mkdir -m 0755 "$work/rootfs"
# As build/pause/Makefile builds it, but -O2; VERSION is what `pause -v` prints.
gcc -static -O2 -Wall -Werror -DVERSION="v$tag-debian-$version" -o "$work/pause" "$src" ||
    oci_image_die 1 "gcc could not build $src"
strip -o "$work/rootfs/pause" "$work/pause" || oci_image_die 1 "cannot strip $work/pause"
chmod 0755 "$work/rootfs/pause"
oci_image_archive "$work/rootfs" "$name" "$epoch" '{"Entrypoint":["/pause"]}' "$out"
