#!/usr/bin/env bash
# Installs the Debian packages the tests need, when they are missing. As root it runs
# apt-get; otherwise it names what to install and fails.
#   scripts/deps.sh        tools for `make test`
#   scripts/deps.sh e2e    also what the end-to-end run needs
set -euo pipefail

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
    )
fi

# The package's own service listens on :5000 with its own storage; the tests start the
# registry themselves on a free loopback port, so the service is stopped and disabled.
disable_registry_service() {
    [[ -e /lib/systemd/system/docker-registry.service ]] || return 0
    if [[ -e /etc/systemd/system/multi-user.target.wants/docker-registry.service ]] ||
        systemctl is-active --quiet docker-registry.service 2>/dev/null; then
        if [[ $EUID -ne 0 ]]; then
            printf 'deps: the docker-registry service is enabled; run: sudo systemctl disable --now docker-registry\n' >&2
            return 1
        fi
        printf 'deps: disabling the docker-registry service (the tests run their own)\n' >&2
        # Without systemd as PID 1 (containers) only the offline disable works.
        systemctl disable --now docker-registry.service >/dev/null 2>&1 ||
            systemctl disable docker-registry.service >/dev/null 2>&1
    fi
}

missing=()
for cmd in "${!NEEDED[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
# kubectl may come from anywhere; Debian's is kubernetes-client.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if [[ ${#missing[@]} -eq 0 ]]; then
    disable_registry_service
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
disable_registry_service
