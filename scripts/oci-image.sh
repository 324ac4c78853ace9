# shellcheck shell=bash
# Writes a one-layer OCI image as an image-layout tar archive (what `ctr images import`
# and `oras --oci-layout` read), byte for byte the same for the same inputs: sourced by
# scripts/build-pause.sh and scripts/build-test-image.sh.
# Sourcing it sets an EXIT trap that removes the temporary folders it made.
#   oci_image_mktemp VAR [PARENT]
#       makes a temporary folder removed on exit, its path in VAR
#   oci_image_check_name NAME
#       fails (exit 2) unless NAME is a full image reference with a tag
#   oci_image_epoch CHANGELOG
#       SOURCE_DATE_EPOCH when set, else the date of the last entry of a Debian
#       changelog (plain or .gz), else 0
#   oci_image_archive ROOTFS NAME EPOCH CONFIG_JSON OUT
#       packs the folder ROOTFS as the layer, CONFIG_JSON (the image config's `config`
#       object: Entrypoint, Cmd, Env) into the config, names the image NAME and writes
#       the archive to OUT (renamed into place: nothing half-written); prints NAME and
#       the manifest's digest
#
# Every tar here has its entries sorted by name, mtime EPOCH, owner and group 0 with no
# names, and the modes ROOTFS has; the layer is gzip'd without a name or time (gzip -n).
# index.json names the image the way `ctr images export` does: `io.containerd.image.name`
# holds the full reference, `org.opencontainers.image.ref.name` its tag, so that
# `oras ... --oci-layout OUT:TAG` finds it too.

# Temporary folders of oci_image_mktemp, removed on exit, however the script ends.
OCI_IMAGE_TEMP=()
oci_image_cleanup() {
    ((${#OCI_IMAGE_TEMP[@]} == 0)) || rm -rf "${OCI_IMAGE_TEMP[@]}"
}
trap oci_image_cleanup EXIT

# oci_image_mktemp VAR [PARENT]: a new temporary folder (in PARENT), its path in VAR.
oci_image_mktemp() {
    local -n oci_image_dir=$1
    oci_image_dir=$(mktemp -d "${2:-${TMPDIR:-/tmp}}/.oci-image.XXXXXX") ||
        oci_image_die 1 "cannot make a temporary folder in ${2:-${TMPDIR:-/tmp}}"
    OCI_IMAGE_TEMP+=("$oci_image_dir")
}

oci_image_die() {
    local code=$1
    shift
    printf '%s: %s\n' "${0##*/}" "$*" >&2
    exit "$code"
}

oci_image_check_name() {
    local name=$1
    local part='[a-z0-9]+([._-]+[a-z0-9]+)*'
    local re="^$part(:[0-9]+)?(/$part)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\$"
    [[ $name =~ $re ]] ||
        oci_image_die 2 "image name \`$name\` is not a reference with a tag (like k8s.gcr.io/pause:3.2)"
}

oci_image_epoch() {
    local changelog=$1 epoch
    if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
        [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]] ||
            oci_image_die 2 "SOURCE_DATE_EPOCH \`$SOURCE_DATE_EPOCH\` is not a number of seconds"
        printf '%s\n' "$SOURCE_DATE_EPOCH"
        return
    fi
    epoch=0
    if [[ -f $changelog ]]; then
        if [[ $changelog == *.gz ]]; then
            epoch=$(gzip -dc "$changelog" | dpkg-parsechangelog -l - -STimestamp) ||
                oci_image_die 1 "cannot read the date of $changelog"
        else
            epoch=$(dpkg-parsechangelog -l "$changelog" -STimestamp) ||
                oci_image_die 1 "cannot read the date of $changelog"
        fi
    fi
    printf '%s\n' "$epoch"
}

# oci_image_tar DIR EPOCH OUT: DIR's entries (not DIR itself), names without `./`.
oci_image_tar() {
    local dir=$1 epoch=$2 out=$3
    (cd "$dir" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort) |
        tar -C "$dir" --create --file="$out" --format=ustar --no-recursion --verbatim-files-from \
            --files-from=- --mtime="@$epoch" --owner=0 --group=0 --numeric-owner ||
        oci_image_die 1 "cannot write the tar archive $out from $dir"
}

# oci_image_blob FILE BLOBS: moves FILE into BLOBS/<sha256> and prints the digest.
oci_image_blob() {
    local file=$1 blobs=$2 sum
    sum=$(sha256sum "$file" | cut -d' ' -f1) || oci_image_die 1 "cannot hash $file"
    mv -f "$file" "$blobs/$sum" || oci_image_die 1 "cannot move $file into $blobs"
    printf 'sha256:%s\n' "$sum"
}

oci_image_arch() {
    local deb
    deb=$(dpkg --print-architecture) || oci_image_die 1 "dpkg --print-architecture failed"
    case $deb in
        amd64 | arm64 | s390x | riscv64) printf '%s\n' "$deb" ;;
        ppc64el) printf 'ppc64le\n' ;;
        i386) printf '386\n' ;;
        *) oci_image_die 1 "no OCI architecture known for the Debian architecture $deb" ;;
    esac
}

oci_image_archive() {
    local rootfs=$1 name=$2 epoch=$3 config=$4 out=$5
    local work arch created layer_tar diff_id layer layer_size config_digest config_size
    local manifest manifest_size tag=${name##*:}
    oci_image_check_name "$name"
    [[ -d $rootfs ]] || oci_image_die 2 "root file system $rootfs is not a folder"
    arch=$(oci_image_arch)
    created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ) || oci_image_die 2 "bad epoch $epoch"
    # Beside OUT, so that the last step is a rename.
    oci_image_mktemp work "$(dirname "$out")"
    mkdir -p "$work/layout/blobs/sha256" || oci_image_die 1 "cannot make $work/layout"
    local blobs=$work/layout/blobs/sha256

    layer_tar=$work/layer.tar
    oci_image_tar "$rootfs" "$epoch" "$layer_tar"
    diff_id=sha256:$(sha256sum "$layer_tar" | cut -d' ' -f1)
    gzip -n -9 <"$layer_tar" >"$work/layer.tar.gz" || oci_image_die 1 "cannot gzip $layer_tar"
    layer_size=$(stat -c %s "$work/layer.tar.gz")
    layer=$(oci_image_blob "$work/layer.tar.gz" "$blobs")

    printf '{"architecture":"%s","config":%s,"created":"%s","history":[{"created":"%s","created_by":"%s"}],"os":"linux","rootfs":{"diff_ids":["%s"],"type":"layers"}}' \
        "$arch" "$config" "$created" "$created" "${0##*/}" "$diff_id" >"$work/config.json"
    config_size=$(stat -c %s "$work/config.json")
    config_digest=$(oci_image_blob "$work/config.json" "$blobs")

    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
        "$config_digest" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
    manifest_size=$(stat -c %s "$work/manifest.json")
    manifest=$(oci_image_blob "$work/manifest.json" "$blobs")

    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"},"platform":{"architecture":"%s","os":"linux"}}]}' \
        "$manifest" "$manifest_size" "$name" "$tag" "$arch" >"$work/layout/index.json"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$work/layout/oci-layout"
    chmod -R u=rwX,go=rX "$work/layout"

    oci_image_tar "$work/layout" "$epoch" "$work/image.tar"
    chmod 0644 "$work/image.tar" || oci_image_die 1 "cannot chmod $work/image.tar"
    mv -f "$work/image.tar" "$out" || oci_image_die 1 "cannot write $out"
    rm -rf "$work"
    printf '%s %s\n' "$name" "$manifest"
}
