#!/usr/bin/env bash
# Compare the etcd flag catalogue (src/component/etcd/etcd-flags.tsv, first/last are 3.x minors) with a real
# etcd 3.4 binary: every flag the binary lists in --help must be a catalogue row valid for
# minor 4, and every such row missing from --help must still be accepted by the binary (a
# hidden flag). The binary is only ever run with --help or --version, never started.
# Usage: scripts/e2e/check-etcd-catalogue.sh [ETCD-3.4-BINARY]
set -euo pipefail

bin="${1:-/usr/bin/etcd}"
if [[ "$bin" != */* ]]; then
  bin="$(command -v "$bin" || echo "$bin")"
fi
bin="$(realpath -e "$bin" 2>/dev/null || echo "$bin")"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tsv="$root/src/component/etcd/etcd-flags.tsv"
minor=4
failures=0

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Rows of the catalogue valid for $minor: first <= minor and (last empty or last >= minor).
catalogue_rows() {
  awk -F'\t' -v m="$minor" 'NR > 1 && $1 != "" && $2 <= m && ($3 == "" || $3 >= m) { print $1 }' "$1" | sort -u
}

# Rows that break the format: not 4 columns, first/last not a 3.x minor (4, 5, 6), last
# before first, no source, or out of order.
malformed_rows() {
  awk -F'\t' 'NR == 1 && $0 != "flag\tfirst\tlast\tsource" { print "line 1: header is not flag<TAB>first<TAB>last<TAB>source" }
    NR > 1 && (NF != 4 || $1 == "" || $2 !~ /^[456]$/ || ($3 != "" && ($3 !~ /^[456]$/ || $3 < $2)) || $4 == "") { print "line " NR ": malformed row for " $1 }
    NR > 2 && $1 <= prev { print "line " NR ": " $1 " is not sorted after " prev }
    NR > 1 { prev = $1 }' "$1"
}

# Run the binary from the scratch directory (so nothing lands in the work tree), with a
# time limit and an empty environment (no ETCD_* settings); its exit status is ignored,
# only its output matters.
run() {
  (cd "$tmp" || exit 1; timeout 10 env -i "$bin" "$@" 2>&1) || true
}

# Long flag names the binary lists in --help: option lines ("  --name 'default'") and the
# usage header ("  etcd --version", "  etcd -h | --help").
help_flags() {
  run --help |
    sed -nE 's/^[[:space:]]+(etcd )?(-[A-Za-z] \| )?--([A-Za-z0-9][A-Za-z0-9_-]*).*/\3/p' | sort -u
}

# Whether the binary accepts --flag. --version comes first so that a flag that does parse
# ends in the version printout; Go's flag package reports an unknown flag whatever its
# value, and a boolean flag rejects "=x" by type, never as unknown.
accepts() {
  ! run --version "--$1=x" | grep -q "flag provided but not defined"
}

if [[ ! -x "$bin" ]]; then
  echo "etcd: binary $bin not found or not executable"
  exit 1
fi
if [[ ! -f "$tsv" ]]; then
  echo "etcd: catalogue $tsv not found"
  exit 1
fi

version="$(run --version | sed -n 's/^etcd Version: //p')"
if [[ "$version" != 3.$minor.* ]]; then
  echo "etcd: $bin reports version '${version:-unknown}', not 3.$minor.x"
  failures=$((failures + 1))
  version="${version:-unknown}"
fi

while read -r problem; do
  echo "etcd: ${tsv#"$root"/} $problem"
  failures=$((failures + 1))
done < <(malformed_rows "$tsv")

catalogue_rows "$tsv" >"$tmp/etcd.cat"
help_flags >"$tmp/etcd.help"
if [[ ! -s "$tmp/etcd.help" ]]; then
  echo "etcd: no flags found in --help output of $bin"
  exit 1
fi

while read -r flag; do
  echo "etcd: --$flag is in $version --help but not in ${tsv#"$root"/} for 3.$minor"
  failures=$((failures + 1))
done < <(comm -13 "$tmp/etcd.cat" "$tmp/etcd.help")

hidden=0
while read -r flag; do
  if accepts "$flag"; then
    hidden=$((hidden + 1))
  else
    echo "etcd: --$flag is in ${tsv#"$root"/} for 3.$minor but $version rejects it (flag provided but not defined)"
    failures=$((failures + 1))
  fi
done < <(comm -23 "$tmp/etcd.cat" "$tmp/etcd.help")

if ((failures > 0)); then
  echo "$failures difference(s) between ${tsv#"$root"/} and etcd $version ($bin)"
  exit 1
fi
echo "etcd flag catalogue matches etcd $version ($bin): $(wc -l <"$tmp/etcd.cat") rows valid for 3.$minor, $hidden of them accepted but hidden from --help"
