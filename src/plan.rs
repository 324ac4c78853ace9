//! The per-node plan: every file a node's bundle holds, with its path inside the bundle,
//! its mode and where its bytes come from. Pure data built from the inventory, the PKI and
//! the rendered templates; this module does no I/O and knows nothing about tar or gzip.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{Inventory, Node, ServiceAccountKey};
use crate::error::Result;
use crate::kubeconfig;
use crate::pki::Pki;
use crate::render::Templates;

pub const COMPONENT: &str = "kube-controller-manager";

/// Where files land on a node.
pub mod paths {
    pub const CERT_DIR: &str = "/etc/kubernetes/cert";
    pub const KUBECONFIG: &str = "/etc/kubernetes/kube-controller-manager.kubeconfig";
    pub const UNIT: &str = "/etc/systemd/system/kube-controller-manager.service";
    pub const BIN_DIR: &str = "/opt/k8s/bin";
    pub const BINARY: &str = "/opt/k8s/bin/kube-controller-manager";
    pub const BACKUP_DIR: &str = "/var/backups/kube-bundle";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A large file streamed from disk when packing (the binary).
    File(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Certificate,
    PrivateKey,
    Other,
}

#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub mode: u32,
    pub kind: Kind,
    pub content: Content,
}

/// One node's bundle before packing. Paths are relative to the bundle's top folder.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub node: Node,
    pub kubernetes_version: String,
    pub files: BTreeMap<String, PlannedFile>,
    /// Node paths the unit names that the bundle does not carry.
    pub external: Vec<String>,
}

impl NodePlan {
    /// `kube-controller-manager-<node>`, the archive's top folder and file stem.
    pub fn top_dir(&self) -> String {
        format!("{COMPONENT}-{}", self.node.name)
    }
}

/// A file installed on the node, as install.sh sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Installed {
    /// Absolute path on the node.
    pub path: String,
    /// Octal, four digits.
    pub mode: String,
    /// The components whose units restart when this file changes, comma-joined.
    pub components: String,
}

pub fn plan_node(
    inv: &Inventory,
    node: &Node,
    pki: &Pki,
    templates: &Templates,
) -> Result<NodePlan> {
    let leaf = &pki.leaves[&node.name];
    let mut rootfs: BTreeMap<String, PlannedFile> = BTreeMap::new();
    let mut put = |path: &str, mode: u32, kind: Kind, content: Content| {
        rootfs.insert(
            path.to_string(),
            PlannedFile {
                mode,
                kind,
                content,
            },
        );
    };
    let cert = |name: &str| format!("{}/{name}", paths::CERT_DIR);

    put(
        &cert("ca.pem"),
        0o644,
        Kind::Certificate,
        Content::Bytes(pki.ca_cert_pem.clone().into_bytes()),
    );
    // The CA key signs kubelet CSRs (--cluster-signing-key-file), as in the tutorial.
    put(
        &cert("ca-key.pem"),
        0o600,
        Kind::PrivateKey,
        Content::Bytes(pki.ca_key_pem.clone().into_bytes()),
    );
    put(
        &cert("kube-controller-manager.pem"),
        0o644,
        Kind::Certificate,
        Content::Bytes(leaf.cert_pem.clone().into_bytes()),
    );
    put(
        &cert("kube-controller-manager-key.pem"),
        0o600,
        Kind::PrivateKey,
        Content::Bytes(leaf.key_pem.clone().into_bytes()),
    );
    if let (ServiceAccountKey::Dedicated, Some(sa)) =
        (inv.pki.service_account_key, &pki.service_account)
    {
        put(
            &cert("sa.key"),
            0o600,
            Kind::PrivateKey,
            Content::Bytes(sa.private_pem.clone().into_bytes()),
        );
        put(
            &cert("sa.pub"),
            0o644,
            Kind::Other,
            Content::Bytes(sa.public_pem.clone().into_bytes()),
        );
    }
    let kubeconfig = kubeconfig::render(
        &inv.apiserver_for(node),
        &pki.ca_cert_pem,
        &leaf.cert_pem,
        &leaf.key_pem,
    );
    put(
        paths::KUBECONFIG,
        0o600,
        Kind::Other,
        Content::Bytes(kubeconfig.into_bytes()),
    );
    let unit = templates.render_unit(inv, node)?;
    put(
        paths::UNIT,
        0o644,
        Kind::Other,
        Content::Bytes(unit.into_bytes()),
    );
    if let Some(binary) = &inv.kcm.binary {
        put(
            paths::BINARY,
            0o755,
            Kind::Other,
            Content::File(binary.clone()),
        );
    }

    let installed: Vec<Installed> = rootfs
        .iter()
        .map(|(path, f)| Installed {
            path: path.clone(),
            mode: format!("{:04o}", f.mode),
            components: COMPONENT.to_string(),
        })
        .collect();
    let certificates: Vec<serde_json::Value> = rootfs
        .iter()
        .filter(|(_, f)| f.kind == Kind::Certificate)
        .filter_map(|(path, f)| match &f.content {
            Content::Bytes(pem) => crate::pki::describe(&String::from_utf8_lossy(pem)).map(|c| {
                serde_json::json!({ "path": path, "not_before": c.not_before, "not_after": c.not_after })
            }),
            Content::File(_) => None,
        })
        .collect();
    let install_sh = templates.render_install(inv, node, &installed, &certificates)?;

    let mut files: BTreeMap<String, PlannedFile> = rootfs
        .into_iter()
        .map(|(path, f)| (format!("rootfs{path}"), f))
        .collect();
    files.insert(
        "install.sh".into(),
        PlannedFile {
            mode: 0o755,
            kind: Kind::Other,
            content: Content::Bytes(install_sh.into_bytes()),
        },
    );
    let external = match inv.kcm.binary {
        None => vec![paths::BINARY.to_string()],
        Some(_) => Vec::new(),
    };
    Ok(NodePlan {
        node: node.clone(),
        kubernetes_version: inv.cluster.version.to_string(),
        files,
        external,
    })
}
