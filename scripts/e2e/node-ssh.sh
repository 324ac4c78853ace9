#!/usr/bin/env bash
# `ssh USER@IP COMMAND` for the e2e nodes: runs COMMAND with sh inside the nspawn node
# whose IP is IP. E2E_NODE_PIDS maps IPs to the nodes' init PIDs: "IP=PID IP=PID ...".
set -euo pipefail
target=${1:?usage: node-ssh USER@IP COMMAND}
shift
ip=${target#*@}
pid=""
for pair in ${E2E_NODE_PIDS:?E2E_NODE_PIDS is not set}; do
    [[ ${pair%%=*} == "$ip" ]] && pid=${pair#*=}
done
[[ -n $pid ]] || { echo "node-ssh: no node has IP $ip" >&2; exit 255; }
exec nsenter --target "$pid" --all -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 sh -c "$*"
