#!/usr/bin/env bash
# `make bench`, second part: what `kube-bundle push` uploads for many masters sharing one
# binary, against the ideal of one compressed binary plus every node's own gzip members,
# and the peak memory of push and pull; the time of a push that uploads nothing (the same
# dist again); then `kube-bundle pull --node` and dist/fetch.sh getting one node's bundle,
# each against curl of the same blobs plus sha256sum of them.
#
# A docker-registry is started on a free loopback port with plain http and its own
# config and storage (never the package's service), the bundles are built and pushed,
# then one node's bundle is pulled back and compared.
#
# Environment:
#   KUBE_BUNDLE        the kube-bundle binary (default: target/release/kube-bundle)
#   BENCH_PUSH_NODES   master counts (default "30")
#   BENCH_BINARY       the binary (default: the end-to-end cache's kube-controller-manager,
#                      else a generated file of real executables)
#   BENCH_BINARY_MB    size of a generated binary (default 100)
#   BENCH_FETCH_RUNS   runs of each side of the pull and fetch comparisons, and of the
#                      repush (default 5)
#   BENCH_DIR          scratch folder (default: a new temporary folder, removed at the end)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_BUNDLE=${KUBE_BUNDLE:-$ROOT/target/release/kube-bundle}
NODES=${BENCH_PUSH_NODES:-30}
BINARY_MB=${BENCH_BINARY_MB:-100}
CACHED_KCM=/var/cache/kube-bundle/k8s-v1.20.2/kube-controller-manager
# Upload bytes may exceed the ideal by this factor at most.
TARGET=1.2
FETCH_RUNS=${BENCH_FETCH_RUNS:-5}
# pull and fetch.sh may take this factor of curl plus sha256sum at most.
FETCH_TARGET=1.3
# A push that uploads nothing may take this many milliseconds at most.
REPUSH_TARGET_MS=1000

die() {
    printf 'bench-push: %s\n' "$*" >&2
    exit 1
}
# shellcheck source-path=SCRIPTDIR source=stand-in.sh
. "$ROOT/scripts/stand-in.sh"

for tool in docker-registry python3 gzip /usr/bin/time; do
    command -v "$tool" >/dev/null 2>&1 || die "\`$tool\` is missing; run \`make deps\` as root"
done
[[ -x $KUBE_BUNDLE ]] || die "no kube-bundle binary at \`$KUBE_BUNDLE\`; run \`cargo build --release\`"

if [[ -n ${BENCH_DIR:-} ]]; then
    WORK=$BENCH_DIR/push
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
fi
registry_pid=
cleanup() {
    if [[ -n $registry_pid ]]; then kill "$registry_pid" 2>/dev/null || true; fi
    if [[ -z ${BENCH_DIR:-} ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

binary=${BENCH_BINARY:-}
if [[ -z $binary && $BINARY_MB == 100 && -f $CACHED_KCM ]]; then
    binary=$CACHED_KCM
elif [[ -z $binary ]]; then
    binary=$WORK/generated-binary
    stand_in "$binary" "$((BINARY_MB << 20))"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/storage
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done

# python3 reads the push summary: uploaded bytes, and the ideal from the member sizes.
summarize() {
    python3 - "$1" "$2" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
binary_gz = int(sys.argv[2])
# The binary's member is each bundle's largest; every other member counts per node.
own = sum(sum(l["size"] for l in n["layers"]) - max(l["size"] for l in n["layers"])
          for n in report["nodes"])
print(report["uploaded_bytes"], binary_gz + own, own)
PY
}

printf 'bench-push: kube-bundle %s, binary %s (%s MiB)\n' \
    "$("$KUBE_BUNDLE" --version | awk '{print $2}')" "$binary" "$(($(stat -c %s "$binary") >> 20))" >&2
# One gzip -6 of the binary: "one compressed binary", made independently of kube-bundle.
binary_gz=$(gzip -6 -n -c "$binary" | wc -c)

# Milliseconds `$@` takes.
ms() {
    local start
    start=$(date +%s%N)
    "$@"
    printf '%d\n' $((($(date +%s%N) - start) / 1000000))
}
median() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

rows=()
for n in $NODES; do
    dir=$WORK/n$n
    mkdir -p "$dir"
    {
        printf '[cluster]\nkubernetes-version = "1.20.2"\nservice-cidr = "10.254.0.0/16"\n'
        printf '[pki]\nkey-algorithm = "ecdsa-p256"\nseal-secrets = true\n'
        printf '[kube-controller-manager]\nbinary = "%s"\n' "$binary"
        unread "$binary"
        for ((i = 1; i <= n; i++)); do
            printf '[[nodes]]\nname = "m%s"\nip = "10.0.%s.%s"\n' "$i" "$((i / 200))" "$((i % 200 + 1))"
        done
    } >"$dir/cluster.toml"
    SOURCE_DATE_EPOCH=1700000000 "$KUBE_BUNDLE" build -q -c "$dir/cluster.toml" -o "$dir/dist" >/dev/null
    ref=127.0.0.1:$port/bench/n$n:v1
    start=$(date +%s%N)
    /usr/bin/time -f %M -o "$dir/push.kib" "$KUBE_BUNDLE" push -q --plain-http --output json \
        --out "$dir/dist" "$ref" >"$dir/push.json"
    push_ms=$((($(date +%s%N) - start) / 1000000))
    # The same dist again: every blob is there, nothing may be uploaded.
    repush=()
    for ((r = 0; r < FETCH_RUNS; r++)); do
        start=$(date +%s%N)
        "$KUBE_BUNDLE" push -q --plain-http --output json --out "$dir/dist" "$ref" >"$dir/repush.json"
        repush+=($((($(date +%s%N) - start) / 1000000)))
        python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["uploaded_bytes"] != 0)' \
            "$dir/repush.json" || die "the repush of $n masters uploaded something"
    done
    /usr/bin/time -f %M -o "$dir/pull.kib" "$KUBE_BUNDLE" pull -q --plain-http --node m1 \
        -o "$dir/pulled" "$ref" >/dev/null
    cmp -s "$dir/pulled/$(basename "$(find "$dir/dist" -name '*m1.tar.gz')")" \
        "$(find "$dir/dist" -name '*m1.tar.gz')" || die "the pulled bundle of m1 differs"
    stored=$(find "$WORK/storage/docker/registry/v2/blobs" -name data -printf '%s\n' | awk '{ s += $1 } END { print s }')
    read -r uploaded ideal own <<<"$(summarize "$dir/push.json" "$binary_gz")"
    bundles=$(find "$dir/dist" -name '*.tar.gz' -printf '%s\n' | awk '{ s += $1 } END { print s }')
    rows+=("$n $uploaded $ideal $binary_gz $own $bundles $push_ms $(median "${repush[@]}") $(cat "$dir/push.kib") $(cat "$dir/pull.kib") $stored")
done

printf '| masters | uploaded | one compressed binary + per-node members | ratio | target | all bundles | push time | repush, nothing uploaded (median) | push peak RSS | pull peak RSS | registry storage |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for row in "${rows[@]}"; do
    read -r n up ideal gz own bundles ms rms prss lrss stored <<<"$row"
    awk -v n="$n" -v up="$up" -v ideal="$ideal" -v gz="$gz" -v own="$own" -v b="$bundles" -v ms="$ms" \
        -v rms="$rms" -v rt="$REPUSH_TARGET_MS" \
        -v p="$prss" -v l="$lrss" -v st="$stored" -v t="$TARGET" 'BEGIN {
        M = 1048576; r = up / ideal
        printf "| %s | %.1f MiB | %.1f MiB (%.1f + %.2f) | %.2fx | ≤%sx %s | %.1f MiB | %d ms | %d ms (<%d ms %s) | %.1f MiB | %.1f MiB | %.1f MiB |\n",
            n, up / M, ideal / M, gz / M, own / M, r, t, (r <= t) ? "met" : "MISSED", b / M, ms,
            rms, rt, (rms < rt) ? "met" : "MISSED", p / 1024, l / 1024, st / M
    }'
done

# fetch.sh --no-unpack of m1's bundle (the first master count's push), against curl of the
# same blobs into files plus sha256sum of those files: the least any checked download
# does. The two sides alternate (the order swaps every run), medians are compared.
n=${NODES%% *}
dir=$WORK/n$n
ref=127.0.0.1:$port/bench/n$n:v1
mapfile -t blobs < <(python3 -c '
import json, sys
node = next(n for n in json.load(open(sys.argv[1]))["nodes"] if n["node"] == "m1")
print("\n".join(l["digest"] for l in node["layers"]))' "$dir/push.json")
bundle=$(find "$dir/dist" -name '*m1.tar.gz')
fetch_once() {
    rm -rf "$dir/fetched"
    "$dir/dist/fetch.sh" --plain-http --no-unpack -o "$dir/fetched" "$ref" m1 >/dev/null 2>"$dir/fetch.err" ||
        die "fetch.sh failed: $(cat "$dir/fetch.err")"
}
pull_once() {
    rm -rf "$dir/pulled"
    "$KUBE_BUNDLE" pull -q --plain-http --node m1 -o "$dir/pulled" "$ref" >/dev/null
}
curl_once() {
    local i=0 d
    rm -rf "$dir/curled"
    mkdir "$dir/curled"
    for d in "${blobs[@]}"; do
        i=$((i + 1))
        curl -sSf -o "$dir/curled/$i" "http://127.0.0.1:$port/v2/bench/n$n/blobs/$d"
    done
    sha256sum "$dir/curled"/* >/dev/null
}
fetch_ms=()
pull_ms=()
curl_ms=()
for ((r = 0; r < FETCH_RUNS; r++)); do
    if ((r % 2 == 0)); then
        pull_ms+=("$(ms pull_once)")
        curl_ms+=("$(ms curl_once)")
        fetch_ms+=("$(ms fetch_once)")
    else
        fetch_ms+=("$(ms fetch_once)")
        curl_ms+=("$(ms curl_once)")
        pull_ms+=("$(ms pull_once)")
    fi
done
cmp -s "$dir/pulled/$(basename "$bundle")" "$bundle" || die "the bundle pull got differs from dist's"
cmp -s "$dir/fetched/$(basename "$bundle")" "$bundle" || die "the bundle fetch.sh got differs from dist's"
c=$(median "${curl_ms[@]}")
printf '\n| node | bundle | getter | getter (median) | curl + sha256sum (median) | ratio | target |\n'
printf '|---|---|---|---|---|---|---|\n'
for getter in "kube-bundle pull --node" "fetch.sh --no-unpack"; do
    case $getter in
    kube-bundle*) f=$(median "${pull_ms[@]}") ;;
    *) f=$(median "${fetch_ms[@]}") ;;
    esac
    awk -v b="$(stat -c %s "$bundle")" -v g="$getter" -v f="$f" -v c="$c" -v t="$FETCH_TARGET" -v runs="$FETCH_RUNS" 'BEGIN {
        r = f / (c > 0 ? c : 1)
        printf "| m1 | %.1f MiB | %s | %d ms | %d ms | %.2fx | ≤%sx %s (%d runs each) |\n",
            b / 1048576, g, f, c, r, t, (r <= t) ? "met" : "MISSED", runs
    }'
done
