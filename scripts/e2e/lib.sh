# shellcheck shell=bash
# shellcheck disable=SC2034  # globals here are read by the sourcing script
# Reusable pieces of the kube-bundle end-to-end test: logging and assertions,
# bounded waits, openssl certificates, a network of the test's own (a bridge in a
# network namespace, one namespace per node), and systemd-nspawn "nodes" on it that
# boot this machine's /usr on a fresh tmpfs root.
#
# Source it from a script that runs with `set -euo pipefail`; everything the
# functions start is recorded and removed again by e2e_cleanup (install it with
# e2e_install_traps), also when an assertion fails or the run is interrupted.

# ---------------------------------------------------------------- logging ---

E2E_T0=${E2E_T0:-$(date +%s.%N)}

log() { printf '[e2e %6.1fs] %s\n' "$(elapsed_since "$E2E_T0")" "$*" >&2; }
warn() { printf '[e2e] WARN: %s\n' "$*" >&2; }

# fail MESSAGE...: print a clear FAIL line and stop the run (the EXIT trap
# cleans up). fail_with_details MSG DETAILS adds indented extra lines (journal
# excerpts, command output). Both must run in the main shell, not in a pipeline
# or $(...), or they only end that subshell.
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    E2E_FAILED=1
    exit 1
}

fail_with_details() {
    printf 'FAIL: %s\n' "$1" >&2
    printf '%s\n' "${2:-}" | sed 's/^/    | /' >&2
    E2E_FAILED=1
    exit 1
}

pass() {
    printf 'PASS: %s\n' "$*" >&2
    E2E_PASSED+=("$*")
}

now() { date +%s.%N; }

# elapsed_since T0 -> seconds (one decimal) since T0 (a `now` value)
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# wait_until TIMEOUT_S INTERVAL_S CMD... : run CMD until it succeeds; returns 1
# when TIMEOUT_S passed without success. CMD's output is discarded.
wait_until() {
    local timeout=$1 interval=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    while true; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            return 1
        fi
        nap "$interval"
    done
}

# nap SECONDS: a sleep that a trapped signal interrupts at once (bash defers
# traps until a foreground command ends; `wait` returns early instead)
nap() {
    sleep "$1" &
    wait $! || true
}

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || fail "required command '$c' not found in PATH"
    done
}

# ----------------------------------------------------- cleanup machinery ---

E2E_FAILED=0
E2E_PASSED=()
E2E_PIDS=()      # background host processes (etcd, docker-registry), killed in reverse order
E2E_NODES=()     # nspawn machine names booted by node_boot
E2E_DIRS=()      # temp dirs to remove
E2E_CLEANED=0
declare -gA E2E_NSPAWN_PID=()   # machine name -> systemd-nspawn PID
declare -gA E2E_NODE_LOG=()     # machine name -> console log
declare -gA E2E_NODE_BOOT_S=()  # machine name -> seconds from nspawn start until booted
declare -gA E2E_NODE_T0=()      # machine name -> when node_boot started it
declare -gA E2E_PID_NAME=()     # host PID -> what it is
E2E_NETNS=()     # network namespaces made by net_up and net_attach, deleted in reverse order
E2E_VETHS=()     # veths made by net_attach, by their name in the bridge's namespace
declare -gA E2E_NODE_NETNS=()   # machine name -> its network namespace (net_attach)

# track_pid PID NAME
track_pid() {
    E2E_PIDS+=("$1")
    E2E_PID_NAME[$1]=$2
}

# make_tempdir VAR: mktemp -d, registered for removal
make_tempdir() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/kube-bundle-e2e.XXXXXX")
    E2E_DIRS+=("$d")
    printf -v "$1" '%s' "$d"
}

# stop_pid PID [TIMEOUT_S]: TERM, wait, then KILL
stop_pid() {
    local pid=$1 timeout=${2:-15} i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    warn "pid $pid (${E2E_PID_NAME[$pid]:-?}) ignored SIGTERM for ${timeout}s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    warn "pid $pid survived SIGKILL"
    return 1
}

# e2e_cleanup [RC]: RC defaults to $? (the exit status when run as EXIT trap)
e2e_cleanup() {
    local rc=${1:-$?}
    set +e
    ((E2E_CLEANED)) && return "$rc"
    E2E_CLEANED=1
    trap - INT TERM HUP
    log "cleaning up (exit status $rc)"
    if [[ $rc -ne 0 && -n ${E2E_DUMP_ON_FAIL:-} ]]; then
        "$E2E_DUMP_ON_FAIL"
    fi
    local n i
    for n in "${E2E_NODES[@]}"; do
        node_stop "$n" 20
    done
    for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${E2E_PIDS[$i]}" 15
    done
    net_down
    # nspawn leaves an empty propagation dir per machine when it can't remove it
    for n in "${E2E_NODES[@]}"; do
        rmdir "/run/systemd/nspawn/propagate/$n" 2>/dev/null
        if findmnt -rn -o TARGET | grep -q -- "$n"; then
            warn "mounts mentioning $n are left on the host:"
            findmnt -rn -o TARGET | grep -- "$n" >&2
        fi
    done
    if [[ -n ${E2E_KEEP:-} && $rc -ne 0 ]]; then
        warn "E2E_KEEP set: leaving ${E2E_DIRS[*]}"
    else
        for ((i = ${#E2E_DIRS[@]} - 1; i >= 0; i--)); do
            rm -rf --one-file-system -- "${E2E_DIRS[$i]}"
        done
    fi
    log "cleanup done"
    return "$rc"
}

e2e_install_traps() {
    trap e2e_cleanup EXIT
    trap 'warn "interrupted (SIGINT)"; exit 130' INT
    trap 'warn "terminated (SIGTERM)"; exit 143' TERM
    trap 'warn "hangup (SIGHUP)"; exit 129' HUP
}

# -------------------------------------------------------------- openssl ---

# make_ca DIR NAME: throwaway self-signed CA -> DIR/NAME.pem, DIR/NAME-key.pem
make_ca() {
    local dir=$1 name=$2
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
        -subj "/CN=$name" -keyout "$dir/$name-key.pem" -out "$dir/$name.pem" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
        >/dev/null 2>&1 || fail "openssl could not make CA $name"
}

# sign_cert CA_PEM CA_KEY OUT_PREFIX SUBJECT USAGE [SAN]
#   USAGE: server | client | both; SAN e.g. "IP:127.0.0.1,DNS:localhost".
#   Writes OUT_PREFIX.pem and OUT_PREFIX-key.pem (RSA 2048).
sign_cert() {
    local ca=$1 cakey=$2 out=$3 subj=$4 usage=$5 san=${6:-}
    local ext
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        case $usage in
            server) echo "extendedKeyUsage=serverAuth" ;;
            both) echo "extendedKeyUsage=serverAuth,clientAuth" ;;
            *) echo "extendedKeyUsage=clientAuth" ;;
        esac
        [[ -z $san ]] || echo "subjectAltName=$san"
    } >"$ext"
    if ! openssl req -new -newkey rsa:2048 -nodes -subj "$subj" \
        -keyout "$out-key.pem" -out "$out.csr" >/dev/null 2>&1 ||
        ! openssl x509 -req -in "$out.csr" -CA "$ca" -CAkey "$cakey" -CAcreateserial \
            -days 2 -sha256 -extfile "$ext" -out "$out.pem" >/dev/null 2>&1; then
        rm -f "$ext"
        fail "openssl could not sign $subj with $ca"
    fi
    rm -f "$ext" "$out.csr"
    chmod 600 "$out-key.pem"
}

# apiserver_ready URL CA CLIENT_PREFIX: GET URL/readyz answers ok with that client certificate
# (from the nodes' network)
apiserver_ready() {
    [[ $(in_net curl -sS --max-time 5 --cacert "$2" --cert "$3.pem" --key "$3-key.pem" "$1/readyz" 2>/dev/null) == ok ]]
}

# k ARGS...: kubectl with the admin kubeconfig (E2E_KUBECONFIG), at K_SERVER when set
# (an apiserver URL), else at the kubeconfig's server; from the nodes' network
k() {
    local -a at=()
    [[ -z ${K_SERVER:-} ]] || at=(--server "$K_SERVER")
    in_net kubectl --kubeconfig "$E2E_KUBECONFIG" --request-timeout=10s "${at[@]}" "$@"
}

# ------------------------------------------------------ the nodes' network ---
# The nodes live on a network of the test's own: a bridge in a network namespace
# (E2E_NET_NS) and one namespace per node, joined to the bridge by a veth pair whose
# both ends are made inside those namespaces, with addresses from a private /24 that no
# interface or route of the host overlaps. Nothing is added to the host's own
# interfaces, routes or firewall, and a node's iptables rules or bridges (a worker's
# kube-proxy and CNI) stay in its own namespace. The host cannot reach these addresses:
# whatever talks to a node runs inside the bridge's namespace (in_net).

E2E_NET_NS=kb-e2e-net    # the bridge's network namespace
E2E_NET_BRIDGE=kb-br0
E2E_NET_PREFIX=""        # the /24's first three octets, set by net_up
E2E_NET_GW=""            # the bridge's address (PREFIX.1): every node's default route

# net_pick_subnet [CIDR...] -> the first three octets of a random private /24 (10/8,
# 172.16/12, 192.168/16) that overlaps no address or route of the host, nor any CIDR
# given (the cluster's own)
net_pick_subnet() {
    { ip -o -4 addr show && ip -4 route show table all; } | python3 -c '
import ipaddress, random, re, sys
taken = [ipaddress.ip_network(c, strict=False) for c in sys.argv[1:]]
kinds = {"unicast", "local", "broadcast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "nat", "anycast"}
for line in sys.stdin:
    words = line.split()
    if "inet" in words:                      # ip -o addr: "2: eth0 inet 192.0.2.2/24 ..."
        dest = words[words.index("inet") + 1]
    elif words:                              # ip route: "[TYPE] DEST ..."
        dest = words[1] if words[0] in kinds and len(words) > 1 else words[0]
    else:
        continue
    if dest != "default" and re.fullmatch(r"[0-9.]+(/[0-9]+)?", dest):
        taken.append(ipaddress.ip_network(dest, strict=False))
rng = random.SystemRandom()
for _ in range(1500):
    pool = rng.randrange(3)
    if pool == 0:
        cidr = "10.%d.%d.0/24" % (rng.randint(16, 250), rng.randint(0, 255))
    elif pool == 1:
        cidr = "172.%d.%d.0/24" % (rng.randint(16, 31), rng.randint(0, 255))
    else:
        cidr = "192.168.%d.0/24" % rng.randint(0, 255)
    net = ipaddress.ip_network(cidr)
    if not any(net.overlaps(t) for t in taken):
        print(str(net.network_address).rsplit(".", 1)[0])
        sys.exit(0)
sys.exit(1)
' "$@"
}

# net_preflight: fail when a namespace of an earlier run is still there
net_preflight() {
    local left
    left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -x -e "$E2E_NET_NS" -e 'kb-e2e-.*' || true)
    [[ -z $left ]] ||
        fail "network namespaces of an earlier run are still there: $(echo "$left" | paste -sd' ' -) (remove them with: ip netns delete NAME)"
}

# net_up [CIDR...]: the bridge's namespace, loopback up, the bridge on PREFIX.1/24 of a
# /24 picked now (avoiding the host's addresses and routes and the CIDRs given)
net_up() {
    local prefix ns=$E2E_NET_NS
    require_cmd ip python3
    prefix=$(net_pick_subnet "$@") || fail "found no private /24 that overlaps no address or route of this host (ip -4 addr, ip -4 route show table all)"
    ip netns add "$ns" || fail "ip netns add $ns failed"
    E2E_NETNS+=("$ns")
    if ! ip -n "$ns" link set lo up ||
        ! ip -n "$ns" link add "$E2E_NET_BRIDGE" type bridge ||
        ! ip -n "$ns" addr add "$prefix.1/24" dev "$E2E_NET_BRIDGE" ||
        ! ip -n "$ns" link set "$E2E_NET_BRIDGE" up; then
        fail "could not make the bridge $E2E_NET_BRIDGE on $prefix.1/24 in the network namespace $ns"
    fi
    E2E_NET_PREFIX=$prefix
    E2E_NET_GW=$prefix.1
    log "network: bridge $E2E_NET_BRIDGE on $E2E_NET_GW/24 in the network namespace $ns"
}

# net_ip N -> the address of the Nth node (1..200) on the test's /24
net_ip() { printf '%s.%d' "$E2E_NET_PREFIX" "$((10 + $1))"; }

# net_attach NAME IP: a network namespace for node NAME (kb-e2e-NAME) with loopback up,
# eth0 on IP/24 (one end of a veth pair whose other end, v-NAME, is a port of the
# bridge) and a default route to the bridge's address. node_boot boots NAME in it.
net_attach() {
    local name=$1 ip=$2 ns=kb-e2e-$1 veth=v-$1
    [[ -n $E2E_NET_GW ]] || fail "net_attach $name: no network yet (net_up first)"
    ((${#veth} <= 15)) || fail "net_attach $name: the veth name $veth is longer than 15 characters; use a shorter node name"
    [[ $ip == "$E2E_NET_PREFIX".* && $ip != "$E2E_NET_GW" ]] || fail "net_attach $name: $ip is not a node address of $E2E_NET_PREFIX.0/24"
    ip netns add "$ns" || fail "ip netns add $ns failed"
    E2E_NETNS+=("$ns")
    E2E_NODE_NETNS[$name]=$ns
    ip link add "$veth" netns "$E2E_NET_NS" type veth peer name eth0 netns "$ns" ||
        fail "could not make the veth pair $veth ($E2E_NET_NS) - eth0 ($ns)"
    E2E_VETHS+=("$veth")
    if ! ip -n "$E2E_NET_NS" link set "$veth" master "$E2E_NET_BRIDGE" up ||
        ! ip -n "$ns" link set lo up ||
        ! ip -n "$ns" addr add "$ip/24" dev eth0 ||
        ! ip -n "$ns" link set eth0 up ||
        ! ip -n "$ns" route add default via "$E2E_NET_GW"; then
        fail "could not put $name on $ip/24 (network namespace $ns, veth $veth on $E2E_NET_BRIDGE)"
    fi
    log "network: $name on $ip (network namespace $ns)"
}

# in_net CMD...: run CMD (a program, not a shell function) inside the bridge's network
# namespace, where the node addresses are reachable
in_net() { ip netns exec "$E2E_NET_NS" "$@"; }

# net_down: delete the veths and network namespaces net_up and net_attach made (after
# the nodes and the processes started in them have stopped)
net_down() {
    local i
    for ((i = ${#E2E_VETHS[@]} - 1; i >= 0; i--)); do
        ip -n "$E2E_NET_NS" link delete "${E2E_VETHS[$i]}" 2>/dev/null
    done
    for ((i = ${#E2E_NETNS[@]} - 1; i >= 0; i--)); do
        ip netns delete "${E2E_NETNS[$i]}" || warn "could not delete the network namespace ${E2E_NETNS[$i]}"
    done
    E2E_VETHS=()
    E2E_NETNS=()
}

# --------------------------------------------------------- nspawn nodes ---
# Background services run under `setsid` (same PID, own session), so a Ctrl-C
# on the terminal reaches only the test script, whose trap then stops them in
# order, instead of every process at once.

# node_boot NAME BUNDLE_DIR LOG [ETCD_DIR] [-- NSPAWN_ARGS...]: boot a container from this
# machine's /usr with a fresh tmpfs root, in the network namespace net_attach made for
# it. BUNDLE_DIR is its /bundle (read-only), ETCD_DIR, when given, its
# /data/k8s/etcd; NSPAWN_ARGS go to systemd-nspawn as they are.
node_boot() {
    local name=$1 bundle=$2 logf=$3 etcd_dir=""
    shift 3
    if (($#)) && [[ $1 != -- ]]; then
        etcd_dir=$1
        shift
    fi
    [[ ${1:-} != -- ]] || shift
    local -a binds=(--bind-ro="$bundle:/bundle")
    [[ -z $etcd_dir ]] || binds+=(--bind="$etcd_dir:/data/k8s/etcd")
    require_cmd systemd-nspawn nsenter
    [[ -n ${E2E_NODE_NETNS[$name]:-} ]] || fail "node $name has no network namespace (net_attach $name IP first)"
    # With an empty /etc the node enables every unit it finds in /usr, among them those of
    # the worker packages scripts/deps.sh installs (disabled on the host only): a
    # control-plane node runs no containerd or CNI DHCP daemon, so its systemd masks them
    # (`systemd.mask=` on its command line masks in /run, for this boot). Its network is
    # the one net_attach set up: systemd-networkd-wait-online, which would wait 2 min
    # for links networkd does not manage, is masked too.
    setsid systemd-nspawn --register=no --keep-unit --directory=/ --volatile=yes --boot \
        --machine="$name" "${binds[@]}" --console=read-only \
        --network-namespace-path="/run/netns/${E2E_NODE_NETNS[$name]}" "$@" \
        -- systemd.firstboot=off systemd.mask=containerd.service systemd.mask=cni-dhcp.socket \
        systemd.mask=cni-dhcp.service systemd.mask=systemd-networkd-wait-online.service \
        </dev/null >"$logf" 2>&1 &
    E2E_NSPAWN_PID[$name]=$!
    E2E_NODE_LOG[$name]=$logf
    E2E_NODE_T0[$name]=$(now)
    E2E_NODES+=("$name")
    E2E_PID_NAME[$!]="systemd-nspawn $name"
    log "node $name: systemd-nspawn pid $!"
}

# node_pid NAME -> PID (host view) of the container's init (systemd), or fail
node_pid() {
    local name=$1 npid c
    npid=${E2E_NSPAWN_PID[$name]:-}
    [[ -n $npid ]] || return 1
    for c in $(pgrep -P "$npid" 2>/dev/null); do
        if [[ $(cat "/proc/$c/comm" 2>/dev/null) == systemd ]]; then
            echo "$c"
            return 0
        fi
    done
    return 1
}

# node_exec NAME CMD...: run CMD inside the node (all its namespaces) with a
# clean root environment, as an operator's root shell would have
node_exec() {
    local name=$1 pid
    shift
    pid=$(node_pid "$name") || { echo "node $name is not running" >&2; return 125; }
    nsenter --target "$pid" --all -- \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

node_system_state() { node_exec "$1" systemctl is-system-running 2>/dev/null; }

node_booted() {
    local s
    s=$(node_system_state "$1") || true
    [[ $s == running || $s == degraded ]]
}

# node_wait_booted NAME TIMEOUT: until systemd inside reports running or
# degraded (the host's own units, e.g. etcd.service, fail there: no users)
node_wait_booted() {
    local name=$1 timeout=$2
    if ! wait_until "$timeout" 0.5 node_booted "$name"; then
        local npid=${E2E_NSPAWN_PID[$name]}
        kill -0 "$npid" 2>/dev/null || warn "systemd-nspawn for $name exited"
        fail_with_details "node $name did not finish booting within ${timeout}s (state: $(node_system_state "$name" || echo unknown))" \
            "$(tail -n 30 "${E2E_NODE_LOG[$name]:-/dev/null}" 2>/dev/null)"
    fi
    E2E_NODE_BOOT_S[$name]=$(elapsed_since "${E2E_NODE_T0[$name]}")
    log "node $name booted ($(node_system_state "$name"), hostname $(node_exec "$name" hostname))"
}

# node_stop NAME [TIMEOUT]: clean poweroff (SIGRTMIN+4 to the container's
# systemd), wait for systemd-nspawn to exit; SIGKILL the container after TIMEOUT
node_stop() {
    local name=$1 timeout=${2:-20} npid pid i
    npid=${E2E_NSPAWN_PID[$name]:-}
    [[ -n $npid ]] || return 0
    kill -0 "$npid" 2>/dev/null || return 0
    if pid=$(node_pid "$name"); then
        kill -s SIGRTMIN+4 "$pid" 2>/dev/null || true
    else
        kill -TERM "$npid" 2>/dev/null || true
    fi
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$npid" 2>/dev/null || { wait "$npid" 2>/dev/null; log "node $name stopped"; return 0; }
        sleep 0.1
    done
    warn "node $name did not power off within ${timeout}s, killing it"
    pid=$(node_pid "$name") && kill -KILL "$pid" 2>/dev/null
    kill -KILL "$npid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$npid" 2>/dev/null || return 0
        sleep 0.1
    done
    warn "systemd-nspawn for $name (pid $npid) survived SIGKILL"
    return 1
}

# ----------------------------------------------- kube-controller-manager ---

KCM_UNIT=kube-controller-manager.service

# kcm_state NODE -> ActiveState/SubState, e.g. active/running
kcm_state() {
    node_exec "$1" systemctl show -p ActiveState -p SubState --value "$KCM_UNIT" 2>/dev/null |
        paste -sd/ -
}

kcm_running() { [[ $(kcm_state "$1") == active/running ]]; }

# kcm_journal NODE [LINES]
kcm_journal() {
    node_exec "$1" journalctl -u "$KCM_UNIT" --no-pager -o short -n "${2:-30}" 2>&1 | cut -c1-400 || true
}

# lease_holder [LEASE] -> holderIdentity of kube-system/LEASE (default
# kube-controller-manager; "" if none)
lease_holder() {
    k -n kube-system get lease "${1:-kube-controller-manager}" \
        -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null
}

# lease_node LEASE NODES... -> the node whose hostname prefixes LEASE's holder identity
lease_node() {
    local lease=$1 holder n
    shift
    holder=$(lease_holder "$lease") || return 1
    [[ -n $holder ]] || return 1
    for n in "$@"; do
        if [[ $holder == "$n" || $holder == "${n}_"* ]]; then
            echo "$n"
            return 0
        fi
    done
    return 1
}

# lease_holder_node NODES... -> the node holding the kube-controller-manager Lease
lease_holder_node() { lease_node kube-controller-manager "$@"; }

# lease_held_by_other OLD NODES...: succeeds when the lease names a node != OLD
lease_held_by_other() {
    local old=$1 h
    shift
    h=$(lease_holder_node "$@") || return 1
    [[ $h != "$old" ]]
}

# https_code URL CA [CLIENT_PREFIX] -> HTTP status code ("000" on TLS/connect errors),
# from the nodes' network
https_code() {
    local url=$1 ca=$2 client=${3:-}
    local args=(-sS -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$ca")
    [[ -z $client ]] || args+=(--cert "$client.pem" --key "$client-key.pem")
    in_net curl "${args[@]}" "$url" 2>/dev/null || true
}

# metric_value URL CA CLIENT_PREFIX METRIC_REGEX -> value of the first matching line
metric_value() {
    in_net curl -sS --max-time 10 --cacert "$2" --cert "$3.pem" --key "$3-key.pem" "$1" 2>/dev/null |
        awk -v re="$4" '$0 !~ /^#/ && $1 ~ re { print $2; exit }'
}
