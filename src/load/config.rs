//! The inventory: raw serde types read from `cluster.toml`, and their validation into an
//! [`Inventory`] that the rest of the pipeline can trust. Every rule about what a valid
//! inventory is lives here; this module never touches `pki/` or `dist/`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::component::catalogue;
use crate::component::{self, Component, Section};
use crate::error::{Error, Result};
use crate::load::version::KubeVersion;

pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
pub const DEFAULT_APISERVER: &str = "https://{{node.ip}}:6443";
pub const DEFAULT_K8S_DIR: &str = "/data/k8s/k8s";
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";
pub const DEFAULT_ETCD_DATA_DIR: &str = "/data/k8s/etcd/data";
pub const DEFAULT_ETCD_WAL_DIR: &str = "/data/k8s/etcd/wal";
pub const DEFAULT_ETCD_CLUSTER_TOKEN: &str = "etcd-cluster-0";
pub const NODE_IP_PLACEHOLDER: &str = "{{node.ip}}";

// ---- raw, as written -------------------------------------------------------------------

#[derive(Debug)]
struct RawInventory {
    cluster: RawCluster,
    pki: RawPki,
    nodes: Vec<RawNode>,
    /// The components' sections, keyed by their row's name: the rows are the only
    /// sections besides `cluster`, `pki` and `nodes`.
    sections: BTreeMap<&'static str, RawSection>,
}

/// One component's section, with the keys its row's [`Section`] takes.
#[derive(Debug)]
enum RawSection {
    Standard(RawComponent),
    ApiServer(RawApiServer),
    EtcdMember(RawEtcd),
}

impl RawSection {
    /// The section of `c` as written, read with the keys its row's [`Section`] takes (an
    /// unknown key is the deserializer's error, naming it).
    fn read<'de, A: MapAccess<'de>>(c: &Component, map: &mut A) -> Result<Self, A::Error> {
        Ok(match c.section {
            Section::Standard => Self::Standard(map.next_value()?),
            Section::ApiServer => Self::ApiServer(map.next_value()?),
            Section::EtcdMember => Self::EtcdMember(map.next_value()?),
        })
    }

    /// The section of a component the inventory does not mention: all defaults.
    fn absent(c: &Component) -> Self {
        match c.section {
            Section::Standard => Self::Standard(RawComponent::default()),
            Section::ApiServer => Self::ApiServer(RawApiServer::default()),
            Section::EtcdMember => Self::EtcdMember(RawEtcd::default()),
        }
    }
}

/// The top-level keys besides the components' sections.
const TOP_KEYS: [&str; 3] = ["cluster", "pki", "nodes"];

/// A top-level key: one of [`TOP_KEYS`] or a row's name. Any other is the deserializer's
/// unknown-field error, which it places at the key.
enum TopKey {
    Cluster,
    Pki,
    Nodes,
    Row(&'static Component),
}

impl<'de> Deserialize<'de> for TopKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = TopKey;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("field identifier")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<TopKey, E> {
                match key {
                    "cluster" => Ok(TopKey::Cluster),
                    "pki" => Ok(TopKey::Pki),
                    "nodes" => Ok(TopKey::Nodes),
                    name => component::by_name(name).map(TopKey::Row).ok_or_else(|| {
                        let keys: Vec<&'static str> = TOP_KEYS
                            .into_iter()
                            .chain(component::all().into_iter().map(|c| c.name))
                            .collect();
                        de::Error::unknown_field(name, keys.leak())
                    }),
                }
            }
        }
        deserializer.deserialize_identifier(Key)
    }
}

impl<'de> Deserialize<'de> for RawInventory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Inventory;
        impl<'de> Visitor<'de> for Inventory {
            type Value = RawInventory;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("struct RawInventory")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawInventory, A::Error> {
                let (mut cluster, mut pki, mut nodes) = (None, None, None);
                let mut sections = BTreeMap::new();
                while let Some(key) = map.next_key::<TopKey>()? {
                    let twice = match key {
                        TopKey::Cluster => cluster.replace(map.next_value()?).map(|_| "cluster"),
                        TopKey::Pki => pki.replace(map.next_value()?).map(|_| "pki"),
                        TopKey::Nodes => nodes.replace(map.next_value()?).map(|_| "nodes"),
                        TopKey::Row(c) => sections
                            .insert(c.name, RawSection::read(c, &mut map)?)
                            .map(|_| c.name),
                    };
                    if let Some(key) = twice {
                        return Err(de::Error::duplicate_field(key));
                    }
                }
                Ok(RawInventory {
                    cluster: cluster.ok_or_else(|| de::Error::missing_field("cluster"))?,
                    pki: pki.unwrap_or_default(),
                    nodes: nodes.unwrap_or_default(),
                    sections,
                })
            }
        }
        deserializer.deserialize_struct("RawInventory", &TOP_KEYS, Inventory)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawApiServer {
    binary: Option<Spanned<String>>,
    binary_check: Option<bool>,
    secure_port: Option<Spanned<i64>>,
    #[serde(default)]
    extra_sans: Vec<Spanned<String>>,
    service_node_port_range: Option<Spanned<String>>,
    etcd_servers: Option<Spanned<Vec<Spanned<String>>>>,
    etcd_ca: Option<Spanned<String>>,
    etcd_cert: Option<Spanned<String>>,
    etcd_key: Option<Spanned<String>>,
    #[serde(default)]
    extra_args: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCluster {
    name: Option<Spanned<String>>,
    kubernetes_version: Option<Spanned<String>>,
    apiserver: Option<Spanned<String>>,
    worker_apiserver: Option<Spanned<String>>,
    arch: Option<Spanned<String>>,
    service_cidr: Option<Spanned<String>>,
    cluster_cidr: Option<Spanned<String>>,
    k8s_dir: Option<Spanned<String>>,
    dns_domain: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPki {
    dir: Option<Spanned<String>>,
    ca_cert: Option<Spanned<String>>,
    ca_key: Option<Spanned<String>>,
    key_algorithm: Option<Spanned<String>>,
    cert_validity: Option<Spanned<String>>,
    ca_validity: Option<Spanned<String>>,
    service_account_key: Option<Spanned<String>>,
    csr_signing: Option<Spanned<String>>,
    etcd_ca: Option<Spanned<String>>,
    seal_secrets: Option<bool>,
    #[serde(rename = "C")]
    country: Option<Spanned<String>>,
    #[serde(rename = "ST")]
    state: Option<Spanned<String>>,
    #[serde(rename = "L")]
    locality: Option<Spanned<String>>,
    #[serde(rename = "OU")]
    organizational_unit: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    ip: Spanned<String>,
    /// `existing` for a member joining a formed etcd cluster; `new` (the default) for the
    /// members that bootstrap it.
    #[serde(rename = "etcd-state")]
    etcd_state: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEtcd {
    binary: Option<Spanned<String>>,
    binary_check: Option<bool>,
    etcdctl: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    client_port: Option<Spanned<i64>>,
    peer_port: Option<Spanned<i64>>,
    data_dir: Option<Spanned<String>>,
    wal_dir: Option<Spanned<String>>,
    cluster_token: Option<Spanned<String>>,
    #[serde(default)]
    extra_args: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawComponent {
    binary: Option<Spanned<String>>,
    binary_check: Option<bool>,
    secure_port: Option<Spanned<i64>>,
    #[serde(default)]
    extra_args: BTreeMap<String, Spanned<toml::Value>>,
}

// ---- validated ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Inventory {
    /// The inventory file, for messages.
    pub path: PathBuf,
    pub cluster: Cluster,
    pub pki: PkiSettings,
    pub nodes: Vec<Node>,
    /// The components built for every node, in start order.
    pub components: Vec<ComponentSettings>,
    /// kube-apiserver's own settings, when the inventory builds it.
    pub apiserver: Option<ApiServerSettings>,
    /// etcd's own settings, when the inventory builds it.
    pub etcd: Option<EtcdSettings>,
    /// Things worth saying that do not stop a build, one line each.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdCa {
    /// `pki/etcd-ca.pem`, generated once: a certificate of the cluster CA cannot reach etcd.
    Dedicated,
    /// The root CA, as the tutorial does.
    Shared,
}

/// The etcd releases with a checked flag profile, as minor numbers of 3.x.
pub const ETCD_MINORS: [u32; 3] = [4, 5, 6];

#[derive(Debug, Clone)]
pub struct EtcdSettings {
    /// Minor release of 3.x: 4, 5 or 6.
    pub minor: u32,
    /// An etcdctl to carry as `/opt/k8s/bin/etcdctl`.
    pub etcdctl: Option<PathBuf>,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: String,
    pub wal_dir: String,
    pub cluster_token: String,
    /// Nodes whose member joins a formed cluster (`etcd-state = "existing"`), in
    /// inventory order; the others bootstrap it.
    pub joining: Vec<String>,
}

impl EtcdSettings {
    /// `--initial-cluster` of `node`: the bootstrapping members, and for a joining one
    /// also every member joined before it, in inventory order, then itself, which is what
    /// `etcdctl member add` asks for. A member added later never changes the bundles of
    /// those before it.
    pub fn initial_cluster(&self, nodes: &[Node], node: &Node) -> String {
        let joins = |n: &Node| self.joining.contains(&n.name);
        let upto = nodes
            .iter()
            .position(|n| n.name == node.name)
            .unwrap_or(nodes.len());
        nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| !joins(n) || (joins(node) && *i <= upto))
            .map(|(_, n)| format!("{}={}", n.name, self.peer_url(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn peer_url(&self, node: &Node) -> String {
        format!("https://{}:{}", host(node.ip), self.peer_port)
    }

    pub fn client_url(&self, node: &Node) -> String {
        format!("https://{}:{}", host(node.ip), self.client_port)
    }

    /// Every member's client URL, `node`'s own first: kube-apiserver's `--etcd-servers`.
    pub fn servers_for(&self, nodes: &[Node], node: &Node) -> Vec<String> {
        let mut urls = vec![self.client_url(node)];
        urls.extend(
            nodes
                .iter()
                .filter(|n| n.name != node.name)
                .map(|n| self.client_url(n)),
        );
        urls
    }
}

/// The names every serving certificate of a node carries: loopback, its IP and name.
pub fn node_names(node: &Node) -> Vec<San> {
    vec![
        San::Ip("127.0.0.1".parse().expect("loopback")),
        San::Ip(node.ip),
        San::Dns(node.name.clone()),
    ]
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// A name a serving certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum San {
    Ip(IpAddr),
    Dns(String),
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Ip(ip) => write!(f, "IP:{ip}"),
            San::Dns(name) => write!(f, "DNS:{name}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiServerSettings {
    /// A load balancer's name or VIP, in every node's serving certificate.
    pub extra_sans: Vec<San>,
    /// `--service-node-port-range`, as `FIRST-LAST`.
    pub node_port_range: String,
    pub etcd_servers: Vec<String>,
    /// An external etcd's CA and the apiserver's client certificate and key for it.
    pub etcd_tls: Option<EtcdTls>,
}

#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub version: KubeVersion,
    /// May contain `{{node.ip}}`; see [`Inventory::apiserver_for`].
    pub apiserver: String,
    pub service_cidr: IpNet,
    pub cluster_cidr: Option<IpNet>,
    pub k8s_dir: String,
    /// The cluster's DNS domain (`cluster.local`), for the `kubernetes` service's names.
    pub dns_domain: String,
    /// Whether `apiserver` was written in the inventory rather than defaulted.
    pub apiserver_set: bool,
    /// The address workers (kubelets, kube-proxy) reach the apiservers at, such as the
    /// tutorial's local kube-nginx proxy; kept for worker bundles, unused by masters.
    pub worker_apiserver: Option<String>,
    /// The masters' architecture: every carried binary must be built for it.
    pub arch: Arch,
    /// Whether `arch` was written in the inventory rather than defaulted.
    pub arch_set: bool,
}

/// A node architecture, as Go and Kubernetes' release downloads name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
    Arm,
    Ppc64le,
    S390x,
}

impl Arch {
    pub const NAMES: [&'static str; 5] = ["amd64", "arm64", "arm", "ppc64le", "s390x"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "amd64" => Some(Self::Amd64),
            "arm64" => Some(Self::Arm64),
            "arm" => Some(Self::Arm),
            "ppc64le" => Some(Self::Ppc64le),
            "s390x" => Some(Self::S390x),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Amd64 => "amd64",
            Self::Arm64 => "arm64",
            Self::Arm => "arm",
            Self::Ppc64le => "ppc64le",
            Self::S390x => "s390x",
        }
    }
}

impl Cluster {
    /// The `kubernetes` service's cluster IP: the first address of the service range.
    pub fn kubernetes_service_ip(&self) -> IpAddr {
        first_ip(&self.service_cidr)
    }
}

/// The first host address of a range, as kube-apiserver picks the `kubernetes`
/// service's IP: the network address plus one.
pub fn first_ip(net: &IpNet) -> IpAddr {
    match net.network() {
        IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4).wrapping_add(1))),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6).wrapping_add(1))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
}

impl KeyAlgorithm {
    pub const NAMES: [&'static str; 4] = ["rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "rsa-2048" => Some(Self::Rsa2048),
            "rsa-3072" => Some(Self::Rsa3072),
            "rsa-4096" => Some(Self::Rsa4096),
            "ecdsa-p256" => Some(Self::EcdsaP256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::EcdsaP256 => "ecdsa-p256",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAccountKey {
    /// A dedicated key pair in `pki/`, shared by every master.
    Dedicated,
    /// The CA key signs tokens, as in the tutorial.
    Ca,
}

/// Which key the controller-manager's CSR signers (kubelet certificates and the like) use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrSigning {
    /// The root CA key, on every master, as the tutorial does.
    Ca,
    /// A dedicated self-signed signing CA, trusted only by kube-apiserver's client CA;
    /// the root CA key stays on the build host.
    Signer,
    /// No signing: the CSR signers stay off (kubeadm's external-CA mode).
    Off,
}

impl CsrSigning {
    pub const NAMES: [&'static str; 3] = ["ca", "signer", "off"];

    pub fn name(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::Signer => "signer",
            Self::Off => "off",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub country: Option<String>,
    pub state: Option<String>,
    pub locality: Option<String>,
    pub organizational_unit: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PkiSettings {
    /// Folder holding the saved PKI state.
    pub dir: PathBuf,
    /// An imported CA: (cert, key).
    pub import_ca: Option<(PathBuf, PathBuf)>,
    pub key_algorithm: KeyAlgorithm,
    pub cert_validity: Duration,
    pub ca_validity: Duration,
    pub subject: Subject,
    pub service_account_key: ServiceAccountKey,
    pub csr_signing: CsrSigning,
    /// Whether etcd has a CA of its own (kubeadm's way) or uses the root CA (the tutorial's).
    pub etcd_ca: EtcdCa,
    /// Whether each bundle's private files are sealed with its node's key (`seal`).
    pub seal_secrets: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub ip: IpAddr,
}

#[derive(Debug, Clone)]
pub struct ComponentSettings {
    pub component: &'static Component,
    pub binary: Option<PathBuf>,
    pub secure_port: u16,
    /// Flag name (without dashes) → value, as rendered after `=`.
    pub extra_args: BTreeMap<String, String>,
    /// Whether the build reads `binary` (and etcd's `etcdctl`) to check that it is an
    /// executable of the component's release; `binary-check = false` carries it as is.
    pub check_binary: bool,
    /// The ports of its row's `extra_ports`, in the row's order.
    pub extra_ports: Vec<u16>,
    /// The folders of its row's `data_dirs`, in the row's order.
    pub data_dirs: Vec<String>,
}

impl Inventory {
    /// The apiserver URL one node's kubeconfig points at.
    pub fn apiserver_for(&self, node: &Node) -> String {
        let ip = match node.ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        self.cluster.apiserver.replace(NODE_IP_PLACEHOLDER, &ip)
    }

    /// The names kube-apiserver's serving certificate carries on `node`, in certificate
    /// order: the node's own, the extra SANs, the `kubernetes` service's IP and names.
    pub fn apiserver_names(&self, node: &Node) -> Vec<San> {
        let mut names = node_names(node);
        if let Some(api) = &self.apiserver {
            names.extend(api.extra_sans.iter().cloned());
        }
        names.push(San::Ip(self.cluster.kubernetes_service_ip()));
        for name in ["kubernetes", "kubernetes.default", "kubernetes.default.svc"] {
            names.push(San::Dns(name.into()));
        }
        names.push(San::Dns(format!(
            "kubernetes.default.svc.{}",
            self.cluster.dns_domain
        )));
        names
    }

    /// Every certificate `c` carries on a node: its row's, and those it needs from the
    /// other components the inventory builds (with `[etcd]`, the apiserver's client
    /// certificate for it).
    pub fn certs(&self, c: &'static Component) -> Vec<&'static component::CertSpec> {
        let mut certs: Vec<_> = c.certs.iter().collect();
        certs.extend(
            c.certs_from
                .iter()
                .filter(|(other, _)| self.components.iter().any(|s| s.component.name == *other))
                .map(|(_, spec)| spec),
        );
        certs
    }

    /// `c`'s working directory on a node: its first data dir (etcd's data dir),
    /// `<k8s-dir>/<name>` for a component without one.
    pub fn work_dir(&self, c: &Component) -> String {
        match self.settings(c).and_then(|s| s.data_dirs.first()) {
            Some(dir) => dir.clone(),
            None => c.work_dir(&self.cluster.k8s_dir),
        }
    }

    /// Whether a certificate a built component carries is issued by `ca`.
    pub fn needs_ca(&self, ca: component::IssuedBy) -> bool {
        self.components
            .iter()
            .flat_map(|s| self.certs(s.component))
            .any(|spec| spec.issued_by == ca)
    }

    /// Whether a component serving the Kubernetes API is built.
    pub fn serves_api(&self) -> bool {
        self.components.iter().any(|s| s.component.serves_api)
    }

    /// The settings of `c`, when the inventory builds it.
    pub fn settings(&self, c: &Component) -> Option<&ComponentSettings> {
        self.components.iter().find(|s| s.component == c)
    }

    /// The folder the inventory lives in; relative paths in it resolve against this.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Reads and validates an inventory file.
pub fn load(path: &Path) -> Result<Inventory> {
    let text = fs_err::read_to_string(path).map_err(|e| {
        Error::input(format!("`{}`", path.display()), e.to_string())
            .with_hint("pass the inventory with `-c FILE`, or write one with `kube-bundle init`")
    })?;
    parse(path, &text)
}

/// Validates inventory text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Inventory> {
    let raw: RawInventory = toml::from_str(text).map_err(|e| Error::Toml {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    Validator { path, text }.inventory(raw)
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    /// `file:line:column: `field``, the location prefix of every validation error.
    fn at(&self, span: Range<usize>, field: &str) -> String {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}: `{field}`", self.path.display())
    }

    fn whole_file(&self, field: &str) -> String {
        format!("{}: `{field}`", self.path.display())
    }

    fn err<T>(&self, value: &Spanned<T>, field: &str, message: impl Into<String>) -> Error {
        Error::input(self.at(value.span(), field), message)
    }

    fn relative(&self, value: &str) -> PathBuf {
        let base = self.path.parent().unwrap_or(Path::new("."));
        base.join(value)
    }

    fn inventory(&self, raw: RawInventory) -> Result<Inventory> {
        let apiserver_span = raw.cluster.apiserver.as_ref().map(Spanned::span);
        let mut cluster = self.cluster(raw.cluster)?;
        let pki = self.pki(raw.pki)?;
        let joining = self.joining(&raw.nodes)?;
        let nodes = self.nodes(raw.nodes)?;
        let mut warnings = Vec::new();
        let mut sections = raw.sections;
        let with_member = sections
            .values()
            .any(|s| matches!(s, RawSection::EtcdMember(_)));
        let mut joining = Some(joining);
        let mut etcd = None;
        let mut apiserver = None;
        // In start order; a required component is built with defaults when its section
        // is absent.
        let mut components = Vec::new();
        for c in component::all() {
            let raw = match sections.remove(c.name) {
                Some(raw) => raw,
                None if c.required => RawSection::absent(c),
                None => continue,
            };
            let settings = match raw {
                RawSection::Standard(raw) => self.component(c, raw, &cluster.version)?,
                RawSection::ApiServer(raw) => {
                    let (settings, own) = self.apiserver(c, raw, &cluster, &nodes, with_member)?;
                    apiserver = Some(own);
                    settings
                }
                RawSection::EtcdMember(raw) => {
                    let joining = joining.take().unwrap_or_default();
                    let (settings, own) = self.etcd(c, raw, &cluster, joining, &nodes)?;
                    if nodes.len() % 2 == 0 {
                        let n = nodes.len();
                        warnings.push(format!(
                            "{} lists {n} etcd members: a quorum is {}, so the cluster survives the loss of {} member(s), no more than with {}; an odd number is what etcd recommends",
                            self.path.display(),
                            n / 2 + 1,
                            (n - 1) / 2,
                            n - 1
                        ));
                    }
                    etcd = Some(own);
                    settings
                }
            };
            // The others talk to the API server on their node.
            if c.serves_api && !cluster.apiserver_set {
                cluster.apiserver =
                    format!("https://{NODE_IP_PLACEHOLDER}:{}", settings.secure_port);
            }
            components.push(settings);
        }
        // Every port a node listens on, with the key that sets it: the main ports, then
        // the others.
        let mut ports: Vec<(u16, String)> = components
            .iter()
            .map(|s| (s.secure_port, s.component.port_field()))
            .collect();
        for s in &components {
            for (port, extra) in s.extra_ports.iter().zip(s.component.extra_ports) {
                ports.push((*port, format!("{}.{}", s.component.name, extra.key)));
            }
        }
        for (i, (port, key)) in ports.iter().enumerate() {
            if let Some((_, first)) = ports[..i].iter().find(|(p, _)| p == port) {
                return Err(Error::input(
                    self.whole_file(key),
                    format!("`{first}` and `{key}` would both listen on port {port} of every node"),
                )
                .with_hint(format!(
                    "give each component its own port (defaults: {})",
                    component::all()
                        .iter()
                        .map(|c| {
                            let mut text = format!("{} {}", c.name, c.default_secure_port);
                            for extra in c.extra_ports {
                                text += &format!(" and {} {}", extra.what, extra.default);
                            }
                            text
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let inv = Inventory {
            path: self.path.to_path_buf(),
            cluster,
            pki,
            nodes,
            components,
            apiserver,
            etcd,
            warnings,
        };
        self.apiserver_in_certificate(&inv, apiserver_span)?;
        Ok(inv)
    }

    /// With kube-apiserver built, the `apiserver` the controller-manager and scheduler
    /// reach must be a name its serving certificate carries, or their TLS check fails on
    /// every master.
    fn apiserver_in_certificate(&self, inv: &Inventory, span: Option<Range<usize>>) -> Result<()> {
        let (Some(_), Some(span)) = (&inv.apiserver, span) else {
            return Ok(());
        };
        for node in &inv.nodes {
            let url = inv.apiserver_for(node);
            let Some(host) = url_host(&url) else { continue };
            let wanted = match host.parse::<IpAddr>() {
                Ok(ip) => San::Ip(ip.to_canonical()),
                Err(_) => San::Dns(host.to_ascii_lowercase()),
            };
            let names = inv.apiserver_names(node);
            if !names.contains(&wanted) {
                let names: Vec<String> = names.iter().map(San::to_string).collect();
                return Err(Error::input(
                    self.at(span, "cluster.apiserver"),
                    format!(
                        "`{host}` is not a name of kube-apiserver's serving certificate, which on `{}` holds {}",
                        node.name,
                        names.join(", ")
                    ),
                )
                .with_hint(format!("add `{host}` to `extra-sans` under [kube-apiserver] (a load balancer's name or address), or remove `apiserver` so that each controller-manager and scheduler talks to its own master's apiserver")));
            }
        }
        Ok(())
    }

    /// The nodes whose etcd member joins a formed cluster, from `etcd-state`.
    fn joining(&self, raw: &[RawNode]) -> Result<Vec<String>> {
        let mut joining = Vec::new();
        for (i, node) in raw.iter().enumerate() {
            let Some(state) = &node.etcd_state else {
                continue;
            };
            match state.get_ref().as_str() {
                "new" => {}
                "existing" => joining.push(node.name.get_ref().clone()),
                other => {
                    return Err(self
                        .err(state, &format!("nodes[{i}].etcd-state"), format!("unknown value `{other}`"))
                        .with_hint("`new` for a member that bootstraps the cluster (the default), `existing` for one added to a formed cluster with `etcdctl member add`"))
                }
            }
        }
        if !joining.is_empty() && joining.len() == raw.len() {
            return Err(Error::input(
                self.whole_file("nodes"),
                "every node has `etcd-state = \"existing\"`: no member is left to bootstrap or to join",
            ));
        }
        Ok(joining)
    }

    /// `[etcd]`: its component settings and its own.
    fn etcd(
        &self,
        c: &'static Component,
        raw: RawEtcd,
        cluster: &Cluster,
        joining: Vec<String>,
        nodes: &[Node],
    ) -> Result<(ComponentSettings, EtcdSettings)> {
        let Some(version) = raw.version else {
            return Err(Error::input(self.whole_file("etcd.version"), "is required")
                .with_hint("set the etcd release the bundles carry: `3.4`, `3.5` or `3.6` (`etcd --version` says it)"));
        };
        let minor = version
            .get_ref()
            .trim_start_matches('v')
            .strip_prefix("3.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|m| m.parse::<u32>().ok())
            .filter(|m| ETCD_MINORS.contains(m))
            .ok_or_else(|| {
                self.err(
                    &version,
                    "etcd.version",
                    format!("etcd `{}` has no flag profile", version.get_ref()),
                )
                .with_hint("kube-bundle knows etcd 3.4, 3.5 and 3.6; write `3.4`, `3.5` or `3.6` (a patch release like `3.4.23` is fine)")
            })?;
        let shown = format!("3.{minor}");
        let mut settings = self.component_of(
            c,
            RawComponent {
                binary: raw.binary,
                binary_check: raw.binary_check,
                secure_port: raw.client_port,
                extra_args: raw.extra_args,
            },
            &cluster.version,
            Some((minor, &shown)),
        )?;
        let client_port = settings.secure_port;
        let peer_port = self.port(raw.peer_port, "etcd.peer-port", 2380)?;
        let etcdctl = self.executable(raw.etcdctl, "etcd.etcdctl", "etcdctl")?;
        let dir = |value: Option<Spanned<String>>, key: &str, default: &str| -> Result<String> {
            match value {
                None => Ok(default.to_string()),
                Some(d) => {
                    let text = d.get_ref();
                    let ok = text.starts_with('/')
                        && text.trim_end_matches('/').len() > 1
                        && !text.split('/').any(|part| part == ".." || part == ".")
                        && !text.chars().any(|c| {
                            c.is_whitespace() || c.is_control() || "\"'\\$%`*?[]".contains(c)
                        });
                    if !ok {
                        return Err(self.err(
                            &d,
                            &format!("etcd.{key}"),
                            "must be an absolute folder below `/` without `..`, spaces, quotes, `$` or wildcards",
                        ));
                    }
                    let dir = text.trim_end_matches('/').to_string();
                    if let Some(message) = component::paths::unfit_folder(&dir) {
                        return Err(self.err(&d, &format!("etcd.{key}"), message).with_hint(
                            "keep etcd's data in a folder of its own, such as /data/k8s/etcd/data",
                        ));
                    }
                    Ok(dir)
                }
            }
        };
        let data_dir = dir(raw.data_dir, "data-dir", DEFAULT_ETCD_DATA_DIR)?;
        let wal_dir = dir(raw.wal_dir, "wal-dir", DEFAULT_ETCD_WAL_DIR)?;
        let inside = component::paths::inside;
        if inside(&wal_dir, &data_dir) || inside(&data_dir, &wal_dir) {
            return Err(Error::input(
                self.whole_file("etcd.wal-dir"),
                format!("`{wal_dir}` and the data dir `{data_dir}` overlap"),
            )
            .with_hint("give the WAL a folder of its own beside the data dir, as the tutorial's /data/k8s/etcd/{data,wal}"));
        }
        // No other component's work dir may hold etcd's data, or be held by it: an
        // uninstall --purge of that component would take the data with it. (The folders
        // install.sh writes into are `unfit_folder`'s.)
        let owned: Vec<(String, String)> = component::all()
            .iter()
            .filter(|c| c.data_dirs.is_empty())
            .map(|c| {
                (
                    c.work_dir(&cluster.k8s_dir),
                    format!("{}'s work dir", c.name),
                )
            })
            .collect();
        for (key, path) in [("data-dir", &data_dir), ("wal-dir", &wal_dir)] {
            for (other, what) in &owned {
                if inside(path, other) || inside(other, path) {
                    return Err(Error::input(
                        self.whole_file(&format!("etcd.{key}")),
                        format!("`{path}` overlaps {what} `{other}`"),
                    )
                    .with_hint(
                        "keep etcd's data in a folder of its own, such as /data/k8s/etcd/data",
                    ));
                }
            }
        }
        let cluster_token = self.plain_name(
            raw.cluster_token,
            "etcd.cluster-token",
            DEFAULT_ETCD_CLUSTER_TOKEN,
        )?;
        debug_assert!(joining.iter().all(|j| nodes.iter().any(|n| &n.name == j)));
        settings.extra_ports = vec![peer_port];
        settings.data_dirs = vec![data_dir.clone(), wal_dir.clone()];
        Ok((
            settings,
            EtcdSettings {
                minor,
                etcdctl,
                client_port,
                peer_port,
                data_dir,
                wal_dir,
                cluster_token,
                joining,
            },
        ))
    }

    fn cluster(&self, raw: RawCluster) -> Result<Cluster> {
        let name = self.plain_name(raw.name, "cluster.name", DEFAULT_CLUSTER_NAME)?;
        let Some(version_text) = raw.kubernetes_version else {
            return Err(Error::input(self.whole_file("cluster.kubernetes-version"), "is required")
                .with_hint("add `kubernetes-version = \"1.20.2\"` (the version of the kube-controller-manager you run) under [cluster]"));
        };
        let version = KubeVersion::parse(version_text.get_ref())
            .map_err(|m| self.err(&version_text, "cluster.kubernetes-version", m))?;

        let apiserver_set = raw.apiserver.is_some();
        let apiserver = match raw.apiserver {
            None => DEFAULT_APISERVER.to_string(),
            Some(a) => {
                check_apiserver(a.get_ref())
                    .map_err(|m| self.err(&a, "cluster.apiserver", m).with_hint("write it as `https://HOST:PORT`, with `{{node.ip}}` standing for each master's own IP"))?;
                a.into_inner()
            }
        };

        // For workers: `{{node.ip}}` would be each worker's own address, which no
        // apiserver certificate names.
        let worker_apiserver = match raw.worker_apiserver {
            None => None,
            Some(a) => {
                check_apiserver(a.get_ref())
                    .and_then(|()| match a.get_ref().contains(NODE_IP_PLACEHOLDER) {
                        true => Err(format!("`{NODE_IP_PLACEHOLDER}` stands for a master's IP, not a worker's")),
                        false => Ok(()),
                    })
                    .map_err(|m| self.err(&a, "cluster.worker-apiserver", m).with_hint("write the URL workers reach the apiservers at, as `https://HOST:PORT` (the tutorial's kube-nginx: `https://127.0.0.1:8443`)"))?;
                Some(a.into_inner())
            }
        };
        let arch_set = raw.arch.is_some();
        let arch = self.one_of(
            raw.arch,
            "cluster.arch",
            "architecture",
            Arch::Amd64,
            &Arch::NAMES,
            Arch::parse,
        )?;

        let Some(service_cidr) = raw.service_cidr else {
            return Err(Error::input(self.whole_file("cluster.service-cidr"), "is required")
                .with_hint("set it to the same range as kube-apiserver's `--service-cluster-ip-range`, e.g. `10.254.0.0/16`"));
        };
        let service_cidr = {
            let net = self.cidr(&service_cidr, "cluster.service-cidr")?;
            check_service_range(&net, &version).map_err(|(m, hint)| {
                self.err(&service_cidr, "cluster.service-cidr", m)
                    .with_hint(hint)
            })?;
            net
        };
        let cluster_cidr = raw
            .cluster_cidr
            .map(|c| self.cidr(&c, "cluster.cluster-cidr"))
            .transpose()?;

        let k8s_dir = match raw.k8s_dir {
            None => DEFAULT_K8S_DIR.to_string(),
            Some(d) => {
                let ok = d.get_ref().starts_with('/')
                    && !d.get_ref().split('/').any(|part| part == "..")
                    && !d
                        .get_ref()
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "\"'\\$%`".contains(c));
                if !ok {
                    return Err(self.err(
                        &d,
                        "cluster.k8s-dir",
                        "must be an absolute path without `..`, spaces, quotes or `$`",
                    ));
                }
                let dir = d.get_ref().trim_end_matches('/').to_string();
                // The folder itself and each component's work dir in it (etcd's is its
                // data dir).
                let unfit = std::iter::once(if dir.is_empty() {
                    "/".into()
                } else {
                    dir.clone()
                })
                .chain(
                    component::all()
                        .iter()
                        .filter(|c| c.data_dirs.is_empty())
                        .map(|c| c.work_dir(&dir)),
                )
                .find_map(|path| component::paths::unfit_folder(&path));
                if let Some(message) = unfit {
                    return Err(self.err(&d, "cluster.k8s-dir", message).with_hint(
                        "give the work dirs a folder of their own, such as /data/k8s/k8s",
                    ));
                }
                dir
            }
        };

        let dns_domain = match raw.dns_domain {
            None => DEFAULT_DNS_DOMAIN.to_string(),
            Some(d) => {
                if d.get_ref().ends_with('.') {
                    return Err(self
                        .err(
                            &d,
                            "cluster.dns-domain",
                            format!("`{}` ends with a dot", d.get_ref()),
                        )
                        .with_hint(format!(
                            "write it without the trailing dot: `{}`",
                            d.get_ref().trim_end_matches('.')
                        )));
                }
                if !is_host_name(d.get_ref()) {
                    return Err(self.err(
                        &d,
                        "cluster.dns-domain",
                        format!("`{}` is not a DNS domain like `cluster.local`", d.get_ref()),
                    ));
                }
                d.into_inner()
            }
        };

        Ok(Cluster {
            name,
            version,
            apiserver,
            service_cidr,
            cluster_cidr,
            k8s_dir,
            dns_domain,
            apiserver_set,
            worker_apiserver,
            arch,
            arch_set,
        })
    }

    /// `[kube-apiserver]`: its component settings and its own.
    fn apiserver(
        &self,
        c: &'static Component,
        raw: RawApiServer,
        cluster: &Cluster,
        nodes: &[Node],
        with_etcd: bool,
    ) -> Result<(ComponentSettings, ApiServerSettings)> {
        let section = c.name;
        let settings = self.component(
            c,
            RawComponent {
                binary: raw.binary,
                binary_check: raw.binary_check,
                secure_port: raw.secure_port,
                extra_args: raw.extra_args,
            },
            &cluster.version,
        )?;
        let mut extra_sans = Vec::new();
        for (i, san) in raw.extra_sans.iter().enumerate() {
            let field = format!("{section}.extra-sans[{i}]");
            let text = san.get_ref().as_str();
            let parsed = match text.parse::<IpAddr>() {
                Ok(ip) => San::Ip(ip.to_canonical()),
                Err(_) if text.ends_with('.') => {
                    return Err(self
                        .err(san, &field, format!("`{text}` ends with a dot"))
                        .with_hint(format!(
                            "certificates name hosts without the trailing dot: `{}`",
                            text.trim_end_matches('.')
                        )))
                }
                Err(_) if is_host_name(text) => San::Dns(text.to_ascii_lowercase()),
                Err(_) => {
                    return Err(self
                        .err(san, &field, format!("`{text}` is neither an IP address nor a DNS name"))
                        .with_hint("list a load balancer's name (`lb.example.com`) or address (`10.0.0.100`), without scheme or port"))
                }
            };
            if !extra_sans.contains(&parsed) {
                extra_sans.push(parsed);
            }
        }
        let service_ip = cluster.kubernetes_service_ip();
        if let Some(node) = nodes.iter().find(|n| n.ip == service_ip) {
            return Err(Error::input(
                self.whole_file("cluster.service-cidr"),
                format!(
                    "the `kubernetes` service takes the range's first IP, {service_ip}, which is node `{}`'s address",
                    node.name
                ),
            )
            .with_hint("pick a service range that no master's address falls in, such as `10.254.0.0/16`"));
        }
        let node_port_range = match raw.service_node_port_range {
            None => DEFAULT_NODE_PORT_RANGE.to_string(),
            Some(r) => {
                let parsed = r
                    .get_ref()
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
                    .filter(|(a, b)| *a > 0 && a <= b);
                let Some((first, last)) = parsed else {
                    return Err(self.err(
                        &r,
                        &format!("{section}.service-node-port-range"),
                        format!("`{}` is not a port range like `30000-32767`", r.get_ref()),
                    ));
                };
                format!("{first}-{last}")
            }
        };
        if with_etcd {
            let given = [
                ("etcd-servers", raw.etcd_servers.as_ref().map(Spanned::span)),
                ("etcd-ca", raw.etcd_ca.as_ref().map(Spanned::span)),
                ("etcd-cert", raw.etcd_cert.as_ref().map(Spanned::span)),
                ("etcd-key", raw.etcd_key.as_ref().map(Spanned::span)),
            ];
            if let Some((key, Some(span))) = given.into_iter().find(|(_, s)| s.is_some()) {
                return Err(Error::input(
                    self.at(span, &format!("{section}.{key}")),
                    "is set by kube-bundle when the inventory has `[etcd]`",
                )
                .with_hint("remove it: the apiservers use the bundled etcd members, its CA and a client certificate from pki/"));
            }
            return Ok((
                settings,
                ApiServerSettings {
                    extra_sans,
                    node_port_range,
                    etcd_servers: Vec::new(),
                    etcd_tls: None,
                },
            ));
        }
        let Some(servers) = raw.etcd_servers else {
            return Err(Error::input(
                self.whole_file(&format!("{section}.etcd-servers")),
                "is required: kube-apiserver keeps its state in etcd",
            )
            .with_hint(
                "list the etcd client URLs, e.g. `etcd-servers = [\"https://10.0.0.11:2379\"]`",
            ));
        };
        if servers.get_ref().is_empty() {
            return Err(self.err(
                &servers,
                &format!("{section}.etcd-servers"),
                "lists no etcd server",
            ));
        }
        let mut etcd_servers = Vec::new();
        let mut any_https = false;
        for (i, url) in servers.get_ref().iter().enumerate() {
            let field = format!("{section}.etcd-servers[{i}]");
            let text = url.get_ref();
            let rest = match (text.strip_prefix("https://"), text.strip_prefix("http://")) {
                (Some(rest), _) => {
                    any_https = true;
                    rest
                }
                (None, Some(rest)) => rest,
                _ => {
                    return Err(self.err(
                        url,
                        &field,
                        format!("`{text}` is not an http or https URL"),
                    ))
                }
            };
            let host_port = rest.trim_end_matches('/');
            let ok = !host_port.contains(['/', '?', '#', '@', ',', ' '])
                && check_apiserver(&format!("https://{host_port}")).is_ok()
                && host_port
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(self
                    .err(
                        url,
                        &field,
                        format!("`{text}` is not an etcd client URL like `https://10.0.0.11:2379`"),
                    )
                    .with_hint("write scheme, host and port, nothing more"));
            }
            etcd_servers.push(format!(
                "{}{host_port}",
                if text.starts_with("https") {
                    "https://"
                } else {
                    "http://"
                }
            ));
        }
        let file = |value: &Option<Spanned<String>>, key: &str| -> Result<Option<PathBuf>> {
            let Some(v) = value else { return Ok(None) };
            let path = self.relative(v.get_ref());
            match fs_err::metadata(&path) {
                Ok(m) if m.is_file() => Ok(Some(path)),
                _ => Err(self
                    .err(
                        v,
                        &format!("{section}.{key}"),
                        format!("`{}` is not a readable file", path.display()),
                    )
                    .with_hint(
                        "point it at the PEM file of your etcd cluster, relative to the inventory",
                    )),
            }
        };
        let ca = file(&raw.etcd_ca, "etcd-ca")?;
        let cert = file(&raw.etcd_cert, "etcd-cert")?;
        let key = file(&raw.etcd_key, "etcd-key")?;
        let etcd_tls = match (ca, cert, key) {
            (Some(ca), Some(cert), Some(key)) => Some(EtcdTls { ca, cert, key }),
            (None, None, None) if !any_https => None,
            (None, None, None) => {
                return Err(Error::input(
                    self.whole_file(&format!("{section}.etcd-ca")),
                    "is required with https etcd servers",
                )
                .with_hint("set `etcd-ca`, `etcd-cert` and `etcd-key`: the etcd CA and the apiserver's client certificate and key for it"))
            }
            _ => {
                return Err(Error::input(
                    self.whole_file(&format!("{section}.etcd-ca")),
                    "`etcd-ca`, `etcd-cert` and `etcd-key` go together",
                )
                .with_hint("set all three, or none for plain-http etcd servers"))
            }
        };
        Ok((
            settings,
            ApiServerSettings {
                extra_sans,
                node_port_range,
                etcd_servers,
                etcd_tls,
            },
        ))
    }

    /// A port number from 1 to 65535, or `default` when the key is absent.
    fn port(&self, value: Option<Spanned<i64>>, field: &str, default: u16) -> Result<u16> {
        match value {
            None => Ok(default),
            Some(p) => u16::try_from(*p.get_ref())
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| self.err(&p, field, "must be a port number from 1 to 65535")),
        }
    }

    /// An executable of the build host to carry in the bundles, relative to the inventory.
    fn executable(
        &self,
        value: Option<Spanned<String>>,
        field: &str,
        what: &str,
    ) -> Result<Option<PathBuf>> {
        let Some(b) = value else { return Ok(None) };
        let path = self.relative(b.get_ref());
        check_executable(&path).map_err(|m| {
            self.err(&b, field, format!("`{}` {m}", path.display()))
                .with_hint(format!(
                    "point it at the {what} executable to carry in the bundles, or remove the key"
                ))
        })?;
        Ok(Some(path))
    }

    /// One of a fixed set of `names` (`parse` reads one), or `default` when the key is
    /// absent.
    fn one_of<T>(
        &self,
        value: Option<Spanned<String>>,
        field: &str,
        what: &str,
        default: T,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Result<T> {
        let Some(v) = value else { return Ok(default) };
        parse(v.get_ref()).ok_or_else(|| {
            self.err(&v, field, format!("unknown {what} `{}`", v.get_ref()))
                .with_hint(format!(
                    "use one of {}",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
        })
    }

    /// A plain name of letters, digits, `-` and `.`, or `default` when the key is absent.
    fn plain_name(
        &self,
        value: Option<Spanned<String>>,
        field: &str,
        default: &str,
    ) -> Result<String> {
        match value {
            None => Ok(default.to_string()),
            Some(n) if is_host_name(n.get_ref()) => Ok(n.into_inner()),
            Some(n) => Err(self.err(
                &n,
                field,
                "must be a plain name of letters, digits, `-` and `.`",
            )),
        }
    }

    fn cidr(&self, value: &Spanned<String>, field: &str) -> Result<IpNet> {
        let net: IpNet = value.get_ref().parse().map_err(|_| {
            self.err(
                value,
                field,
                format!("`{}` is not a CIDR like `10.254.0.0/16`", value.get_ref()),
            )
        })?;
        if net.trunc() != net {
            return Err(self
                .err(
                    value,
                    field,
                    format!("`{}` has host bits set", value.get_ref()),
                )
                .with_hint(format!("did you mean `{}`?", net.trunc())));
        }
        Ok(net)
    }

    fn pki(&self, raw: RawPki) -> Result<PkiSettings> {
        let dir = raw
            .dir
            .map_or_else(|| self.relative("pki"), |d| self.relative(d.get_ref()));
        let import_ca = match (raw.ca_cert, raw.ca_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((self.relative(cert.get_ref()), self.relative(key.get_ref()))),
            (Some(cert), None) => {
                return Err(self
                    .err(&cert, "pki.ca-cert", "is set but `pki.ca-key` is not")
                    .with_hint("an imported CA needs both its certificate and its key; remove both to let kube-bundle generate a CA"))
            }
            (None, Some(key)) => {
                return Err(self
                    .err(&key, "pki.ca-key", "is set but `pki.ca-cert` is not")
                    .with_hint("an imported CA needs both its certificate and its key; remove both to let kube-bundle generate a CA"))
            }
        };
        let key_algorithm = self.one_of(
            raw.key_algorithm,
            "pki.key-algorithm",
            "key algorithm",
            KeyAlgorithm::Rsa2048,
            &KeyAlgorithm::NAMES,
            KeyAlgorithm::parse,
        )?;
        let duration =
            |value: Option<Spanned<String>>, field: &str, default: &str| -> Result<Duration> {
                match value {
                    None => Ok(parse_duration(default).expect("default duration parses")),
                    Some(v) => parse_go_duration(v.get_ref()).map_err(|m| {
                        self.err(&v, field, m)
                            .with_hint("write durations like `8760h` (hours), `365d` or `90d12h`")
                    }),
                }
            };
        let cert_validity = duration(raw.cert_validity, "pki.cert-validity", "8760h")?;
        let ca_validity = duration(raw.ca_validity, "pki.ca-validity", "87600h")?;
        let service_account_key = match raw.service_account_key {
            None => ServiceAccountKey::Dedicated,
            Some(v) => match v.get_ref().as_str() {
                "generate" => ServiceAccountKey::Dedicated,
                "ca" => ServiceAccountKey::Ca,
                other => {
                    return Err(self
                        .err(&v, "pki.service-account-key", format!("unknown value `{other}`"))
                        .with_hint("use `generate` (a dedicated key pair in pki/, the default) or `ca` (sign tokens with the CA key, as the tutorial does)"))
                }
            },
        };
        let csr_signing = match raw.csr_signing {
            None => CsrSigning::Signer,
            Some(v) => {
                let parsed = match v.get_ref().as_str() {
                    "ca" => CsrSigning::Ca,
                    "signer" => CsrSigning::Signer,
                    "off" => CsrSigning::Off,
                    other => {
                        return Err(self
                            .err(&v, "pki.csr-signing", format!("unknown value `{other}`"))
                            .with_hint(format!(
                                "use one of {}",
                                CsrSigning::NAMES.map(|n| format!("`{n}`")).join(", ")
                            )))
                    }
                };
                if parsed != CsrSigning::Ca && service_account_key == ServiceAccountKey::Ca {
                    return Err(self
                        .err(&v, "pki.csr-signing", format!("`{}` keeps the root CA key off the masters, but `pki.service-account-key = \"ca\"` puts it on every one to sign tokens", parsed.name()))
                        .with_hint("use `service-account-key = \"generate\"` (a dedicated token key), or `csr-signing = \"ca\"`"));
                }
                parsed
            }
        };
        // Without the key, the default follows service-account-key: tokens signed with the
        // CA key need it on the masters anyway.
        let csr_signing = match (csr_signing, service_account_key) {
            (CsrSigning::Signer, ServiceAccountKey::Ca) => CsrSigning::Ca,
            (other, _) => other,
        };
        let etcd_ca = match raw.etcd_ca {
            None => EtcdCa::Dedicated,
            Some(v) => match v.get_ref().as_str() {
                "dedicated" => EtcdCa::Dedicated,
                "shared" => EtcdCa::Shared,
                other => {
                    return Err(self
                        .err(&v, "pki.etcd-ca", format!("unknown value `{other}`"))
                        .with_hint("use `dedicated` (a CA of etcd's own, as kubeadm makes) or `shared` (the cluster CA, as the tutorial does)"))
                }
            },
        };
        let subject_field = |value: Option<Spanned<String>>,
                             field: &str|
         -> Result<Option<String>> {
            match value {
                None => Ok(None),
                Some(v) if v.get_ref().is_empty() || v.get_ref().chars().any(char::is_control) => {
                    Err(self.err(
                        &v,
                        field,
                        "must be non-empty text without control characters",
                    ))
                }
                Some(v) => Ok(Some(v.into_inner())),
            }
        };
        let subject = Subject {
            country: subject_field(raw.country, "pki.C")?,
            state: subject_field(raw.state, "pki.ST")?,
            locality: subject_field(raw.locality, "pki.L")?,
            organizational_unit: subject_field(raw.organizational_unit, "pki.OU")?,
        };
        Ok(PkiSettings {
            dir,
            import_ca,
            key_algorithm,
            cert_validity,
            ca_validity,
            subject,
            service_account_key,
            csr_signing,
            etcd_ca,
            seal_secrets: raw.seal_secrets.unwrap_or(false),
        })
    }

    fn nodes(&self, raw: Vec<RawNode>) -> Result<Vec<Node>> {
        if raw.is_empty() {
            return Err(
                Error::input(self.whole_file("nodes"), "no masters are listed")
                    .with_hint("add one `[[nodes]]` table with `name` and `ip` per master"),
            );
        }
        // Compared as the node and DNS see them: names case-insensitively, IPv4-mapped
        // IPv6 addresses as the IPv4 address they are.
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut ips: BTreeMap<IpAddr, String> = BTreeMap::new();
        let mut nodes = Vec::with_capacity(raw.len());
        for (i, node) in raw.into_iter().enumerate() {
            let name_field = format!("nodes[{i}].name");
            let ip_field = format!("nodes[{i}].ip");
            if !is_host_name(node.name.get_ref()) {
                return Err(self
                    .err(
                        &node.name,
                        &name_field,
                        format!("`{}` is not a plain host name", node.name.get_ref()),
                    )
                    .with_hint("use letters, digits, `-` and `.` only, as in `zhangjun-k8s-01`"));
            }
            if node.name.get_ref().len() > MAX_NODE_NAME {
                return Err(self
                    .err(
                        &node.name,
                        &name_field,
                        format!(
                            "is {} characters long; the bundle's file name would not fit",
                            node.name.get_ref().len()
                        ),
                    )
                    .with_hint(format!("use a name of at most {MAX_NODE_NAME} characters, such as the host's short name")));
            }
            let ip: IpAddr = node.ip.get_ref().parse().map_err(|_| {
                self.err(
                    &node.ip,
                    &ip_field,
                    format!("`{}` is not an IP address", node.ip.get_ref()),
                )
            })?;
            let ip = ip.to_canonical();
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(self.err(
                    &node.ip,
                    &ip_field,
                    format!("`{ip}` cannot be a node's address"),
                ));
            }
            let folded = node.name.get_ref().to_ascii_lowercase();
            if let Some(first) = names.insert(folded, node.name.get_ref().clone()) {
                return Err(self.err(
                    &node.name,
                    &name_field,
                    format!(
                        "node name `{}` is listed twice (first as `{first}`; host names ignore case)",
                        node.name.get_ref()
                    ),
                ));
            }
            if let Some(first) = ips.insert(ip, node.ip.get_ref().clone()) {
                return Err(self.err(
                    &node.ip,
                    &ip_field,
                    format!("node IP `{ip}` is listed twice (first as `{first}`)"),
                ));
            }
            nodes.push(Node {
                name: node.name.into_inner(),
                ip,
            });
        }
        Ok(nodes)
    }

    fn component(
        &self,
        c: &'static Component,
        raw: RawComponent,
        version: &KubeVersion,
    ) -> Result<ComponentSettings> {
        self.component_of(c, raw, version, None)
    }

    /// [`Validator::component`], with `extra-args` checked against `etcd_minor` (minor
    /// release and its spelling) instead of the Kubernetes version.
    fn component_of(
        &self,
        c: &'static Component,
        raw: RawComponent,
        version: &KubeVersion,
        etcd_minor: Option<(u32, &str)>,
    ) -> Result<ComponentSettings> {
        let section = c.name;
        let binary = self.executable(raw.binary, &format!("{section}.binary"), section)?;
        let secure_port = self.port(
            raw.secure_port,
            &format!("{section}.secure-port"),
            c.default_secure_port,
        )?;
        let mut extra_args = BTreeMap::new();
        for (key, value) in raw.extra_args {
            let field = format!("{section}.extra-args.{key}");
            let name = key.trim_start_matches('-').to_string();
            if extra_args.contains_key(&name) {
                return Err(self
                    .err(&value, &field, format!("`--{name}` is set twice"))
                    .with_hint("keep one spelling: names are written without leading dashes"));
            }
            let checked = match etcd_minor {
                Some((minor, shown)) => catalogue::check_flag(c, &name, minor, shown),
                None => catalogue::check_extra_arg(c, &name, version),
            };
            checked.map_err(|(message, hint)| self.err(&value, &field, message).with_hint(hint))?;
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Array(items) => {
                    let parts: Option<Vec<String>> = items
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect();
                    parts
                        .ok_or_else(|| self.err(&value, &field, "a list must hold strings only"))?
                        .join(",")
                }
                _ => {
                    return Err(self.err(
                        &value,
                        &field,
                        "must be a string, number, boolean or list of strings",
                    ))
                }
            };
            if text.chars().any(char::is_control) {
                return Err(self.err(
                    &value,
                    &field,
                    "must not contain control characters or line breaks",
                ));
            }
            extra_args.insert(name, text);
        }
        Ok(ComponentSettings {
            component: c,
            binary,
            secure_port,
            extra_args,
            check_binary: raw.binary_check.unwrap_or(true),
            extra_ports: c.extra_ports.iter().map(|p| p.default).collect(),
            data_dirs: Vec::new(),
        })
    }
}

/// A host name as the node's `hostname` and a file name both accept: dot-separated labels of
/// ASCII letters, digits and inner `-`.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_apiserver(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("`{url}` is not an https URL"));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{url}` contains white space"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path.contains('{') || path.contains('}') {
        return Err(format!(
            "`{url}`: `{NODE_IP_PLACEHOLDER}` may stand only for the host"
        ));
    }
    if authority.contains(['?', '#', '@']) || path.contains(['?', '#']) {
        return Err(format!(
            "`{url}` has a query, fragment or user part; kubeconfigs take `https://HOST:PORT`"
        ));
    }
    let probe = authority.replace(NODE_IP_PLACEHOLDER, "127.0.0.1");
    if probe.contains('{') || probe.contains('}') {
        return Err(format!(
            "`{url}`: the only placeholder allowed is `{NODE_IP_PLACEHOLDER}`"
        ));
    }
    let (host, port) = match probe.strip_prefix('[') {
        Some(inner) => {
            let Some((host, after)) = inner.split_once(']') else {
                return Err(format!("`{url}` has an unclosed `[`"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("`{url}`: `[{host}]` is not an IPv6 address"));
            }
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("`{url}` has text after `]`")),
                },
            }
        }
        None => match probe.split_once(':') {
            Some((host, port)) => {
                if !is_host_name(host) {
                    return Err(format!("`{url}` has no valid host"));
                }
                (host, Some(port))
            }
            None => {
                if !is_host_name(&probe) {
                    return Err(format!("`{url}` has no valid host"));
                }
                (probe.as_str(), None)
            }
        },
    };
    if host.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("`{url}` has a bad port `{port}`"));
        }
    }
    Ok(())
}

/// Whether kube-apiserver `version` takes `net` as `--service-cluster-ip-range`, as a
/// (message, hint) pair when it does not. Its own rules (v1.20 and on):
/// `validateMaxCIDRRange` in cmd/kube-apiserver/app/options/validation.go refuses more
/// than 20 host bits (`maxCIDRBits = 20`: a prefix of /12 or longer for IPv4, /108 for
/// IPv6), unless both MultiCIDRServiceAllocator and DisableAllocatorDualWrite are on,
/// which 1.34 makes the default; `ServiceIPRange` in pkg/controlplane/services.go refuses
/// a range of fewer than 8 addresses ("the service cluster IP range must be at least 8 IP
/// addresses").
fn check_service_range(net: &IpNet, version: &KubeVersion) -> Result<(), (String, String)> {
    const MAX_HOST_BITS: u8 = 20;
    const MIN_ADDRESSES: u32 = 8;
    let bits = net.max_prefix_len();
    let host_bits = bits - net.prefix_len();
    let family = if bits == 32 { "IPv4" } else { "IPv6" };
    let hint = format!(
        "pick a range such as `{}`",
        if bits == 32 {
            "10.254.0.0/16"
        } else {
            "fd00:10:96::/112"
        }
    );
    if host_bits > MAX_HOST_BITS && version.profile_minor() < 34 {
        return Err((
            format!(
                "`{net}` is larger than kube-apiserver {version} takes: an {family} service range needs a prefix of /{} or longer",
                bits - MAX_HOST_BITS
            ),
            hint,
        ));
    }
    if host_bits < MIN_ADDRESSES.trailing_zeros() as u8 {
        return Err((
            format!(
                "`{net}` holds {} address(es); kube-apiserver needs at least {MIN_ADDRESSES} (an {family} prefix of /{} or shorter)",
                1u32 << host_bits,
                bits - MIN_ADDRESSES.trailing_zeros() as u8
            ),
            hint,
        ));
    }
    Ok(())
}

/// The host of a URL [`check_apiserver`] accepted, without brackets.
fn url_host(url: &str) -> Option<&str> {
    let authority = url.strip_prefix("https://")?.split('/').next()?;
    match authority.strip_prefix('[') {
        Some(inner) => inner.split(']').next(),
        None => authority.split(':').next(),
    }
}

fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs_err::metadata(path).map_err(|_| "does not exist".to_string())?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("is not executable".into());
    }
    Ok(())
}

/// Parses Go-style durations made of `d`, `h`, `m` and `s` parts, like `8760h` or `90d12h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration like `8760h`");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A duration the inventory passes on to Kubernetes: at most what Go's `time.Duration`
/// holds, since a longer one renders a flag the component refuses.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.as_secs() > GO_MAX_DURATION_SECS {
        return Err(format!(
            "`{text}` is longer than Go's longest duration, {}h, which Kubernetes flags cannot exceed",
            GO_MAX_DURATION_SECS / 3600
        ));
    }
    Ok(d)
}

/// Go's `time.Duration` holds at most 2^63-1 ns, about 292 years (`2562047h47m16s`).
pub const GO_MAX_DURATION_SECS: u64 = i64::MAX as u64 / 1_000_000_000;

/// A node name this long still fits every file name made from it
/// (`control-plane-<name>.tar.gz` and its temporary variants) in 255 bytes.
pub const MAX_NODE_NAME: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::KUBE_CONTROLLER_MANAGER;

    const MINIMAL: &str = r#"
[cluster]
kubernetes-version = "1.20.2"
service-cidr = "10.254.0.0/16"

[[nodes]]
name = "m1"
ip = "10.0.0.1"
"#;

    fn parse_str(text: &str) -> Result<Inventory> {
        parse(Path::new("cluster.toml"), text)
    }

    #[test]
    fn defaults_follow_the_tutorial() {
        let inv = parse_str(MINIMAL).unwrap();
        assert_eq!(inv.cluster.name, "kubernetes");
        assert_eq!(inv.cluster.k8s_dir, "/data/k8s/k8s");
        assert_eq!(inv.components.len(), 1);
        assert_eq!(inv.components[0].component, &KUBE_CONTROLLER_MANAGER);
        assert_eq!(inv.components[0].secure_port, 10257);
        assert_eq!(inv.pki.key_algorithm, KeyAlgorithm::Rsa2048);
        assert_eq!(inv.pki.cert_validity, Duration::from_secs(8760 * 3600));
        assert_eq!(inv.pki.service_account_key, ServiceAccountKey::Dedicated);
        assert_eq!(inv.pki.csr_signing, CsrSigning::Signer);
        assert_eq!(inv.apiserver_for(&inv.nodes[0]), "https://10.0.0.1:6443");
        assert_eq!(inv.pki.dir, Path::new("pki"));
    }

    #[test]
    fn sections_are_the_rows_by_name_and_an_unknown_one_is_named_at_its_line() {
        let text = format!(
            "{MINIMAL}\n[kube-scheduler]\nsecure-port = 10300\n[etcd]\nversion = \"3.5\"\n"
        );
        let inv = parse_str(&text).unwrap();
        let names: Vec<&str> = inv.components.iter().map(|s| s.component.name).collect();
        assert_eq!(names, ["etcd", "kube-controller-manager", "kube-scheduler"]);
        assert_eq!(inv.components[2].secure_port, 10300);
        assert_eq!(inv.components[0].extra_ports, [2380]);
        assert_eq!(
            inv.work_dir(inv.components[0].component),
            "/data/k8s/etcd/data"
        );

        let err = parse_str(&format!("{MINIMAL}\n[kubelet]\nx = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 10, column 2"), "{err}");
        assert!(
            err.contains("unknown field `kubelet`, expected one of `cluster`, `pki`, `nodes`, `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`"),
            "{err}"
        );
        let err = parse_str(&format!("{MINIMAL}\n[kube-scheduler]\nport = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `port`"), "{err}");
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let text = MINIMAL.replace("10.0.0.1", "10.0.0.300");
        let err = parse_str(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "cluster.toml:8:6: `nodes[0].ip`: `10.0.0.300` is not an IP address"
        );
    }

    #[test]
    fn durations_longer_than_go_allows_are_refused() {
        assert!(parse_go_duration("2562047h").is_ok());
        for bad in ["2562048h", "3000000d", "99999999999d", "200000d"] {
            let err = parse_go_duration(bad).unwrap_err();
            assert!(
                err.contains("longer than Go's longest duration, 2562047h"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn names_and_ips_are_unique_after_normalisation() {
        let two = |a: (&str, &str), b: (&str, &str)| {
            format!(
                "[cluster]\nkubernetes-version = \"1.20.2\"\nservice-cidr = \"10.254.0.0/16\"\n\
                 [[nodes]]\nname = \"{}\"\nip = \"{}\"\n[[nodes]]\nname = \"{}\"\nip = \"{}\"\n",
                a.0, a.1, b.0, b.1
            )
        };
        let err = parse_str(&two(("m1", "10.0.0.1"), ("M1", "10.0.0.2")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node name `M1` is listed twice (first as `m1`"),
            "{err}"
        );
        let err = parse_str(&two(("m1", "10.0.0.1"), ("m2", "::ffff:10.0.0.1")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node IP `10.0.0.1` is listed twice (first as `10.0.0.1`)"),
            "{err}"
        );
        let inv = parse_str(&two(("m1", "::ffff:10.0.0.1"), ("m2", "10.0.0.2"))).unwrap();
        assert_eq!(
            inv.nodes[0].ip.to_string(),
            "10.0.0.1",
            "kept in its IPv4 form"
        );
        let long =
            "a".repeat(63) + "." + &"b".repeat(63) + "." + &"c".repeat(63) + "." + &"d".repeat(20);
        assert!(is_host_name(&long) && long.len() > MAX_NODE_NAME);
        let err = parse_str(&two((&long, "10.0.0.1"), ("m2", "10.0.0.2")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("characters long; the bundle's file name would not fit"),
            "{err}"
        );
        let err = parse_str(&two(("m1", "0.0.0.0"), ("m2", "10.0.0.2")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`0.0.0.0` cannot be a node's address"),
            "{err}"
        );
    }

    #[test]
    fn a_flag_set_twice_or_owned_by_kube_bundle_is_refused() {
        let text = format!("{MINIMAL}[kube-controller-manager.extra-args]\nv = 4\n\"--v\" = 5\n");
        let err = parse_str(&text).unwrap_err().to_string();
        assert!(err.contains("`--v` is set twice"), "{err}");
        let text =
            format!("{MINIMAL}[kube-controller-manager.extra-args]\nbind-address = \"0.0.0.0\"\n");
        let err = parse_str(&text).unwrap_err();
        assert!(
            err.to_string()
                .contains("`--bind-address` is set by kube-bundle"),
            "{err}"
        );
    }

    #[test]
    fn service_ranges_follow_kube_apiservers_limits() {
        let with = |version: &str, cidr: &str| {
            parse_str(&format!(
                "[cluster]\nkubernetes-version = \"{version}\"\nservice-cidr = \"{cidr}\"\n[[nodes]]\nname = \"m1\"\nip = \"10.0.0.1\"\n"
            ))
        };
        for ok in ["10.240.0.0/12", "10.254.0.0/29", "fd00::/108", "fd00::/125"] {
            assert!(with("1.20.2", ok).is_ok(), "{ok}");
        }
        for refused in ["10.224.0.0/11", "10.254.0.0/30", "fd00::/107", "fd00::/126"] {
            assert!(with("1.20.2", refused).is_err(), "{refused}");
        }
        // 1.33 still checks the size; 1.34 allocates service IPs without the limit.
        assert!(with("1.33.0", "10.0.0.0/8").is_err());
        assert!(with("1.34.0", "10.0.0.0/8").is_ok());
        assert!(with("1.34.0", "10.254.0.0/30").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("8760h").unwrap().as_secs(), 8760 * 3600);
        assert_eq!(
            parse_duration("1d2h3m4s").unwrap().as_secs(),
            86400 + 7200 + 184
        );
        for bad in ["", "h", "10", "10y", "-5h", "0h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("zhangjun-k8s-01"));
        assert!(is_host_name("m1.example.com"));
        for bad in ["", "a/b", "..", "a..b", "a b", "-a", "a-", "ä"] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }

    #[test]
    fn apiserver_urls() {
        assert!(check_apiserver("https://{{node.ip}}:6443").is_ok());
        assert!(check_apiserver("https://[::1]:6443").is_ok());
        assert!(check_apiserver("https://lb.example.com").is_ok());
        assert!(check_apiserver("https://lb.example.com:8443/").is_ok());
        for bad in [
            "http://a:6443",
            "https://",
            "https://a:0",
            "https://{{node.name}}:6443",
            "https://a b",
            // The review's L1 cases.
            "https://:6443",
            "https://a:6443:6443",
            "https://?x",
            "https://#frag",
            "https://[fd00::1",
            "https://{{node.ip}}:6443/{{node.name}}",
            "https://user@a:6443",
        ] {
            assert!(check_apiserver(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_nodes_are_bracketed_in_urls() {
        let inv = parse_str(&MINIMAL.replace("10.0.0.1", "fd00::1")).unwrap();
        assert_eq!(inv.apiserver_for(&inv.nodes[0]), "https://[fd00::1]:6443");
    }
}
