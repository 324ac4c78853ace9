//! The components kube-bundle builds, as data: one row per component with everything
//! that differs between them: identity and certificates, the files it carries and where
//! they land on a node, its templates and configuration file, flag profile, ports,
//! health check, work dir, start behaviour, kept data and leader lease. Every stage
//! reads these rows instead of naming a component; adding one is a row here, its flag
//! profile, a catalogue `.tsv` and its templates (README, "Components"). Beyond the row
//! types of the function pointers it holds (inventory, flags, version), it imports
//! nothing from the crate.

pub mod catalogue;
pub mod flags;

pub use crate::model::{
    CertFrom, CertSpec, Component, ConfigFile, ExtraPort, Flag, Health, IssuedBy, Names, Section,
    Start, NODE_NAME,
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

pub const KUBE_CONTROLLER_MANAGER: Component = Component {
    name: "kube-controller-manager",
    user: "system:kube-controller-manager",
    description: "Kubernetes Controller Manager",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
    section: Section::Standard,
    // Built with defaults when absent, as before the other components joined.
    required: true,
    default_secure_port: 10257,
    port_key: "secure-port",
    extra_ports: &[],
    health: HEALTHZ,
    lease: Some("kube-controller-manager"),
    kubeconfig: true,
    serves_api: false,
    binds_node_ip: true,
    certs: &[CertSpec {
        name: "kube-controller-manager",
        cn: "system:kube-controller-manager",
        org: Some("system:kube-controller-manager"),
        server: true,
        client: true,
        names: Names::Node,
        issued_by: IssuedBy::Root,
    }],
    certs_from: &[],
    gates_the_rest: false,
    start: BLOCKING,
    work_mode: 0o755,
    data_dirs: &[],
    unit_settings: &[],
    config: None,
    flags: flags::controller_manager,
    main_packages: &[],
    catalogue: include_str!("kcm-flags.tsv"),
    version_series: "1.",
    managed_flags: &[
        ("secure-port", "secure-port"),
        ("bind-address", ""),
        ("client-ca-file", ""),
        ("requestheader-client-ca-file", ""),
    ],
    guards: &[],
    shared_flags: &["service-cluster-ip-range"],
    uses_service_account_key: true,
    signs_csrs: true,
    install_hooks: None,
};

pub const KUBE_SCHEDULER: Component = Component {
    name: "kube-scheduler",
    user: "system:kube-scheduler",
    description: "Kubernetes Scheduler",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/",
    section: Section::Standard,
    required: false,
    default_secure_port: 10259,
    port_key: "secure-port",
    extra_ports: &[],
    health: HEALTHZ,
    lease: Some("kube-scheduler"),
    kubeconfig: true,
    serves_api: false,
    binds_node_ip: true,
    certs: &[CertSpec {
        name: "kube-scheduler",
        cn: "system:kube-scheduler",
        org: Some("system:kube-scheduler"),
        server: true,
        client: true,
        names: Names::Node,
        issued_by: IssuedBy::Root,
    }],
    certs_from: &[],
    gates_the_rest: false,
    start: BLOCKING,
    work_mode: 0o755,
    data_dirs: &[],
    unit_settings: &[],
    config: Some(ConfigFile {
        template: "kube-scheduler.yaml",
        text: include_str!("../../bundle-templates/kube-scheduler.yaml.hbs"),
        kind: "KubeSchedulerConfiguration",
        api_version: flags::scheduler_config_api,
    }),
    flags: flags::scheduler,
    main_packages: &[],
    catalogue: include_str!("ks-flags.tsv"),
    version_series: "1.",
    managed_flags: &[
        ("secure-port", "secure-port"),
        ("config", ""),
        ("bind-address", ""),
        ("client-ca-file", ""),
        ("requestheader-client-ca-file", ""),
    ],
    guards: &[],
    shared_flags: &[],
    uses_service_account_key: false,
    signs_csrs: false,
    install_hooks: None,
};

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

/// The client certificate kube-apiserver presents to aggregated API servers.
pub const FRONT_PROXY_CLIENT: CertSpec = CertSpec {
    name: "front-proxy-client",
    cn: "front-proxy-client",
    org: None,
    server: false,
    client: true,
    names: Names::None,
    issued_by: IssuedBy::FrontProxy,
};

/// kube-apiserver's client certificate for etcd from the inventory (`[etcd]`).
pub const APISERVER_ETCD_CLIENT: CertSpec = CertSpec {
    name: "apiserver-etcd-client",
    cn: "kube-apiserver-etcd-client",
    org: None,
    server: false,
    client: true,
    names: Names::None,
    issued_by: IssuedBy::Etcd,
};

/// etcd, as the tutorial's chapter 04: one member per master, TLS between members and
/// to clients with one certificate per node.
pub const ETCD: Component = Component {
    name: "etcd",
    user: "etcd",
    description: "Etcd Server",
    documentation: "https://etcd.io/docs/",
    section: Section::EtcdMember,
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
        issued_by: IssuedBy::Etcd,
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
    flags: flags::etcd,
    // 3.4's module root, and 3.5's server module (`go.etcd.io/etcd/server/v3`).
    main_packages: &["go.etcd.io/etcd", "go.etcd.io/etcd/server"],
    catalogue: include_str!("etcd-flags.tsv"),
    version_series: "3.",
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
        "../../bundle-templates/install/hooks/etcd.sh.hbs"
    )),
};

pub const KUBE_APISERVER: Component = Component {
    name: "kube-apiserver",
    user: "kube-apiserver",
    description: "Kubernetes API Server",
    documentation:
        "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/",
    section: Section::ApiServer,
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
            names: Names::ApiServer,
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
    flags: flags::apiserver,
    main_packages: &[],
    catalogue: include_str!("kas-flags.tsv"),
    version_series: "1.",
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
};

/// kube-apiserver's flags that decide who may do what (see [`Component::guards`]).
const APISERVER_GUARDS: [(&str, &str, &str); 6] = [
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

/// Every component, in the order a node starts them: etcd, then kube-apiserver, which
/// needs it, then the others, which need the apiserver.
pub const ALL: [&Component; 4] = [
    &ETCD,
    &KUBE_APISERVER,
    &KUBE_CONTROLLER_MANAGER,
    &KUBE_SCHEDULER,
];

/// Every row in start order: [`ALL`], then in the library's unit tests the rows a test
/// added with `testing::add` (on its own thread).
pub fn all() -> Vec<&'static Component> {
    #[allow(unused_mut)]
    let mut rows = ALL.to_vec();
    #[cfg(test)]
    testing::ROWS.with(|extra| rows.extend(extra.borrow().iter().copied()));
    rows
}

pub fn by_name(name: &str) -> Option<&'static Component> {
    all().into_iter().find(|c| c.name == name)
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
}
