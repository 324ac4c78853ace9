#!/usr/bin/env bash
# Tests the offline images for real (`make e2e`, as root, after scripts/e2e/build-k8s.sh
# has fetched the Kubernetes source): scripts/build-pause.sh and
# scripts/build-test-image.sh each build twice to the same bytes; Python's tarfile reads
# every tar in them (names sorted, owner and group 0 without names, every mtime the
# source package's changelog date, each blob named by its sha256, the config's diff_id
# the layer's, gzip without a name or time); oras (scripts/deps.sh's) resolves each
# image by its tag, copies it blob by blob and refuses a copy whose layer was changed;
# Debian's containerd, started with a configuration, root, state and socket of its own
# under a temporary folder (never the package's service; CRI off), imports both into
# the k8s.io namespace and lists them by name and digest, runs the test image with runc
# (a shell, busybox httpd answering a request) and the pause image (`pause -v`; started,
# then SIGTERM ends it with status 0). Everything it starts is stopped and removed on
# exit, failure or interrupt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${KUBE_BUNDLE_CACHE:-/var/cache/kube-bundle}
ORAS=$CACHE/tools/oras

fail() {
    printf 'images: FAIL: %s\n' "$*" >&2
    exit 1
}
pass() { printf 'images: ok: %s\n' "$*"; }

[[ $EUID -eq 0 ]] || fail "needs root (containerd and runc); run it as root, as make e2e does"
for cmd in containerd ctr runc python3 sha256sum cmp; do
    command -v "$cmd" >/dev/null || fail "\`$cmd\` is not installed; run: sudo scripts/deps.sh e2e"
done
[[ -x $ORAS ]] || fail "$ORAS is missing; run: sudo scripts/deps.sh"
tree=$(find "$CACHE/src" -maxdepth 1 -type d -name 'kubernetes-1.20*' 2>/dev/null | LC_ALL=C sort | head -n1)
[[ -n $tree ]] || fail "no Kubernetes source tree in $CACHE/src; run scripts/e2e/build-k8s.sh first"

T=$(mktemp -d /tmp/kube-bundle-images.XXXXXX)
CTD_PID=
# Cgroups of the test's containers, one parent per run, removed at the end.
CGROUP_PARENT=kube-bundle-images-$$
RUN_CONTAINERD_EXISTED=0
[[ -e /run/containerd ]] && RUN_CONTAINERD_EXISTED=1
cleanup() {
    local rc=$? m
    if [[ -n $CTD_PID ]]; then
        # Containers first (their shims are children of no one we track), then the daemon.
        for id in $(ctr -a "$T/containerd.sock" -n k8s.io task ls -q 2>/dev/null); do
            ctr -a "$T/containerd.sock" -n k8s.io task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
        done
        sleep 0.5
        for id in $(ctr -a "$T/containerd.sock" -n k8s.io container ls -q 2>/dev/null); do
            ctr -a "$T/containerd.sock" -n k8s.io task delete -f "$id" >/dev/null 2>&1 || true
            ctr -a "$T/containerd.sock" -n k8s.io container rm "$id" >/dev/null 2>&1 || true
        done
        kill "$CTD_PID" 2>/dev/null || true
        wait "$CTD_PID" 2>/dev/null || true
    fi
    # Never remove through a mount that is still there.
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf "$T"
    rmdir /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT" 2>/dev/null || true
    # The runc shim keeps its sockets and runc its state under /run/containerd whatever
    # containerd's configuration says; left empty, they go when this run made them.
    if [[ $RUN_CONTAINERD_EXISTED -eq 0 ]]; then
        rmdir /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd/s /run/containerd 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ reproducible ---
build_twice() { # SCRIPT NAME: builds $T/NAME-1.tar and -2.tar, prints the first's "name digest"
    local script=$1 base=$2 line1 line2
    line1=$(cd / && "$ROOT/scripts/$script" "$T/$base-1.tar") || fail "scripts/$script failed"
    line2=$(cd "$T" && TMPDIR=$T "$ROOT/scripts/$script" "$T/$base-2.tar") || fail "scripts/$script failed the second time"
    cmp -s "$T/$base-1.tar" "$T/$base-2.tar" ||
        fail "scripts/$script built two different archives: $(sha256sum "$T/$base-1.tar" "$T/$base-2.tar" | cut -c1-64 | xargs)"
    [[ $line1 == "$line2" ]] || fail "scripts/$script printed '$line1' then '$line2'"
    printf '%s\n' "$line1"
}
line=$(build_twice build-pause.sh pause)
read -r PAUSE_NAME PAUSE_DIGEST <<<"$line"
line=$(build_twice build-test-image.sh busybox)
read -r TEST_NAME TEST_DIGEST <<<"$line"
[[ $PAUSE_NAME == k8s.gcr.io/pause:3.2 ]] || fail "the pause image is named $PAUSE_NAME, not kubelet v1.20.2's default k8s.gcr.io/pause:3.2"
[[ $TEST_NAME == kube-bundle.invalid/busybox:* ]] || fail "the test image is named $TEST_NAME"
pass "pause ($PAUSE_NAME $PAUSE_DIGEST, archive sha256 $(sha256sum "$T/pause-1.tar" | cut -c1-64)) and test image ($TEST_NAME $TEST_DIGEST, archive sha256 $(sha256sum "$T/busybox-1.tar" | cut -c1-64)) built twice to the same bytes"

# --------------------------------------------------------------- bad input ---
# expect_refusal WHAT PATTERN CMD...: CMD exits 2 with one error matching PATTERN and
# writes nothing at $T/refused.tar.
expect_refusal() {
    local what=$1 pattern=$2 rc=0 err
    shift 2
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    [[ $rc -eq 2 ]] || fail "$what: exit $rc, not 2 ($err)"
    [[ $(wc -l <<<"$err") -eq 1 && $err =~ $pattern ]] || fail "$what: said '$err'"
    [[ ! -e $T/refused.tar ]] || fail "$what: wrote $T/refused.tar"
    [[ -z $(find "$T" -maxdepth 1 -name '.oci-image.*') ]] || fail "$what: left a temporary folder in $T"
}
expect_refusal "build-pause.sh without OUT" 'usage: scripts/build-pause.sh OUT.tar' "$ROOT/scripts/build-pause.sh"
expect_refusal "build-test-image.sh with two args" 'usage: scripts/build-test-image.sh OUT.tar' \
    "$ROOT/scripts/build-test-image.sh" "$T/refused.tar" extra
# shellcheck disable=SC2016 # the backticks are the message's own
expect_refusal "a pause image name without a tag" 'image name `k8s.gcr.io/pause` is not a reference with a tag' \
    env PAUSE_IMAGE=k8s.gcr.io/pause "$ROOT/scripts/build-pause.sh" "$T/refused.tar"
expect_refusal "a test image name with a quote" 'is not a reference with a tag' \
    env TEST_IMAGE='x/y:1"' "$ROOT/scripts/build-test-image.sh" "$T/refused.tar"
expect_refusal "no Kubernetes source" 'no Kubernetes source tree with build/pause/linux/pause.c in /nonexistent; hint: ' \
    env KUBERNETES_SRC=/nonexistent "$ROOT/scripts/build-pause.sh" "$T/refused.tar"
# shellcheck disable=SC2016 # the backticks are the message's own
expect_refusal "a bad SOURCE_DATE_EPOCH" 'SOURCE_DATE_EPOCH `yesterday` is not a number of seconds' \
    env SOURCE_DATE_EPOCH=yesterday "$ROOT/scripts/build-test-image.sh" "$T/refused.tar"
pass "bad input (no OUT, an extra argument, a name without a tag or with a quote, no source tree, a bad SOURCE_DATE_EPOCH): exit 2, one error, nothing written"

# ------------------------------------------------------------------ layout ---
PAUSE_EPOCH=$(dpkg-parsechangelog -l "$tree/debian/changelog" -STimestamp)
TEST_EPOCH=$(gzip -dc /usr/share/doc/busybox-static/changelog.Debian.gz | dpkg-parsechangelog -l - -STimestamp)
# check_layout ARCHIVE NAME DIGEST EPOCH ENTRY...: ENTRY is a file the layer must hold
# (path:mode, mode in octal) or `+path` for any other entry it must have.
check_layout() {
    python3 - "$@" <<'PY' || fail "the layout of $1 is wrong (above)"
import gzip, hashlib, io, json, sys, tarfile

archive, name, digest, epoch, *want = sys.argv[1:]
epoch = int(epoch)
errors = []

def check_tar(label, tf):
    members = tf.getmembers()
    names = [m.name for m in members]
    if names != sorted(names):
        errors.append(f"{label}: entries not sorted: {names[:5]}...")
    for m in members:
        if (m.uid, m.gid, m.uname, m.gname) != (0, 0, "", ""):
            errors.append(f"{label}: {m.name} owned by {m.uid}:{m.gid} {m.uname!r}:{m.gname!r}")
        if m.mtime != epoch:
            errors.append(f"{label}: {m.name} has mtime {m.mtime}, not {epoch}")
        if m.name.startswith(("/", "./")) or ".." in m.name.split("/"):
            errors.append(f"{label}: entry name {m.name!r}")
    return {m.name: m for m in members}

outer = tarfile.open(archive)
entries = check_tar(archive, outer)
read = lambda n: outer.extractfile(entries[n]).read()
blobs = {n[len("blobs/sha256/"):]: read(n) for n, m in entries.items()
         if n.startswith("blobs/sha256/") and m.isfile()}
for d, b in blobs.items():
    if hashlib.sha256(b).hexdigest() != d:
        errors.append(f"blob {d} does not have that sha256")
if set(entries) != {"oci-layout", "index.json", "blobs", "blobs/sha256"} | {f"blobs/sha256/{d}" for d in blobs}:
    errors.append(f"unexpected entries: {sorted(entries)}")
if json.loads(read("oci-layout")) != {"imageLayoutVersion": "1.0.0"}:
    errors.append("oci-layout")
index = json.loads(read("index.json"))
[m] = index["manifests"]
if m["digest"] != digest or m["annotations"] != {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}:
    errors.append(f"index.json names {m}")
manifest_bytes = blobs[m["digest"][7:]]
if m["size"] != len(manifest_bytes):
    errors.append("index.json: manifest size")
manifest = json.loads(manifest_bytes)
config_bytes = blobs[manifest["config"]["digest"][7:]]
config = json.loads(config_bytes)
[layer] = manifest["layers"]
layer_bytes = blobs[layer["digest"][7:]]
if (manifest["config"]["size"], layer["size"]) != (len(config_bytes), len(layer_bytes)):
    errors.append("manifest: sizes")
if layer["mediaType"] != "application/vnd.oci.image.layer.v1.tar+gzip":
    errors.append(f"layer media type {layer['mediaType']}")
# gzip -n: no FNAME flag, MTIME 0
if layer_bytes[3] & 0x08 or layer_bytes[4:8] != b"\0\0\0\0":
    errors.append("the layer's gzip header has a name or a time")
raw = gzip.decompress(layer_bytes)
if config["rootfs"] != {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}:
    errors.append(f"config rootfs {config['rootfs']}")
if config["os"] != "linux" or config["architecture"] != m["platform"]["architecture"]:
    errors.append("config os/architecture")
files = check_tar("layer", tarfile.open(fileobj=io.BytesIO(raw)))
for w in want:
    if w.startswith("+"):
        if w[1:] not in files:
            errors.append(f"layer lacks {w[1:]}")
        continue
    path, mode = w.split(":")
    f = files.get(path)
    if f is None or not f.isfile() or f.mode != int(mode, 8):
        errors.append(f"layer: {path} is {f and (f.type, oct(f.mode))}, want a file with mode {mode}")
print(json.dumps(config["config"]))
for e in errors:
    print("  " + e, file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}
cfg=$(check_layout "$T/pause-1.tar" "$PAUSE_NAME" "$PAUSE_DIGEST" "$PAUSE_EPOCH" pause:0755)
[[ $cfg == '{"Entrypoint": ["/pause"]}' ]] || fail "the pause image's config is $cfg"
cfg=$(check_layout "$T/busybox-1.tar" "$TEST_NAME" "$TEST_DIGEST" "$TEST_EPOCH" bin/busybox:0755 \
    +bin/sh +usr/bin/nc +usr/sbin/httpd etc/passwd:0644 +tmp)
[[ $cfg == *'"Cmd": ["sh"]'* ]] || fail "the test image's config is $cfg"
pass "both archives: sorted entries, owner 0, mtimes the changelog dates ($PAUSE_EPOCH, $TEST_EPOCH), blobs named by their sha256, diff_id the layer's, gzip -n"

# -------------------------------------------------------------------- oras ---
oras() { HOME=$T/home DOCKER_CONFIG=$T/home/docker "$ORAS" "$@"; }
for image in "pause-1.tar $PAUSE_NAME $PAUSE_DIGEST" "busybox-1.tar $TEST_NAME $TEST_DIGEST"; do
    read -r archive name digest <<<"$image"
    got=$(oras resolve --oci-layout "$T/$archive:${name##*:}" 2>&1) || fail "oras resolve $archive:${name##*:}: $got"
    [[ $got == "$digest" ]] || fail "oras resolved $archive:${name##*:} to $got, not $digest"
    out=$(oras copy --from-oci-layout "$T/$archive:${name##*:}" --to-oci-layout "$T/copy-$archive:${name##*:}" 2>&1) ||
        fail "oras copy of $archive: $out"
done
# A layout whose layer is not the bytes its manifest names: oras must refuse to copy it.
mkdir "$T/bad" && tar -xf "$T/pause-1.tar" -C "$T/bad"
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"][7:])' "$T/bad/blobs/sha256/${PAUSE_DIGEST#sha256:}")
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-20]^=1; open(p,"wb").write(b)' "$T/bad/blobs/sha256/$layer"
if out=$(oras copy --from-oci-layout "$T/bad:3.2" --to-oci-layout "$T/copy-bad:3.2" 2>&1); then
    fail "oras copied a layout whose layer does not match its digest: $out"
fi
pass "oras resolves both archives by tag to their digests and copies them; it refuses a changed layer ($(tail -n1 <<<"$out" | cut -c1-100))"

# -------------------------------------------------------------- containerd ---
mkdir -p "$T/containerd" "$T/fifo"
cat >"$T/containerd/config.toml" <<EOF
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
# No CRI (no kubelet here): only the image store, snapshotter and runc.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/containerd.sock"
[ttrpc]
  address = "$T/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/containerd/opt"
EOF
containerd --config "$T/containerd/config.toml" >"$T/containerd.log" 2>&1 &
CTD_PID=$!
c() { ctr -a "$T/containerd.sock" -n k8s.io "$@"; }
for _ in $(seq 1 100); do
    c version >/dev/null 2>&1 && break
    kill -0 "$CTD_PID" 2>/dev/null || { tail -n 20 "$T/containerd.log" >&2; fail "containerd exited at start"; }
    sleep 0.2
done
c version >/dev/null 2>&1 || { tail -n 20 "$T/containerd.log" >&2; fail "containerd did not answer on $T/containerd.sock in 20 s"; }

for archive in pause-1.tar busybox-1.tar; do
    out=$(c images import "$T/$archive" 2>&1) || fail "ctr images import $archive: $out"
done
listing=$(c images ls)
for image in "$PAUSE_NAME $PAUSE_DIGEST" "$TEST_NAME $TEST_DIGEST"; do
    read -r name digest <<<"$image"
    awk -v n="$name" -v d="$digest" '$1 == n && $3 == d { found = 1 } END { exit !found }' <<<"$listing" ||
        fail "ctr images ls does not list $name at $digest:
$listing"
done
pass "a containerd of its own (under $T) imported both into k8s.io: ctr images ls lists $PAUSE_NAME and $TEST_NAME at their digests"

run() { c run --rm --fifo-dir "$T/fifo" --cgroup "/$CGROUP_PARENT/$2" "$@"; }
# shellcheck disable=SC2016 # expanded by the image's shell
out=$(run "$TEST_NAME" t-shell sh -c 'echo "sum $((6 * 7)) from $(cat /etc/passwd | head -n1 | cut -d: -f1)"' 2>&1) ||
    fail "ctr run of $TEST_NAME failed: $out"
[[ $out == "sum 42 from root" ]] || fail "the test image's shell said: $out"
out=$(run "$TEST_NAME" t-httpd sh -c 'mkdir /tmp/www && echo served-offline >/tmp/www/index.html &&
    printf "GET /index.html HTTP/1.0\r\n\r\n" | httpd -i -h /tmp/www' 2>&1) || fail "ctr run of busybox httpd failed: $out"
if ! grep -q '^HTTP/1\.[01] 200 OK' <<<"$out" || ! grep -q '^served-offline' <<<"$out"; then
    fail "busybox httpd in the test image answered: $out"
fi
out=$(run "$PAUSE_NAME" t-pause-v /pause -v 2>&1) || fail "ctr run $PAUSE_NAME /pause -v failed: $out"
[[ $out == "pause.c v3.4-debian-"* ]] || fail "pause -v said: $out"
run "$PAUSE_NAME" t-pause >"$T/pause.out" 2>&1 &
pause_ctr=$!
for _ in $(seq 1 50); do
    [[ $(c task ls 2>/dev/null | awk '$1 == "t-pause" { print $3 }') == RUNNING ]] && break
    sleep 0.2
done
[[ $(c task ls | awk '$1 == "t-pause" { print $3 }') == RUNNING ]] || fail "the pause container is not running: $(cat "$T/pause.out")"
c task kill -s SIGTERM t-pause
rc=0
wait "$pause_ctr" || rc=$?
[[ $rc -eq 0 ]] || fail "the pause container ended with status $rc on SIGTERM: $(cat "$T/pause.out")"
grep -q 'Shutting down, got signal' "$T/pause.out" || fail "pause said: $(cat "$T/pause.out")"
pass "runc ran the test image (a shell; busybox httpd served a page) and the pause image (pause -v: $out; SIGTERM ended it with status 0)"
