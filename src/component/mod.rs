//! The components kube-bundle builds, as data: one row per component with everything
//! that differs between them: identity and certificates, the files it carries and where
//! they land on a node, its templates and configuration file, flag profile, ports,
//! health check, work dir, start behaviour, kept data and leader lease. Every stage
//! reads these rows instead of naming a component; adding one is a row here, its flag
//! profile, a catalogue `.tsv` and its templates (README, "Components"). Beyond the row
//! types of the function pointers it holds (inventory, flags, version, manifest.json's
//! objects and the `check` interface its own checks in `verify` use), it imports
//! nothing from the crate.

pub mod catalogue;
pub mod flags;

pub mod etcd;
pub mod kube_apiserver;
mod kube_controller_manager;
mod kube_scheduler;

pub use etcd::{EtcdSettings, APISERVER_ETCD_CLIENT, ETCD, ETCD_CA};
pub use kube_apiserver::{
    encryption_config_api, ApiServerSettings, EtcdTls, FRONT_PROXY_CA, FRONT_PROXY_CLIENT,
    KUBELET_CLIENT, KUBE_APISERVER,
};
pub use kube_controller_manager::KUBE_CONTROLLER_MANAGER;
pub use kube_scheduler::KUBE_SCHEDULER;

pub use crate::model::{
    CaSpec, CertFrom, CertSpec, Checks, Component, ConfigFile, ExtraPort, Flag, Health, IssuedBy,
    ManifestPart, Names, RawSection, Section, StandardKeys, Start, NODE_NAME,
};

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
    /// The root CA, then the CSR signing CA when there is one (and the one it replaced
    /// while that is kept): kube-apiserver's `--client-ca-file`.
    pub const CLIENT_CA: &str = "/etc/kubernetes/cert/client-ca.pem";
    /// The aggregation layer's CA (`--requestheader-client-ca-file`).
    pub const FRONT_PROXY_CA: &str = "/etc/kubernetes/cert/front-proxy-ca.pem";
    /// An external etcd's CA and kube-apiserver's client pair for it.
    pub const ETCD_CA: &str = "/etc/kubernetes/cert/etcd-ca.pem";
    /// etcdctl, when the inventory carries one: install.sh's health checks and snapshots.
    pub const ETCDCTL: &str = "/opt/k8s/bin/etcdctl";
    pub const ETCD_CLIENT_CERT: &str = "/etc/kubernetes/cert/apiserver-etcd-client.pem";
    pub const ETCD_CLIENT_KEY: &str = "/etc/kubernetes/cert/apiserver-etcd-client-key.pem";
    pub const ENCRYPTION_CONFIG: &str = "/etc/kubernetes/encryption-config.yaml";
    pub const AUDIT_POLICY: &str = "/etc/kubernetes/audit-policy.yaml";

    /// The node's own folders, which no work or data folder may be: a purge, or
    /// `--delete-etcd-data`, removes a work or data folder whole, and a component would
    /// fill it with its files.
    pub const SYSTEM_FOLDERS: &[&str] = &[
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/etc/systemd",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/lib/systemd",
        "/usr/lib/systemd/system",
        "/usr/local",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/share",
        "/var",
        "/var/backups",
        "/var/cache",
        "/var/lib",
        "/var/log",
        "/var/run",
        "/var/spool",
        "/var/tmp",
    ];

    /// The folders install.sh writes a bundle's files and its releases into, with what
    /// they hold: a work or data folder must neither lie in one nor hold one.
    pub const INSTALLED_FOLDERS: [(&str, &str); 4] = [
        (CONFIG_DIR, "the configuration folder"),
        (UNIT_DIR, "the units' folder"),
        (BIN_DIR, "the binaries' folder"),
        (BACKUP_DIR, "install.sh's releases"),
    ];

    /// Whether `path` is `folder` or lies under it (both normalized, without a trailing
    /// `/`).
    pub fn inside(path: &str, folder: &str) -> bool {
        path == folder
            || folder == "/"
            || path
                .strip_prefix(folder)
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Why `path` cannot be a folder a component fills on the node (a work dir,
    /// `cluster.k8s-dir`, etcd's data or WAL dir), or `None` when it can. The one rule
    /// both the build and `verify` apply.
    pub fn unfit_folder(path: &str) -> Option<String> {
        let normalized = path.strip_prefix('/').is_some_and(|rest| {
            rest.is_empty()
                || rest
                    .split('/')
                    .all(|p| !p.is_empty() && p != "." && p != "..")
        });
        if !normalized {
            return Some(format!(
                "`{path}` is not an absolute path written plainly (no `.`, `..`, doubled or trailing `/`)"
            ));
        }
        if SYSTEM_FOLDERS.contains(&path) {
            return Some(format!(
                "`{path}` is a system folder: removing or filling it would break the node"
            ));
        }
        INSTALLED_FOLDERS.iter().find_map(|(folder, what)| {
            (inside(path, folder) || inside(folder, path))
                .then(|| format!("`{path}` overlaps {what} `{folder}`"))
        })
    }
}

/// Files `build` writes into the output folder for the operator, beside the bundles.
pub mod dist {
    /// The operator's kubeconfig (`system:masters`), written only with kube-apiserver and
    /// never into a node's bundle or the artifact store.
    pub const ADMIN_KUBECONFIG: &str = "admin.kubeconfig";
    /// The binding that lets kube-apiserver's kubelet client certificate use the kubelet
    /// API (`kubectl --kubeconfig dist/admin.kubeconfig apply -f` it once the apiservers
    /// run; `dist/rollout.sh` does).
    pub const KUBELET_RBAC: &str = "kube-apiserver-rbac.yaml";

    /// [`KUBELET_RBAC`]: the tutorial's binding of `system:kubelet-api-admin` to the user
    /// of the API server's kubelet client certificate, for logs, exec and port forwarding
    /// through kubelets. `api` is the row serving the API: its client certificate is the
    /// one it presents to kubelets.
    pub fn kubelet_rbac(api: &crate::model::Component) -> String {
        let name = api.name;
        format!(
            "# Lets {name} use the kubelet API (logs, exec, port-forward, metrics) with its\n\
             # kubelet client certificate. Apply once the apiservers run:\n\
             #   kubectl --kubeconfig admin.kubeconfig apply -f {KUBELET_RBAC}\n\
             apiVersion: rbac.authorization.k8s.io/v1\n\
             kind: ClusterRoleBinding\n\
             metadata:\n  name: {name}:kubelet-apis\n\
             roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: system:kubelet-api-admin\n\
             subjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {}\n",
            api.client_cert().cn
        )
    }
}

impl CertSpec {
    pub fn cert_path(&self) -> String {
        format!("{}/{}.pem", paths::CERT_DIR, self.name)
    }
    pub fn key_path(&self) -> String {
        format!("{}/{}-key.pem", paths::CERT_DIR, self.name)
    }
    /// File names of its key and certificate in a node's folder of `pki/`.
    pub fn pki_files(&self) -> (String, String) {
        (
            format!("{}.pem", self.name),
            format!("{}-key.pem", self.name),
        )
    }
    /// Its subject CN on `node`: `cn` with [`NODE_NAME`] standing for the node's name (a
    /// kubelet's `system:node:<name>`).
    pub fn cn_on(&self, node: &str) -> String {
        self.cn.replace(NODE_NAME, node)
    }
}

/// The operator's client certificate, for `dist/admin.kubeconfig` (chapter 03 of the
/// tutorial): kept in `pki/admin{,-key}.pem`, never in a node's bundle.
pub const ADMIN: CertSpec = CertSpec {
    name: "admin",
    cn: "admin",
    org: Some("system:masters"),
    server: false,
    client: true,
    names: Names::None,
    issued_by: IssuedBy::Root,
};

/// Prefix of every bundle's file name and top folder: `control-plane-<node>`.
pub const BUNDLE_PREFIX: &str = "control-plane";

/// The Kubernetes namespace of every leader lease.
pub const LEASE_NAMESPACE: &str = "kube-system";

/// The section of a component with only the standard keys ([`StandardKeys`]).
pub const STANDARD: Section = Section::of::<StandardKeys>();

/// Where Kubernetes' own binaries carry their release (a row's `version_stamp`): the
/// `gitVersion` its linker flags set.
pub const KUBERNETES_STAMP: (&str, &str) = ("", "k8s.io/component-base/version.gitVersion");

/// The health check of a component that answers `ok` over the cluster CA.
const HEALTHZ: Health = Health {
    scheme: "https",
    path: "/healthz",
    ca: paths::CA_CERT,
    ok: "ok",
};

/// `systemctl start` returns once it serves; it needs no peers.
pub const BLOCKING: Start = Start {
    blocking: true,
    waits_for_quorum: false,
};

pub fn by_name(name: &str) -> Option<&'static Component> {
    all().into_iter().find(|c| c.name == name)
}

/// Every component, in the order a node starts them: etcd, then kube-apiserver, which
/// needs it, then the others, which need the apiserver.
pub const ALL: [&Component; 4] = [
    &ETCD,
    &KUBE_APISERVER,
    &KUBE_CONTROLLER_MANAGER,
    &KUBE_SCHEDULER,
];

/// The name of the row that serves the Kubernetes API, for messages about the API
/// server's own rules that apply whichever rows a build has.
pub fn api_server_name() -> &'static str {
    all()
        .into_iter()
        .find(|c| c.serves_api)
        .map_or("the API server", |c| c.name)
}

/// The CAs besides the root that rows declare, in the order `pki` makes them and `certs`
/// lists them (the front-proxy CA came first). A CA missing here still works; it comes
/// after these.
pub const CAS: [&CaSpec; 2] = [&FRONT_PROXY_CA, &ETCD_CA];

/// The CAs besides the root that issue a certificate a row `inv` builds carries, in
/// [`CAS`] order.
pub fn cas(inv: &crate::model::Inventory) -> Vec<&'static CaSpec> {
    let mut cas: Vec<&'static CaSpec> = Vec::new();
    for spec in inv.components.iter().flat_map(|s| inv.certs(s.component)) {
        if let IssuedBy::Ca(ca) = spec.issued_by {
            if !cas.contains(&ca) {
                cas.push(ca);
            }
        }
    }
    cas.sort_by_key(|ca| CAS.iter().position(|c| c == ca).unwrap_or(CAS.len()));
    cas
}

/// Every row in start order: [`ALL`], then in the library's unit tests the rows a test
/// added with `testing::add` (on its own thread).
pub fn all() -> Vec<&'static Component> {
    #[allow(unused_mut)]
    let mut rows = ALL.to_vec();
    #[cfg(test)]
    testing::ROWS.with(|extra| rows.extend(extra.borrow().iter().copied()));
    rows
}

/// A registration point for rows that exist only in the library's unit tests, so a
/// test can show that a row alone makes a component: the binary has none.
#[cfg(test)]
pub mod testing {
    use std::cell::RefCell;

    use super::Component;

    thread_local! {
        pub(super) static ROWS: RefCell<Vec<&'static Component>> = const { RefCell::new(Vec::new()) };
    }

    /// Adds `row` after the real ones, for the calling test's thread.
    pub fn add(row: &'static Component) {
        ROWS.with(|rows| rows.borrow_mut().push(row));
    }
}

impl Component {
    /// The key its [`Component::install_data`] is found under in install.sh's and
    /// rollout.sh's templates: its name with `_` for `-`.
    pub fn data_key(&self) -> String {
        self.name.replace('-', "_")
    }

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
    /// Its own certificate's node path.
    pub fn cert_path(&self) -> String {
        self.own_cert().cert_path()
    }
    pub fn key_path(&self) -> String {
        self.own_cert().key_path()
    }
    pub fn own_cert(&self) -> &'static CertSpec {
        &self.certs[0]
    }
    /// The client certificate it presents: its own, or for kube-apiserver the one for
    /// kubelets (what install.sh authenticates its health checks with).
    pub fn client_cert(&self) -> &'static CertSpec {
        self.certs
            .iter()
            .find(|s| s.client && s.issued_by == IssuedBy::Root)
            .unwrap_or(self.own_cert())
    }
    pub fn kubeconfig_path(&self) -> String {
        format!("{}/{}.kubeconfig", paths::CONFIG_DIR, self.name)
    }
    pub fn config_path(&self) -> Option<String> {
        self.config
            .as_ref()
            .map(|_| format!("{}/{}.yaml", paths::CONFIG_DIR, self.name))
    }
    pub fn binary_path(&self) -> String {
        format!("{}/{}", paths::BIN_DIR, self.name)
    }
    /// Its work dir when it has no data dirs: `<k8s-dir>/<name>`.
    pub fn work_dir(&self, k8s_dir: &str) -> String {
        format!("{k8s_dir}/{}", self.name)
    }
    /// Its health URL on a node reached at `host` (an IPv6 address in brackets).
    pub fn health_url(&self, host: &str, port: u16) -> String {
        format!("{}://{host}:{port}{}", self.health.scheme, self.health.path)
    }
    /// The key under its section that sets its main port, as `<section>.<key>`.
    pub fn port_field(&self) -> String {
        format!("{}.{}", self.name, self.port_key)
    }
    /// File names of its own key and certificate in a node's folder of `pki/`.
    pub fn pki_files(&self) -> (String, String) {
        self.own_cert().pki_files()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    #[test]
    fn rows_are_unique_and_found_by_name() {
        let mut names: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for c in ALL {
            assert_eq!(by_name(c.name), Some(c));
            assert_eq!(c.own_cert().name, c.name);
            if c.kubeconfig {
                assert!(c.lease.is_some());
            }
            if c.kubeconfig {
                assert_eq!(c.user, format!("system:{}", c.name));
                assert_eq!(c.own_cert().cn, c.user);
            }
        }
        let mut stems: Vec<&str> = ALL
            .iter()
            .flat_map(|c| c.certs.iter().map(|s| s.name))
            .chain([ADMIN.name, APISERVER_ETCD_CLIENT.name])
            .collect();
        stems.sort();
        let n = stems.len();
        stems.dedup();
        assert_eq!(stems.len(), n, "certificate file names are unique");
        assert_eq!(by_name("kubelet"), None);
    }

    #[test]
    fn every_ca_a_row_names_is_listed_once() {
        let named: Vec<&CaSpec> = ALL
            .iter()
            .flat_map(|c| c.certs.iter().chain(c.certs_from.iter().map(|(_, s)| s)))
            .filter_map(|s| match s.issued_by {
                IssuedBy::Ca(ca) => Some(ca),
                IssuedBy::Root => None,
            })
            .collect();
        for ca in &named {
            assert!(CAS.contains(ca), "{} is not in CAS", ca.stem);
        }
        for ca in CAS {
            assert!(named.contains(&ca), "no row needs {}", ca.stem);
            assert_eq!(CAS.iter().filter(|c| c.stem == ca.stem).count(), 1);
            // Beside ca.pem, csr-signer.pem, sa.pub and admin.pem in pki/.
            assert!(!["ca", "csr-signer", "sa", ADMIN.name].contains(&ca.stem));
        }
    }

    #[test]
    fn work_and_data_folders_follow_one_rule() {
        use paths::unfit_folder;
        for fit in [
            "/data/k8s/k8s",
            "/data/k8s/etcd/data",
            "/var/lib/etcd",
            "/srv/k8s",
            "/etc/kubernetes-data",
            "/library",
        ] {
            assert_eq!(unfit_folder(fit), None, "{fit}");
        }
        for unfit in [
            "/",
            "/etc",
            "/usr",
            "/var",
            "/var/lib",
            "/boot",
            "/home",
            "/lib",
            "/lib64",
            "/opt",
            "/root",
            "/tmp",
            "/proc",
            "/sys",
            "/dev",
            "/run",
            "/bin",
            "/sbin",
            "/etc/systemd/system",
            "/etc/kubernetes",
            "/etc/kubernetes/cert/x",
            "/opt/k8s",
            "/opt/k8s/bin",
            "/var/backups/kube-bundle",
            "/var/backups/kube-bundle/k8s",
            "/./data",
            "/data/../etc",
            "/data//k8s",
            "/data/",
            "data",
            "",
        ] {
            assert!(unfit_folder(unfit).is_some(), "{unfit}");
        }
    }

    #[test]
    fn the_apiserver_guards_cannot_be_overridden() {
        assert!(!KUBE_APISERVER.guards.is_empty());
        for c in ALL {
            for (flag, _, _) in c.guards {
                assert!(c.managed_flags.iter().any(|(f, _)| f == flag), "{flag}");
            }
        }
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

    /// The spellings of a row's name a stage could use to name it: the name, without
    /// `kube-`, with `_` or nothing for `-`, and the key of its manifest object.
    fn spellings(c: &Component) -> Vec<String> {
        let mut names = vec![c.name.to_string()];
        names.extend(c.name.strip_prefix("kube-").map(str::to_string));
        names.extend(c.manifest.as_ref().map(|part| part.key.to_string()));
        let mut all: Vec<String> = names
            .iter()
            .flat_map(|n| [n.clone(), n.replace('-', "_"), n.replace('-', "")])
            .map(|n| n.to_ascii_lowercase())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The stages (load, plan, pki, render, pack, verify, store), the binary's commands
    /// and the bottom modules besides the rows' own (`component/`, the row type's
    /// `model.rs` and the test-only `made_up.rs`) name no row: a component's differences
    /// are data and hooks in its row. Two words are the cluster's, not a row's: `apiserver`
    /// alone is the API address the inventory's `[cluster] apiserver` and
    /// `worker-apiserver` set, and `KUBE_APISERVER` is environment.sh's variable for it.
    #[test]
    fn no_stage_names_a_component() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        let mut folders = vec![root.clone()];
        while let Some(dir) = folders.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .to_string();
                if rel == "component" || rel == "model.rs" || rel == "made_up.rs" {
                    continue;
                }
                if path.is_dir() {
                    folders.push(path);
                } else if rel.ends_with(".rs") && !rel.ends_with("tests.rs") {
                    files.push(path);
                }
            }
        }
        files.sort();
        assert!(files.len() > 40, "{files:?}");
        let words: Vec<String> = ALL
            .iter()
            .flat_map(|c| spellings(c))
            .filter(|w| w != "apiserver")
            .collect();
        assert!(
            words.contains(&"controller_manager".to_string()),
            "{words:?}"
        );
        assert!(words.contains(&"kube-apiserver".to_string()), "{words:?}");
        let mut found = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            // Tests may name what they build; the code above them may not.
            for (i, line) in text.lines().enumerate() {
                if line.trim() == "#[cfg(test)]" {
                    break;
                }
                let lower = line.replace("KUBE_APISERVER", "").to_ascii_lowercase();
                if let Some(word) = words.iter().find(|w| lower.contains(w.as_str())) {
                    found.push(format!(
                        "{}:{}: `{word}`: {}",
                        file.strip_prefix(&root).unwrap_or(file).display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
        assert!(
            found.is_empty(),
            "lines naming a component (move what differs into the component's row):\n{}",
            found.join("\n")
        );
    }
}
