//! The components kube-bundle builds, as data: one row per component with its identity,
//! the files it carries and where they land on a node, its templates, ports, health URL
//! and leader lease. Every stage reads these rows instead of naming a component; adding
//! one is a row here, a flag profile in `flags`, a catalogue `.tsv` and its templates.
//! This module is a leaf: it imports nothing from the crate.

/// Where shared files land on a node.
pub mod paths {
    pub const CERT_DIR: &str = "/etc/kubernetes/cert";
    pub const CONFIG_DIR: &str = "/etc/kubernetes";
    pub const UNIT_DIR: &str = "/etc/systemd/system";
    pub const BIN_DIR: &str = "/opt/k8s/bin";
    pub const BACKUP_DIR: &str = "/var/backups/kube-bundle";
    pub const CA_CERT: &str = "/etc/kubernetes/cert/ca.pem";
    pub const CA_KEY: &str = "/etc/kubernetes/cert/ca-key.pem";
    pub const SA_KEY: &str = "/etc/kubernetes/cert/sa.key";
    pub const SA_PUB: &str = "/etc/kubernetes/cert/sa.pub";
    /// The signing CA of the controller-manager's CSR signers (`csr-signing = "signer"`).
    pub const SIGNER_CERT: &str = "/etc/kubernetes/cert/csr-signer.pem";
    pub const SIGNER_KEY: &str = "/etc/kubernetes/cert/csr-signer-key.pem";
}

/// Prefix of every bundle's file name and top folder: `control-plane-<node>`.
pub const BUNDLE_PREFIX: &str = "control-plane";

/// The Kubernetes namespace of every leader lease.
pub const LEASE_NAMESPACE: &str = "kube-system";

#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Component {
    /// The binary, unit and inventory section name, e.g. `kube-controller-manager`.
    pub name: &'static str,
    /// Subject CN and O of its certificate: the built-in RBAC user and group.
    pub user: &'static str,
    /// `Description=` of its unit.
    pub description: &'static str,
    pub documentation: &'static str,
    pub default_secure_port: u16,
    /// Path of the health endpoint on the secure port.
    pub health_path: &'static str,
    /// Leader-election Lease (and, before 1.17, Endpoints) name in `kube-system`.
    pub lease: &'static str,
    /// Handlebars template of a configuration file passed with `--config`, if any.
    pub config_template: Option<&'static str>,
    /// The flag catalogue: name, first and last minor release, source.
    pub catalogue: &'static str,
    /// Inventory keys that own a flag, as (flag, key under the component's section).
    pub managed_flags: &'static [(&'static str, &'static str)],
    /// Whether the component signs with the service-account key (the controller-manager).
    pub uses_service_account_key: bool,
    /// Whether the component runs the CSR signers (the controller-manager).
    pub signs_csrs: bool,
}

pub const KUBE_CONTROLLER_MANAGER: Component = Component {
    name: "kube-controller-manager",
    user: "system:kube-controller-manager",
    description: "Kubernetes Controller Manager",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
    default_secure_port: 10257,
    health_path: "/healthz",
    lease: "kube-controller-manager",
    config_template: None,
    catalogue: include_str!("kcm-flags.tsv"),
    managed_flags: &[("secure-port", "secure-port"), ("bind-address", "")],
    uses_service_account_key: true,
    signs_csrs: true,
};

pub const KUBE_SCHEDULER: Component = Component {
    name: "kube-scheduler",
    user: "system:kube-scheduler",
    description: "Kubernetes Scheduler",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
    default_secure_port: 10259,
    health_path: "/healthz",
    lease: "kube-scheduler",
    config_template: Some("kube-scheduler.yaml"),
    catalogue: include_str!("ks-flags.tsv"),
    managed_flags: &[
        ("secure-port", "secure-port"),
        ("config", ""),
        ("bind-address", ""),
    ],
    uses_service_account_key: false,
    signs_csrs: false,
};

/// Every component, in the order a node starts them.
pub const ALL: [&Component; 2] = [&KUBE_CONTROLLER_MANAGER, &KUBE_SCHEDULER];

pub fn by_name(name: &str) -> Option<&'static Component> {
    ALL.into_iter().find(|c| c.name == name)
}

impl Component {
    /// Template name of its systemd unit.
    pub fn unit_template(&self) -> String {
        format!("{}.service", self.name)
    }
    pub fn unit_name(&self) -> String {
        format!("{}.service", self.name)
    }
    pub fn unit_path(&self) -> String {
        format!("{}/{}.service", paths::UNIT_DIR, self.name)
    }
    pub fn cert_path(&self) -> String {
        format!("{}/{}.pem", paths::CERT_DIR, self.name)
    }
    pub fn key_path(&self) -> String {
        format!("{}/{}-key.pem", paths::CERT_DIR, self.name)
    }
    pub fn kubeconfig_path(&self) -> String {
        format!("{}/{}.kubeconfig", paths::CONFIG_DIR, self.name)
    }
    pub fn config_path(&self) -> Option<String> {
        self.config_template
            .map(|_| format!("{}/{}.yaml", paths::CONFIG_DIR, self.name))
    }
    pub fn binary_path(&self) -> String {
        format!("{}/{}", paths::BIN_DIR, self.name)
    }
    pub fn work_dir(&self, k8s_dir: &str) -> String {
        format!("{k8s_dir}/{}", self.name)
    }
    /// File names of its key and certificate in a node's folder of `pki/`.
    pub fn pki_files(&self) -> (String, String) {
        (
            format!("{}.pem", self.name),
            format!("{}-key.pem", self.name),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unique_and_found_by_name() {
        let mut names: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for c in ALL {
            assert_eq!(by_name(c.name), Some(c));
            assert_eq!(c.user, format!("system:{}", c.name));
        }
        assert_eq!(by_name("kubelet"), None);
    }

    #[test]
    fn node_paths_follow_the_tutorial() {
        let kcm = &KUBE_CONTROLLER_MANAGER;
        assert_eq!(
            kcm.cert_path(),
            "/etc/kubernetes/cert/kube-controller-manager.pem"
        );
        assert_eq!(
            kcm.kubeconfig_path(),
            "/etc/kubernetes/kube-controller-manager.kubeconfig"
        );
        assert_eq!(kcm.config_path(), None);
        assert_eq!(
            KUBE_SCHEDULER.config_path().as_deref(),
            Some("/etc/kubernetes/kube-scheduler.yaml")
        );
        assert_eq!(
            KUBE_SCHEDULER.work_dir("/data/k8s/k8s"),
            "/data/k8s/k8s/kube-scheduler"
        );
    }
}
