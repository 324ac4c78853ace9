#!/usr/bin/env bash
# Compare the flag catalogues (src/*-flags.tsv) with real v1.20.2 binaries: every flag a
# binary lists in --help must be a catalogue row valid for minor 20, and every such row
# missing from --help must still be accepted by the binary (a deprecated, hidden flag).
# Usage: scripts/e2e/check-catalogues.sh [DIR-WITH-V1.20.2-BINARIES]
set -euo pipefail

bindir="${1:-/var/cache/kube-bundle/k8s-v1.20.2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
minor=20
failures=0
checked=0

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Rows of a catalogue valid for $minor: first <= minor and (last empty or last >= minor).
catalogue_rows() {
  awk -F'\t' -v m="$minor" 'NR > 1 && $1 != "" && $2 <= m && ($3 == "" || $3 >= m) { print $1 }' "$1" | sort -u
}

# Run a binary from the scratch directory (so nothing lands in the work tree), with a
# time limit; its exit status is ignored, only its output matters.
run() {
  (cd "$tmp" || exit 1; timeout 10 "$@" 2>&1) || true
}

# Long flag names a binary lists in --help.
help_flags() {
  run "$1" --help |
    sed -nE 's/^[[:space:]]+(-[A-Za-z], )?--([A-Za-z0-9][A-Za-z0-9_-]*).*/\2/p' | sort -u
}

# Whether a binary accepts --flag (parsing stops before the run with --version or --help).
accepts() {
  local bin="$1" flag="$2" out
  for probe in --version --help; do
    out="$(run "$bin" "--$flag=x" "$probe")"
    if ! grep -q "unknown flag" <<<"$out"; then
      return 0
    fi
    # A boolean or no-value flag can reject "=x" by type, never as unknown; retry bare.
    out="$(run "$bin" "--$flag" "$probe")"
    if ! grep -q "unknown flag" <<<"$out"; then
      return 0
    fi
  done
  return 1
}

check() {
  local component="$1" tsv="$2" bin="$bindir/$1"
  if [[ ! -x "$bin" ]]; then
    echo "$component: binary $bin not found or not executable"
    failures=$((failures + 1))
    return
  fi
  if [[ ! -f "$tsv" ]]; then
    echo "$component: catalogue $tsv not found"
    failures=$((failures + 1))
    return
  fi
  catalogue_rows "$tsv" >"$tmp/$component.cat"
  help_flags "$bin" >"$tmp/$component.help"
  if [[ ! -s "$tmp/$component.help" ]]; then
    echo "$component: no flags found in --help output"
    failures=$((failures + 1))
    return
  fi
  local flag
  while read -r flag; do
    echo "$component: --$flag is in 1.$minor --help but not in ${tsv#"$root"/} for 1.$minor"
    failures=$((failures + 1))
  done < <(comm -13 "$tmp/$component.cat" "$tmp/$component.help")
  while read -r flag; do
    if ! accepts "$bin" "$flag"; then
      echo "$component: --$flag is in ${tsv#"$root"/} for 1.$minor but the binary rejects it (unknown flag)"
      failures=$((failures + 1))
    fi
  done < <(comm -23 "$tmp/$component.cat" "$tmp/$component.help")
  checked=$((checked + $(wc -l <"$tmp/$component.cat")))
}

check kube-apiserver "$root/src/component/kube_apiserver/kas-flags.tsv"
check kube-controller-manager "$root/src/component/kcm-flags.tsv"
check kube-scheduler "$root/src/component/ks-flags.tsv"

if ((failures > 0)); then
  echo "$failures difference(s) between the flag catalogues and the v1.$minor binaries in $bindir"
  exit 1
fi
echo "flag catalogues match the v1.$minor binaries in $bindir ($checked rows checked for kube-apiserver, kube-controller-manager, kube-scheduler)"
