//! kube-apiserver, as the tutorial's chapter 05-2: its row, its flag profile and
//! guards, the certificates it carries for the kubelets and the front proxy, the
//! front-proxy CA, and its encryption configuration's apiVersion; its section's keys
//! (`settings`), its part of the starting inventory (`starter`), its object in
//! manifest.json (`manifest`) and its own checks in `verify` (`verify`).

mod manifest;
mod settings;
mod starter;
mod verify;
pub use settings::{ApiServerSettings, EtcdTls, DEFAULT_NODE_PORT_RANGE};

use super::flags::{request_header, service_account_issuer, serving};
use super::{paths, APISERVER_ETCD_CLIENT, BLOCKING, HEALTHZ, KUBERNETES_STAMP};
use crate::model::{
    CaSpec, CertSpec, Component, ComponentSettings, Flag, Health, Inventory, IssuedBy, Names, Node,
    Section, ServiceAccountKey,
};
use crate::version::KubeVersion;

/// The client certificate kube-apiserver presents to kubelets; `system:kubelet-api-admin`
/// is bound to its user by `dist/kube-apiserver-rbac.yaml`.
pub const KUBELET_CLIENT: CertSpec = CertSpec {
    name: "kube-apiserver-kubelet-client",
    cn: "kube-apiserver-kubelet-client",
    org: None,
    server: false,
    client: true,
    names: Names::None,
    issued_by: IssuedBy::Root,
};

/// The aggregation layer's CA (`--requestheader-client-ca-file`): never the root CA,
/// whose every client certificate could then act as the front proxy.
pub const FRONT_PROXY_CA: CaSpec = CaSpec {
    stem: "front-proxy-ca",
    what: "front-proxy CA",
    node_path: paths::FRONT_PROXY_CA,
    pki_key: None,
};

/// The client certificate kube-apiserver presents to aggregated API servers.
pub const FRONT_PROXY_CLIENT: CertSpec = CertSpec {
    name: "front-proxy-client",
    cn: "front-proxy-client",
    org: None,
    server: false,
    client: true,
    names: Names::None,
    issued_by: IssuedBy::Ca(&FRONT_PROXY_CA),
};

pub const KUBE_APISERVER: Component = Component {
    name: "kube-apiserver",
    user: "kube-apiserver",
    description: "Kubernetes API Server",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/",
    section: Section::of::<settings::RawApiServer>(),
    node_state: None,
    starter: Some(starter::STARTER),
    required: false,
    default_secure_port: 6443,
    port_key: "secure-port",
    extra_ports: &[],
    // /healthz answers ok while every Secret read fails (a wrong encryption key) or etcd
    // is out of reach; /readyz does not: its etcd and informer-sync checks fail then.
    health: Health {
        path: "/readyz",
        ..HEALTHZ
    },
    lease: None,
    kubeconfig: false,
    serves_api: true,
    binds_node_ip: true,
    certs: &[
        CertSpec {
            name: "kube-apiserver",
            cn: "kube-apiserver",
            org: None,
            server: true,
            client: false,
            names: Names::Api,
            issued_by: IssuedBy::Root,
        },
        KUBELET_CLIENT,
        FRONT_PROXY_CLIENT,
    ],
    certs_from: &[("etcd", APISERVER_ETCD_CLIENT)],
    gates_the_rest: true,
    start: BLOCKING,
    work_mode: 0o755,
    data_dirs: &[],
    unit_settings: &["Type=notify", "LimitNOFILE=65536"],
    config: None,
    flags: flag_profile,
    main_packages: &[],
    catalogue: include_str!("kas-flags.tsv"),
    version_series: "1.",
    version_stamp: KUBERNETES_STAMP,
    install_data: None,
    managed_flags: &[
        ("secure-port", "secure-port"),
        ("bind-address", ""),
        ("advertise-address", ""),
        ("service-node-port-range", "service-node-port-range"),
        ("etcd-servers", "etcd-servers"),
        ("etcd-cafile", "etcd-ca"),
        ("etcd-certfile", "etcd-cert"),
        ("etcd-keyfile", "etcd-key"),
        ("encryption-provider-config", ""),
        ("service-cluster-ip-range", ""),
        ("service-account-issuer", ""),
        ("service-account-signing-key-file", ""),
        ("service-account-key-file", ""),
        ("tls-cert-file", ""),
        ("tls-private-key-file", ""),
        ("anonymous-auth", ""),
        ("authorization-mode", ""),
        ("client-ca-file", ""),
        ("requestheader-client-ca-file", ""),
        ("requestheader-allowed-names", ""),
    ],
    guards: &APISERVER_GUARDS,
    shared_flags: &["service-cluster-ip-range", "service-account-issuer"],
    uses_service_account_key: true,
    signs_csrs: false,
    install_hooks: None,
    manifest: Some(manifest::PART),
    verify: verify::CHECKS,
};

/// kube-apiserver's flags that decide who may do what (see [`Component::guards`]).
pub(super) const APISERVER_GUARDS: [(&str, &str, &str); 6] = [
    (
        "anonymous-auth",
        "false",
        "requests without credentials would reach the API as system:anonymous",
    ),
    (
        "authorization-mode",
        "Node,RBAC",
        "another mode can allow what RBAC denies (AlwaysAllow allows every request)",
    ),
    (
        "client-ca-file",
        paths::CLIENT_CA,
        "client certificates would be checked against other CAs than the bundle's client-ca.pem",
    ),
    (
        "requestheader-client-ca-file",
        paths::FRONT_PROXY_CA,
        "another CA could vouch for a front proxy, which names any user in request headers",
    ),
    (
        "requestheader-allowed-names",
        "front-proxy-client",
        "any certificate of the front-proxy CA could act as the front proxy",
    ),
    (
        "encryption-provider-config",
        paths::ENCRYPTION_CONFIG,
        "Secrets would be written to etcd unencrypted",
    ),
];

/// kube-apiserver's own settings, when the inventory builds it.
pub fn own(inv: &Inventory) -> Option<&ApiServerSettings> {
    inv.own(&KUBE_APISERVER)
}

/// The tutorial's chapter 05-2 flags, with kubeadm's choices where the tutorial is
/// outdated: service-account issuer and signing key (required from 1.20), front-proxy
/// CA and client, and no `DynamicAuditing` gate or `--runtime-config=api/all=true`
/// (alpha APIs on; set it in `extra-args` if wanted).
fn flag_profile(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    let c = settings.component;
    let minor = inv.cluster.version.profile_minor();
    let api = own(inv).expect("kube-apiserver settings come with its component");
    let mut flags = vec![
        Flag::set("advertise-address", node.ip.to_string()),
        Flag::set("default-not-ready-toleration-seconds", "360"),
        Flag::set("default-unreachable-toleration-seconds", "360"),
        Flag::set("max-mutating-requests-inflight", "2000"),
        Flag::set("max-requests-inflight", "4000"),
        Flag::set("default-watch-cache-size", "200"),
        Flag::set("delete-collection-workers", "2"),
        Flag::set("encryption-provider-config", paths::ENCRYPTION_CONFIG),
    ];
    if let Some(etcd) = super::etcd::own(inv) {
        flags.extend([
            Flag::set("etcd-cafile", paths::ETCD_CA),
            Flag::set("etcd-certfile", APISERVER_ETCD_CLIENT.cert_path()),
            Flag::set("etcd-keyfile", APISERVER_ETCD_CLIENT.key_path()),
            Flag::set("etcd-servers", etcd.servers_for(&inv.nodes, node).join(",")),
        ]);
    } else {
        if api.etcd_tls.is_some() {
            flags.extend([
                Flag::set("etcd-cafile", paths::ETCD_CA),
                Flag::set("etcd-certfile", paths::ETCD_CLIENT_CERT),
                Flag::set("etcd-keyfile", paths::ETCD_CLIENT_KEY),
            ]);
        }
        flags.push(Flag::set("etcd-servers", api.etcd_servers.join(",")));
    }
    flags.extend(serving(c, node, settings));
    // The insecure port 8080 is on by default below 1.20 and the flag is gone in 1.24.
    if minor < 20 {
        flags.push(Flag::set("insecure-port", "0"));
    }
    let work_dir = c.work_dir(&inv.cluster.k8s_dir);
    flags.extend([
        Flag::set("audit-log-maxage", "15"),
        Flag::set("audit-log-maxbackup", "3"),
        Flag::set("audit-log-maxsize", "100"),
        Flag::on("audit-log-truncate-enabled"),
        Flag::set("audit-log-path", format!("{work_dir}/audit.log")),
        Flag::set("audit-policy-file", paths::AUDIT_POLICY),
        Flag::on("profiling"),
        Flag::set("anonymous-auth", "false"),
        Flag::set("client-ca-file", paths::CLIENT_CA),
        Flag::on("enable-bootstrap-token-auth"),
    ]);
    flags.extend(request_header(inv));
    let (sa_public, sa_private) = match inv.pki.service_account_key {
        ServiceAccountKey::Dedicated => (paths::SA_PUB, paths::SA_KEY),
        ServiceAccountKey::Ca => (paths::CA_CERT, paths::CA_KEY),
    };
    let issuer = service_account_issuer(inv);
    flags.extend([
        Flag::set("service-account-issuer", &issuer),
        Flag::set("service-account-key-file", sa_public),
        Flag::set("service-account-signing-key-file", sa_private),
        Flag::set("api-audiences", &issuer),
        Flag::set("authorization-mode", "Node,RBAC"),
        Flag::set("enable-admission-plugins", "NodeRestriction"),
        Flag::set("allow-privileged", "true"),
        Flag::set("event-ttl", "168h"),
        // Kubelets' serving certificates come from the CSR signers: root or signing CA.
        Flag::set("kubelet-certificate-authority", paths::CLIENT_CA),
        Flag::set("kubelet-client-certificate", KUBELET_CLIENT.cert_path()),
        Flag::set("kubelet-client-key", KUBELET_CLIENT.key_path()),
        Flag::set("kubelet-timeout", "10s"),
        Flag::set("proxy-client-cert-file", FRONT_PROXY_CLIENT.cert_path()),
        Flag::set("proxy-client-key-file", FRONT_PROXY_CLIENT.key_path()),
        Flag::set(
            "service-cluster-ip-range",
            inv.cluster.service_cidr.to_string(),
        ),
        Flag::set("service-node-port-range", &api.node_port_range),
    ]);
    if minor < 23 {
        flags.push(Flag::set("logtostderr", "true"));
    }
    flags.push(Flag::set("v", "2"));
    flags
}

/// The EncryptionConfiguration apiVersion: `apiserver.config.k8s.io/v1` from 1.13
/// through 1.34 (the tutorial's `EncryptionConfig` `v1` is the pre-1.13 spelling).
pub fn encryption_config_api(_version: &KubeVersion) -> &'static str {
    "apiserver.config.k8s.io/v1"
}
