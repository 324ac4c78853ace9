#!/usr/bin/env bash
# Builds a tiny image for test pods from Debian's busybox-static, offline, the same bytes
# every time:
#   scripts/build-test-image.sh OUT.tar
# /bin/busybox with a link for every applet (sh, nc, httpd, ...), /etc/passwd and
# /etc/group with root and nobody, and /tmp; no entrypoint, `sh` as the command, PATH
# set. Named kube-bundle.invalid/busybox:<version> ($TEST_IMAGE to change it): a name no
# registry serves, so a pod running it proves the image came from the node. Written as
# a one-layer OCI image archive (scripts/oci-image.sh) with the package's changelog date
# (or $SOURCE_DATE_EPOCH) on every file. busybox's `wget` crashes in these images: use
# `nc` or `httpd`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/oci-image.sh
source "$HERE/oci-image.sh"

[[ $# -eq 1 && -n $1 && $1 != -* ]] || oci_image_die 2 "usage: scripts/build-test-image.sh OUT.tar"
out=$1
[[ -d $(dirname "$out") ]] || oci_image_die 2 "the folder of $out does not exist"
[[ $(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null) == installed ]] ||
    oci_image_die 1 "busybox-static is not installed; run: sudo scripts/deps.sh e2e"
busybox=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$') ||
    oci_image_die 1 "busybox-static has no bin/busybox"
version=$(dpkg-query -W -f='${Version}' busybox-static)
version=${version#*:}
name=${TEST_IMAGE:-kube-bundle.invalid/busybox:${version%%-*}}
oci_image_check_name "$name"
epoch=$(oci_image_epoch /usr/share/doc/busybox-static/changelog.Debian.gz)

oci_image_mktemp work
root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
"$root/bin/busybox" --list-full | while IFS= read -r applet; do
    # linuxrc (an init for initramfs) is the one applet outside a bin folder.
    [[ $applet == */* && $applet != bin/busybox ]] || continue
    mkdir -p "$root/${applet%/*}"
    ln -s /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
find "$root" -type d -exec chmod 0755 {} +
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 1777 "$root/tmp"
oci_image_archive "$root" "$name" "$epoch" \
    '{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}' "$out"
