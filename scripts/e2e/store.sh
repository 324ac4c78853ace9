# shellcheck shell=bash
# The artifact store and CSR signing in the end-to-end run, sourced by run.sh after
# lib.sh: a docker-registry on the nodes' network, in the bridge's namespace on the
# bridge's address (TLS with a certificate from the test CA, htpasswd auth), that
# `kube-bundle push` fills from there and each node's `fetch.sh` reads with curl alone;
# and a kubelet CSR signed by the controller-manager's signing CA from the bundle,
# whose certificate kube-apiserver then accepts.

REGISTRY_PORT=35000
REGISTRY_USER=e2e
REGISTRY_ADDR=""   # IP:PORT, set by start_registry
REGISTRY_REF=""

# start_registry DIR LOG CA CAKEY IP: the package's binary with our own config, never its
# service, listening on IP:REGISTRY_PORT inside the bridge's namespace (net_up).
start_registry() {
    local dir=$1 logf=$2 ca=$3 cakey=$4 ip=$5
    require_cmd docker-registry
    REGISTRY_ADDR=$ip:$REGISTRY_PORT
    REGISTRY_REF=$REGISTRY_ADDR/k8s/control-plane:e2e
    mkdir -p "$dir/storage"
    sign_cert "$ca" "$cakey" "$dir/tls" "/CN=e2e-registry" server "IP:$ip"
    REGISTRY_PASSWORD=$(openssl rand -hex 16)
    # bcrypt, the only hash docker-registry's htpasswd accepts, at its lowest cost (4): the
    # registry checks it on every request, and at the default cost 12 each check takes
    # a CPU core for a quarter to half a second. The password is random and thrown away.
    python3 -W ignore::DeprecationWarning -c 'import crypt,sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))' \
        "$REGISTRY_USER" "$REGISTRY_PASSWORD" >"$dir/htpasswd" ||
        fail "could not hash the registry password with bcrypt"
    cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REGISTRY_ADDR
  tls:
    certificate: $dir/tls.pem
    key: $dir/tls-key.pem
auth:
  htpasswd:
    realm: kube-bundle-e2e
    path: $dir/htpasswd
CONFIG
    # ip netns exec enters the namespace and execs the registry: $! is the registry.
    setsid ip netns exec "$E2E_NET_NS" docker-registry serve "$dir/config.yml" </dev/null >"$logf" 2>&1 &
    track_pid $! docker-registry
    # 401 without credentials is the registry answering.
    if ! wait_until 30 0.3 registry_answers "$ca"; then
        fail_with_details "docker-registry did not answer on https://$REGISTRY_ADDR/v2/ within 30s (log $logf)" "$(tail -n 20 "$logf")"
    fi
    log "docker-registry up on https://$REGISTRY_ADDR (TLS from the test CA, htpasswd)"
}

registry_answers() {
    [[ $(in_net curl -s -o /dev/null -w '%{http_code}' --cacert "$1" "https://$REGISTRY_ADDR/v2/") == 401 ]]
}

# push_bundles DIST CA: `kube-bundle push` of the whole dist/ as the e2e user, from the
# bridge's namespace.
push_bundles() {
    local dist=$1 ca=$2 out
    if ! out=$(printf '%s\n' "$REGISTRY_PASSWORD" | in_net "$KUBE_BUNDLE" push --out "$dist" \
        --ca-file "$ca" --username "$REGISTRY_USER" --password-stdin "$REGISTRY_REF" 2>&1); then
        fail_with_details "kube-bundle push $REGISTRY_REF failed" "$out"
    fi
    log "pushed: $(grep -c '@sha256:' <<<"$out") references"
}

# fetch_in_node NODE DIR: the node fetches its own bundle from the registry with
# dist/fetch.sh (curl, sha256sum, tar) into DIR, as an air-gapped node would.
fetch_in_node() {
    local n=$1 dir=$2
    # shellcheck disable=SC2016  # expanded by the node's sh
    printf '%s\n' "$REGISTRY_PASSWORD" | node_exec "$n" sh -c '
            set -e
            mkdir -p "$4"
            exec /bundle/fetch.sh -o "$4" --ca-file /bundle/registry-ca.pem \
                --username "$3" --password-stdin "$2" "$1"
        ' sh "$n" "$REGISTRY_REF" "$REGISTRY_USER" "$dir"
}

# csr_signed_by_the_bundle NODE CA_CERT SIGNER_CERT APISERVER_URL: a kubelet client CSR,
# approved with kubectl, signed by the controller-manager with the bundle's signing CA
# (which the root CA does not vouch for); the certificate it gets authenticates to the
# kube-apiserver at APISERVER_URL as that node.
csr_signed_by_the_bundle() {
    local name=$1 api=$4 dir=$WORK/csr-$1 cert code body
    mkdir -p "$dir"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/req.csr" \
        -subj "/O=system:nodes/CN=system:node:$name" >/dev/null 2>&1 ||
        fail "openssl could not make a CSR"
    k apply -f - >/dev/null <<CSR || fail "kubectl could not create the CSR"
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: e2e-$name
spec:
  request: $(base64 -w0 "$dir/req.csr")
  signerName: kubernetes.io/kube-apiserver-client-kubelet
  usages: ["digital signature", "key encipherment", "client auth"]
CSR
    k certificate approve "e2e-$name" >/dev/null || fail "kubectl certificate approve e2e-$name failed"
    if ! wait_until 60 1 csr_issued "e2e-$name"; then
        fail_with_details "the controller-manager did not sign CSR e2e-$name within 60s" "$(k get csr "e2e-$name" -o yaml 2>&1)"
    fi
    k get csr "e2e-$name" -o 'jsonpath={.status.certificate}' | base64 -d >"$dir/cert.pem"
    cert=$dir/cert.pem
    openssl verify -CAfile "$3" "$cert" >/dev/null 2>&1 ||
        fail "the signed certificate does not chain to the bundle's signing CA"
    ! openssl verify -CAfile "$2" -untrusted "$3" "$cert" >/dev/null 2>&1 ||
        fail "the signed certificate chains to the root CA through the signing CA: the signing CA must be its own trust anchor"
    [[ $(openssl x509 -in "$cert" -noout -issuer) == *csr-signer* ]] ||
        fail "the certificate was not issued by the signing CA: $(openssl x509 -in "$cert" -noout -issuer)"
    # Authenticated as the node: RBAC forbids listing secrets (403) rather than 401.
    body=$(in_net curl -sS --max-time 10 --cacert "$CA" --cert "$cert" --key "$dir/key.pem" \
        -w '\n%{http_code}' "$api/api/v1/namespaces/kube-system/secrets" 2>&1) || true
    code=${body##*$'\n'}
    [[ $code == 403 && $body == *"system:node:$name"* ]] ||
        fail_with_details "kube-apiserver at $api did not accept the signed kubelet certificate as system:node:$name (HTTP $code)" "$body"
}

csr_issued() {
    [[ -n $(k get csr "$1" -o 'jsonpath={.status.certificate}' 2>/dev/null) ]]
}
