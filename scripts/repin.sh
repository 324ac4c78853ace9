#!/usr/bin/env bash
# Prints the bundle hashes the fixture inventory builds to today, for re-pinning
# tests/integration/reproducible.rs after an intended change to the bundle format.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --quiet --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r tests/fixtures/golden/. "$work/"
(cd "$work" && SOURCE_DATE_EPOCH=1700000000 "$OLDPWD/target/debug/kube-bundle" build -c cluster.toml -o dist >/dev/null 2>&1)
grep '\.tar\.gz$' "$work/dist/SHA256SUMS" | cut -d' ' -f1
