#!/usr/bin/env bash
# `make bench`: kube-bundle against the tutorial's own flow, side by side on this machine.
#
# The tutorial's flow, per build: cfssl + cfssljson for the CA (fresh pki only) and for the
# controller-manager certificate (one for every master, as the tutorial makes it), the four
# `kubectl config` commands, then for each master `sed` of the kubeconfig and of the unit
# template and `tar czf` of its files (and the binary, when there is one). The "both" case
# adds the scheduler's chapter: cfssl for its certificate, its four `kubectl config`
# commands, `sed` of its unit and config per master, and both binaries in each tarball.
# "rebuild" means the PKI exists: kube-bundle reuses pki/; the tutorial flow skips both
# cfssl steps and redoes the rest.
#
# Runs alternate A (kube-bundle) and B (tutorial), swapping which goes first every run.
# Time is wall clock; peak RSS is /usr/bin/time's maximum resident set of the largest
# process of the run.
#
# Environment:
#   KUBE_BUNDLE   the kube-bundle binary (default: target/release/kube-bundle)
#   BENCH_RUNS    runs per case (default 3)
#   BENCH_NODES   master counts (default "3 30")
#   BENCH_BINARY  the ~100 MB binary (default: the end-to-end cache's
#                 kube-controller-manager, else a generated file of real executables)
#   BENCH_SCHEDULER_BINARY  the scheduler's binary for the "both" case (default: the
#                 cache's kube-scheduler, else a generated file of half the size)
#   BENCH_CASES   which binary cases to run (default "none binary both")
#   BENCH_BINARY_MB  size of a generated binary (default 100)
#   BENCH_DIR     scratch folder (default: a new temporary folder, removed at the end)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$ROOT/scripts/bench.sh
KUBE_BUNDLE=${KUBE_BUNDLE:-$ROOT/target/release/kube-bundle}
RUNS=${BENCH_RUNS:-3}
NODES=${BENCH_NODES:-3 30}
BINARY_MB=${BENCH_BINARY_MB:-100}
CASES=${BENCH_CASES:-none binary both}
CACHED_KCM=/var/cache/kube-bundle/k8s-v1.20.2/kube-controller-manager
CACHED_KS=/var/cache/kube-bundle/k8s-v1.20.2/kube-scheduler

die() {
    printf 'bench: %s\n' "$*" >&2
    exit 1
}
# shellcheck source-path=SCRIPTDIR source=stand-in.sh
. "$ROOT/scripts/stand-in.sh"

# --- the tutorial's flow --------------------------------------------------------------

# tutorial DIR N BINARY|- fresh|rebuild [SCHEDULER_BINARY]
tutorial() {
    local dir=$1 n=$2 bin=$3 mode=$4 ks_bin=${5:-} i hosts
    cd "$dir"
    if [[ $mode == fresh ]]; then
        cat >ca-config.json <<'EOF'
{"signing":{"default":{"expiry":"87600h"},"profiles":{"kubernetes":{"usages":["signing","key encipherment","server auth","client auth"],"expiry":"876000h"}}}}
EOF
        cat >ca-csr.json <<'EOF'
{"CN":"kubernetes-ca","key":{"algo":"rsa","size":2048},"names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"k8s","OU":"opsnull"}],"ca":{"expiry":"876000h"}}
EOF
        cfssl gencert -initca ca-csr.json 2>/dev/null | cfssljson -bare ca
        hosts='"127.0.0.1"'
        for ((i = 1; i <= n; i++)); do
            hosts+=",\"10.0.$((i / 200)).$((i % 200 + 1))\""
        done
        cat >kube-controller-manager-csr.json <<EOF
{"CN":"system:kube-controller-manager","key":{"algo":"rsa","size":2048},"hosts":[$hosts],
 "names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"system:kube-controller-manager","OU":"opsnull"}]}
EOF
        cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes \
            kube-controller-manager-csr.json 2>/dev/null | cfssljson -bare kube-controller-manager
        if [[ -n $ks_bin ]]; then
            cat >kube-scheduler-csr.json <<EOF
{"CN":"system:kube-scheduler","key":{"algo":"rsa","size":2048},"hosts":[$hosts],
 "names":[{"C":"CN","ST":"BeiJing","L":"BeiJing","O":"system:kube-scheduler","OU":"opsnull"}]}
EOF
            cfssl gencert -ca=ca.pem -ca-key=ca-key.pem -config=ca-config.json -profile=kubernetes \
                kube-scheduler-csr.json 2>/dev/null | cfssljson -bare kube-scheduler
        fi
    fi
    if [[ -n $ks_bin ]]; then
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
    rm -rf out kube-controller-manager.kubeconfig
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
    for ((i = 1; i <= n; i++)); do
        local name=m$i ip="10.0.$((i / 200)).$((i % 200 + 1))" d
        d=out/kube-controller-manager-$name
        mkdir -p "$d/cert"
        sed -e "s/##NODE_IP##/$ip/" kube-controller-manager.kubeconfig >"$d/kube-controller-manager.kubeconfig"
        sed -e "s/##NODE_NAME##/$name/" -e "s/##NODE_IP##/$ip/" \
            kube-controller-manager.service.template >"$d/kube-controller-manager.service"
        cp ca.pem ca-key.pem kube-controller-manager.pem kube-controller-manager-key.pem "$d/cert/"
        if [[ -n $ks_bin ]]; then
            sed -e "s/##NODE_IP##/$ip/" kube-scheduler.kubeconfig >"$d/kube-scheduler.kubeconfig"
            sed -e "s/##NODE_IP##/$ip/" kube-scheduler.yaml.template >"$d/kube-scheduler.yaml"
            sed -e "s/##NODE_IP##/$ip/" kube-scheduler.service.template >"$d/kube-scheduler.service"
            cp kube-scheduler.pem kube-scheduler-key.pem "$d/cert/"
            tar czf "$d.tar.gz" -C out "kube-controller-manager-$name" \
                -C "$(dirname "$bin")" "$(basename "$bin")" \
                -C "$(dirname "$ks_bin")" "$(basename "$ks_bin")"
        elif [[ $bin == - ]]; then
            tar czf "$d.tar.gz" -C out "kube-controller-manager-$name"
        else
            tar czf "$d.tar.gz" -C out "kube-controller-manager-$name" \
                -C "$(dirname "$bin")" "$(basename "$bin")"
        fi
    done
}

# --- kube-bundle ----------------------------------------------------------------------

# inventory DIR N BINARY|- [SCHEDULER_BINARY]
inventory() {
    local dir=$1 n=$2 bin=$3 ks_bin=${4:-} i
    mkdir -p "$dir"
    {
        printf '[cluster]\nkubernetes-version = "1.20.2"\nservice-cidr = "10.254.0.0/16"\n'
        printf 'cluster-cidr = "172.30.0.0/16"\n\n[pki]\nC = "CN"\nST = "BeiJing"\nL = "BeiJing"\nOU = "opsnull"\n'
        if [[ $bin != - ]]; then
            printf '\n[kube-controller-manager]\nbinary = "%s"\n' "$bin"
        fi
        if [[ -n $ks_bin ]]; then
            printf '\n[kube-scheduler]\nbinary = "%s"\n' "$ks_bin"
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

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { m = int((NR + 1) / 2); print (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2 }'; }
peak() { sort -n "$1" | tail -n 1; }

# Targets from the issue: minimum ratio per case.
target() {
    case "$1/$2/$3" in
        3/none/fresh) echo 4 ;;
        3/none/rebuild) echo 20 ;;
        3/binary/* | 3/both/*) echo 5 ;;
        30/binary/* | 30/both/*) echo 25 ;;
        *) echo - ;;
    esac
}

# The tutorial's flow runs as this script again, so /usr/bin/time sees the whole run.
if [[ ${1:-} == __run ]]; then
    shift
    "$@"
    exit
fi

for tool in cfssl cfssljson kubectl sed tar gzip /usr/bin/time; do
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

# The binary: the real one when the end-to-end cache has it, else real executables
# concatenated, which compress like one.
binary=${BENCH_BINARY:-}
if [[ -z $binary && $BINARY_MB == 100 && -f $CACHED_KCM ]]; then
    binary=$CACHED_KCM
elif [[ -z $binary ]]; then
    binary=$WORK/generated-binary
    stand_in "$binary" "$((BINARY_MB << 20))"
fi
ks_binary=${BENCH_SCHEDULER_BINARY:-}
if [[ -z $ks_binary && -z ${BENCH_BINARY:-} && $BINARY_MB == 100 && -f $CACHED_KS ]]; then
    ks_binary=$CACHED_KS
elif [[ -z $ks_binary ]]; then
    # Another stand-in, from the other end of the same executables.
    ks_binary=$WORK/generated-scheduler
    stand_in "$ks_binary" "$((BINARY_MB << 19))" -r
fi


printf 'bench: kube-bundle %s, binary %s (%s MiB), %s runs per case, %s cores\n' \
    "$("$KUBE_BUNDLE" --version | awk '{print $2}')" "$binary" "$(($(stat -c %s "$binary") >> 20))" \
    "$RUNS" "$(nproc)" >&2

results=()
for n in $NODES; do
    for with in $CASES; do
        bin=- ks=()
        [[ $with == none ]] || bin=$binary
        [[ $with != both ]] || ks=("$ks_binary")
        case_dir=$WORK/n$n-$with
        inventory "$case_dir/kb" "$n" "$bin" "${ks[@]}"
        mkdir -p "$case_dir/tut"
        for mode in fresh rebuild; do
            rec=$case_dir/$mode
            rm -f "$rec".*
            # A rebuild starts from a finished build.
            kb=("$KUBE_BUNDLE" build -c "$case_dir/kb/cluster.toml" -o "$case_dir/kb/dist" --quiet)
            tut=(bash "$SELF" __run tutorial "$case_dir/tut" "$n" "$bin")
            if [[ $mode == rebuild ]]; then
                measure "$WORK/warm-up" "$case_dir/kb" fresh "${kb[@]}"
                measure "$WORK/warm-up" "$case_dir/tut" fresh "${tut[@]}" fresh "${ks[@]}"
            fi
            for ((run = 1; run <= RUNS; run++)); do
                printf 'bench: N=%s binary=%s %s run %s/%s\r' "$n" "$with" "$mode" "$run" "$RUNS" >&2
                if ((run % 2)); then
                    measure "$rec.kb" "$case_dir/kb" "$mode" "${kb[@]}"
                    measure "$rec.tut" "$case_dir/tut" "$mode" "${tut[@]}" "$mode" "${ks[@]}"
                else
                    measure "$rec.tut" "$case_dir/tut" "$mode" "${tut[@]}" "$mode" "${ks[@]}"
                    measure "$rec.kb" "$case_dir/kb" "$mode" "${kb[@]}"
                fi
            done
            results+=("$n $with $mode $(median "$rec.kb.ms") $(median "$rec.tut.ms") $(peak "$rec.kb.kib") $(peak "$rec.tut.kib") $(target "$n" "$with" "$mode")")
        done
    done
done
printf '\n' >&2

printf '| masters | binary | pki | kube-bundle (median) | tutorial flow (median) | speed-up | target | kube-bundle peak RSS | tutorial peak RSS |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
for row in "${results[@]}"; do
    read -r n with mode kb tut kbrss tutrss want <<<"$row"
    awk -v n="$n" -v w="$with" -v m="$mode" -v a="$kb" -v b="$tut" -v ra="$kbrss" -v rb="$tutrss" -v t="$want" 'BEGIN {
        r = b / a
        verdict = (t == "-") ? "-" : sprintf("≥%sx %s", t, (r >= t) ? "met" : "MISSED")
        printf "| %s | %s | %s | %.0f ms | %.0f ms | %.1fx | %s | %.1f MiB | %.1f MiB |\n", n, w, m, a, b, r, verdict, ra / 1024, rb / 1024
    }'
done
