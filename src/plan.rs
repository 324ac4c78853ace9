//! The per-node plan: every file a node's bundle installs, with its node path, mode, the
//! components that restart when it changes, and where its bytes come from. Pure data
//! computed from the inventory alone, before any certificate is issued or template
//! rendered: it can be printed, diffed and tested by itself. `render` turns a plan into
//! bytes; this module does no I/O and knows nothing about tar, gzip or templates.
//!
//! A file restarts exactly the components that read it: whose flags (from `flags`, with
//! their `extra-args`) name it, or whose own unit, binary, configuration file or
//! kubeconfig it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::component::flags;
use crate::component::{self, paths, CaSpec, CertSpec, Component, BUNDLE_PREFIX};
use crate::model::{ComponentSettings, CsrSigning, Inventory, Node, ServiceAccountKey};

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    CaCert,
    /// The root CA key: for the CSR signers with `csr-signing = "ca"`, or to sign tokens
    /// with `service-account-key = "ca"`.
    CaKey,
    /// The signing CA of the CSR signers and its key (`csr-signing = "signer"`).
    SignerCert,
    SignerKey,
    ServiceAccountKey,
    ServiceAccountPub,
    /// A certificate of the node, from `pki/<node>/<name>.pem`.
    Cert(&'static CertSpec),
    Key(&'static CertSpec),
    /// The root CA, then the CSR signing CA when there is one (and the one it replaced
    /// while that is kept).
    ClientCa,
    /// The certificate of a CA a row declares: its own, or the root CA where the root
    /// serves in its place.
    Ca(&'static CaSpec),
    /// The API server's EncryptionConfiguration, with the key from `pki/`.
    EncryptionConfig,
    AuditPolicy,
    /// A small file of the build host carried as it is (a row's `copied` files: a CA or
    /// client pair), read when rendering.
    Copied(PathBuf),
    Kubeconfig(&'static Component),
    Unit(&'static Component),
    /// The `--config` file of a component that has one.
    Config(&'static Component),
    /// An executable carried from the build host, streamed when packing.
    Binary(PathBuf),
}

/// What a file is, for the manifest and for archive modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Certificate,
    PrivateKey,
    Other,
}

/// A file's bytes once rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A large file streamed from disk when packing (a binary).
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub mode: u32,
    pub kind: Kind,
    pub source: Source,
    /// Components whose service restarts when this file changes on the node: those that
    /// read it, in start order.
    pub restarts: Vec<&'static Component>,
}

/// One node's bundle before anything is issued or rendered.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub node: Node,
    pub kubernetes_version: String,
    /// In start order.
    pub components: Vec<&'static Component>,
    /// Absolute node path → file.
    pub files: BTreeMap<String, PlannedFile>,
    /// Node paths the units name that the bundle does not carry (binaries not given).
    pub external: Vec<String>,
}

impl NodePlan {
    /// `control-plane-<node>`, the archive's top folder and file stem.
    pub fn top_dir(&self) -> String {
        top_dir(&self.node.name)
    }

    pub fn bundle_name(&self) -> String {
        format!("{}.tar.gz", self.top_dir())
    }
}

pub fn top_dir(node: &str) -> String {
    format!("{BUNDLE_PREFIX}-{node}")
}

/// Whether `name` is a file name `build` gives a bundle.
pub fn is_bundle_name(name: &str) -> bool {
    name.strip_prefix(BUNDLE_PREFIX)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_suffix(".tar.gz"))
        .is_some_and(|node| !node.is_empty())
}

/// Every node's plan, in inventory order.
pub fn plan(inv: &Inventory) -> Vec<NodePlan> {
    inv.nodes.iter().map(|node| plan_node(inv, node)).collect()
}

pub fn plan_node(inv: &Inventory, node: &Node) -> NodePlan {
    let components: Vec<&'static Component> = inv.components.iter().map(|s| s.component).collect();
    let mut files = BTreeMap::new();
    let mut put = |path: String, mode: u32, kind: Kind, source: Source| {
        files.insert(
            path,
            PlannedFile {
                mode,
                kind,
                source,
                restarts: Vec::new(),
            },
        );
    };
    let csr_signers = components.iter().any(|c| c.signs_csrs);
    let token_signers = components.iter().any(|c| c.uses_service_account_key);

    put(
        paths::CA_CERT.into(),
        0o644,
        Kind::Certificate,
        Source::CaCert,
    );
    // The root CA key leaves the build host only when it signs kubelet CSRs, as in the
    // tutorial, or service-account tokens.
    if (inv.pki.csr_signing == CsrSigning::Ca && csr_signers)
        || (inv.pki.service_account_key == ServiceAccountKey::Ca && token_signers)
    {
        put(paths::CA_KEY.into(), 0o600, Kind::PrivateKey, Source::CaKey);
    }
    if inv.pki.csr_signing == CsrSigning::Signer && csr_signers {
        put(
            paths::SIGNER_CERT.into(),
            0o644,
            Kind::Certificate,
            Source::SignerCert,
        );
        put(
            paths::SIGNER_KEY.into(),
            0o600,
            Kind::PrivateKey,
            Source::SignerKey,
        );
    }
    if inv.pki.service_account_key == ServiceAccountKey::Dedicated && token_signers {
        put(
            paths::SA_KEY.into(),
            0o600,
            Kind::PrivateKey,
            Source::ServiceAccountKey,
        );
        put(
            paths::SA_PUB.into(),
            0o644,
            Kind::Other,
            Source::ServiceAccountPub,
        );
    }
    if inv.serves_api() {
        put(
            paths::CLIENT_CA.into(),
            0o644,
            Kind::Certificate,
            Source::ClientCa,
        );
        put(
            paths::ENCRYPTION_CONFIG.into(),
            0o600,
            Kind::Other,
            Source::EncryptionConfig,
        );
        put(
            paths::AUDIT_POLICY.into(),
            0o644,
            Kind::Other,
            Source::AuditPolicy,
        );
    }
    for settings in &inv.components {
        for copied in &settings.copied {
            let (mode, kind) = match copied.private {
                true => (0o600, Kind::PrivateKey),
                false => (0o644, Kind::Certificate),
            };
            put(
                copied.path.into(),
                mode,
                kind,
                Source::Copied(copied.from.clone()),
            );
        }
    }
    // After the copied files: where one lands at a CA's path, the CA the rows need wins.
    for ca in component::cas(inv) {
        put(
            ca.node_path.into(),
            0o644,
            Kind::Certificate,
            Source::Ca(ca),
        );
    }
    for settings in &inv.components {
        for (name, path) in &settings.tools {
            put(
                format!("{}/{name}", paths::BIN_DIR),
                0o755,
                Kind::Other,
                Source::Binary(path.clone()),
            );
        }
    }
    let mut external = Vec::new();
    for settings in &inv.components {
        let c = settings.component;
        for spec in inv.certs(c) {
            put(
                spec.cert_path(),
                0o644,
                Kind::Certificate,
                Source::Cert(spec),
            );
            put(spec.key_path(), 0o600, Kind::PrivateKey, Source::Key(spec));
        }
        if c.kubeconfig {
            put(
                c.kubeconfig_path(),
                0o600,
                Kind::Other,
                Source::Kubeconfig(c),
            );
        }
        if let Some(path) = c.config_path() {
            put(path, 0o644, Kind::Other, Source::Config(c));
        }
        put(c.unit_path(), 0o644, Kind::Other, Source::Unit(c));
        match &settings.binary {
            Some(binary) => put(
                c.binary_path(),
                0o755,
                Kind::Other,
                Source::Binary(binary.clone()),
            ),
            None => external.push(c.binary_path()),
        }
    }
    let readers: Vec<(&'static Component, BTreeSet<String>)> = inv
        .components
        .iter()
        .map(|s| (s.component, reads(inv, node, s)))
        .collect();
    for (path, file) in &mut files {
        file.restarts = readers
            .iter()
            .filter(|(_, read)| read.contains(path))
            .map(|(c, _)| *c)
            .collect();
    }
    NodePlan {
        node: node.clone(),
        kubernetes_version: inv.cluster.version.to_string(),
        components,
        files,
        external,
    }
}

/// Node paths one component reads on `node`: every file its flags name, and its own unit,
/// binary, configuration file and kubeconfig (which a configuration file may name).
fn reads(inv: &Inventory, node: &Node, settings: &ComponentSettings) -> BTreeSet<String> {
    let c = settings.component;
    let mut read: BTreeSet<String> = flags::flags(inv, node, settings)
        .into_iter()
        .filter_map(|f| f.value)
        .filter(|v| v.starts_with('/'))
        .collect();
    read.extend([c.unit_path(), c.binary_path()]);
    read.extend(c.config_path());
    if c.kubeconfig {
        read.insert(c.kubeconfig_path());
    }
    read
}

/// Where a carried binary came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The program's name: the file name it has on the node.
    pub name: String,
    /// The inventory key that named it (`<section>.binary`, `<section>.<tool>`).
    pub key: String,
    /// The path as the inventory gave it, relative to the inventory's folder when inside.
    pub source: String,
    /// The release the inventory states for it, when it states one exactly.
    pub version: Option<String>,
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use crate::component::{KUBE_CONTROLLER_MANAGER as KCM, KUBE_SCHEDULER as KS};
    use crate::load::config;
    use std::path::Path;

    fn inventory(extra: &str) -> Inventory {
        let text = format!(
            "[cluster]\nkubernetes-version = \"1.20.2\"\nservice-cidr = \"10.254.0.0/16\"\n\
             [[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n{extra}"
        );
        config::parse(Path::new("cluster.toml"), &text).unwrap()
    }

    fn listing(plan: &NodePlan) -> Vec<String> {
        plan.files
            .iter()
            .map(|(path, f)| {
                let restarts: Vec<&str> = f.restarts.iter().map(|c| c.name).collect();
                format!("{:04o} {path} {}", f.mode, restarts.join(","))
            })
            .collect()
    }

    #[test]
    fn controller_manager_alone_is_todays_file_set() {
        let inv = inventory("[pki]\ncsr-signing = \"ca\"\n");
        let plan = plan_node(&inv, &inv.nodes[0]);
        assert_eq!(plan.top_dir(), "control-plane-m1");
        assert_eq!(
            listing(&plan),
            [
                "0600 /etc/kubernetes/cert/ca-key.pem kube-controller-manager",
                "0644 /etc/kubernetes/cert/ca.pem kube-controller-manager",
                "0600 /etc/kubernetes/cert/kube-controller-manager-key.pem kube-controller-manager",
                "0644 /etc/kubernetes/cert/kube-controller-manager.pem kube-controller-manager",
                "0600 /etc/kubernetes/cert/sa.key kube-controller-manager",
                // For an apiserver outside the bundle: the controller-manager never reads it.
                "0644 /etc/kubernetes/cert/sa.pub ",
                "0600 /etc/kubernetes/kube-controller-manager.kubeconfig kube-controller-manager",
                "0644 /etc/systemd/system/kube-controller-manager.service kube-controller-manager",
            ]
        );
        assert_eq!(plan.external, ["/opt/k8s/bin/kube-controller-manager"]);
    }

    #[test]
    fn the_scheduler_adds_its_own_files_and_shares_the_ca() {
        let inv = inventory("[pki]\ncsr-signing = \"ca\"\n[kube-scheduler]\n");
        let plan = plan_node(&inv, &inv.nodes[0]);
        assert_eq!(plan.components, [&KCM, &KS]);
        let listing = listing(&plan);
        for want in [
            "0644 /etc/kubernetes/cert/ca.pem kube-controller-manager,kube-scheduler",
            "0600 /etc/kubernetes/cert/ca-key.pem kube-controller-manager",
            "0644 /etc/kubernetes/cert/kube-scheduler.pem kube-scheduler",
            "0600 /etc/kubernetes/cert/kube-scheduler-key.pem kube-scheduler",
            "0600 /etc/kubernetes/kube-scheduler.kubeconfig kube-scheduler",
            "0644 /etc/kubernetes/kube-scheduler.yaml kube-scheduler",
            "0644 /etc/systemd/system/kube-scheduler.service kube-scheduler",
        ] {
            assert!(
                listing.iter().any(|l| l == want),
                "{want} not in {listing:#?}"
            );
        }
        assert_eq!(listing.len(), 13);
    }

    #[test]
    fn a_file_restarts_only_the_components_that_read_it() {
        let restarts = |extra: &str, path: &str| -> Vec<&str> {
            let inv = inventory(&format!(
                "{extra}[kube-scheduler]\n[kube-apiserver]\n[etcd]\nversion = \"3.4\"\n"
            ));
            let plan = plan_node(&inv, &inv.nodes[0]);
            plan.files[path].restarts.iter().map(|c| c.name).collect()
        };
        for path in [
            paths::AUDIT_POLICY,
            paths::ENCRYPTION_CONFIG,
            paths::CLIENT_CA,
            paths::SA_PUB,
        ] {
            assert_eq!(restarts("", path), ["kube-apiserver"], "{path}");
        }
        assert_eq!(
            restarts("", paths::FRONT_PROXY_CA),
            [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler"
            ]
        );
        assert_eq!(
            restarts("", paths::CA_CERT),
            ["kube-controller-manager", "kube-scheduler"]
        );
        assert_eq!(restarts("", paths::ETCD_CA), ["etcd", "kube-apiserver"]);
        assert_eq!(restarts("", "/etc/kubernetes/cert/etcd.pem"), ["etcd"]);
        // Tokens signed with the root CA key: the apiserver checks them with the CA.
        let sa_ca = "[pki]\nservice-account-key = \"ca\"\n";
        assert_eq!(
            restarts(sa_ca, paths::CA_CERT),
            [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler"
            ]
        );
        assert_eq!(
            restarts(sa_ca, paths::CA_KEY),
            ["kube-apiserver", "kube-controller-manager"]
        );
        // An extra-arg naming a bundle file makes its component a reader.
        assert_eq!(
            restarts(
                "[etcd.extra-args]\nclient-crl-file = \"/etc/kubernetes/cert/client-ca.pem\"\n",
                paths::CLIENT_CA
            ),
            ["etcd", "kube-apiserver"]
        );
    }

    #[test]
    fn the_root_ca_key_stays_home_unless_asked_for() {
        let has = |extra: &str, path: &str| {
            let inv = inventory(extra);
            plan_node(&inv, &inv.nodes[0]).files.contains_key(path)
        };
        let (key, signer) = (paths::CA_KEY, paths::SIGNER_KEY);
        assert!(!has("", key) && has("", signer), "signer is the default");
        assert!(has("[pki]\ncsr-signing = \"ca\"\n", key));
        assert!(!has("[pki]\ncsr-signing = \"ca\"\n", signer));
        assert!(!has("[pki]\ncsr-signing = \"off\"\n", key));
        assert!(!has("[pki]\ncsr-signing = \"off\"\n", signer));
        // Tokens signed with the CA key need it on the masters whatever signs CSRs.
        assert!(has("[pki]\nservice-account-key = \"ca\"\n", key));
    }

    #[test]
    fn bundle_names() {
        assert!(is_bundle_name("control-plane-m1.tar.gz"));
        assert!(is_bundle_name("control-plane-m1.example.com.tar.gz"));
        assert!(!is_bundle_name("control-plane-.tar.gz"));
        assert!(!is_bundle_name("kube-controller-manager-m1.tar.gz"));
    }
}
