#!/usr/bin/env bash
# `make bench`: kube-bundle against the tutorial's own flow, side by side on this machine.
# What it measures and the numbers it gave: docs/benchmarks.md.
#
# The tutorial's flow, per build: cfssl + cfssljson for the CA (fresh pki only) and for the
# controller-manager certificate (one for every master, as the tutorial makes it), the four
# `kubectl config` commands, then for each master `sed` of the kubeconfig and of the unit
# template and `tar czf` of its files (and the binary, when there is one). The "both" case
# adds the scheduler's chapter: cfssl for its certificate, its four `kubectl config`
# commands, `sed` of its unit and config per master, and both binaries in each tarball.
# The "all" case is the whole control plane from one inventory: it adds the tutorial's
# chapter 04 (cfssl for the etcd certificate, `sed` of the etcd unit per master) and
# chapter 05-2 (cfssl for the kubernetes-master and proxy-client certificates, the
# encryption config and audit policy, `sed` of the kube-apiserver unit per master), and
# each master's tarball carries etcd, etcdctl, kube-apiserver, kube-controller-manager
# and kube-scheduler. The tutorial copies with scp; here `tar czf` per master stands for
# the copy.
# "rebuild" means the PKI exists: kube-bundle reuses pki/; the tutorial flow skips the
# cfssl steps (and keeps its encryption key) and redoes the rest.
#
# Beside them, in the same runs, two limits no builder can beat on this machine: `pigz`
# on every core over the case's binaries plus writing one copy of the compressed bytes
# per master (the compression limit: each binary deflated once, no tar, no PKI), and a
# plain `cp -r` of kube-bundle's output folder (the rebuild limit: the bytes written once
# more, nothing computed). The table gives kube-bundle's time as a multiple of each.
# kube-bundle keeps its member cache in the scratch folder (KUBE_BUNDLE_CACHE), so a
# fresh build (new pki/, whose CA key the cache is keyed by) compresses every binary and
# a rebuild reuses them.
#
# Runs alternate kube-bundle with the tutorial flow and the two limits, swapping which
# goes first every run. Time is wall clock; peak RSS is /usr/bin/time's maximum resident
# set of the largest process of the run. Each row records the 1-minute load average
# before its first run and after its last.
#
# Environment:
#   KUBE_BUNDLE   the kube-bundle binary (default: target/release/kube-bundle)
#   BENCH_RUNS    runs per case (default 3)
#   BENCH_NODES   master counts (default "3 30")
#   BENCH_BINARY  the ~100 MB binary (default: the end-to-end cache's
#                 kube-controller-manager, else a generated file of real executables)
#   BENCH_SCHEDULER_BINARY  the scheduler's binary for "both" and "all" (default: the
#                 cache's kube-scheduler, else a generated file of half the size)
#   BENCH_APISERVER_BINARY, BENCH_ETCD_BINARY, BENCH_ETCDCTL_BINARY  the other binaries
#                 of the "all" case (default: the cache's kube-apiserver, Debian's
#                 /usr/bin/etcd and /usr/bin/etcdctl, else generated files of the
#                 binary's size, a quarter and a quarter)
#   BENCH_CASES   which cases to run, of "none binary both all" (default: all four)
#   BENCH_LARGE_RUNS  runs per case for 10 or more masters in the "both" and "all" cases,
#                 whose tutorial flow takes minutes a run (default 1)
#   BENCH_BINARY_MB  size of a generated binary (default 100); generated binaries carry
#                 no release stamp, so their sections say `binary-check = false`
#   BENCH_DIR     scratch folder (default: a new temporary folder, removed at the end)
#   BENCH_TUTORIAL  0 leaves the tutorial flow out (its columns show `-`); the limits and
#                 kube-bundle are still measured side by side (default 1)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$ROOT/scripts/bench.sh
KUBE_BUNDLE=${KUBE_BUNDLE:-$ROOT/target/release/kube-bundle}
RUNS=${BENCH_RUNS:-3}
NODES=${BENCH_NODES:-3 30}
BINARY_MB=${BENCH_BINARY_MB:-100}
CASES=${BENCH_CASES:-none binary both all}
LARGE_RUNS=${BENCH_LARGE_RUNS:-1}
TUTORIAL=${BENCH_TUTORIAL:-1}
# kube-bundle's peak RSS must stay under this, whatever the case.
RSS_LIMIT_MIB=64
CACHED_KCM=/var/cache/kube-bundle/k8s-v1.20.2/kube-controller-manager
CACHED_KS=/var/cache/kube-bundle/k8s-v1.20.2/kube-scheduler
CACHED_KAS=/var/cache/kube-bundle/k8s-v1.20.2/kube-apiserver
DEBIAN_ETCD=/usr/bin/etcd
DEBIAN_ETCDCTL=/usr/bin/etcdctl

die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}
# shellcheck source-path=SCRIPTDIR source=stand-in.sh
. "$ROOT/scripts/stand-in.sh"

# --- the tutorial's flow --------------------------------------------------------------

# tutorial DIR N CASE fresh|rebuild [BINARY...]: the tutorial's chapters for CASE (05-3
# always, 05-4 with "both" and "all", 04 and 05-2 with "all"), each master's files and
# every BINARY in one tarball per master.
tutorial() {
    local dir=$1 n=$2 with=$3 mode=$4 i ip hosts etcd_nodes='' etcd_endpoints='' node_dir b
    shift 4
    local bins=("$@") ks=false all=false
    if [[ $with == both || $with == all ]]; then ks=true; fi
    if [[ $with == all ]]; then all=true; fi
    cd "$dir"
    # environment.sh: the masters' IPs, and from them etcd's two lists.
    hosts='"127.0.0.1"'
    for ((i = 1; i <= n; i++)); do
        ip="10.0.$((i / 200)).$((i % 200 + 1))"
        hosts+=",\"$ip\""
        etcd_nodes+="${etcd_nodes:+,}m$i=https://$ip:2380"
        etcd_endpoints+="${etcd_endpoints:+,}https://$ip:2379"
    done
    if [[ $mode == fresh ]]; then
        cat >ca-config.json <<'EOF'
{"signing":{"default":{"expiry":"87600h"},"profiles":{"kubernetes":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"876000h"}}}}
EOF
        cat >ca-csr.json <<'EOF'
{"CN":"kubernetes-ca","key":{"algo":"rsa","size":2048},"names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"k8s","OU":"opsnull"}],"ca":{"expiry":"876000h"}}
EOF
        cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
        if $all; then
            # Chapter 04: one etcd certificate for every member.
            cat >etcd-csr.json <<EOF
{"CN":"etcd","hosts":[$hosts],"key":{"algo":"rsa","size":2048},
 "names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"k8s","OU":"opsnull"}]}
EOF
            cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes \
                etcd-csr.json 2>/dev/null | cfssljson -bare etcd
            # Chapter 05-2: the kubernetes-master certificate (masters, the service IP and
            # names), then the aggregator's proxy-client certificate.
            cat >kubernetes-csr.json <<EOF
{"CN":"kubernetes-master","hosts":[$hosts,"10.254.0.1","kubernetes","kubernetes.default",
 "kubernetes.default.svc","kubernetes.default.svc.cluster","kubernetes.default.svc.cluster.local."],
 "key":{"algo":"rsa","size":2048},
 "names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"k8s","OU":"opsnull"}]}
EOF
            cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes \
                kubernetes-csr.json 2>/dev/null | cfssljson -bare kubernetes
            cat >proxy-client-csr.json <<'EOF'
{"CN":"aggregator","hosts":[],"key":{"algo":"rsa","size":2048},
 "names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"k8s","OU":"opsnull"}]}
EOF
            cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes \
                proxy-client-csr.json 2>/dev/null | cfssljson -bare proxy-client
            # environment.sh's ENCRYPTION_KEY, kept like the pki.
            head -c 32 /dev/urandom | base64 >encryption-key
        fi
        cat >kube-controller-manager-csr.json <<EOF
{"CN":"system:kube-controller-manager","key":{"algo":"rsa","size":2048},"hosts":[$hosts],
 "names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"system:kube-controller-manager","OU":"opsnull"}]}
EOF
        cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes \
            kube-controller-manager-csr.json 2>/dev/null | cfssljson -bare kube-controller-manager
        if $ks; then
            cat >kube-scheduler-csr.json <<EOF
{"CN":"system:kube-scheduler","key":{"algo":"rsa","size":2048},"hosts":[$hosts],
 "names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"system:kube-scheduler","OU":"opsnull"}]}
EOF
            cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes \
                kube-scheduler-csr.json 2>/dev/null | cfssljson -bare kube-scheduler
        fi
    fi
    if $all; then
        cat >etcd.service.template <<EOF
[Unit]
Description=Etcd Server
After=network.target
After=network-online.target
Wants=network-online.target
[Service]
Type=notify
WorkingDirectory=/data/k8s/etcd/data
ExecStart=/opt/k8s/bin/etcd \\
  --data-dir=/data/k8s/etcd/data \\
  --wal-dir=/data/k8s/etcd/wal \\
  --name=##NODE_NAME## \\
  --cert-file=/etc/etcd/cert/etcd.pem \\
  --key-file=/etc/etcd/cert/etcd-key.pem \\
  --trusted-ca-file=/etc/kubernetes/cert/ca.pem \\
  --peer-cert-file=/etc/etcd/cert/etcd.pem \\
  --peer-key-file=/etc/etcd/cert/etcd-key.pem \\
  --peer-trusted-ca-file=/etc/kubernetes/cert/ca.pem \\
  --peer-client-cert-auth \\
  --client-cert-auth \\
  --listen-peer-urls=https://##NODE_IP##:2380 \\
  --initial-advertise-peer-urls=https://##NODE_IP##:2380 \\
  --listen-client-urls=https://##NODE_IP##:2379,http://127.0.0.1:2379 \\
  --advertise-client-urls=https://##NODE_IP##:2379 \\
  --initial-cluster-token=etcd-cluster-0 \\
  --initial-cluster=$etcd_nodes \\
  --initial-cluster-state=new \\
  --auto-compaction-mode=periodic \\
  --auto-compaction-retention=1 \\
  --max-request-bytes=33554432 \\
  --quota-backend-bytes=6442450944 \\
  --heartbeat-interval=250 \\
  --election-timeout=2000
Restart=on-failure
RestartSec=5
LimitNOFILE=65536
[Install]
WantedBy=multi-user.target
EOF
        cat >encryption-config.yaml <<EOF
kind: EncryptionConfig
apiVersion: v1
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: $(cat encryption-key)
      - identity: {}
EOF
        # The tutorial's audit policy (its heredoc), as kube-bundle carries it.
        cat >audit-policy.yaml <"$ROOT/bundle-templates/audit-policy.yaml.hbs"
        cat >kube-apiserver.service.template <<EOF
[Unit]
Description=Kubernetes API Server
After=network.target
[Service]
WorkingDirectory=/data/k8s/k8s/kube-apiserver
ExecStart=/opt/k8s/bin/kube-apiserver \\
  --advertise-address=##NODE_IP## \\
  --default-not-ready-toleration-seconds=360 \\
  --default-unreachable-toleration-seconds=360 \\
  --max-mutating-requests-inflight=2000 \\
  --max-requests-inflight=4000 \\
  --default-watch-cache-size=200 \\
  --delete-collection-workers=2 \\
  --encryption-provider-config=/etc/kubernetes/encryption-config.yaml \\
  --etcd-cafile=/etc/kubernetes/cert/ca.pem \\
  --etcd-certfile=/etc/kubernetes/cert/kubernetes.pem \\
  --etcd-keyfile=/etc/kubernetes/cert/kubernetes-key.pem \\
  --etcd-servers=$etcd_endpoints \\
  --bind-address=##NODE_IP## \\
  --secure-port=6443 \\
  --tls-cert-file=/etc/kubernetes/cert/kubernetes.pem \\
  --tls-private-key-file=/etc/kubernetes/cert/kubernetes-key.pem \\
  --audit-log-maxage=15 \\
  --audit-log-maxbackup=3 \\
  --audit-log-maxsize=100 \\
  --audit-log-truncate-enabled \\
  --audit-log-path=/data/k8s/k8s/kube-apiserver/audit.log \\
  --audit-policy-file=/etc/kubernetes/audit-policy.yaml \\
  --profiling \\
  --anonymous-auth=false \\
  --client-ca-file=/etc/kubernetes/cert/ca.pem \\
  --enable-bootstrap-token-auth \\
  --requestheader-allowed-names="aggregator" \\
  --requestheader-client-ca-file=/etc/kubernetes/cert/ca.pem \\
  --requestheader-extra-headers-prefix="X-Remote-Extra-" \\
  --requestheader-group-headers=X-Remote-Group \\
  --requestheader-username-headers=X-Remote-User \\
  --service-account-key-file=/etc/kubernetes/cert/ca.pem \\
  --authorization-mode=Node,RBAC \\
  --runtime-config=api/all=true \\
  --enable-admission-plugins=NodeRestriction \\
  --allow-privileged=true \\
  --apiserver-count=$n \\
  --event-ttl=168h \\
  --kubelet-certificate-authority=/etc/kubernetes/cert/ca.pem \\
  --kubelet-client-certificate=/etc/kubernetes/cert/kubernetes.pem \\
  --kubelet-client-key=/etc/kubernetes/cert/kubernetes-key.pem \\
  --kubelet-timeout=10s \\
  --proxy-client-cert-file=/etc/kubernetes/cert/proxy-client.pem \\
  --proxy-client-key-file=/etc/kubernetes/cert/proxy-client-key.pem \\
  --service-cluster-ip-range=10.254.0.0/16 \\
  --service-node-port-range=30000-32767 \\
  --logtostderr=true \\
  --v=2
Restart=on-failure
RestartSec=10
Type=notify
LimitNOFILE=65536
[Install]
WantedBy=multi-user.target
EOF
    fi
    if $ks; then
        rm -f kube-scheduler.kubeconfig
        kubectl config set-cluster kubernetes --certificate-authority=ca.pem --embed-certs=true \
            --server="https://##NODE_IP##:6443" --kubeconfig=kube-scheduler.kubeconfig >/dev/null
        kubectl config set-credentials system:kube-scheduler \
            --client-certificate=kube-scheduler.pem --client-key=kube-scheduler-key.pem \
            --embed-certs=true --kubeconfig=kube-scheduler.kubeconfig >/dev/null
        kubectl config set-context system:kube-scheduler --cluster=kubernetes \
            --user=system:kube-scheduler --kubeconfig=kube-scheduler.kubeconfig >/dev/null
        kubectl config use-context system:kube-scheduler --kubeconfig=kube-scheduler.kubeconfig >/dev/null
        cat >kube-scheduler.yaml.template <<'EOF'
apiVersion: kubescheduler.config.k8s.io/v1beta1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: "/etc/kubernetes/kube-scheduler.kubeconfig"
leaderElection:
  leaderElect: true
healthzBindAddress: ##NODE_IP##:10251
EOF
        cat >kube-scheduler.service.template <<'EOF'
[Unit]
Description=Kubernetes Scheduler
[Service]
WorkingDirectory=/data/k8s/k8s/kube-scheduler
ExecStart=/opt/k8s/bin/kube-scheduler \
  --config=/etc/kubernetes/kube-scheduler.yaml \
  --bind-address=##NODE_IP## \
  --tls-cert-file=/etc/kubernetes/cert/kube-scheduler.pem \
  --tls-private-key-file=/etc/kubernetes/cert/kube-scheduler-key.pem
Restart=always
[Install]
WantedBy=multi-user.target
EOF
    fi
    rm -f kube-controller-manager.kubeconfig
    kubectl config set-cluster kubernetes --certificate-authority=ca.pem --embed-certs=true \
        --server="https://##NODE_IP##:6443" --kubeconfig=kube-controller-manager.kubeconfig >/dev/null
    kubectl config set-credentials system:kube-controller-manager \
        --client-certificate=kube-controller-manager.pem --client-key=kube-controller-manager-key.pem \
        --embed-certs=true --kubeconfig=kube-controller-manager.kubeconfig >/dev/null
    kubectl config set-context system:kube-controller-manager --cluster=kubernetes \
        --user=system:kube-controller-manager --kubeconfig=kube-controller-manager.kubeconfig >/dev/null
    kubectl config use-context system:kube-controller-manager \
        --kubeconfig=kube-controller-manager.kubeconfig >/dev/null
    cat >kube-controller-manager.service.template <<'EOF'
[Unit]
Description=Kubernetes Controller Manager
[Service]
WorkingDirectory=/data/k8s/k8s/kube-controller-manager
ExecStart=/opt/k8s/bin/kube-controller-manager \
  --bind-address=##NODE_IP## \
  --kubeconfig=/etc/kubernetes/kube-controller-manager.kubeconfig \
  --tls-cert-file=/etc/kubernetes/cert/kube-controller-manager.pem \
  --tls-private-key-file=/etc/kubernetes/cert/kube-controller-manager-key.pem \
  --leader-elect=true --cluster-name=##NODE_NAME##
Restart=on-failure
[Install]
WantedBy=multi-user.target
EOF
    rm -rf out
    node_dir=kube-controller-manager
    if $all; then node_dir=control-plane; fi
    # tar's -C DIR FILE for every binary, beside each master's folder.
    local tar_bins=()
    for b in "${bins[@]}"; do
        tar_bins+=(-C "$(dirname "$b")" "$(basename "$b")")
    done
    for ((i = 1; i <= n; i++)); do
        local name=m$i d
        ip="10.0.$((i / 200)).$((i % 200 + 1))"
        d=out/$node_dir-$name
        mkdir -p "$d/cert"
        sed -e "s/##NODE_IP##/$ip/" kube-controller-manager.kubeconfig >"$d/kube-controller-manager.kubeconfig"
        sed -e "s/##NODE_NAME##/$name/" -e "s/##NODE_IP##/$ip/" \
            kube-controller-manager.service.template >"$d/kube-controller-manager.service"
        cp ca.pem ca-key.pem kube-controller-manager.pem kube-controller-manager-key.pem "$d/cert/"
        if $ks; then
            sed -e "s/##NODE_IP##/$ip/" kube-scheduler.kubeconfig >"$d/kube-scheduler.kubeconfig"
            sed -e "s/##NODE_IP##/$ip/" kube-scheduler.yaml.template >"$d/kube-scheduler.yaml"
            sed -e "s/##NODE_IP##/$ip/" kube-scheduler.service.template >"$d/kube-scheduler.service"
            cp kube-scheduler.pem kube-scheduler-key.pem "$d/cert/"
        fi
        if $all; then
            mkdir -p "$d/etcd-cert"
            sed -e "s/##NODE_NAME##/$name/" -e "s/##NODE_IP##/$ip/" etcd.service.template >"$d/etcd.service"
            sed -e "s/##NODE_NAME##/$name/" -e "s/##NODE_IP##/$ip/" \
                kube-apiserver.service.template >"$d/kube-apiserver.service"
            cp etcd.pem etcd-key.pem "$d/etcd-cert/"
            cp kubernetes.pem kubernetes-key.pem proxy-client.pem proxy-client-key.pem "$d/cert/"
            cp encryption-config.yaml audit-policy.yaml "$d/"
        fi
        tar czf "$d.tar.gz" -C out "$node_dir-$name" "${tar_bins[@]}"
    done
}

# --- kube-bundle ----------------------------------------------------------------------

# inventory DIR N CASE: kube-bundle's inventory for CASE, with the binaries chosen below.
inventory() {
    local dir=$1 n=$2 with=$3 i
    mkdir -p "$dir"
    {
        printf '[cluster]\nkubernetes-version = "1.20.2"\nservice-cidr = "10.254.0.0/16"\n'
        printf 'cluster-cidr = "172.30.0.0/16"\n\n[pki]\nC = "CN"\nST = "BeiJing"\nL = "BeiJing"\nOU = "opsnull"\n'
        if [[ $with == all ]]; then
            printf '\n[etcd]\nversion = "3.4"\nbinary = "%s"\netcdctl = "%s"\n' "$etcd_binary" "$etcdctl_binary"
            unread "$etcd_binary" "$etcdctl_binary"
            printf '\n[kube-apiserver]\nbinary = "%s"\n' "$kas_binary"
            unread "$kas_binary"
        fi
        if [[ $with != none ]]; then
            printf '\n[kube-controller-manager]\nbinary = "%s"\n' "$binary"
            unread "$binary"
        fi
        if [[ $with == both || $with == all ]]; then
            printf '\n[kube-scheduler]\nbinary = "%s"\n' "$ks_binary"
            unread "$ks_binary"
        fi
        for ((i = 1; i <= n; i++)); do
            printf '\n[[nodes]]\nname = "m%d"\nip = "10.0.%d.%d"\n' "$i" "$((i / 200))" "$((i % 200 + 1))"
        done
    } >"$dir/cluster.toml"
}

# --- measuring ------------------------------------------------------------------------

# measure OUT_PREFIX DIR fresh|rebuild COMMAND...: runs COMMAND and appends its
# milliseconds and peak KiB to OUT_PREFIX.{ms,kib}. Each flow runs as a user would run
# it: kube-bundle as one command, the tutorial's flow as a shell script.
measure() {
    local out=$1 dir=$2 mode=$3 start end
    shift 3
    # Outside the timed part: a fresh build starts from an empty folder.
    if [[ $mode == fresh ]]; then
        find "${dir:?}" -mindepth 1 -maxdepth 1 ! -name cluster.toml -exec rm -rf {} +
    fi
    start=$EPOCHREALTIME
    /usr/bin/time -f %M -o "$out.rss" "$@" >/dev/null || die "run failed: $*"
    end=$EPOCHREALTIME
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", (e - s) * 1000 }' >>"$out.ms"
    tail -n 1 "$out.rss" >>"$out.kib"
}

# pigz_limit DIR N [BINARY...]: each BINARY deflated once by pigz at gzip's default
# level on every core, then one copy of all of them written per master.
pigz_limit() {
    local dir=$1 n=$2 i b=0 bin parts=()
    shift 2
    for bin in "$@"; do
        b=$((b + 1))
        pigz -6 -n -p "$(nproc)" -c "$bin" >"$dir/$b.gz"
        parts+=("$dir/$b.gz")
    done
    for ((i = 1; i <= n; i++)); do
        cat /dev/null "${parts[@]}" >"$dir/node-$i"
    done
}

# copy_limit FROM TO: the output folder copied as it is.
copy_limit() { cp -r "$1" "$2"; }

# limit OUT_PREFIX WORK_DIR FUNCTION ARGS...: times FUNCTION in a fresh WORK_DIR.
limit() {
    local out=$1 dir=$2
    shift 2
    rm -rf "${dir:?}"
    mkdir -p "$dir"
    measure "$out" "$dir" rebuild bash "$SELF" __run "$@"
}

load() { cut -d ' ' -f 1 /proc/loadavg; }

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'; }
peak() { sort -n "$1" | tail -n 1; }

# Targets from the issue: minimum ratio per case.
target() {
    case "$1/$2/$3" in
        3/none/fresh) echo 4 ;;
        3/none/rebuild) echo 20 ;;
        3/binary/* | 3/both/* | 3/all/*) echo 5 ;;
        30/binary/* | 30/both/* | 30/all/*) echo 25 ;;
        *) echo - ;;
    esac
}

# The tutorial's flow runs as this script again, so /usr/bin/time sees the whole run.
if [[ ${1:-} == __run ]]; then
    shift
    "$@"
    exit
fi

for with in $CASES; do
    case $with in
        none | binary | both | all) ;;
        *) die "unknown case \`$with\` in BENCH_CASES; the cases are none, binary, both and all" ;;
    esac
done
[[ $TUTORIAL == [01] ]] || die "BENCH_TUTORIAL must be 0 or 1"
[[ $RUNS =~ ^[1-9][0-9]*$ && $LARGE_RUNS =~ ^[1-9][0-9]*$ ]] ||
    die "BENCH_RUNS and BENCH_LARGE_RUNS must be positive numbers"
[[ -n ${CASES// /} && -n ${NODES// /} ]] || die "BENCH_CASES and BENCH_NODES must not be empty"

for tool in cfssl cfssljson kubectl sed tar gzip pigz cp /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 || die "\`$tool\` is missing; run \`make deps\` as root"
done
[[ -x $KUBE_BUNDLE ]] || die "no kube-bundle binary at \`$KUBE_BUNDLE\`; run \`cargo build --release\`"

if [[ -n ${BENCH_DIR:-} ]]; then
    WORK=$BENCH_DIR
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
export KUBE_BUNDLE_CACHE=${KUBE_BUNDLE_CACHE:-$WORK/member-cache}

# The binary: the real one when the end-to-end cache has it, else real executables
# concatenated, which compress like one.
binary=${BENCH_BINARY:-}
if [[ -z $binary && $BINARY_MB == 100 && -f $CACHED_KCM ]]; then
    binary=$CACHED_KCM
elif [[ -z $binary ]]; then
    binary=$WORK/generated-binary
    stand_in "$binary" "$((BINARY_MB << 20))"
fi
wants() { [[ " $CASES " == *" $1 "* ]]; }
ks_binary=${BENCH_SCHEDULER_BINARY:-}
if ! wants both && ! wants all; then
    ks_binary=-
elif [[ -z $ks_binary && -z ${BENCH_BINARY:-} && $BINARY_MB == 100 && -f $CACHED_KS ]]; then
    ks_binary=$CACHED_KS
elif [[ -z $ks_binary ]]; then
    # Another stand-in, from the other end of the same executables.
    ks_binary=$WORK/generated-scheduler
    stand_in "$ks_binary" "$((BINARY_MB << 19))" -r
fi
# The "all" case's other binaries: the cache's kube-apiserver and Debian's etcd 3.4, else
# stand-ins that start where the ones before end, so no two are alike.
kas_binary=${BENCH_APISERVER_BINARY:-}
etcd_binary=${BENCH_ETCD_BINARY:-}
etcdctl_binary=${BENCH_ETCDCTL_BINARY:-}
if wants all; then
    real=false
    if [[ -z ${BENCH_BINARY:-} && $BINARY_MB == 100 ]]; then real=true; fi
    if [[ -z $kas_binary ]] && $real && [[ -f $CACHED_KAS ]]; then
        kas_binary=$CACHED_KAS
    elif [[ -z $kas_binary ]]; then
        kas_binary=$WORK/generated-apiserver
        stand_in "$kas_binary" "$((BINARY_MB << 20))" "" "$((BINARY_MB << 20))"
    fi
    if [[ -z $etcd_binary ]] && $real && [[ -f $DEBIAN_ETCD ]]; then
        etcd_binary=$DEBIAN_ETCD
    elif [[ -z $etcd_binary ]]; then
        etcd_binary=$WORK/generated-etcd
        stand_in "$etcd_binary" "$((BINARY_MB << 18))" -r "$((BINARY_MB << 19))"
    fi
    if [[ -z $etcdctl_binary ]] && $real && [[ -f $DEBIAN_ETCDCTL ]]; then
        etcdctl_binary=$DEBIAN_ETCDCTL
    elif [[ -z $etcdctl_binary ]]; then
        etcdctl_binary=$WORK/generated-etcdctl
        stand_in "$etcdctl_binary" "$((BINARY_MB << 18))" -r "$((3 * BINARY_MB << 18))"
    fi
fi

mib() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
printf 'bench: kube-bundle %s, binary %s (%s MiB), %s runs per case, %s cores\n' \
    "$("$KUBE_BUNDLE" --version | awk '{print $2}')" "$binary" "$(($(stat -c %s "$binary") >> 20))" \
    "$RUNS" "$(nproc)" >&2
if wants all; then
    printf 'bench: "all" also carries %s (%s), %s (%s), %s (%s) and %s (%s)\n' \
        "$kas_binary" "$(mib "$kas_binary")" "$ks_binary" "$(mib "$ks_binary")" \
        "$etcd_binary" "$(mib "$etcd_binary")" "$etcdctl_binary" "$(mib "$etcdctl_binary")" >&2
fi

results=()
for n in $NODES; do
    for with in $CASES; do
        bins=()
        case $with in
            binary) bins=("$binary") ;;
            both) bins=("$binary" "$ks_binary") ;;
            all) bins=("$etcd_binary" "$etcdctl_binary" "$kas_binary" "$binary" "$ks_binary") ;;
        esac
        # The two-binary and whole-control-plane cases take minutes a tutorial run at
        # many masters.
        runs=$RUNS
        if ((n >= 10)) && [[ $with == both || $with == all ]]; then runs=$LARGE_RUNS; fi
        case_dir=$WORK/n$n-$with
        inventory "$case_dir/kb" "$n" "$with"
        mkdir -p "$case_dir/tut"
        kb=("$KUBE_BUNDLE" build -c "$case_dir/kb/cluster.toml" -o "$case_dir/kb/dist" --quiet)
        tut=(bash "$SELF" __run tutorial "$case_dir/tut" "$n" "$with")
        # Fresh runs first: each rebuild then starts from the finished build they leave.
        for mode in fresh rebuild; do
            rec=$case_dir/$mode
            rm -f "$rec".*
            load_before=$(load)
            for ((run = 1; run <= runs; run++)); do
                printf 'bench: N=%s case=%s %s run %s/%s\r' "$n" "$with" "$mode" "$run" "$runs" >&2
                others() {
                    if ((TUTORIAL)); then
                        measure "$rec.tut" "$case_dir/tut" "$mode" "${tut[@]}" "$mode" "${bins[@]}"
                    fi
                    limit "$rec.pigz" "$case_dir/pigz" pigz_limit "$case_dir/pigz" "$n" "${bins[@]}"
                    # The first fresh run has no output to copy before kube-bundle's.
                    if [[ -d $case_dir/kb/dist ]]; then
                        limit "$rec.cp" "$case_dir/cp" copy_limit "$case_dir/kb/dist" "$case_dir/cp/dist"
                    fi
                }
                if ((run % 2)); then
                    measure "$rec.kb" "$case_dir/kb" "$mode" "${kb[@]}"
                    others
                else
                    others
                    measure "$rec.kb" "$case_dir/kb" "$mode" "${kb[@]}"
                fi
            done
            tut_ms=- tut_kib=-
            if ((TUTORIAL)); then tut_ms=$(median "$rec.tut.ms") tut_kib=$(peak "$rec.tut.kib"); fi
            results+=("$n $with $mode $(median "$rec.kb.ms") $tut_ms $(peak "$rec.kb.kib") $tut_kib $(target "$n" "$with" "$mode") $runs $(median "$rec.pigz.ms") $(median "$rec.cp.ms") $load_before $(load)")
        done
    done
done
printf '\n' >&2

printf '| masters | case | pki | kube-bundle (median) | tutorial flow (median) | speed-up | target | kube-bundle peak RSS | tutorial peak RSS | pigz + copies (median) | kube-bundle / pigz | copy of the output (median) | kube-bundle / copy | load average |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
join() { local IFS=';'; printf '%s\n' "$*" | sed 's/;/; /g'; }
over=() few=()
for row in "${results[@]}"; do
    read -r n with mode kb tut kbrss tutrss want runs pigz cp l0 l1 <<<"$row"
    awk -v n="$n" -v w="$with" -v m="$mode" -v a="$kb" -v b="$tut" -v ra="$kbrss" -v rb="$tutrss" -v t="$want" \
        -v p="$pigz" -v c="$cp" -v l0="$l0" -v l1="$l1" 'BEGIN {
        if (b == "-") {
            tut = "-"; r = "-"; verdict = "-"; tutrss = "-"
        } else {
            tut = sprintf("%.0f ms", b); r = sprintf("%.1fx", b / a)
            verdict = (t == "-") ? "-" : sprintf("≥%sx %s", t, (b / a >= t) ? "met" : "MISSED")
            tutrss = sprintf("%.1f MiB", rb / 1024)
        }
        # The rebuild limit is the copy: a rebuild with binaries should take at most 1.5x.
        cr = a / c
        cv = (m == "rebuild" && w != "none") ? sprintf(" (≤1.5x %s)", (cr <= 1.5) ? "met" : "MISSED") : ""
        printf "| %s | %s | %s | %.0f ms | %s | %s | %s | %.1f MiB | %s | %.0f ms | %.2fx | %.0f ms | %.2fx%s | %s → %s |\n", \
            n, w, m, a, tut, r, verdict, ra / 1024, tutrss, p, a / p, c, cr, cv, l0, l1
    }'
    if ((kbrss > RSS_LIMIT_MIB << 10)); then over+=("$n masters, $with, $mode: $((kbrss >> 10)) MiB"); fi
    if ((runs != RUNS)); then few+=("$n masters, $with: $runs run(s)"); fi
done
largest=$(printf '%s\n' "${results[@]}" | awk '{ print $6 }' | sort -n | tail -n 1)
if ((${#over[@]})); then
    printf 'PEAK RSS LIMIT EXCEEDED: kube-bundle went over %s MiB in %s\n' "$RSS_LIMIT_MIB" "$(join "${over[@]}")"
else
    awk -v k="$largest" -v l="$RSS_LIMIT_MIB" 'BEGIN { printf "kube-bundle peak RSS: %.1f MiB at most, under the %s MiB limit\n", k / 1024, l }'
fi
if ((${#few[@]})); then
    printf 'fewer runs (BENCH_LARGE_RUNS): %s\n' "$(join "${few[@]}")"
fi
