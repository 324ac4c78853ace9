# shellcheck shell=bash
# Sourced by the bench scripts: stand_in FILE BYTES [-r [SKIP]] writes FILE, BYTES of real
# executables from /usr concatenated (in reverse name order with -r, for a second binary
# unlike the first; SKIP bytes further on, for a third unlike both), which compress like
# a real Kubernetes binary. ORDER may be "" to give SKIP alone. Fails with the caller's
# `die` when the machine has too few.
stand_in() {
    local file=$1 bytes=$2 order=${3:-} skip=${4:-0}
    # shellcheck disable=SC2086  # ORDER is empty or -r
    find /usr/bin /usr/lib -type f -size +100k -perm -u+x 2>/dev/null | LC_ALL=C sort $order |
        xargs cat 2>/dev/null | tail -c "+$((skip + 1))" | head -c "$bytes" >"$file" || true
    [[ $(stat -c %s "$file") -eq $bytes ]] ||
        die "could not gather $((bytes >> 20)) MiB of executables for a stand-in binary"
    chmod 755 "$file"
}
# unread FILE...: the inventory key that carries a section's binaries without reading
# their release, printed once when any FILE is a stand-in (the scripts name them
# generated-*): executables' bytes, but no Kubernetes or etcd release stamped, which the
# build would refuse.
unread() {
    local file
    for file in "$@"; do
        if [[ ${file##*/} == generated-* ]]; then
            printf 'binary-check = false\n'
            return
        fi
    done
}
