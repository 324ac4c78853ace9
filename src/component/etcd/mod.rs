//! etcd, as the tutorial's chapter 04: its row, its CA, its flag profile and the client
//! certificate kube-apiserver takes from it; its section's keys (`settings`), its part of
//! the starting inventory (`starter`), its object in manifest.json (`manifest`) and its
//! own checks in `verify` (`verify`).

mod manifest;
mod settings;
mod starter;
mod verify;
pub use settings::{
    EtcdSettings, DEFAULT_CLUSTER_TOKEN, DEFAULT_DATA_DIR, DEFAULT_WAL_DIR, ETCD_MINORS,
};

use super::paths;
use crate::model::{
    CaChoice, CaSpec, CertSpec, Component, ComponentSettings, ExtraPort, Flag, Health, Inventory,
    IssuedBy, Names, Node, NodeState, Section, Start,
};

/// etcd's CA, which its members and their clients trust: its own, generated once
/// (kubeadm's way: a certificate of the cluster CA cannot reach etcd), or with
/// `[pki] etcd-ca = "shared"` the root CA, as the tutorial does.
pub const ETCD_CA: CaSpec = CaSpec {
    stem: "etcd-ca",
    what: "etcd CA",
    node_path: paths::ETCD_CA,
    pki_key: Some(CaChoice {
        key: "etcd-ca",
        hint: "use `dedicated` (a CA of etcd's own, as kubeadm makes) or `shared` (the cluster CA, as the tutorial does)",
    }),
};

/// kube-apiserver's client certificate for etcd from the inventory (`[etcd]`).
pub const APISERVER_ETCD_CLIENT: CertSpec = CertSpec {
    name: "apiserver-etcd-client",
    cn: "kube-apiserver-etcd-client",
    org: None,
    server: false,
    client: true,
    names: Names::None,
    issued_by: IssuedBy::Ca(&ETCD_CA),
};

/// etcd, as the tutorial's chapter 04: one member per master, TLS between members and
/// to clients with one certificate per node.
pub const ETCD: Component = Component {
    name: "etcd",
    user: "etcd",
    description: "Etcd Server",
    documentation: "https://etcd.io/docs/",
    section: Section::of::<settings::RawEtcd>(),
    node_state: Some(NodeState {
        key: "etcd-state",
        bootstraps: "new",
        joins: "existing",
        hint: "`new` for a member that bootstraps the cluster (the default), `existing` for one added to a formed cluster with `etcdctl member add`",
    }),
    starter: Some(starter::STARTER),
    required: false,
    default_secure_port: 2379,
    port_key: "client-port",
    extra_ports: &[ExtraPort {
        key: "peer-port",
        default: 2380,
        what: "peers",
    }],
    health: Health {
        scheme: "https",
        path: "/health",
        ca: paths::ETCD_CA,
        ok: "\"health\":\"true\"",
    },
    lease: None,
    kubeconfig: false,
    serves_api: false,
    // Its listen URLs name the node IP (no --bind-address), checked with its member.
    binds_node_ip: false,
    certs: &[CertSpec {
        name: "etcd",
        cn: "etcd",
        org: None,
        server: true,
        client: true,
        names: Names::Node,
        issued_by: IssuedBy::Ca(&ETCD_CA),
    }],
    certs_from: &[],
    gates_the_rest: true,
    // A member of a cluster that has not formed yet is not ready until its peers run:
    // install.sh starts it without waiting, and systemd must not time it out meanwhile.
    start: Start {
        blocking: false,
        waits_for_quorum: true,
    },
    // Its data dir holds every key of the cluster.
    work_mode: 0o700,
    data_dirs: &["data-dir", "wal-dir"],
    unit_settings: &["Type=notify", "TimeoutStartSec=0", "LimitNOFILE=65536"],
    config: None,
    flags: flag_profile,
    // 3.4's module root, and 3.5's server module (`go.etcd.io/etcd/server/v3`).
    main_packages: &["go.etcd.io/etcd", "go.etcd.io/etcd/server"],
    catalogue: include_str!("etcd-flags.tsv"),
    version_series: "3.",
    version_stamp: ("go.etcd.io/etcd/", "/version.Version"),
    install_data: Some(install_data),
    managed_flags: &[
        ("name", ""),
        ("data-dir", "data-dir"),
        ("wal-dir", "wal-dir"),
        ("cert-file", ""),
        ("key-file", ""),
        ("trusted-ca-file", ""),
        ("peer-cert-file", ""),
        ("peer-key-file", ""),
        ("peer-trusted-ca-file", ""),
        ("client-cert-auth", ""),
        ("peer-client-cert-auth", ""),
        ("listen-client-urls", "client-port"),
        ("advertise-client-urls", "client-port"),
        ("listen-peer-urls", "peer-port"),
        ("initial-advertise-peer-urls", "peer-port"),
        ("initial-cluster", ""),
        ("initial-cluster-state", ""),
        ("initial-cluster-token", "cluster-token"),
    ],
    guards: &[],
    shared_flags: &[],
    uses_service_account_key: false,
    signs_csrs: false,
    install_hooks: Some(include_str!(
        "../../../bundle-templates/install/hooks/etcd.sh.hbs"
    )),
    manifest: Some(manifest::PART),
    verify: verify::CHECKS,
};

/// What etcd's install.sh hooks (health checks, snapshots) and dist/rollout.sh read.
fn install_data(inv: &Inventory, node: &Node) -> serde_json::Value {
    let Some(etcd) = own(inv) else {
        return serde_json::Value::Null;
    };
    serde_json::json!({
        "version": format!("3.{}", etcd.minor),
        "data_dir": etcd.data_dir,
        "wal_dir": etcd.wal_dir,
        "endpoint": etcd.client_url(node),
        "members": etcd.initial_cluster(&inv.nodes, node).split(',').count(),
        "peers": inv.nodes.iter().filter(|n| n.name != node.name).map(|n| etcd.client_url(n)).collect::<Vec<_>>(),
        "ca": paths::ETCD_CA,
        "cert": ETCD.cert_path(),
        "key": ETCD.key_path(),
    })
}

/// etcd's own settings, when the inventory builds it.
pub fn own(inv: &Inventory) -> Option<&EtcdSettings> {
    inv.own(&ETCD)
}

/// The tutorial's chapter 04 flags, for the etcd release of the inventory: TLS with one
/// certificate per node for clients and peers, both checked against etcd's CA; client and
/// peer URLs on the node IP only (the tutorial's plain-http loopback listener would let
/// any local process read every Secret); the tutorial's compaction, request and quota
/// limits and timings.
fn flag_profile(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> Vec<Flag> {
    let etcd = own(inv).expect("etcd settings come with its component");
    let c = settings.component;
    let state = if etcd.joining.contains(&node.name) {
        "existing"
    } else {
        "new"
    };
    let (cert, key) = (c.cert_path(), c.key_path());
    vec![
        Flag::set("name", &node.name),
        Flag::set("data-dir", &etcd.data_dir),
        Flag::set("wal-dir", &etcd.wal_dir),
        Flag::set("cert-file", &cert),
        Flag::set("key-file", &key),
        Flag::set("trusted-ca-file", paths::ETCD_CA),
        Flag::set("peer-cert-file", &cert),
        Flag::set("peer-key-file", &key),
        Flag::set("peer-trusted-ca-file", paths::ETCD_CA),
        Flag::on("peer-client-cert-auth"),
        Flag::on("client-cert-auth"),
        Flag::set("listen-peer-urls", etcd.peer_url(node)),
        Flag::set("initial-advertise-peer-urls", etcd.peer_url(node)),
        Flag::set("listen-client-urls", etcd.client_url(node)),
        Flag::set("advertise-client-urls", etcd.client_url(node)),
        Flag::set("initial-cluster-token", &etcd.cluster_token),
        Flag::set("initial-cluster", etcd.initial_cluster(&inv.nodes, node)),
        Flag::set("initial-cluster-state", state),
        Flag::set("auto-compaction-mode", "periodic"),
        Flag::set("auto-compaction-retention", "1"),
        Flag::set("max-request-bytes", "33554432"),
        Flag::set("quota-backend-bytes", "6442450944"),
        Flag::set("heartbeat-interval", "250"),
        Flag::set("election-timeout", "2000"),
        // 3.4 logs through the deprecated capnslog unless told otherwise; zap is the
        // default from 3.5, which refuses capnslog.
        Flag::set("logger", "zap"),
    ]
}
