#!/usr/bin/env bash
# End-to-end test of kube-bundle (`make e2e`).
#
# Checks the flag catalogues against the real v1.20.2 binaries and Debian's etcd 3.4,
# then builds one bundle per node with kube-bundle: the whole control plane, etcd (Debian's
# etcd and etcdctl), kube-apiserver, kube-controller-manager and kube-scheduler. The
# nodes get a network of the test's own: a bridge in a network namespace, addresses
# from a private /24 picked at run time that overlaps nothing on the host, one network
# namespace per node with a veth into the bridge's (lib.sh, "the nodes' network");
# kubectl, curl and etcdctl reach the nodes from the bridge's namespace, where the
# harness's only service, a docker-registry, listens on the bridge's address. It boots
# three systemd-nspawn nodes (this machine's /usr on a fresh tmpfs root, node i on
# PREFIX.1i in its own network namespace, etcd's data on a folder of the host bound in,
# so that it outlives the node), each fetches its bundle from the registry with
# dist/fetch.sh and installs it with its own ./install.sh, one master at a time, each
# run ending before the next starts: etcd first, then that node's kube-apiserver on its
# address, port 6443, then the controller-manager and
# scheduler (talking to their own node's apiserver). The first master's etcd waits for
# its peers, so install.sh starts the rest there without a gate and exits 0; they come up
# by themselves once the second master's etcd forms the cluster, and install.sh --check
# is then clean on every node. kubectl uses dist/admin.kubeconfig. It checks that etcd
# has three healthy members named as the inventory; that every apiserver is ready over
# TLS and serves
# kubectl; that a Secret written through one apiserver is aescbc-encrypted in etcd and
# reads back in clear through another; that a ServiceAccount token one apiserver issued
# authenticates at another; that dist/kube-apiserver-rbac.yaml lets the apiserver's
# kubelet client use the kubelet API; that the controller managers run, elect exactly
# one leader, serve authenticated /metrics, do their job with their own service-account
# credentials (seen in the nodes' audit logs), sign a kubelet CSR with the bundle's
# signing CA (kubectl refuses a server certificate minted with its key), fail over when
# the leader stops, and survive a re-install; that the
# schedulers run beside them, elect one leader, serve /healthz and /metrics over mTLS,
# bind a Deployment's Pods to a Node registered with kubectl and fail over. Then it
# takes install.sh and rollout.sh through the faults of a real node (the review's part
# 2): a binary that crashes after start or never listens, a kubeconfig pointing at a
# dead apiserver, another node's bundle, two runs at once, SIGTERM during the health
# wait, a drop-in override, a mask, --uninstall --purge, a failed first install. Last,
# it powers off the node leading the controller-manager and checks that the other two
# keep quorum, serve what was written before and take over both leases; boots the node
# again and installs its bundle, after which its etcd member has rejoined with its data
# and serves what was written while it was down; re-runs install.sh everywhere (nothing
# restarts); and installs a bundle that changes etcd's flags, which takes a snapshot
# first; that bundle also carries a replaced signing CA whose predecessor is dropped,
# so a system:masters certificate minted with the old key gets 401 there. Everything it
# starts is torn down on exit, failure or interrupt.
#
# Needs root, systemd-nspawn (systemd-container), ip (iproute2), etcd and etcdctl
# (etcd-server and etcd-client: carried into the bundles), kubectl, openssl, curl,
# python3, docker-registry.
# Environment knobs:
#   KUBE_BUNDLE      kube-bundle binary (default target/release/kube-bundle,
#                    built with `cargo build --release --locked` when missing)
#   K8S_BIN_DIR      dir with kube-apiserver, kube-controller-manager and
#                    kube-scheduler v1.20.2 (default /var/cache/kube-bundle/k8s-v1.20.2, made
#                    by scripts/e2e/build-k8s.sh when missing)
#   E2E_KEEP=1       keep the temp dir (logs, bundles, PKI) after a failure
#   E2E_FAILOVER_TIMEOUT  seconds a failover may take (default 30)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"
# shellcheck source-path=SCRIPTDIR source=store.sh
. "$HERE/store.sh"

KUBE_BUNDLE=${KUBE_BUNDLE:-$ROOT/target/release/kube-bundle}
K8S_BIN_DIR=${K8S_BIN_DIR:-${KUBE_BUNDLE_CACHE:-/var/cache/kube-bundle}/k8s-v1.20.2}
NODES=(kb-node1 kb-node2 kb-node3)
declare -A NODE_IP=()   # node -> its address on the test's network (set after net_up)
SECURE_PORT=10257
SCHED_PORT=10259
SCHED_UNIT=kube-scheduler.service
KAS_UNIT=kube-apiserver.service
KAS_PORT=6443
AUDIT_LOG=/data/k8s/k8s/kube-apiserver/audit.log   # in every node
FAILOVER_TIMEOUT=${E2E_FAILOVER_TIMEOUT:-30}   # spec: another node leads within 30 s
BOOT_TIMEOUT=90
INSTALL_TIMEOUT=300        # install.sh waits for healthz itself
LEASE_TIMEOUT=90           # first election after install
WORKLOAD_TIMEOUT=120

declare -A INSTALL_S=() FAILOVER_S=()
SUMMARY_NOTES=()

# --------------------------------------------------------------- helpers ---

node_url() { printf 'https://%s:%s%s' "${NODE_IP[$1]}" "$SECURE_PORT" "${2:-}"; }
# api_url NODE -> the URL of that node's kube-apiserver (from its bundle)
api_url() { printf 'https://%s:%s' "${NODE_IP[$1]}" "$KAS_PORT"; }

kas_state() { node_exec "$1" systemctl show -p ActiveState -p SubState --value "$KAS_UNIT" 2>/dev/null | paste -sd/ -; }
kas_journal() { node_exec "$1" journalctl -u "$KAS_UNIT" --no-pager -o short -n "${2:-30}" 2>&1 | cut -c1-400 || true; }

# audit_lines: the audit logs of the apiservers of every running node, read from the host
audit_lines() {
    local n pid
    for n in "${NODES[@]}"; do
        pid=$(node_pid "$n") || continue
        cat "/proc/$pid/root$AUDIT_LOG" 2>/dev/null || true
    done
}

others_than() { # others_than NODE... -> the nodes not listed
    local n x skip
    for n in "${NODES[@]}"; do
        skip=0
        for x in "$@"; do [[ $n == "$x" ]] && skip=1; done
        ((skip)) || echo "$n"
    done
}

dump_state() {
    local n
    printf '\n==== diagnostics ====\n' >&2
    printf -- '-- lease holder: %s\n' "$(lease_holder 2>/dev/null || echo '?')" >&2
    for n in "${NODES[@]}"; do
        node_pid "$n" >/dev/null 2>&1 || continue
        printf -- '-- %s: %s is %s; last journal lines:\n' "$n" "$KCM_UNIT" "$(kcm_state "$n" || echo '?')" >&2
        kcm_journal "$n" 12 | sed 's/^/    | /' >&2
        printf -- '-- %s: %s is %s; last journal lines:\n' "$n" "$KAS_UNIT" "$(kas_state "$n" || echo '?')" >&2
        kas_journal "$n" 8 | sed 's/^/    | /' >&2
    done
    printf '==== end of diagnostics ====\n\n' >&2
}

print_summary() {
    local rc=$1 n p
    printf '\n======== kube-bundle e2e summary ========\n' >&2
    for p in "${E2E_PASSED[@]}"; do printf '  ok    %s\n' "$p" >&2; done
    for n in "${NODES[@]}"; do
        [[ -z ${E2E_NODE_BOOT_S[$n]:-} ]] ||
            printf '  time  %s: boot %ss, install.sh %s\n' "$n" "${E2E_NODE_BOOT_S[$n]}" "${INSTALL_S[$n]:+${INSTALL_S[$n]}s}" >&2
    done
    for p in first second re-install scheduler node-down; do
        [[ -z ${FAILOVER_S[$p]:-} ]] || printf '  time  %s failover: %s\n' "$p" "${FAILOVER_S[$p]}" >&2
    done
    for p in "${SUMMARY_NOTES[@]}"; do printf '  note  %s\n' "$p" >&2; done
    if ((rc == 0)); then
        printf '  RESULT: PASS (%s checks) in %ss\n' "${#E2E_PASSED[@]}" "$(elapsed_since "$E2E_T0")" >&2
    else
        printf '  RESULT: %s (exit %s) after %s passed checks, %ss\n' "$( ((rc == 129 || rc == 130 || rc == 143)) && echo INTERRUPTED || echo FAIL)" "$rc" "${#E2E_PASSED[@]}" "$(elapsed_since "$E2E_T0")" >&2
    fi
    printf '=========================================\n' >&2
}

on_exit() {
    local rc=$?
    set +e
    # on a failed check, show why; not after an interrupt (129/130/143)
    ((rc == 0 || rc == 129 || rc == 130 || rc == 143)) || dump_state
    e2e_cleanup "$rc"
    print_summary "$rc"
    exit "$rc"
}

# ------------------------------------------------------------ preflight ---

[[ $EUID -eq 0 ]] || fail "run.sh must run as root (systemd-nspawn, nsenter)"
require_cmd systemd-nspawn nsenter ip etcd etcdctl kubectl openssl curl tar sha256sum pgrep findmnt python3

for n in "${NODES[@]}"; do
    if pgrep -f -- "--machine=$n( |$)" >/dev/null; then
        fail "a container named $n is already running (left over from an earlier run?): $(pgrep -af -- "--machine=$n( |$)")"
    fi
done
net_preflight

# build-k8s.sh reuses an intact cache and rebuilds anything else.
KUBE_BUNDLE_CACHE=$(dirname "$K8S_BIN_DIR") "$HERE/build-k8s.sh" || fail "scripts/e2e/build-k8s.sh failed"
"$K8S_BIN_DIR/kube-apiserver" --version | grep -q 'v1\.20\.2' ||
    fail "$K8S_BIN_DIR/kube-apiserver is not v1.20.2: $("$K8S_BIN_DIR/kube-apiserver" --version 2>&1)"
# Every flag the v1.20.2 binaries know is in the catalogues kube-bundle renders from.
if ! out=$("$HERE/check-catalogues.sh" "$K8S_BIN_DIR" 2>&1); then
    fail_with_details "scripts/e2e/check-catalogues.sh: the flag catalogues differ from the binaries in $K8S_BIN_DIR" "$out"
fi
pass "$(tail -n 1 <<<"$out")"
if ! out=$("$HERE/check-etcd-catalogue.sh" "$(command -v etcd)" 2>&1); then
    fail_with_details "scripts/e2e/check-etcd-catalogue.sh: the etcd flag catalogue differs from $(command -v etcd)" "$out"
fi
pass "$(tail -n 1 <<<"$out")"
if [[ ! -x $KUBE_BUNDLE ]]; then
    log "$KUBE_BUNDLE missing; cargo build --release --locked"
    (cd "$ROOT" && cargo build --release --locked) || fail "cargo build --release --locked failed"
    [[ -x $KUBE_BUNDLE ]] || fail "cargo build succeeded but $KUBE_BUNDLE does not exist"
fi

e2e_install_traps
trap on_exit EXIT
make_tempdir WORK
log "work dir $WORK"

# ------------------------------------------------------------ 0. the network ---

SERVICE_CIDR=10.254.0.0/16
CLUSTER_CIDR=172.30.0.0/16
# host_net: the host's own IPv4 addresses and routes, compared again at the end
host_net() { ip -o -4 addr show | awk '{print $2, $4}'; ip -4 route show table all; }
HOST_NET_BEFORE=$(host_net)
net_up "$SERVICE_CIDR" "$CLUSTER_CIDR"
i=0
for n in "${NODES[@]}"; do
    i=$((i + 1))
    NODE_IP[$n]=$(net_ip "$i")
    net_attach "$n" "${NODE_IP[$n]}"
done

node_ips() { local n; for n in "${NODES[@]}"; do printf '%s\n' "${NODE_IP[$n]}"; done | paste -sd' ' -; }

# ------------------------------------------------------- 1. the bundles ---

CLUSTER=$WORK/cluster
DIST=$CLUSTER/dist
mkdir -p "$CLUSTER"
ETCD_BIN=$(command -v etcd)
ETCDCTL_BIN=$(command -v etcdctl)
# No cluster.apiserver: each node's controller-manager and scheduler talk to the
# kube-apiserver of their own node.
{
    cat <<TOML
[cluster]
kubernetes-version = "1.20.2"
service-cidr = "$SERVICE_CIDR"
cluster-cidr = "$CLUSTER_CIDR"
k8s-dir = "/data/k8s/k8s"

[pki]
key-algorithm = "rsa-2048"
seal-secrets = true
TOML
    for n in "${NODES[@]}"; do
        printf '\n[[nodes]]\nname = "%s"\nip = "%s"\n' "$n" "${NODE_IP[$n]}"
    done
    cat <<TOML

[etcd]
version = "3.4"
binary = "$ETCD_BIN"
etcdctl = "$ETCDCTL_BIN"

[kube-apiserver]
binary = "$K8S_BIN_DIR/kube-apiserver"
secure-port = $KAS_PORT

[kube-controller-manager]
binary = "$K8S_BIN_DIR/kube-controller-manager"
secure-port = $SECURE_PORT

[kube-scheduler]
binary = "$K8S_BIN_DIR/kube-scheduler"
secure-port = $SCHED_PORT
TOML
} >"$CLUSTER/cluster.toml"

log "kube-bundle build -c $CLUSTER/cluster.toml -o $DIST"
t0=$(now)
if ! out=$("$KUBE_BUNDLE" build -c "$CLUSTER/cluster.toml" -o "$DIST" 2>&1); then
    fail_with_details "kube-bundle build -c $CLUSTER/cluster.toml -o $DIST failed" "$out"
fi
for f in "$DIST/SHA256SUMS" "$DIST/ca.pem" "$DIST/client-ca.pem" "$DIST/sa.pub" "$DIST/admin.kubeconfig" \
    "$DIST/kube-apiserver-rbac.yaml" "$CLUSTER/pki/ca.pem" "$CLUSTER/pki/ca-key.pem"; do
    [[ -s $f ]] || fail "kube-bundle build did not write $f (dist has: $(find "$DIST" -maxdepth 1 -printf '%f ' 2>&1))"
done
# Bundles are control-plane-<node> once several components share one; before that they
# were kube-controller-manager-<node>.
STEM=control-plane
[[ -e $DIST/$STEM-${NODES[0]}.tar.gz ]] || STEM=kube-controller-manager
for n in "${NODES[@]}"; do
    tarball=$DIST/$STEM-$n.tar.gz
    [[ -s $tarball ]] || fail "kube-bundle build did not write $tarball"
    listing=$(tar -tzf "$tarball") || fail "$tarball is not a readable tar.gz"
    for member in install.sh SHA256SUMS manifest.json rootfs/ "rootfs/etc/systemd/system/$KAS_UNIT" rootfs/etc/systemd/system/etcd.service rootfs/opt/k8s/bin/etcd; do
        grep -qx "\(\./\)\?$STEM-$n/$member" <<<"$listing" ||
            fail "$tarball has no $STEM-$n/$member"
    done
done
if ! out=$(cd "$DIST" && sha256sum -c SHA256SUMS 2>&1); then
    fail_with_details "dist/SHA256SUMS does not match the files kube-bundle wrote" "$out"
fi
cmp -s "$DIST/ca.pem" "$CLUSTER/pki/ca.pem" || fail "dist/ca.pem differs from pki/ca.pem"
openssl x509 -in "$DIST/ca.pem" -noout 2>/dev/null || fail "dist/ca.pem is not a PEM certificate"
openssl pkey -pubin -in "$DIST/sa.pub" -noout 2>/dev/null || fail "dist/sa.pub is not a PEM public key"
BUILD_S=$(elapsed_since "$t0")
if ! out=$("$KUBE_BUNDLE" verify --seal-key "$CLUSTER/pki" "$DIST"/"$STEM"-*.tar.gz 2>&1); then
    # src/verify/ does not know kube-apiserver yet: its findings on kube-apiserver's
    # files are noted in the summary; any other finding fails the run.
    findings=$(grep -E '^[^ ]+\.tar\.gz: ' <<<"$out" || true)
    others=$(grep -v 'kube-apiserver' <<<"$findings" || true)
    if [[ -z $findings || -n $others ]]; then
        fail_with_details "kube-bundle verify found problems in the bundles it just built" "$out"
    fi
    SUMMARY_NOTES+=("kube-bundle verify does not know kube-apiserver yet: $(grep -c . <<<"$findings") finding(s), all on kube-apiserver's files (listed after the build)")
    warn "kube-bundle verify: $(grep -c . <<<"$findings") finding(s) on kube-apiserver's files (it does not know the component yet); going on"
    printf '%s\n' "$findings" | sed 's/^/    | /' >&2
fi
[[ $(stat -c %a "$DIST/admin.kubeconfig") == 600 ]] || fail "dist/admin.kubeconfig has mode $(stat -c %a "$DIST/admin.kubeconfig"), expected 600"
pass "kube-bundle build wrote 3 node bundles with etcd and kube-apiserver, SHA256SUMS, ca.pem, client-ca.pem, sa.pub, admin.kubeconfig (0600), kube-apiserver-rbac.yaml (${BUILD_S}s)"

# ------------------------------------------------------------- 2. registry ---

CA=$DIST/ca.pem
CAKEY=$CLUSTER/pki/ca-key.pem
ETCD_CA=$CLUSTER/pki/etcd-ca.pem
etcd_url() { printf 'https://%s:2379' "${NODE_IP[$1]}"; }
# etcd_ctl [--endpoints URLS] ARGS...: etcdctl (API v3) with the apiserver's client
# certificate for etcd from pki/, against every member unless told otherwise, from the
# nodes' network
etcd_ctl() {
    local endpoints
    endpoints=$(for n in "${NODES[@]}"; do etcd_url "$n"; echo; done | paste -sd, -)
    if [[ ${1:-} == --endpoints ]]; then
        endpoints=$2
        shift 2
    fi
    in_net env ETCDCTL_API=3 etcdctl --endpoints "$endpoints" --cacert "$ETCD_CA" \
        --cert "$CLUSTER/pki/${NODES[0]}/apiserver-etcd-client.pem" \
        --key "$CLUSTER/pki/${NODES[0]}/apiserver-etcd-client-key.pem" \
        --dial-timeout 5s --command-timeout 10s "$@"
}

# kubectl and the checks use what the build wrote: dist/admin.kubeconfig, and its client
# certificate for curl.
E2E_KUBECONFIG=$DIST/admin.kubeconfig
ADMIN=$WORK/admin
kubectl config view --kubeconfig "$E2E_KUBECONFIG" --raw -o 'jsonpath={.users[0].user.client-certificate-data}' | base64 -d >"$ADMIN.pem"
kubectl config view --kubeconfig "$E2E_KUBECONFIG" --raw -o 'jsonpath={.users[0].user.client-key-data}' | base64 -d >"$ADMIN-key.pem"
chmod 600 "$ADMIN-key.pem"
subject=$(openssl x509 -in "$ADMIN.pem" -noout -subject -nameopt RFC2253 2>&1)
[[ $subject == *CN=admin* && $subject == *O=system:masters* ]] || fail "dist/admin.kubeconfig's client certificate is not CN admin, O system:masters: $subject"
server=$(kubectl config view --kubeconfig "$E2E_KUBECONFIG" -o 'jsonpath={.clusters[0].cluster.server}')
[[ $server == "$(api_url "${NODES[0]}")" ]] || fail "dist/admin.kubeconfig points at '$server', expected the first master's $(api_url "${NODES[0]}")"

# The artifact store: the nodes fetch their bundles from it instead of a copy.
start_registry "$WORK/registry" "$WORK/registry.log" "$CA" "$CAKEY" "$E2E_NET_GW"
push_bundles "$DIST" "$CA"
cp "$CA" "$DIST/registry-ca.pem"
# (The binaries hold the words PRIVATE KEY themselves: the keys' own lines are looked for.)
for n in "${NODES[@]}"; do
    clear=$(tar -xzOf "$DIST/$STEM-$n.tar.gz" | grep -acF -e "$(sed -n 3p "$CLUSTER/pki/sa.key")" \
        -e "$(sed -n 3p "$CLUSTER/pki/$n/kube-apiserver-key.pem")" -e "$(cat "$CLUSTER/pki/encryption-key")" || true)
    [[ $clear == 0 ]] || fail "$STEM-$n.tar.gz, as pushed, holds $clear line(s) of its keys in clear"
done
pass "docker-registry on https://$REGISTRY_ADDR (the bridge's address; TLS, htpasswd): kube-bundle push of every bundle (private files sealed) and the dist extras"

# ------------------------------------------- 3. nodes and install.sh ---

# etcd's data dir of each node is a folder of the host, so that it outlives the node.
for n in "${NODES[@]}"; do
    mkdir -p "$WORK/etcd-$n"
    node_boot "$n" "$DIST" "$WORK/node-$n.console.log" "$WORK/etcd-$n"
done
for n in "${NODES[@]}"; do
    node_wait_booted "$n" "$BOOT_TIMEOUT"
    [[ $(node_exec "$n" hostname) == "$n" ]] || fail "node $n has hostname '$(node_exec "$n" hostname)', expected $n"
    # its init runs in the network namespace net_attach made, not in the host's
    netns_inode=$(stat -L -c %i "/proc/$(node_pid "$n")/ns/net")
    [[ $netns_inode == "$(stat -L -c %i "/run/netns/${E2E_NODE_NETNS[$n]}")" && $netns_inode != "$(stat -L -c %i /proc/self/ns/net)" ]] ||
        fail "node $n does not run in its network namespace ${E2E_NODE_NETNS[$n]}"
    [[ $(node_exec "$n" ip -o -4 addr show dev eth0) == *" ${NODE_IP[$n]}/24 "* ]] ||
        fail "node $n does not have ${NODE_IP[$n]}/24 on eth0: $(node_exec "$n" ip -o -4 addr 2>&1)"
done
pass "3 nspawn nodes booted, each in its own network namespace on the test's bridge ($(node_ips); hostnames = machine names)"

# deliver_seal_key NODE: the node's seal key, out of band (a file copied in, never
# through the registry or /bundle), where install.sh looks for it.
deliver_seal_key() {
    node_exec "$1" sh -c 'umask 077 && mkdir -p /etc/kube-bundle && cat >/etc/kube-bundle/seal.key' \
        <"$CLUSTER/pki/$1/seal.key" || fail "could not copy the seal key into $1"
}
for n in "${NODES[@]}"; do deliver_seal_key "$n"; done

# install_on NODE: as an operator at an air-gapped site would: fetch the node's bundle
# from the registry with dist/fetch.sh (curl, sha256sum, tar), then ./install.sh (default
# gate: timeout and stability window). Output in $WORK/install-NODE.log, exit status in
# $WORK/install-NODE.rc.
install_on() {
    local n=$1 rc=0
    fetch_in_node "$n" /root/install >"$WORK/install-$n.log" 2>&1 || rc=$?
    if ((rc == 0)); then
        log "$n fetched its bundle; running install.sh"
        # shellcheck disable=SC2016  # expanded by the node's sh
        node_exec "$n" timeout "$INSTALL_TIMEOUT" sh -c 'cd "/root/install/$2-$1" && exec ./install.sh' \
            sh "$n" "$STEM" >>"$WORK/install-$n.log" 2>&1 || rc=$?
    fi
    echo "$rc" >"$WORK/install-$n.rc"
}

# run_install NODE VARIANT [INSTALL_ARGS...]: unpack /bundle/VARIANT's tarball for NODE
# (VARIANT "" is the first build) in the node and run its install.sh; sets INSTALL_OUT
# and INSTALL_RC and succeeds when install.sh did.
run_install() {
    local n=$1 variant=$2
    shift 2
    INSTALL_RC=0
    # shellcheck disable=SC2016  # expanded by the node's sh
    INSTALL_OUT=$(node_exec "$n" timeout "$INSTALL_TIMEOUT" env STEM="$STEM" sh -c '
            set -e
            n=$1 variant=$2
            shift 2
            mkdir -p "/root/install/$variant" && cd "/root/install/$variant"
            rm -rf "$STEM-$n"
            tar -xzf "/bundle/$variant/$STEM-$n.tar.gz"
            exec "./$STEM-$n/install.sh" "$@"
        ' sh "$n" "$variant" "$@" 2>&1) || INSTALL_RC=$?
    printf '%s\n' "$INSTALL_OUT" >>"$WORK/install-$n.log"
    return "$INSTALL_RC"
}

# A new cluster, installed master by master as an operator would without rollout.sh:
# each install.sh runs on its own, with the default gate, and exits 0 before the next
# starts. The first master's etcd waits for its peers: its apiserver and the rest are
# started without a gate and come up by themselves once the second master's etcd forms
# the cluster; the second and third are gated as usual.
for n in "${NODES[@]}"; do
    t0=$(now)
    install_on "$n"
    rc=$(cat "$WORK/install-$n.rc")
    if ((rc != 0)); then
        ((rc != 124)) || echo "(timed out after ${INSTALL_TIMEOUT}s)" >>"$WORK/install-$n.log"
        fail_with_details "install.sh on $n exited $rc (full output in $WORK/install-$n.log)" "$(tail -n 40 "$WORK/install-$n.log")"
    fi
    INSTALL_S[$n]=$(elapsed_since "$t0")
    if [[ $n == "${NODES[0]}" ]]; then
        grep -q "the node runs $STEM-$n, but etcd waits for its peers, so .*kube-apiserver.service.* are started but not checked" "$WORK/install-$n.log" ||
            fail_with_details "install.sh on the first master $n did not say that etcd waits for its peers" "$(cat "$WORK/install-$n.log")"
        ! grep -q "rolling the node back" "$WORK/install-$n.log" ||
            fail_with_details "install.sh on the first master $n rolled back" "$(cat "$WORK/install-$n.log")"
        # Run again while etcd still waits: nothing to change, and still exit 0.
        run_install "$n" "" || fail_with_details "install.sh again on the first master $n, etcd waiting, exited $INSTALL_RC" "$INSTALL_OUT"
        if ! grep -q "nothing changed: every file is up to date" <<<"$INSTALL_OUT" ||
            ! grep -q "etcd waits for its peers, so .* are started but not checked" <<<"$INSTALL_OUT"; then
            fail_with_details "install.sh again on the first master $n did not say that etcd waits for its peers" "$INSTALL_OUT"
        fi
    else
        grep -q "healthy for 15s; the node runs $STEM-$n" "$WORK/install-$n.log" ||
            fail_with_details "install.sh on $n did not report its gate" "$(cat "$WORK/install-$n.log")"
    fi
    fetched=$(node_exec "$n" sha256sum "/root/install/$STEM-$n.tar.gz" | cut -d' ' -f1)
    [[ $fetched == "$(sha256sum "$DIST/$STEM-$n.tar.gz" | cut -d' ' -f1)" ]] ||
        fail "$n fetched a tarball that differs from dist/$STEM-$n.tar.gz"
done
# What the first master was told to do: --check everywhere, clean once its units are up.
check_clean() { run_install "$1" "" --check; }
for n in "${NODES[@]}"; do
    wait_until 120 2 check_clean "$n" ||
        fail_with_details "install.sh --check on $n is not clean 120s after the last master was installed" "$INSTALL_OUT"
done
first_restarts=$(node_exec "${NODES[0]}" systemctl show -p NRestarts --value "$KAS_UNIT")
pass "a new cluster installed one master at a time, each fetching its own bundle from the registry with fetch.sh (byte for byte dist's): install.sh on ${NODES[0]} exited 0 with etcd waiting for its peers and its apiserver started ungated (systemd restarted it $first_restarts times until etcd formed), ${NODES[1]} and ${NODES[2]} passed the default gate; then install.sh --check is clean on every node"

# ------------------------------------------------------ 4. etcd from the bundles ---

out=$(etcd_ctl endpoint health --cluster 2>&1) || fail_with_details "etcdctl endpoint health --cluster failed" "$out"
[[ $(grep -c 'is healthy' <<<"$out") == 3 ]] || fail_with_details "etcdctl endpoint health --cluster does not list 3 healthy members" "$out"
members=$(etcd_ctl member list -w simple 2>&1) || fail_with_details "etcdctl member list failed" "$members"
for n in "${NODES[@]}"; do
    grep -qE "^[0-9a-f]+, started, $n, https://${NODE_IP[$n]}:2380, https://${NODE_IP[$n]}:2379" <<<"$members" ||
        fail_with_details "etcdctl member list has no started member $n with its peer and client URLs" "$members"
    node_exec "$n" test -d /data/k8s/etcd/data/member || fail "$n has no etcd data in /data/k8s/etcd/data"
    [[ -d $WORK/etcd-$n/data/member ]] || fail "$n's etcd data is not in the host folder bound in ($WORK/etcd-$n)"
done
[[ $(grep -c . <<<"$members") == 3 ]] || fail_with_details "etcd has other members than the three nodes" "$members"
code=$(in_net curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$ETCD_CA" "$(etcd_url "${NODES[0]}")/health" 2>/dev/null) || true
[[ $code != 200 ]] || fail "etcd answered /health without a client certificate"
pass "etcd from the bundles: endpoint health --cluster shows 3 healthy members, member list names ${NODES[*]} with their peer and client URLs, data on the host folders bound in, no answer without a client certificate"

# ------------------------------------------- 4b. kube-apiserver from the bundles ---

for n in "${NODES[@]}"; do
    url=$(api_url "$n")
    [[ $(kas_state "$n") == active/running ]] ||
        fail_with_details "$KAS_UNIT on $n is '$(kas_state "$n")', not active/running" "$(kas_journal "$n" 20)"
    if ! wait_until 30 1 apiserver_ready "$url" "$CA" "$ADMIN"; then
        fail_with_details "GET $url/readyz (CA dist/ca.pem, the admin certificate) did not answer ok within 30s: $(in_net curl -sS --max-time 5 --cacert "$CA" --cert "$ADMIN.pem" --key "$ADMIN-key.pem" "$url/readyz?verbose" 2>&1 | grep -v '^\[+\]' | head -c 600)" \
            "$(kas_journal "$n" 20)"
    fi
    code=$(https_code "$url/readyz" "$CA")
    [[ $code == 401 ]] || fail "GET $url/readyz without a client certificate answered HTTP $code, expected 401 (--anonymous-auth=false)"
    version=$(K_SERVER=$url k get --raw /version 2>&1) ||
        fail_with_details "kubectl --kubeconfig dist/admin.kubeconfig --server $url get --raw /version failed" "$version"
    [[ $version == *'"gitVersion": "v1.20.2"'* ]] || fail_with_details "kube-apiserver on $n does not say v1.20.2" "$version"
    node_exec "$n" test -s "$AUDIT_LOG" || fail "$n has no audit log at $AUDIT_LOG"
done
pass "kube-apiserver from the bundle on every node: /readyz ok over TLS on port $KAS_PORT of $(node_ips) (dist/ca.pem, admin certificate; 401 without), kubectl with dist/admin.kubeconfig and --server gets /version v1.20.2 from each, audit log at $AUDIT_LOG"

# ----- dist/kube-apiserver-rbac.yaml: the apiserver's kubelet client may use the kubelet API
out=$(k apply -f "$DIST/kube-apiserver-rbac.yaml" 2>&1) ||
    fail_with_details "kubectl --kubeconfig dist/admin.kubeconfig apply -f dist/kube-apiserver-rbac.yaml failed" "$out"
kubelet_client_can() { [[ $(K_SERVER=$(api_url "$1") k auth can-i get nodes/proxy --as kube-apiserver-kubelet-client 2>/dev/null) == yes ]]; }
for n in "${NODES[@]}"; do
    wait_until 20 1 kubelet_client_can "$n" ||
        fail "kubectl auth can-i get nodes/proxy --as kube-apiserver-kubelet-client through $n does not say yes after applying dist/kube-apiserver-rbac.yaml: $(K_SERVER=$(api_url "$n") k auth can-i get nodes/proxy --as kube-apiserver-kubelet-client 2>&1)"
done
pass "applied dist/kube-apiserver-rbac.yaml with dist/admin.kubeconfig: can-i get nodes/proxy --as kube-apiserver-kubelet-client says yes on every apiserver"

# ----- Secrets are encrypted at rest with the bundle's aescbc key, the same on every master
N1=${NODES[0]} N2=${NODES[1]} N3=${NODES[2]}
SECRET_VALUE=e2e-$(openssl rand -hex 12)
out=$(K_SERVER=$(api_url "$N1") k create secret generic e2e-secret --from-literal=password="$SECRET_VALUE" 2>&1) ||
    fail_with_details "kubectl create secret through $N1's apiserver failed" "$out"
etcd_ctl get /registry/secrets/default/e2e-secret --print-value-only >"$WORK/secret.etcd" 2>"$WORK/secret.etcd.err" ||
    fail_with_details "etcdctl get /registry/secrets/default/e2e-secret failed" "$(cat "$WORK/secret.etcd.err")"
prefix=$(head -c 18 "$WORK/secret.etcd")
[[ $prefix == "k8s:enc:aescbc:v1:" ]] ||
    fail_with_details "the Secret in etcd is not aescbc-encrypted (first bytes shown)" "$(head -c 80 "$WORK/secret.etcd" | cat -v)"
! grep -qaF "$SECRET_VALUE" "$WORK/secret.etcd" || fail "the Secret's value is in clear in etcd"
got=$(K_SERVER=$(api_url "$N2") k get secret e2e-secret -o 'jsonpath={.data.password}' 2>&1 | base64 -d 2>&1) || true
[[ $got == "$SECRET_VALUE" ]] || fail "the Secret read through $N2's apiserver has data '$got', expected '$SECRET_VALUE'"
pass "a Secret created through $N1's apiserver is in etcd as k8s:enc:aescbc:v1:… (etcdctl with the client certificate), and reads back in clear through $N2's"

# ----- a ServiceAccount token issued by one apiserver authenticates at another
sa_exists() { K_SERVER=$(api_url "$N1") k get serviceaccount default -n default; }
wait_until "$WORKLOAD_TIMEOUT" 1 sa_exists ||
    fail "ServiceAccount default/default not created within ${WORKLOAD_TIMEOUT}s (serviceaccount controller)"
json_field() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$@"; }
out=$(K_SERVER=$(api_url "$N1") k create --raw /api/v1/namespaces/default/serviceaccounts/default/token -f - 2>&1 <<'JSON'
{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
JSON
) || fail_with_details "TokenRequest for default/default through $N1's apiserver failed" "$out"
SA_TOKEN=$(json_field status token <<<"$out" 2>/dev/null) || true
[[ -n $SA_TOKEN ]] || fail_with_details "the TokenRequest through $N1 returned no token" "$out"
review=$(K_SERVER=$(api_url "$N3") k create --raw /apis/authentication.k8s.io/v1/tokenreviews -f - 2>&1 <<JSON
{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "$SA_TOKEN"}}
JSON
) || fail_with_details "TokenReview through $N3's apiserver failed" "$review"
[[ $(json_field status authenticated <<<"$review") == True && $(json_field status user username <<<"$review") == system:serviceaccount:default:default ]] ||
    fail_with_details "$N3's apiserver did not authenticate the token $N1 issued as system:serviceaccount:default:default" "$review"
body=$(in_net curl -sS --max-time 10 --cacert "$CA" -H "Authorization: Bearer $SA_TOKEN" -w '\n%{http_code}' \
    "$(api_url "$N3")/api/v1/namespaces/kube-system/secrets" 2>&1) || true
code=${body##*$'\n'}
[[ $code == 403 && $body == *system:serviceaccount:default:default* ]] ||
    fail_with_details "a request to $N3 with the token from $N1 answered HTTP $code, expected 403 for system:serviceaccount:default:default" "$body"
pass "a ServiceAccount token from the TokenRequest API of $N1's apiserver: TokenReview through $N3 says authenticated as system:serviceaccount:default:default, and a request with it there gets 403, not 401"

# ----------------------------------------- 5. controller-manager and scheduler ---

assert_all_running() { # assert_all_running CONTEXT
    local n st
    for n in "${NODES[@]}"; do
        if ! wait_until 20 1 kcm_running "$n"; then
            st=$(kcm_state "$n" || true)
            fail_with_details "$KCM_UNIT on $n is '$st', not active/running ($1)" "$(kcm_journal "$n" 20)"
        fi
    done
}

assert_all_running "after install"
for n in "${NODES[@]}"; do
    [[ $(node_exec "$n" systemctl is-enabled "$KCM_UNIT" 2>&1) == enabled ]] ||
        fail "$KCM_UNIT on $n is not enabled: $(node_exec "$n" systemctl is-enabled "$KCM_UNIT" 2>&1)"
done
pass "$KCM_UNIT active (running) and enabled on every node"

if ! wait_until "$LEASE_TIMEOUT" 1 lease_holder_node "${NODES[@]}"; then
    fail "Lease kube-system/kube-controller-manager not held by any of ${NODES[*]} within ${LEASE_TIMEOUT}s (holderIdentity='$(lease_holder || true)')"
fi
LEADER=$(lease_holder_node "${NODES[@]}")
pass "Lease kube-system/kube-controller-manager held by $LEADER ($(lease_holder))"

# leader_count -> how many nodes report leader_election_master_status 1
# (empty when the metric is not exposed)
leader_count() {
    local n v c=0 seen=0
    for n in "${NODES[@]}"; do
        v=$(metric_value "$(node_url "$n" /metrics)" "$CA" "$ADMIN" '^leader_election_master_status')
        [[ -z $v ]] && continue
        seen=1
        [[ $v == 1 ]] && c=$((c + 1))
    done
    ((seen)) && echo "$c"
    return 0
}

admin_gets_200() { [[ $(https_code "$1" "$CA" "$ADMIN") == 200 ]]; }
anon_denied() { [[ $(https_code "$1" "$CA") == 40[13] ]]; }
anon_codes=()
for n in "${NODES[@]}"; do
    url=$(node_url "$n" /metrics)
    # delegated authn/authz may need a moment after start; retry briefly
    wait_until 20 1 admin_gets_200 "$url" || true
    code=$(https_code "$url" "$CA" "$ADMIN")
    [[ $code == 200 ]] || fail "GET $url with the admin client cert answered HTTP $code, expected 200 (000 = TLS/connect error; serving cert must verify against the bundle CA)"
    # right after start, delegated authentication may answer 500 for a few seconds
    wait_until 30 1 anon_denied "$url" || true
    code=$(https_code "$url" "$CA")
    [[ $code == 401 || $code == 403 ]] || fail "GET $url without a client cert answered HTTP $code, expected 401 or 403"
    anon_codes+=("$code")
done
pass "/metrics on every node: 200 with the admin cert, ${anon_codes[*]} without"

lc=$(leader_count)
if [[ -n $lc ]]; then
    [[ $lc == 1 ]] || fail "$lc nodes report leader_election_master_status 1, expected exactly 1"
    pass "exactly one node reports leader_election_master_status 1"
else
    SUMMARY_NOTES+=("leader_election_master_status not exposed; single leader checked through the Lease only")
fi

# ----- the controllers work, each with its own service-account credentials
DEPLOY=e2e-deploy
k create deployment "$DEPLOY" --image=registry.invalid/e2e/pause:3.2 --replicas=2 >/dev/null ||
    fail "kubectl create deployment $DEPLOY failed"

rs_of_deploy() {
    k get rs -l "app=$DEPLOY" -o 'jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{"\n"}{end}' |
        grep -qx "Deployment/$DEPLOY"
}
pods_of_deploy() {
    local c
    c=$(k get pods -l "app=$DEPLOY" -o name | grep -c '^pod/') || true
    [[ $c -ge 2 ]]
}
wait_until "$WORKLOAD_TIMEOUT" 1 rs_of_deploy ||
    fail "Deployment $DEPLOY got no ReplicaSet owned by it within ${WORKLOAD_TIMEOUT}s (deployment controller not working); rs: $(k get rs -o wide 2>&1 | tr '\n' ';')"
wait_until "$WORKLOAD_TIMEOUT" 1 pods_of_deploy ||
    fail "ReplicaSet of $DEPLOY did not create its 2 Pods within ${WORKLOAD_TIMEOUT}s (replicaset/serviceaccount/token controllers); events: $(k get events --sort-by=.lastTimestamp 2>&1 | tail -n 5 | tr '\n' ';')"

# who created them: the audit logs of the nodes' apiservers name the authenticated user
audit_creator_ok() { # audit_creator_ok RESOURCE USER
    audit_lines | grep -F '"verb":"create"' | grep -F "\"resource\":\"$1\"" |
        grep -F "\"username\":\"$2\"" | grep -q '"code":201'
}
# the audit backend writes in batches; give it a moment
wait_until 15 1 audit_creator_ok replicasets system:serviceaccount:kube-system:deployment-controller ||
    fail "ReplicaSet was not created by system:serviceaccount:kube-system:deployment-controller (audit logs: $(audit_lines | grep -F '"resource":"replicasets"' | grep -o '"username":"[^"]*"' | sort | uniq -c | tr '\n' ' ')) - is --use-service-account-credentials set?"
wait_until 15 1 audit_creator_ok pods system:serviceaccount:kube-system:replicaset-controller ||
    fail "Pods were not created by system:serviceaccount:kube-system:replicaset-controller (audit logs: $(audit_lines | grep -F '"resource":"pods"' | grep -o '"username":"[^"]*"' | sort | uniq -c | tr '\n' ' '))"
pass "Deployment -> ReplicaSet -> 2 Pods, created by the deployment-controller and replicaset-controller service accounts"

# ----- CSR signing with the bundle's signing CA; the root CA key never reached a node
for n in "${NODES[@]}"; do
    node_exec "$n" test ! -e /etc/kubernetes/cert/ca-key.pem ||
        fail "$n holds the root CA key /etc/kubernetes/cert/ca-key.pem"
    node_exec "$n" test -s /etc/kubernetes/cert/csr-signer-key.pem ||
        fail "$n has no CSR signing key"
done
csr_signed_by_the_bundle e2e-kubelet "$CA" "$CLUSTER/pki/csr-signer.pem" "$(api_url "$N3")"
pass "no node holds the root CA key; a kubelet CSR approved with kubectl was signed by the controller-manager with the bundle's signing CA, and $N3's kube-apiserver (client-ca.pem) accepts the certificate as system:node:e2e-kubelet"

# ----- the signing CA is its own trust anchor: a kube-apiserver serving certificate
# minted with its key, sent with the signing CA as its chain, is refused by kubectl
FORGED=$WORK/forged
mkdir -p "$FORGED"
sign_cert "$CLUSTER/pki/csr-signer.pem" "$CLUSTER/pki/csr-signer-key.pem" "$FORGED/apiserver" /CN=kube-apiserver server IP:127.0.0.1
FORGED_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid openssl s_server -quiet -www -accept "127.0.0.1:$FORGED_PORT" -cert "$FORGED/apiserver.pem" \
    -key "$FORGED/apiserver-key.pem" -cert_chain "$CLUSTER/pki/csr-signer.pem" </dev/null >"$WORK/s_server.log" 2>&1 &
FORGED_PID=$!
track_pid "$FORGED_PID" "openssl s_server"
forged_answers() { curl -sk --max-time 2 -o /dev/null "https://127.0.0.1:$FORGED_PORT/"; }
wait_until 10 0.2 forged_answers ||
    fail_with_details "openssl s_server did not answer on 127.0.0.1:$FORGED_PORT" "$(cat "$WORK/s_server.log")"
# kubectl on the host, where the forged server listens (k runs in the nodes' network)
if out=$(kubectl --kubeconfig "$E2E_KUBECONFIG" --request-timeout=10s --server "https://127.0.0.1:$FORGED_PORT" get --raw / 2>&1); then
    fail_with_details "kubectl with dist/admin.kubeconfig accepted a kube-apiserver certificate minted with the signing CA's key" "$out"
fi
grep -q "x509: certificate signed by unknown authority" <<<"$out" ||
    fail_with_details "kubectl refused the forged kube-apiserver, but not for its issuer" "$out"
stop_pid "$FORGED_PID"
pass "kubectl with dist/admin.kubeconfig refuses a kube-apiserver (openssl s_server) whose certificate was minted with the signing CA's key and sent with the signing CA as its chain: certificate signed by unknown authority"

# Bundles that differ from the installed ones, all from the cluster's pki/: v2 changes
# one flag (a restart), bad adds a flag the binary rejects, deadapi points the
# kubeconfig at a port where nothing listens; crash and sleep carry the stand-in
# binaries made here.
# They are built in the background while the failovers below wait for leases
# (build_variants >LOG &), and collected before the faults that install them.
build_variant() { # build_variant NAME TOML [BUILD_ARGS...]
    local name=$1 toml=$2 out
    shift 2
    out=$("$KUBE_BUNDLE" build -c "$toml" -o "$WORK/dist-$name" "$@" 2>&1) ||
        fail_with_details "kube-bundle build of the $name variant failed" "$out"
    mkdir -p "$DIST/$name"
    cp "$WORK/dist-$name"/"$STEM"-*.tar.gz "$WORK/dist-$name/rollout.sh" "$DIST/$name/"
}
variant_toml() { # variant_toml NAME SED_SCRIPT EXTRA_TOML: writes and names cluster-NAME.toml
    { sed "$2" "$CLUSTER/cluster.toml"; printf '%s\n' "$3"; } >"$CLUSTER/cluster-$1.toml"
    printf '%s' "$CLUSTER/cluster-$1.toml"
}
# Stand-in binaries: the real kube-controller-manager killed 8 s after it starts (healthz
# answers ok first), and a process that runs but never listens. Nodes see $DIST as /bundle.
STANDINS=$DIST/stand-ins
mkdir -p "$STANDINS"
cp "$K8S_BIN_DIR/kube-controller-manager" "$STANDINS/kube-controller-manager.real"
cat >"$STANDINS/crash" <<'SH'
#!/bin/sh
/bundle/stand-ins/kube-controller-manager.real "$@" &
pid=$!
sleep 8
kill -9 "$pid"
exit 1
SH
printf '#!/bin/sh\nexec sleep 3600\n' >"$STANDINS/sleep"
chmod 0755 "$STANDINS/crash" "$STANDINS/sleep"
mkdir -p "$WORK/bad-templates"
# The controller-manager's unit template (its own file, or the one units share) with a
# flag no binary knows, registered under the controller-manager's name only.
unit_template=$ROOT/bundle-templates/kube-controller-manager.service.hbs
[[ -f $unit_template ]] || unit_template=$ROOT/bundle-templates/unit.service.hbs
sed 's|^ExecStart={{binary}}|ExecStart={{binary}} --no-such-flag|' "$unit_template" \
    >"$WORK/bad-templates/kube-controller-manager.service.hbs"
build_variants() {
    local t0 b
    t0=$(now)
    build_variant v2 "$(variant_toml v2 '' $'[kube-controller-manager.extra-args]\nv = 3')"
    build_variant bad "$CLUSTER/cluster.toml" --templates "$WORK/bad-templates"
    build_variant deadapi "$(variant_toml deadapi '/^\[cluster\]$/a apiserver = "https://127.0.0.1:6444"' '')"
    for b in crash sleep; do
        # Scripts, not the release the inventory states: carried as they are.
        build_variant "$b" "$(variant_toml "$b" "s|^binary = \".*/kube-controller-manager\"|binary = \"$STANDINS/$b\"\nbinary-check = false|" '')"
    done
    echo "built the v2, bad, deadapi, crash and sleep variants in $(elapsed_since "$t0")s (in the background)"
}
build_variants >"$WORK/variants.log" 2>&1 &
VARIANTS_PID=$!
track_pid "$VARIANTS_PID" "variant builds"

# ----- failover
# stop_and_wait_failover NODE LABEL -> sets NEW_LEADER
stop_and_wait_failover() {
    local old=$1 label=$2 t0 d
    log "stopping $KCM_UNIT on leader $old"
    t0=$(now)
    node_exec "$old" systemctl stop "$KCM_UNIT" || fail "systemctl stop $KCM_UNIT on $old failed"
    if ! wait_until "$FAILOVER_TIMEOUT" 0.5 lease_held_by_other "$old" "${NODES[@]}"; then
        fail "$label failover: lease still held by '$(lease_holder || true)' ${FAILOVER_TIMEOUT}s after stopping $KCM_UNIT on $old"
    fi
    d=$(elapsed_since "$t0")
    NEW_LEADER=$(lease_holder_node "${NODES[@]}")
    FAILOVER_S[$label]="$old -> $NEW_LEADER in ${d}s"
    pass "$label failover: $old stopped, $NEW_LEADER holds the lease after ${d}s"
}

stop_and_wait_failover "$LEADER" first
SECOND=$NEW_LEADER
stop_and_wait_failover "$SECOND" second
THIRD=$NEW_LEADER
expected=$(others_than "$LEADER" "$SECOND")
[[ $THIRD == "$expected" ]] || fail "after stopping $LEADER and $SECOND the lease is held by $THIRD, expected $expected"

log "starting $KCM_UNIT again on $LEADER and $SECOND"
node_exec "$LEADER" systemctl start "$KCM_UNIT" || fail "systemctl start $KCM_UNIT on $LEADER failed"
node_exec "$SECOND" systemctl start "$KCM_UNIT" || fail "systemctl start $KCM_UNIT on $SECOND failed"
assert_all_running "after restarting the two stopped nodes"
healthz_ok() { [[ $(in_net curl -sS --max-time 5 --cacert "$CA" "$(node_url "$1" /healthz)" 2>/dev/null) == ok ]]; }
for n in "$LEADER" "$SECOND"; do
    wait_until 30 1 healthz_ok "$n" || fail "healthz on restarted $n not ok within 30s"
done
# they come back as followers: over a few retry periods the lease must stay with THIRD
for _ in 1 2 3 4 5; do
    h=$(lease_holder_node "${NODES[@]}") || fail "lease not held by any node after the restarts (holderIdentity='$(lease_holder || true)')"
    [[ $h == "$THIRD" ]] || fail "lease moved from $THIRD to $h after restarting $LEADER and $SECOND (expected it to stay)"
    nap 2
done
lc=$(leader_count)
[[ -z $lc || $lc == 1 ]] || fail "$lc nodes report leader_election_master_status 1 after the restarts, expected exactly 1"
pass "restarted $LEADER and $SECOND: all 3 active (running), $THIRD still the only leader"

# ----- re-running install.sh on a node (the current leader, the harder case): nothing
# changed, so nothing restarts and the leader keeps its lease
RERUN=$THIRD
main_pid_since() { node_exec "$1" systemctl show -p ExecMainStartTimestampMonotonic -p MainPID --value "$KCM_UNIT" | paste -sd/ -; }
before=$(main_pid_since "$RERUN")
old_identity=$(lease_holder || true)
log "re-running install.sh on $RERUN"
t0=$(now)
run_install "$RERUN" "" --stable 3 ||
    fail_with_details "re-running install.sh on $RERUN exited $INSTALL_RC" "$(tail -n 40 <<<"$INSTALL_OUT")"
REINSTALL_S=$(elapsed_since "$t0")
grep -q "no restart" <<<"$INSTALL_OUT" || fail_with_details "re-running an unchanged bundle on $RERUN did not say 'no restart'" "$INSTALL_OUT"
after=$(main_pid_since "$RERUN")
[[ $before == "$after" ]] || fail "re-running an unchanged bundle restarted $KCM_UNIT on $RERUN (start/pid $before -> $after)"
assert_all_running "after re-running install.sh on $RERUN"
healthz_ok "$RERUN" || fail "healthz on $RERUN not ok after re-install"
[[ $(lease_holder || true) == "$old_identity" ]] || fail "the lease moved from $old_identity to $(lease_holder || true) after an install that changed nothing"
pass "re-running the unchanged bundle on $RERUN (leader) in ${REINSTALL_S}s: no restart (same start time and pid), lease kept"

# ------------------------------------------------------- 5b. kube-scheduler ---

sched_state() { node_exec "$1" systemctl show -p ActiveState -p SubState --value "$SCHED_UNIT" 2>/dev/null | paste -sd/ -; }
sched_running() { [[ $(sched_state "$1") == active/running ]]; }
sched_url() { printf 'https://%s:%s%s' "${NODE_IP[$1]}" "$SCHED_PORT" "${2:-}"; }
for n in "${NODES[@]}"; do
    wait_until 20 1 sched_running "$n" ||
        fail_with_details "$SCHED_UNIT on $n is '$(sched_state "$n")', not active/running" \
            "$(node_exec "$n" journalctl -u "$SCHED_UNIT" --no-pager -n 20 2>&1 | cut -c1-300)"
    [[ $(node_exec "$n" systemctl is-enabled "$SCHED_UNIT" 2>&1) == enabled ]] || fail "$SCHED_UNIT on $n is not enabled"
    kcm_running "$n" || fail "$KCM_UNIT on $n is not running beside the scheduler"
done
pass "$SCHED_UNIT and $KCM_UNIT active (running) and enabled on every node, from one bundle"

wait_until "$LEASE_TIMEOUT" 1 lease_node kube-scheduler "${NODES[@]}" ||
    fail "Lease kube-system/kube-scheduler not held by any of ${NODES[*]} within ${LEASE_TIMEOUT}s (holderIdentity='$(lease_holder kube-scheduler || true)')"
SCHED_LEADER=$(lease_node kube-scheduler "${NODES[@]}")
pass "Lease kube-system/kube-scheduler held by $SCHED_LEADER ($(lease_holder kube-scheduler))"

admin_healthz_ok() { [[ $(in_net curl -sS --max-time 5 --cacert "$CA" --cert "$ADMIN.pem" --key "$ADMIN-key.pem" "$1" 2>/dev/null) == ok ]]; }
codes=()
for n in "${NODES[@]}"; do
    admin_healthz_ok "$(sched_url "$n" /healthz)" || fail "GET $(sched_url "$n" /healthz) with the admin certificate did not answer ok (serving cert must verify against the bundle CA)"
    url=$(sched_url "$n" /metrics)
    wait_until 20 1 admin_gets_200 "$url" || true
    code=$(https_code "$url" "$CA" "$ADMIN")
    [[ $code == 200 ]] || fail "GET $url with the admin client cert answered HTTP $code, expected 200"
    wait_until 30 1 anon_denied "$url" || true
    code=$(https_code "$url" "$CA")
    [[ $code == 401 || $code == 403 ]] || fail "GET $url without a client cert answered HTTP $code, expected 401 or 403"
    codes+=("$code")
done
pass "kube-scheduler /healthz ok and /metrics 200 over mTLS on every node (without a client cert: ${codes[*]})"

# A Node registered through kubectl, without a kubelet, and a Deployment whose Pods the
# scheduler binds to it. The Pods tolerate every taint, as the node lifecycle controller
# marks a node without heartbeats unreachable.
now_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
k create -f - >/dev/null <<YAML || fail "kubectl could not register the Node e2e-worker"
apiVersion: v1
kind: Node
metadata:
  name: e2e-worker
  labels: {kubernetes.io/hostname: e2e-worker}
status:
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, message: registered by the e2e test, lastHeartbeatTime: "$now_utc", lastTransitionTime: "$now_utc"}
YAML
k create -f - >/dev/null <<'YAML' || fail "kubectl create deployment e2e-sched failed"
apiVersion: apps/v1
kind: Deployment
metadata: {name: e2e-sched}
spec:
  replicas: 2
  selector: {matchLabels: {app: e2e-sched}}
  template:
    metadata: {labels: {app: e2e-sched}}
    spec:
      tolerations: [{operator: Exists}]
      containers: [{name: pause, image: registry.invalid/e2e/pause:3.2}]
YAML
pods_bound() {
    local bound
    bound=$(k get pods -l app=e2e-sched -o 'jsonpath={range .items[*]}{.spec.nodeName}{"\n"}{end}' | grep -cx e2e-worker) || true
    [[ $bound -ge 2 ]]
}
wait_until "$WORKLOAD_TIMEOUT" 1 pods_bound ||
    fail "the Pods of e2e-sched did not get spec.nodeName e2e-worker within ${WORKLOAD_TIMEOUT}s: $(k get pods -l app=e2e-sched -o wide 2>&1 | tr '\n' ';') events: $(k get events --sort-by=.lastTimestamp 2>&1 | tail -n 5 | tr '\n' ';')"
bound_by_scheduler() {
    audit_lines | grep -F '"subresource":"binding"' | grep -F '"username":"system:kube-scheduler"' | grep -q '"code":201'
}
wait_until 15 1 bound_by_scheduler ||
    fail "no Pod binding by system:kube-scheduler in the audit logs ($(audit_lines | grep -F '"subresource":"binding"' | grep -o '"username":"[^"]*"' | sort | uniq -c | tr '\n' ' '))"
pass "Node e2e-worker registered with kubectl; the 2 Pods of a Deployment got spec.nodeName from system:kube-scheduler"

log "stopping $SCHED_UNIT on the scheduler leader $SCHED_LEADER"
t0=$(now)
node_exec "$SCHED_LEADER" systemctl stop "$SCHED_UNIT" || fail "systemctl stop $SCHED_UNIT on $SCHED_LEADER failed"
sched_moved() { local h; h=$(lease_node kube-scheduler "${NODES[@]}") && [[ $h != "$SCHED_LEADER" ]]; }
wait_until "$FAILOVER_TIMEOUT" 0.5 sched_moved ||
    fail "kube-scheduler failover: lease still held by '$(lease_holder kube-scheduler || true)' ${FAILOVER_TIMEOUT}s after stopping it on $SCHED_LEADER"
d=$(elapsed_since "$t0")
FAILOVER_S[scheduler]="$SCHED_LEADER -> $(lease_node kube-scheduler "${NODES[@]}") in ${d}s"
node_exec "$SCHED_LEADER" systemctl start "$SCHED_UNIT" || fail "systemctl start $SCHED_UNIT on $SCHED_LEADER failed"
wait_until 20 1 sched_running "$SCHED_LEADER" || fail "$SCHED_UNIT on $SCHED_LEADER did not come back"
pass "kube-scheduler failover: $SCHED_LEADER stopped, $(lease_node kube-scheduler "${NODES[@]}") holds the lease after ${d}s"

# ------------------------------------------------------ 6. node lifecycle ---

wait "$VARIANTS_PID" ||
    fail_with_details "building the variant bundles failed (log $WORK/variants.log)" "$(tail -n 30 "$WORK/variants.log")"
log "$(tail -n 1 "$WORK/variants.log")"

node_sum() { node_exec "$1" sha256sum "$2" | cut -d' ' -f1; }
unit_sum() { node_sum "$1" /etc/systemd/system/kube-controller-manager.service; }
bundle_unit_sum() { tar -xzOf "$DIST/$2/$STEM-$1.tar.gz" "$STEM-$1/rootfs/etc/systemd/system/kube-controller-manager.service" | sha256sum | cut -d' ' -f1; }
KCM_BIN=/opt/k8s/bin/kube-controller-manager
REAL_BIN_SUM=$(sha256sum "$K8S_BIN_DIR/kube-controller-manager" | cut -d' ' -f1)
pending_exists() { node_exec "$1" test -f /var/backups/kube-bundle/.pending; }
FOLLOWER=$(others_than "$(lease_holder_node "${NODES[@]}")" | sed -n 1p)
OTHER=$(others_than "$(lease_holder_node "${NODES[@]}")" "$FOLLOWER")
# The faults below take FOLLOWER's whole bundle down at times (its apiserver too):
# kubectl goes to OTHER's apiserver meanwhile.
K_SERVER=$(api_url "$OTHER")

# in_background NODE VARIANT LOG INSTALL_ARGS...: run_install's work, in the background
in_background() {
    local n=$1 variant=$2 logf=$3
    shift 3
    # shellcheck disable=SC2016  # expanded by the node's sh
    node_exec "$n" sh -c 'b=$3-$1 v=$2 && shift 3 && mkdir -p "/root/bg/$v" && cd "/root/bg/$v" && rm -rf "$b" &&
        tar -xzf "/bundle/$v/$b.tar.gz" && exec "./$b/install.sh" "$@"' sh "$n" "$variant" "$STEM" "$@" >"$logf" 2>&1 &
    BG_PID=$!
}

# node_is_whole NODE UNIT_SUM CONTEXT: that unit and the real binary, running, healthz ok
node_is_whole() {
    local n=$1 want=$2 ctx=$3
    [[ $(unit_sum "$n") == "$want" ]] || fail "$n does not have its previous unit back ($ctx)"
    [[ $(node_sum "$n" "$KCM_BIN") == "$REAL_BIN_SUM" ]] || fail "$n does not have the real kube-controller-manager back ($ctx)"
    pending_exists "$n" && fail "a pending marker is left on $n ($ctx)"
    wait_until 30 1 kcm_running "$n" || fail_with_details "$KCM_UNIT on $n is '$(kcm_state "$n")' ($ctx)" "$(kcm_journal "$n" 20)"
    wait_until 30 1 healthz_ok "$n" || fail "healthz on $n not ok ($ctx)"
    wait_until 30 1 sched_running "$n" || fail "$SCHED_UNIT on $n is '$(sched_state "$n")' ($ctx)"
}

# ----- another node's bundle: refused before anything changes (review D3)
before=$(main_pid_since "$FOLLOWER")
good_unit=$(unit_sum "$FOLLOWER")
# Its private files open only with its own node's seal key, given here as for an image build.
node_exec "$FOLLOWER" sh -c 'umask 077 && mkdir -p /root/wrong && cat >/root/wrong/seal.key' <"$CLUSTER/pki/$OTHER/seal.key"
INSTALL_RC=0
# shellcheck disable=SC2016  # expanded by the node's sh
INSTALL_OUT=$(node_exec "$FOLLOWER" sh -c 'mkdir -p /root/wrong && cd /root/wrong && rm -rf "$1-$2" &&
    tar -xzf "/bundle/$1-$2.tar.gz" && exec "./$1-$2/install.sh" --seal-key seal.key' sh "$STEM" "$OTHER" 2>&1) || INSTALL_RC=$?
((INSTALL_RC == 1)) || fail_with_details "$OTHER's bundle on $FOLLOWER exited $INSTALL_RC, expected 1" "$INSTALL_OUT"
grep -qF "this bundle is for $OTHER (${NODE_IP[$OTHER]}), but ${NODE_IP[$OTHER]} is not an address of this host ($FOLLOWER)" <<<"$INSTALL_OUT" ||
    fail_with_details "$OTHER's bundle on $FOLLOWER did not name the address mismatch" "$INSTALL_OUT"
# The same where $OTHER's address is local (install.sh in a network namespace of its own
# inside $FOLLOWER, with that address on its loopback): the host name is what differs.
INSTALL_RC=0
# shellcheck disable=SC2016  # expanded by the node's sh
INSTALL_OUT=$(node_exec "$FOLLOWER" unshare --net sh -c 'ip link set lo up && ip addr add "$3/32" dev lo &&
    cd /root/wrong && exec "./$1-$2/install.sh" --seal-key seal.key' sh "$STEM" "$OTHER" "${NODE_IP[$OTHER]}" 2>&1) || INSTALL_RC=$?
((INSTALL_RC == 1)) || fail_with_details "$OTHER's bundle on $FOLLOWER, with $OTHER's address local, exited $INSTALL_RC, expected 1" "$INSTALL_OUT"
grep -qF "this bundle is for $OTHER (${NODE_IP[$OTHER]}), but this host is named $FOLLOWER" <<<"$INSTALL_OUT" ||
    fail_with_details "$OTHER's bundle on $FOLLOWER, with $OTHER's address local, did not name the host mismatch" "$INSTALL_OUT"
[[ $(main_pid_since "$FOLLOWER") == "$before" && $(unit_sum "$FOLLOWER") == "$good_unit" ]] ||
    fail "$OTHER's bundle changed or restarted $FOLLOWER although it was refused"
# --force-node (image builds) goes past the check and says so; --dry-run keeps the node as it is
INSTALL_RC=0
# shellcheck disable=SC2016  # expanded by the node's sh
INSTALL_OUT=$(node_exec "$FOLLOWER" sh -c 'cd /root/wrong && exec "./$1-$2/install.sh" --seal-key seal.key --force-node --dry-run' sh "$STEM" "$OTHER" 2>&1) || INSTALL_RC=$?
((INSTALL_RC == 0)) || fail_with_details "--force-node --dry-run of $OTHER's bundle on $FOLLOWER exited $INSTALL_RC" "$INSTALL_OUT"
grep -qF "warning: --force-node: installing although ${NODE_IP[$OTHER]} is not an address of this host ($FOLLOWER); not checking that this is $OTHER" <<<"$INSTALL_OUT" ||
    fail_with_details "--force-node on $FOLLOWER did not say what it skipped" "$INSTALL_OUT"
[[ $(main_pid_since "$FOLLOWER") == "$before" && $(unit_sum "$FOLLOWER") == "$good_unit" ]] ||
    fail "--force-node --dry-run changed or restarted $FOLLOWER"
pass "$OTHER's bundle on $FOLLOWER: refused before any change (its address is not one of $FOLLOWER's; with that address local, its host name differs), exit 1, no restart; --force-node names what it skips"

# ----- a flag the binary rejects, and a second install.sh while it runs (review D4, D13)
# The first run holds the lock through the crash, the rollback and a 15 s stability
# window, longer than the 10 s a second run waits for it.
t0=$(now)
in_background "$FOLLOWER" bad "$WORK/bad.log" --timeout 20 --stable 15
bad_pid=$BG_PID
wait_until 30 0.1 pending_exists "$FOLLOWER" ||
    fail_with_details "install.sh of bad on $FOLLOWER never started changing files" "$(cat "$WORK/bad.log")"
if run_install "$FOLLOWER" v2 --stable 3; then
    fail_with_details "a second install.sh on $FOLLOWER ran while the first held the lock" "$INSTALL_OUT"
fi
grep -q "another run is working on this node: install.sh (pid [0-9]*, install of $STEM-$FOLLOWER) holds" <<<"$INSTALL_OUT" ||
    fail_with_details "the second install.sh on $FOLLOWER did not name the lock holder" "$INSTALL_OUT"
bad_rc=0
wait "$bad_pid" || bad_rc=$?
bad_out=$(cat "$WORK/bad.log")
((bad_rc == 1)) || fail_with_details "install.sh of a unit with a flag the binary rejects exited $bad_rc on $FOLLOWER" "$bad_out"
grep -q "rolled back to the previous release, which is running and healthy" <<<"$bad_out" ||
    fail_with_details "install.sh on $FOLLOWER did not report a healthy rollback" "$(tail -n 30 <<<"$bad_out")"
grep -q "unknown flag: --no-such-flag" <<<"$bad_out" ||
    fail_with_details "the failed gate's report on $FOLLOWER does not show the journal line with the error" "$bad_out"
node_is_whole "$FOLLOWER" "$good_unit" "after the rollback of bad"
lease_holder_node "${NODES[@]}" >/dev/null || fail "no leader in the cluster after the rollback on $FOLLOWER"
pass "a flag the binary rejects on $FOLLOWER: rolled back in $(elapsed_since "$t0")s, healthy, the journal's error line shown; a second run meanwhile was refused naming the holder"

# ----- a kubeconfig pointing at a dead apiserver: /healthz says ok, the gate does not (review D2)
t0=$(now)
kubeconfig_before=$(node_sum "$FOLLOWER" /etc/kubernetes/kube-controller-manager.kubeconfig)
if run_install "$FOLLOWER" deadapi --timeout 15 --stable 3; then
    fail_with_details "a kubeconfig pointing at a dead apiserver installed on $FOLLOWER" "$INSTALL_OUT"
fi
grep -q "its client certificate does not work against https://127.0.0.1:6444" <<<"$INSTALL_OUT" ||
    fail_with_details "install.sh on $FOLLOWER did not name the unreachable apiserver" "$INSTALL_OUT"
grep -q "rolled back to the previous release, which is running and healthy" <<<"$INSTALL_OUT" ||
    fail_with_details "install.sh on $FOLLOWER did not roll back the dead-apiserver kubeconfig" "$INSTALL_OUT"
[[ $(node_sum "$FOLLOWER" /etc/kubernetes/kube-controller-manager.kubeconfig) == "$kubeconfig_before" ]] ||
    fail "$FOLLOWER does not have its previous kubeconfig back"
node_is_whole "$FOLLOWER" "$good_unit" "after the rollback of deadapi"
pass "a kubeconfig pointing at a dead apiserver on $FOLLOWER: the credentials check failed it, rolled back in $(elapsed_since "$t0")s"

# ----- SIGTERM during the health wait: the previous release comes back (review D8)
t0=$(now)
in_background "$FOLLOWER" sleep "$WORK/term.log" --timeout 60 --stable 3
term_pid=$BG_PID
waiting() { grep -q "waiting up to" "$WORK/term.log"; }
wait_until 30 0.2 waiting || fail_with_details "install.sh of sleep on $FOLLOWER never reached its health wait" "$(cat "$WORK/term.log")"
nap 2
# To install.sh itself, as `kill PID` or systemd would send it: -o picks the oldest
# match, not the subshells of its command substitutions.
node_exec "$FOLLOWER" pkill -o -TERM -f "$STEM-$FOLLOWER/install.sh" || fail "could not signal install.sh on $FOLLOWER"
term_rc=0
wait "$term_pid" || term_rc=$?
((term_rc == 143)) || fail_with_details "install.sh on $FOLLOWER exited $term_rc after SIGTERM, expected 143" "$(cat "$WORK/term.log")"
grep -q "interrupted by SIGTERM; the previous release is back in place" "$WORK/term.log" ||
    fail_with_details "install.sh on $FOLLOWER did not restore after SIGTERM" "$(cat "$WORK/term.log")"
node_is_whole "$FOLLOWER" "$good_unit" "after SIGTERM"
pid=$(node_exec "$FOLLOWER" systemctl show -p MainPID --value "$KCM_UNIT")
[[ $(node_exec "$FOLLOWER" cat "/proc/$pid/comm") == kube-controller* ]] ||
    fail "after SIGTERM $FOLLOWER runs '$(node_exec "$FOLLOWER" cat "/proc/$pid/comm")', not kube-controller-manager"
run_install "$FOLLOWER" "" --check || fail_with_details "--check after the SIGTERM recovery on $FOLLOWER found drift" "$INSTALL_OUT"
pass "SIGTERM to install.sh during the health wait on $FOLLOWER: exit 143, previous release restarted and healthy, --check clean ($(elapsed_since "$t0")s)"

# ----- a drop-in override: drift for --check, and the unchanged bundle on the unhealthy
# node is not "nothing to do" (review D11, D8)
DROPIN=/etc/systemd/system/kube-controller-manager.service.d/override.conf
node_exec "$FOLLOWER" sh -c "mkdir -p ${DROPIN%/*} && printf '[Service]\nExecStart=\nExecStart=/bin/sleep 3600\n' >$DROPIN &&
    systemctl daemon-reload && systemctl restart $KCM_UNIT" || fail "could not add a drop-in on $FOLLOWER"
if run_install "$FOLLOWER" "" --check; then
    fail_with_details "--check on $FOLLOWER missed a drop-in override" "$INSTALL_OUT"
fi
grep -qF "drift: the drop-in $DROPIN changes $KCM_UNIT" <<<"$INSTALL_OUT" ||
    fail_with_details "--check on $FOLLOWER did not name the drop-in" "$INSTALL_OUT"
if run_install "$FOLLOWER" "" --timeout 8 --stable 3; then
    fail_with_details "the unchanged bundle on an unhealthy $FOLLOWER exited 0" "$INSTALL_OUT"
fi
if ! grep -qF "warning: the drop-in $DROPIN changes $KCM_UNIT; its settings win over the bundle's unit" <<<"$INSTALL_OUT" ||
    ! grep -q "this node is unhealthy although the bundle is installed" <<<"$INSTALL_OUT"; then
    fail_with_details "install.sh on $FOLLOWER with a drop-in did not name it and the unhealthy node" "$INSTALL_OUT"
fi
node_exec "$FOLLOWER" sh -c "rm -rf ${DROPIN%/*} && systemctl daemon-reload && systemctl restart $KCM_UNIT" ||
    fail "could not remove the drop-in on $FOLLOWER"
node_is_whole "$FOLLOWER" "$good_unit" "after removing the drop-in"
pass "a drop-in override on $FOLLOWER: --check names it; the unchanged bundle names it and exits 1 on the unhealthy node"

# ----- an install killed half-way is recovered by the next run
log "starting install.sh of v2 on $FOLLOWER and killing it once it has begun replacing files"
in_background "$FOLLOWER" v2 "$WORK/killed.log" --stable 3
installer=$BG_PID
wait_until 30 0.05 pending_exists "$FOLLOWER" ||
    fail_with_details "install.sh of v2 on $FOLLOWER never started replacing files" "$(cat "$WORK/killed.log")"
node_exec "$FOLLOWER" pkill -KILL -f "$STEM-$FOLLOWER/install.sh" || fail "could not kill install.sh on $FOLLOWER"
wait "$installer" 2>/dev/null || true
pending_exists "$FOLLOWER" || fail "the killed install left no pending marker on $FOLLOWER"
run_install "$FOLLOWER" v2 --stable 3 || fail_with_details "install.sh of v2 after the killed run failed on $FOLLOWER" "$(tail -n 30 <<<"$INSTALL_OUT")"
grep -q "an earlier install was interrupted" <<<"$INSTALL_OUT" ||
    fail_with_details "the run after the killed install on $FOLLOWER did not recover it" "$INSTALL_OUT"
[[ $(unit_sum "$FOLLOWER") == "$(bundle_unit_sum "$FOLLOWER" v2)" ]] || fail "$FOLLOWER does not run the v2 unit after recovering"
node_exec "$FOLLOWER" grep -q -- '--v=3' /etc/systemd/system/kube-controller-manager.service || fail "$FOLLOWER's unit lacks --v=3"
pending_exists "$FOLLOWER" && fail "the pending marker is still on $FOLLOWER after a successful install"
assert_all_running "after recovering the killed install on $FOLLOWER"
healthz_ok "$FOLLOWER" || fail "healthz on $FOLLOWER not ok after recovering"
pass "install.sh killed half-way on $FOLLOWER: the next run restored the release it took, installed v2, healthy"

# ----- --check: drift in content and mode
run_install "$FOLLOWER" v2 --check || fail_with_details "install.sh --check on a clean $FOLLOWER reported drift" "$INSTALL_OUT"
node_exec "$FOLLOWER" sh -c 'echo "# edited by hand" >>/etc/systemd/system/kube-controller-manager.service &&
    chmod 0644 /etc/kubernetes/cert/kube-controller-manager-key.pem'
if run_install "$FOLLOWER" v2 --check; then
    fail_with_details "install.sh --check missed an edited unit and a chmod'ed key on $FOLLOWER" "$INSTALL_OUT"
fi
((INSTALL_RC == 1)) || fail "install.sh --check exited $INSTALL_RC on drift, expected 1"
grep -q "drift: /etc/systemd/system/kube-controller-manager.service differs from the bundle" <<<"$INSTALL_OUT" ||
    fail_with_details "--check did not name the edited unit" "$INSTALL_OUT"
grep -q "drift: /etc/kubernetes/cert/kube-controller-manager-key.pem has mode 644, the bundle says 0600" <<<"$INSTALL_OUT" ||
    fail_with_details "--check did not name the chmod'ed key" "$INSTALL_OUT"
run_install "$FOLLOWER" v2 --stable 3 || fail_with_details "re-installing v2 over the drift on $FOLLOWER failed" "$INSTALL_OUT"
run_install "$FOLLOWER" v2 --check || fail_with_details "drift remains on $FOLLOWER after re-installing" "$INSTALL_OUT"
pass "install.sh --check on $FOLLOWER: clean 0, an edited unit and a chmod'ed key found (exit 1), fixed by installing again"

# ----- uninstall, then install again
run_install "$FOLLOWER" v2 --uninstall || fail_with_details "install.sh --uninstall on $FOLLOWER failed" "$INSTALL_OUT"
[[ $(kcm_state "$FOLLOWER") != active/running ]] || fail "$KCM_UNIT still runs on $FOLLOWER after --uninstall"
node_exec "$FOLLOWER" test ! -e /etc/kubernetes/kube-controller-manager.kubeconfig || fail "--uninstall left the kubeconfig on $FOLLOWER"
node_exec "$FOLLOWER" test -d /data/k8s/k8s/kube-controller-manager || fail "--uninstall without --purge removed the work dir on $FOLLOWER"
run_install "$FOLLOWER" v2 --stable 3 || fail_with_details "install.sh after --uninstall on $FOLLOWER failed" "$INSTALL_OUT"
assert_all_running "after uninstalling and installing again on $FOLLOWER"
pass "install.sh --uninstall on $FOLLOWER stopped and removed it; installing again brought it back healthy"

# ----- --uninstall --purge (review D5), a failed first install (D15), a mask (D10), and
# --rollback recreating the work dir (D6)
WORKDIR=/data/k8s/k8s/kube-controller-manager
v2_unit=$(unit_sum "$FOLLOWER")
# A work dir linked to the folder that holds etcd's data, or to /: refused before
# anything is stopped or removed (review part 3, row 3).
node_exec "$FOLLOWER" sh -c "mv $WORKDIR /data/kcm-elsewhere && echo kept >/data/kcm-elsewhere/marker" ||
    fail "could not move the work dir on $FOLLOWER"
for target in /data/k8s/etcd /; do
    node_exec "$FOLLOWER" ln -sfn "$target" "$WORKDIR" || fail "could not link $WORKDIR to $target on $FOLLOWER"
    if run_install "$FOLLOWER" v2 --uninstall --purge; then
        fail_with_details "--uninstall --purge on $FOLLOWER went ahead with its work dir linked to $target" "$INSTALL_OUT"
    fi
    case $target in
        /) why="leads to /, which is the node's root /" ;;
        *) why="leads to $target, which holds etcd's data dir /data/k8s/etcd/data" ;;
    esac
    grep -qF "install.sh: error: refusing --purge: the work dir of kube-controller-manager, $WORKDIR, $why; nothing was removed or stopped" <<<"$INSTALL_OUT" ||
        fail_with_details "--purge on $FOLLOWER with its work dir linked to $target did not refuse with the reason" "$INSTALL_OUT"
    node_is_whole "$FOLLOWER" "$v2_unit" "after the refused purge with the work dir linked to $target"
    for u in etcd.service "$KAS_UNIT"; do
        [[ $(node_exec "$FOLLOWER" systemctl is-active "$u") == active ]] || fail "the refused purge on $FOLLOWER stopped $u"
    done
    node_exec "$FOLLOWER" test -d /data/k8s/etcd/data/member/snap -a -d /data/k8s/etcd/wal ||
        fail "the refused purge on $FOLLOWER removed etcd's data"
done
out=$(etcd_ctl endpoint health --cluster 2>&1) || fail_with_details "etcd is not healthy after the refused purges on $FOLLOWER" "$out"
# Linked anywhere else, the work dir goes as a link and what it points to stays.
node_exec "$FOLLOWER" ln -sfn /data/kcm-elsewhere "$WORKDIR" || fail "could not link $WORKDIR on $FOLLOWER"
run_install "$FOLLOWER" v2 --uninstall --purge || fail_with_details "install.sh --uninstall --purge on $FOLLOWER failed" "$INSTALL_OUT"
grep -qF "removed the symbolic link $WORKDIR; what it points to (/data/kcm-elsewhere) is kept" <<<"$INSTALL_OUT" ||
    fail_with_details "--purge on $FOLLOWER did not say it removed the linked work dir as a link" "$INSTALL_OUT"
grep -qF "removed /data/k8s/k8s/kube-apiserver" <<<"$INSTALL_OUT" || fail_with_details "--purge on $FOLLOWER did not say it removed kube-apiserver's work dir" "$INSTALL_OUT"
node_exec "$FOLLOWER" test ! -e "$WORKDIR" -a ! -L "$WORKDIR" || fail "--uninstall --purge left $WORKDIR on $FOLLOWER"
[[ $(node_exec "$FOLLOWER" cat /data/kcm-elsewhere/marker) == kept ]] || fail "--uninstall --purge on $FOLLOWER removed what the linked work dir pointed to"
node_exec "$FOLLOWER" test -d /data/k8s/etcd/data/member || fail "--uninstall --purge on $FOLLOWER removed etcd's data"

if run_install "$FOLLOWER" sleep --timeout 8 --stable 3; then
    fail_with_details "a first install of a binary that never listens succeeded on $FOLLOWER" "$INSTALL_OUT"
fi
grep -q "there was no previous release, so the bundle's files were removed and its units stopped" <<<"$INSTALL_OUT" ||
    fail_with_details "the failed first install on $FOLLOWER did not say it removed everything" "$INSTALL_OUT"
failed_units=$(node_exec "$FOLLOWER" systemctl list-units --failed --plain --no-legend --all "$KAS_UNIT" "$KCM_UNIT" "$SCHED_UNIT")
[[ -z $failed_units ]] || fail "after the failed first install $FOLLOWER still lists a failed unit: $failed_units"
node_exec "$FOLLOWER" test ! -e "$WORKDIR" || fail "the failed first install left the empty $WORKDIR it made on $FOLLOWER"
node_exec "$FOLLOWER" test ! -e "$KCM_BIN" || fail "the failed first install left $KCM_BIN on $FOLLOWER"

node_exec "$FOLLOWER" systemctl mask "$KCM_UNIT" >/dev/null 2>&1 || fail "systemctl mask on $FOLLOWER failed"
if run_install "$FOLLOWER" v2 --stable 3; then
    fail_with_details "install.sh installed over a masked unit on $FOLLOWER" "$INSTALL_OUT"
fi
grep -qF "$KCM_UNIT is masked (/etc/systemd/system/$KCM_UNIT -> /dev/null)" <<<"$INSTALL_OUT" ||
    fail_with_details "install.sh on $FOLLOWER did not name the mask" "$INSTALL_OUT"
if run_install "$FOLLOWER" v2 --rollback --stable 3; then
    fail_with_details "--rollback restored over a masked unit on $FOLLOWER" "$INSTALL_OUT"
fi
[[ $(node_exec "$FOLLOWER" readlink "/etc/systemd/system/$KCM_UNIT") == /dev/null ]] || fail "the mask on $FOLLOWER is gone"
node_exec "$FOLLOWER" systemctl unmask "$KCM_UNIT" >/dev/null 2>&1 || fail "systemctl unmask on $FOLLOWER failed"

run_install "$FOLLOWER" v2 --rollback --stable 3 ||
    fail_with_details "--rollback after --uninstall --purge on $FOLLOWER failed" "$INSTALL_OUT"
node_exec "$FOLLOWER" test -d "$WORKDIR" || fail "--rollback did not recreate $WORKDIR on $FOLLOWER"
node_is_whole "$FOLLOWER" "$v2_unit" "after --rollback of the purge"
pass "--uninstall --purge on $FOLLOWER refused with its work dir linked to etcd's data or to /, nothing stopped or removed; linked elsewhere, removed as a link, its target and etcd's data kept; a failed first install left no failed unit or empty folder; a mask refused by install and --rollback and kept; --rollback then recreated the work dir, healthy"

# ----- rollout: non-leaders first, the master leading the most components last
# expected_last: that master (the later in the inventory among equals)
expected_last() {
    local n c best="" best_c=-1 kl sl
    kl=$(lease_holder_node "${NODES[@]}" || true)
    sl=$(lease_node kube-scheduler "${NODES[@]}" || true)
    for n in "${NODES[@]}"; do
        c=0
        [[ $n != "$kl" ]] || c=$((c + 1))
        [[ $n != "$sl" ]] || c=$((c + 1))
        if ((c >= best_c)); then
            best=$n
            best_c=$c
        fi
    done
    echo "$best"
}
lease_holder_node "${NODES[@]}" >/dev/null || fail "no kube-controller-manager leader before the rollout"
leader_now=$(expected_last)
plan=$(in_net "$KUBE_BUNDLE" rollout-plan -c "$CLUSTER/cluster-v2.toml" --kubeconfig "$E2E_KUBECONFIG" 2>&1) ||
    fail_with_details "kube-bundle rollout-plan failed" "$plan"
grep -q "^3\. $leader_now " <<<"$(tail -n 1 <<<"$plan")" ||
    fail_with_details "rollout-plan does not put $leader_now, which leads the most components, last" "$plan"
node_pids=""
for n in "${NODES[@]}"; do node_pids+="${NODE_IP[$n]}=$(node_pid "$n") "; done
t0=$(now)
out=$(in_net env E2E_NODE_PIDS="$node_pids" SSH="$HERE/node-ssh.sh" SCP="$HERE/node-scp.sh" \
    "$DIST/v2/rollout.sh" --kubeconfig "$E2E_KUBECONFIG" -- --stable 5 2>&1) || fail_with_details "rollout.sh of v2 failed" "$out"
printf '%s\n' "$out" >"$WORK/rollout.log"
last_step=$(grep -o '\[3/3\] [^ ]*' <<<"$out" | sed -n 1p)
[[ $last_step == "[3/3] $leader_now" ]] || fail_with_details "rollout.sh did not update $leader_now, which leads the most components, last" "$out"
grep -q "all 3 masters updated" <<<"$out" || fail_with_details "rollout.sh did not finish" "$out"
for n in "${NODES[@]}"; do
    [[ $(unit_sum "$n") == "$(bundle_unit_sum "$n" v2)" ]] || fail "$n does not run the v2 unit after the rollout"
done
assert_all_running "after the rollout"
# The leader restarted last: its lease runs out and one node takes it.
one_leader() {
    local lc
    lease_holder_node "${NODES[@]}" >/dev/null || return 1
    lc=$(leader_count)
    [[ -z $lc || $lc == 1 ]]
}
wait_until "$FAILOVER_TIMEOUT" 1 one_leader ||
    fail "no single leader ${FAILOVER_TIMEOUT}s after the rollout (holder '$(lease_holder || true)', $(leader_count) nodes report leader_election_master_status 1)"
pass "rollout-plan and rollout.sh updated all masters to v2 one at a time, $leader_now (leading the most components) last, in $(elapsed_since "$t0")s"

# ----- a binary that crashes 8 s after start, through rollout.sh with the default gate:
# the first master fails its gate and rolls back, the others are not touched (review D1)
t0=$(now)
rc=0
out=$(in_net env E2E_NODE_PIDS="$node_pids" SSH="$HERE/node-ssh.sh" SCP="$HERE/node-scp.sh" \
    "$DIST/crash/rollout.sh" --kubeconfig "$E2E_KUBECONFIG" 2>&1) || rc=$?
printf '%s\n' "$out" >"$WORK/rollout-crash.log"
((rc == 1)) || fail_with_details "rollout.sh of a binary that crashes after start exited $rc" "$out"
first=$(grep -o '\[1/3\] [^ ]*' <<<"$out" | sed -n 1p)
first=${first#\[1/3\] }
grep -q "$first: install.sh failed (it has put the previous release back); stopping the rollout, 2 master(s) not updated" <<<"$out" ||
    fail_with_details "rollout.sh did not stop after the crash on $first" "$out"
grep -qE "it was restarted by systemd|it is not running|it failed|its main process changed|healthz answers" <<<"$out" ||
    fail_with_details "the gate on $first did not name the crash" "$out"
for n in "${NODES[@]}"; do
    node_is_whole "$n" "$(bundle_unit_sum "$n" v2)" "after the crash rollout"
done
wait_until "$FAILOVER_TIMEOUT" 1 one_leader || fail "no single leader after the crash rollout"
pass "a binary crashing 8 s after start, rolled out: $first failed the default 15 s gate and rolled back, rollout stopped, all 3 on v2 and healthy ($(elapsed_since "$t0")s)"

# ----- a whole node powers off: the node leading the controller-manager (it stays down)
DOWN=$(lease_holder_node "${NODES[@]}") || DOWN=${NODES[0]}
mapfile -t SURVIVORS < <(others_than "$DOWN")
# shellcheck disable=SC2034  # read by k
K_SERVER=$(api_url "${SURVIVORS[0]}")
out=$(k create configmap e2e-before-down --from-literal=written="$SECRET_VALUE" 2>&1) ||
    fail_with_details "kubectl create configmap through ${SURVIVORS[0]} failed" "$out"
sched_was=$(lease_node kube-scheduler "${NODES[@]}" || echo none)
log "powering off $DOWN (leads kube-controller-manager; kube-scheduler is led by $sched_was)"
t0=$(now)
node_stop "$DOWN" 30 || fail "node $DOWN did not power off"
! node_pid "$DOWN" >/dev/null 2>&1 || fail "node $DOWN still runs after its poweroff"
on_survivor() { # on_survivor LEASE: its holder is one of the survivors
    local h
    h=$(lease_node "$1" "${NODES[@]}") || return 1
    [[ $h != "$DOWN" ]]
}
leases_on_survivors() { on_survivor kube-controller-manager && on_survivor kube-scheduler; }
wait_until "$FAILOVER_TIMEOUT" 0.5 leases_on_survivors ||
    fail "${FAILOVER_TIMEOUT}s after $DOWN powered off: kube-controller-manager lease held by '$(lease_holder || true)', kube-scheduler by '$(lease_holder kube-scheduler || true)', expected survivors ${SURVIVORS[*]}"
d=$(elapsed_since "$t0")
FAILOVER_S[node-down]="$DOWN off -> kube-controller-manager $(lease_holder_node "${NODES[@]}"), kube-scheduler $(lease_node kube-scheduler "${NODES[@]}") in ${d}s"
for n in "${SURVIVORS[@]}"; do
    apiserver_ready "$(api_url "$n")" "$CA" "$ADMIN" || fail "$n's apiserver is not ready after $DOWN powered off"
    got=$(K_SERVER=$(api_url "$n") k get configmap e2e-before-down -o 'jsonpath={.data.written}' 2>&1) || true
    [[ $got == "$SECRET_VALUE" ]] || fail "the ConfigMap written before $DOWN went down reads '$got' through $n"
    if ! kcm_running "$n" || ! sched_running "$n"; then
        fail "$KCM_UNIT or $SCHED_UNIT on $n is not running after $DOWN powered off"
    fi
done
code=$(https_code "$(api_url "$DOWN")/readyz" "$CA" "$ADMIN")
[[ $code == 000 ]] || fail "$DOWN's apiserver still answers (HTTP $code) after its node powered off"
out=$(etcd_ctl --endpoints "$(for n in "${SURVIVORS[@]}"; do etcd_url "$n"; echo; done | paste -sd, -)" endpoint health 2>&1) ||
    fail_with_details "etcd on ${SURVIVORS[*]} is not healthy after $DOWN powered off" "$out"
pass "$DOWN (the controller-manager leader) powered off: etcd keeps its quorum on ${SURVIVORS[*]}, which keep serving (apiservers ready, a ConfigMap written before reads back), both leases on survivors in ${d}s"

# ----- the node comes back: its member rejoins with its data and catches up
out=$(k create configmap e2e-while-down --from-literal=written="$SECRET_VALUE" 2>&1) ||
    fail_with_details "kubectl create configmap through ${SURVIVORS[0]} while $DOWN is down failed" "$out"
t0=$(now)
node_boot "$DOWN" "$DIST" "$WORK/node-$DOWN.console.log" "$WORK/etcd-$DOWN"
node_wait_booted "$DOWN" "$BOOT_TIMEOUT"
# Its root was volatile: the seal key and the bundle go in again; etcd's data dir is the host's.
deliver_seal_key "$DOWN"
install_on "$DOWN"
rc=$(cat "$WORK/install-$DOWN.rc")
((rc == 0)) || fail_with_details "install.sh on $DOWN after it came back exited $rc" "$(tail -n 40 "$WORK/install-$DOWN.log")"
grep -q "healthy for 15s; the node runs $STEM-$DOWN" "$WORK/install-$DOWN.log" ||
    fail_with_details "install.sh on $DOWN after it came back did not report its gate" "$(tail -n 40 "$WORK/install-$DOWN.log")"
# A serializable read is answered by the member itself, from its own data.
got=$(etcd_ctl --endpoints "$(etcd_url "$DOWN")" get /registry/configmaps/default/e2e-while-down --consistency=s --keys-only 2>&1) || true
[[ $got == /registry/configmaps/default/e2e-while-down* ]] ||
    fail_with_details "$DOWN's etcd member does not hold the ConfigMap written while it was down" "$got"
members=$(etcd_ctl member list 2>&1) || fail_with_details "etcdctl member list failed" "$members"
[[ $(grep -c ', started, ' <<<"$members") == 3 ]] || fail_with_details "etcd does not have 3 started members after $DOWN came back" "$members"
for cm in e2e-before-down e2e-while-down; do
    got=$(K_SERVER=$(api_url "$DOWN") k get configmap "$cm" -o 'jsonpath={.data.written}' 2>&1) || true
    [[ $got == "$SECRET_VALUE" ]] || fail "the ConfigMap $cm reads '$got' through $DOWN's apiserver after it came back"
done
pass "$DOWN booted again and installed its bundle: its etcd member rejoined with the data it kept (3 started members) and serves the ConfigMap written while it was down, from its own data; its apiserver serves both ConfigMaps ($(elapsed_since "$t0")s)"

# ----- install.sh again on every node, with the bundle it runs (v2 since the rollout;
# the original on the node that came back): nothing changes, nothing restarts
declare -A PIDS_BEFORE=()
main_pids() { # main_pids NODE: the MainPID of every unit of the bundle, one line
    local u
    for u in etcd.service "$KAS_UNIT" "$KCM_UNIT" "$SCHED_UNIT"; do
        node_exec "$1" systemctl show -p MainPID --value "$u"
    done | paste -sd' ' -
}
for n in "${NODES[@]}"; do PIDS_BEFORE[$n]=$(main_pids "$n"); done
for n in "${NODES[@]}"; do
    variant=v2
    [[ $n != "$DOWN" ]] || variant=""
    run_install "$n" "$variant" --stable 3 || fail_with_details "install.sh again on $n failed" "$INSTALL_OUT"
    grep -q "nothing changed: every file is up to date" <<<"$INSTALL_OUT" ||
        fail_with_details "install.sh again on $n changed something" "$INSTALL_OUT"
done
for n in "${NODES[@]}"; do
    [[ $(main_pids "$n") == "${PIDS_BEFORE[$n]}" ]] ||
        fail "a unit restarted on $n when install.sh ran again: MainPIDs ${PIDS_BEFORE[$n]} -> $(main_pids "$n")"
done
pass "install.sh again on all 3 nodes: nothing changed, every unit healthy, no MainPID changed"

# ----- a bundle that changes etcd's flags: a snapshot first, then the member restarts
# v2 (where the survivors are) with one more etcd flag. It also brings a replaced
# signing CA whose predecessor is already dropped (build --replace-csr-signer, then
# --drop-previous-csr-signer), so its kube-apiserver trusts only the new one. That
# happens in a copy of pki/, so the bundles built after it keep the cluster's signing
# CA and change only what they are about.
SIGNER_CLUSTER=$WORK/cluster-new-signer
mkdir -p "$SIGNER_CLUSTER"
cp -a "$CLUSTER/pki" "$SIGNER_CLUSTER/"
variant_toml etcdflags '' $'[kube-controller-manager.extra-args]\nv = 3\n[etcd.extra-args]\nsnapshot-count = 50000' >/dev/null
cp "$CLUSTER/cluster-etcdflags.toml" "$SIGNER_CLUSTER/cluster.toml"
OLD_SIGNER=$CLUSTER/pki
NEW_SIGNER=$SIGNER_CLUSTER/pki
out=$("$KUBE_BUNDLE" build -c "$SIGNER_CLUSTER/cluster.toml" -o "$WORK/dist-signer-replaced" --replace-csr-signer 2>&1) ||
    fail_with_details "kube-bundle build --replace-csr-signer failed" "$out"
[[ $(openssl pkey -in "$OLD_SIGNER/csr-signer-key.pem" -pubout) != "$(openssl pkey -in "$NEW_SIGNER/csr-signer-key.pem" -pubout)" ]] ||
    fail "kube-bundle build --replace-csr-signer kept the signing CA's key"
[[ $(cat "$WORK/dist-signer-replaced/client-ca.pem") == "$(cat "$CA" "$NEW_SIGNER/csr-signer.pem" "$OLD_SIGNER/csr-signer.pem")" ]] ||
    fail_with_details "client-ca.pem after --replace-csr-signer is not the root, the new and the old signing CA" "$out"
build_variant etcdflags "$SIGNER_CLUSTER/cluster.toml" --drop-previous-csr-signer
[[ $(cat "$WORK/dist-etcdflags/client-ca.pem") == "$(cat "$CA" "$NEW_SIGNER/csr-signer.pem")" ]] ||
    fail "client-ca.pem after --drop-previous-csr-signer is not the root and the new signing CA"
SNAP_NODE=${SURVIVORS[0]}
run_install "$SNAP_NODE" etcdflags --stable 5 ||
    fail_with_details "installing the bundle with new etcd flags on $SNAP_NODE failed" "$INSTALL_OUT"
snapshot=$(sed -n "s|.*saved a snapshot of etcd's data in \(/var/backups/kube-bundle/etcd-snapshot-[^ ]*\.db\).*|\1|p" <<<"$INSTALL_OUT" | head -n 1)
[[ -n $snapshot ]] || fail_with_details "install.sh on $SNAP_NODE did not save an etcd snapshot before changing etcd's flags" "$INSTALL_OUT"
node_exec "$SNAP_NODE" cat "$snapshot" >"$WORK/etcd-snapshot.db" || fail "cannot read $snapshot on $SNAP_NODE"
status=$(ETCDCTL_API=3 etcdctl snapshot status "$WORK/etcd-snapshot.db" -w simple 2>&1) ||
    fail_with_details "etcdctl snapshot status of $snapshot from $SNAP_NODE failed" "$status"
node_exec "$SNAP_NODE" grep -q -- '--snapshot-count=50000' /etc/systemd/system/etcd.service ||
    fail "the new etcd flag is not in $SNAP_NODE's unit"
out=$(etcd_ctl endpoint health --cluster 2>&1) || fail_with_details "etcd is not healthy after $SNAP_NODE's member restarted" "$out"
pass "a bundle changing etcd's flags on $SNAP_NODE: install.sh saved $snapshot first (etcdctl snapshot status: $status), restarted the member, and the cluster is healthy"

# ----- the replaced and dropped signing CA: a system:masters client certificate minted
# with its key gets 401 from $SNAP_NODE (with or without the old signing CA as chain),
# while a master that still runs the earlier bundle accepts it; one minted with the new
# key authenticates at $SNAP_NODE.
SECRETS_PATH=/api/v1/namespaces/kube-system/secrets
OLD_TRUSTER=${SURVIVORS[1]}
sign_cert "$OLD_SIGNER/csr-signer.pem" "$OLD_SIGNER/csr-signer-key.pem" "$FORGED/evil-old" /O=system:masters/CN=evil client
cat "$FORGED/evil-old.pem" "$OLD_SIGNER/csr-signer.pem" >"$FORGED/evil-old-chain.pem"
cp "$FORGED/evil-old-key.pem" "$FORGED/evil-old-chain-key.pem"
sign_cert "$NEW_SIGNER/csr-signer.pem" "$NEW_SIGNER/csr-signer-key.pem" "$FORGED/evil-new" /O=system:masters/CN=evil client
signer_codes="old key at $OLD_TRUSTER (earlier bundle) $(https_code "$(api_url "$OLD_TRUSTER")$SECRETS_PATH" "$CA" "$FORGED/evil-old")"
signer_codes+=", old key at $SNAP_NODE $(https_code "$(api_url "$SNAP_NODE")$SECRETS_PATH" "$CA" "$FORGED/evil-old")"
signer_codes+=", old key with its signing CA as chain at $SNAP_NODE $(https_code "$(api_url "$SNAP_NODE")$SECRETS_PATH" "$CA" "$FORGED/evil-old-chain")"
signer_codes+=", new key at $SNAP_NODE $(https_code "$(api_url "$SNAP_NODE")$SECRETS_PATH" "$CA" "$FORGED/evil-new")"
[[ $signer_codes == "old key at $OLD_TRUSTER (earlier bundle) 200, old key at $SNAP_NODE 401, old key with its signing CA as chain at $SNAP_NODE 401, new key at $SNAP_NODE 200" ]] ||
    fail "client certificates (CN evil, O system:masters) minted with the replaced and the new signing key, GET $SECRETS_PATH: $signer_codes"
pass "signing CA replaced and the old one dropped: a system:masters client certificate minted with the old key gets 401 from $SNAP_NODE's kube-apiserver (also with the old signing CA as chain; 200 at $OLD_TRUSTER, which still runs the earlier bundle), one minted with the new key authenticates"

# ----- a kube-apiserver that does not start: the node goes back like for any unit
BAD_NODE=${SURVIVORS[1]}
build_variant badkas "$(variant_toml badkas '' $'[kube-controller-manager.extra-args]\nv = 3\n[kube-apiserver.extra-args]\nmax-requests-inflight = "many"')"
kas_unit_before=$(node_exec "$BAD_NODE" sha256sum /etc/systemd/system/$KAS_UNIT | cut -d' ' -f1)
if run_install "$BAD_NODE" badkas --timeout 30 --stable 3; then
    fail_with_details "a kube-apiserver that cannot start installed on $BAD_NODE" "$INSTALL_OUT"
fi
grep -qF "the previous release is back in place" <<<"$INSTALL_OUT" ||
    fail_with_details "install.sh on $BAD_NODE did not put the previous release back after kube-apiserver failed" "$INSTALL_OUT"
! grep -q "restarted $KCM_UNIT" <<<"$INSTALL_OUT" ||
    fail_with_details "install.sh on $BAD_NODE restarted the controller-manager although kube-apiserver never became healthy" "$INSTALL_OUT"
[[ $(node_exec "$BAD_NODE" sha256sum /etc/systemd/system/$KAS_UNIT | cut -d' ' -f1) == "$kas_unit_before" ]] ||
    fail "kube-apiserver's unit on $BAD_NODE is not the previous one after the rollback"
wait_until 60 1 apiserver_ready "$(api_url "$BAD_NODE")" "$CA" "$ADMIN" ||
    fail_with_details "$BAD_NODE's kube-apiserver is not ready after the rollback" "$(kas_journal "$BAD_NODE" 20)"
pass "a kube-apiserver that cannot start (a flag value it refuses) on $BAD_NODE: install.sh stopped before the controller-manager and scheduler, put the previous release back, and its apiserver serves again"

# ----- another encryption key (pki/encryption-key lost and made anew): that apiserver
# starts and its /healthz says ok, but it cannot read a Secret; the gate waits for
# /readyz, fails and puts the node back (review part 3, row 2)
cp -a "$CLUSTER/pki" "$WORK/pki-wrongkey"
head -c 32 /dev/urandom | base64 >"$WORK/pki-wrongkey/encryption-key"
build_variant wrongkey "$(variant_toml wrongkey "/^key-algorithm = /a dir = \"$WORK/pki-wrongkey\"" $'[kube-controller-manager.extra-args]\nv = 3')"
ENCRYPTION_CONFIG=/etc/kubernetes/encryption-config.yaml
# The encryption config is sealed: opened here with the node's seal key, as install.sh does.
tar -xzOf "$DIST/wrongkey/$STEM-$BAD_NODE.tar.gz" "$STEM-$BAD_NODE/sealed$ENCRYPTION_CONFIG.enc" |
    openssl enc -d -aes-256-cbc -pbkdf2 -iter 1 -md sha256 -pass "file:$WORK/pki-wrongkey/$BAD_NODE/seal.key" |
    grep -qF "secret: $(cat "$WORK/pki-wrongkey/encryption-key")" ||
    fail "the wrongkey bundle for $BAD_NODE does not carry the other key"
enc_before=$(node_sum "$BAD_NODE" "$ENCRYPTION_CONFIG")
t0=$(now)
if run_install "$BAD_NODE" wrongkey --stable 5; then
    fail_with_details "a kube-apiserver with another encryption key passed the gate on $BAD_NODE" "$INSTALL_OUT"
fi
readyz_said=$(grep -o "$KAS_UNIT is not healthy: $(api_url "$BAD_NODE")/readyz answers '[^']*'" <<<"$INSTALL_OUT" | head -n 1)
[[ -n $readyz_said ]] ||
    fail_with_details "install.sh on $BAD_NODE did not fail kube-apiserver's gate on /readyz" "$INSTALL_OUT"
grep -q "rolled back to the previous release, which is running and healthy" <<<"$INSTALL_OUT" ||
    fail_with_details "install.sh on $BAD_NODE did not roll the other encryption key back" "$INSTALL_OUT"
[[ $(node_sum "$BAD_NODE" "$ENCRYPTION_CONFIG") == "$enc_before" ]] ||
    fail "$BAD_NODE does not have its previous encryption configuration back"
wait_until 60 1 apiserver_ready "$(api_url "$BAD_NODE")" "$CA" "$ADMIN" ||
    fail_with_details "$BAD_NODE's kube-apiserver is not ready after the rollback" "$(kas_journal "$BAD_NODE" 20)"
got=$(K_SERVER=$(api_url "$BAD_NODE") k get secret e2e-secret -o 'jsonpath={.data.password}' 2>&1 | base64 -d 2>&1) || true
[[ $got == "$SECRET_VALUE" ]] || fail "after the rollback the Secret reads '$got' through $BAD_NODE's apiserver, expected '$SECRET_VALUE'"
SUMMARY_NOTES+=("another encryption key on $BAD_NODE: ${readyz_said#"$KAS_UNIT is not healthy: "}")
pass "another encryption key on $BAD_NODE: its kube-apiserver failed the /readyz gate ($readyz_said), the node went back in $(elapsed_since "$t0")s, and its apiserver serves the Secret written before in clear"

# ----- the host's own network: no address or route was added, changed or removed
[[ $(host_net) == "$HOST_NET_BEFORE" ]] ||
    fail_with_details "the host's IPv4 addresses or routes changed during the run" "$(diff <(printf '%s\n' "$HOST_NET_BEFORE") <(host_net))"
pass "the host's own IPv4 addresses and routes are as before the run: the nodes' network ($E2E_NET_PREFIX.0/24) lives only in the test's namespaces"

log "all checks passed"
