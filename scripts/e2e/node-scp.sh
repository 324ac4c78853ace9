#!/usr/bin/env bash
# `scp FILE USER@IP:DIR/` for the e2e nodes: copies FILE into DIR inside the nspawn
# node whose IP is IP (see node-ssh.sh).
set -euo pipefail
src=${1:?usage: node-scp FILE USER@IP:DIR/}
dest=${2:?usage: node-scp FILE USER@IP:DIR/}
host=${dest%%:*}
dir=${dest#*:}
name=$(basename "$src")
exec "$(dirname "${BASH_SOURCE[0]}")/node-ssh.sh" "$host" "cat > '${dir%/}/$name'" <"$src"
