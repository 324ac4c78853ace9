#!/usr/bin/env bash
# Installs the Debian packages the tests need, when they are missing. As root it runs
# apt-get; otherwise it names what to install and fails.
#   scripts/deps.sh        tools for `make test`
#   scripts/deps.sh e2e    also what the end-to-end run needs
# cosign and oras, which Debian 12 does not package, come from the `stable` suite of the
# machine's own Debian archive (see fetch_tools) into $KUBE_BUNDLE_CACHE/tools.
set -euo pipefail

# shellcheck source=scripts/apt-debian.sh
source "$(dirname "$0")/apt-debian.sh"
TOOLS=${KUBE_BUNDLE_CACHE:-/var/cache/kube-bundle}/tools
# binary → Debian package in `stable`
declare -A TOOL_PACKAGES=([cosign]=cosign [oras]=oras)

# Debian packages checked by dpkg's status rather than by a command (e2e only, below)
PACKAGES=()
# command → Debian package
declare -A NEEDED=(
    [openssl]=openssl
    [shellcheck]=shellcheck
    [systemd-analyze]=systemd
    [cfssl]=golang-cfssl
    [cfssljson]=golang-cfssl
    [tar]=tar
    [sha256sum]=coreutils
    [setpriv]=util-linux
    [curl]=curl
    [ssh-keygen]=openssh-client
    [gzip]=gzip
    [busybox]=busybox
    [python3]=python3
    # GNU time: the bench script (and its test) reads each run's peak memory from it.
    [/usr/bin/time]=time
    # The bench's compression limit: gzip on every core.
    [pigz]=pigz
    # The registry tests (and `make bench`) start their own distribution registry.
    [docker-registry]=docker-registry
    [base64]=coreutils
    # The binary check's tests read Debian's etcd and etcdctl (the end-to-end run's).
    [etcd]=etcd-server
    [etcdctl]=etcd-client
    # The fetch.sh tests: a resolver lookup, the lock, signals, and a full disk made in a
    # mount namespace of their own.
    [getent]=libc-bin
    [flock]=util-linux
    [/bin/kill]=procps
    [unshare]=util-linux
    [mount]=mount
    # The completion tests load the generated scripts in each shell.
    [bash]=bash
    [zsh]=zsh
    [fish]=fish
)
if [[ ${1:-} == e2e ]]; then
    NEEDED+=(
        [systemd-nspawn]=systemd-container
        [nsenter]=util-linux
        [go]=golang-go
        [rsync]=rsync
        [dpkg-source]=dpkg-dev
        [ip]=iproute2
        [pgrep]=procps
        # Workers: Debian's container runtime and CNI plugins (carried into the worker
        # bundles), gcc for the pause image (scripts/build-pause.sh), and Debian's
        # ansible for the fleet rollout.
        [containerd]=containerd
        [ctr]=containerd
        [runc]=runc
        [/usr/lib/cni/bridge]=containernetworking-plugins
        [/usr/lib/cni/host-local]=containernetworking-plugins
        [gcc]=gcc
        [ansible-playbook]=ansible
    )
    # No command tells these apart: the C library's static archives for `gcc -static`,
    # and the static busybox of the test image (scripts/build-test-image.sh), which
    # replaces the dynamic one and answers to `busybox` as well.
    PACKAGES+=(libc6-dev busybox-static)
fi

# Services the packages enable on install and the host must never run, so they are
# stopped and disabled. docker-registry's listens on :5000 with its own storage; the
# tests start the registry themselves on a free loopback port. containerd's and the CNI
# plugins' cni-dhcp would run a container runtime and a DHCP daemon on the host itself:
# the tests start their own containerd with a configuration, state and socket under a
# temporary folder, and worker nodes run theirs inside the node. (Nodes booted from this
# /usr with an empty /etc still find the units there and enable them: a node that must
# not run them masks them, as scripts/e2e/lib.sh's node_boot does.)
HOST_OFF_UNITS=(docker-registry.service containerd.service cni-dhcp.socket cni-dhcp.service)
disable_host_services() {
    local unit
    for unit in "${HOST_OFF_UNITS[@]}"; do
        [[ -e /lib/systemd/system/$unit ]] || continue
        systemctl is-enabled --quiet "$unit" 2>/dev/null ||
            systemctl is-active --quiet "$unit" 2>/dev/null || continue
        if [[ $EUID -ne 0 ]]; then
            printf 'deps: the %s service is enabled; run: sudo systemctl disable --now %s\n' "${unit%.*}" "$unit" >&2
            return 1
        fi
        printf 'deps: disabling %s (the tests start their own; the host runs none)\n' "$unit" >&2
        # Without systemd as PID 1 (containers) only the offline disable works.
        systemctl disable --now "$unit" >/dev/null 2>&1 ||
            systemctl disable "$unit" >/dev/null 2>&1
    done
}

# While apt installs, a policy-rc.d that refuses every start (the hook invoke-rc.d and
# deb-systemd-invoke ask), so that no package's service starts on the host even for a
# moment; disable_host_services then undoes the enabling. An existing policy-rc.d is the
# administrator's and stays as it is.
POLICY_RC=/usr/sbin/policy-rc.d
deny_service_starts() {
    [[ -e $POLICY_RC ]] && return 0
    printf '#!/bin/sh\n# scripts/deps.sh: no service starts while it installs packages\nexit 101\n' >"$POLICY_RC.kube-bundle"
    chmod 0755 "$POLICY_RC.kube-bundle"
    mv -f "$POLICY_RC.kube-bundle" "$POLICY_RC"
    trap 'rm -f "$POLICY_RC"' EXIT
}

tools_intact() {
    [[ -f $TOOLS/SHA256SUMS && -f $TOOLS/SOURCES ]] || return 1
    local t
    for t in "${!TOOL_PACKAGES[@]}"; do
        grep -q "  $t\$" "$TOOLS/SHA256SUMS" || return 1
        [[ -x $TOOLS/$t ]] || return 1
    done
    (cd "$TOOLS" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1)
}

# Debian's cosign and oras are static Go binaries: those of the `stable` suite run here
# as they are. apt itself fetches them, with a sources list of its own that names the
# machine's Debian archive and the suite alias `stable`, and lists and caches of its own:
# the system's apt configuration and state are left as they are. apt checks the suite's
# signature and each .deb against the signed Packages index; the sha256 is compared once
# more here and recorded in SOURCES.
fetch_tools() {
    tools_intact && return 0
    if [[ $EUID -ne 0 ]]; then
        printf 'deps: cosign and oras are missing from %s; run: sudo scripts/deps.sh\n' "$TOOLS" >&2
        return 1
    fi
    local uri work keyring t pkg deb want got
    uri=$(apt_debian_archive_uri)
    [[ -n $uri ]] || { printf 'deps: apt knows no Debian archive to fetch cosign and oras from\n' >&2; return 1; }
    work=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: work is local
    trap "rm -rf '$work'" RETURN
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/debs"
    # apt downloads as the _apt user where it can.
    chmod 0755 "$work"
    chown _apt "$work/lists/partial" "$work/debs" 2>/dev/null || true
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    {
        printf 'Types: deb\nURIs: %s\nSuites: stable\nComponents: main\n' "$uri"
        [[ -f $keyring ]] && printf 'Signed-By: %s\n' "$keyring"
    } >"$work/stable.sources"
    local apt=(-o "Dir::Etc::SourceList=$work/stable.sources" -o "Dir::Etc::SourceParts=$work/parts"
        -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
        -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$work/parts")
    printf 'deps: fetching cosign and oras from %s, suite stable\n' "$uri" >&2
    apt-get "${apt[@]}" update -qq
    (cd "$work/debs" && apt-get "${apt[@]}" download -qq "${TOOL_PACKAGES[@]}")
    mkdir -p "$TOOLS"
    : >"$work/SOURCES"
    : >"$work/SHA256SUMS"
    for t in "${!TOOL_PACKAGES[@]}"; do
        pkg=${TOOL_PACKAGES[$t]}
        deb=$(find "$work/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
        [[ -n $deb ]] || { printf 'deps: apt-get download gave no %s package\n' "$pkg" >&2; return 1; }
        want=$(apt-cache "${apt[@]}" show --no-all-versions "$pkg" | awk '$1 == "SHA256:" { print $2; exit }')
        got=$(sha256sum "$deb" | cut -d' ' -f1)
        [[ -n $want && $want == "$got" ]] || {
            printf 'deps: %s has sha256 %s, the Packages index says %s\n' "${deb##*/}" "$got" "${want:-nothing}" >&2
            return 1
        }
        dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/bin/$t" >"$work/$t"
        [[ -s $work/$t ]] || { printf 'deps: %s holds no usr/bin/%s\n' "${deb##*/}" "$t" >&2; return 1; }
        chmod 0755 "$work/$t"
        "$work/$t" version >/dev/null 2>&1 || { printf 'deps: %s from %s does not run here\n' "$t" "${deb##*/}" >&2; return 1; }
        printf '%s  %s  %s\n' "${deb##*/}" "$got" "$uri" >>"$work/SOURCES"
        (cd "$work" && sha256sum "$t") >>"$work/SHA256SUMS"
    done
    for t in "${!TOOL_PACKAGES[@]}"; do mv -f "$work/$t" "$TOOLS/$t"; done
    sort -o "$TOOLS/SOURCES" "$work/SOURCES"
    # Written last: it marks the set complete.
    sort -k2 -o "$TOOLS/SHA256SUMS" "$work/SHA256SUMS"
    printf 'deps: cosign and oras are in %s\n' "$TOOLS" >&2
}

missing=()
for cmd in "${!NEEDED[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
for pkg in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) == installed ]] || missing+=("$pkg")
done
# kubectl may come from anywhere; Debian's is kubernetes-client.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if [[ ${#missing[@]} -eq 0 ]]; then
    disable_host_services
    fetch_tools
    exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $EUID -ne 0 ]]; then
    printf 'deps: missing Debian packages: %s\n' "${missing[*]}" >&2
    printf 'deps: install them with: sudo apt-get install %s\n' "${missing[*]}" >&2
    exit 1
fi
printf 'deps: installing %s\n' "${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
deny_service_starts
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
disable_host_services
fetch_tools
