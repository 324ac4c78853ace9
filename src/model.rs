//! The data model every stage reads: a component's row type (its values, one per
//! component, are in `component`) and the validated inventory `load` makes of
//! `cluster.toml`. The two refer to each other (a row's flag profile reads the inventory,
//! the inventory lists the rows it builds), so they are one module. Types and the values
//! derived from them only; no parsing, no I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use crate::check;
use crate::manifest::{Manifest, Owned};
use crate::version::KubeVersion;

// ---- the row type ------------------------------------------------------------------------

/// Which CA issues a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IssuedBy {
    /// The cluster's root CA.
    Root,
    /// A CA of its own, declared beside the row that needs it (or the root CA where
    /// [`CaSpec::root_serves`]).
    Ca(&'static CaSpec),
}

/// A CA besides the root, declared beside the row whose certificates need it: `pki`
/// makes it (`pki/<stem>.pem`, common name `<cluster>-<stem>`) when a built row carries
/// a certificate it issues, `plan` puts its certificate at `node_path`. Rows are told
/// apart by stem.
#[derive(Debug)]
pub struct CaSpec {
    /// File stem in `pki/`, its name in `certs` and the end of its common name.
    pub stem: &'static str,
    /// What messages call it (`generated the etcd CA in ...`).
    pub what: &'static str,
    /// Where its certificate lands on a node.
    pub node_path: &'static str,
    /// The `[pki]` key that lets the root CA serve in its place (`shared`), so that no
    /// CA of its own is made (`dedicated`, the default); none: always its own.
    pub pki_key: Option<CaChoice>,
}

/// A `[pki]` key choosing between a CA of its own and the root CA.
#[derive(Debug)]
pub struct CaChoice {
    pub key: &'static str,
    /// What `dedicated` and `shared` mean, for an unknown value.
    pub hint: &'static str,
}

impl CaSpec {
    /// Whether the root CA serves in its place (`pki` chose `shared` for it).
    pub fn root_serves(&self, pki: &PkiSettings) -> bool {
        pki.shared_cas.contains(&self.stem)
    }

    /// File names of its certificate and key in `pki/`.
    pub fn pki_files(&self) -> (String, String) {
        (
            format!("{}.pem", self.stem),
            format!("{}-key.pem", self.stem),
        )
    }

    /// Its subject CN in the cluster named `cluster`.
    pub fn cn(&self, cluster: &str) -> String {
        format!("{cluster}-{}", self.stem)
    }
}

/// Which names a certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Names {
    /// None: a client certificate.
    None,
    /// 127.0.0.1, the node IP and the node name.
    Node,
    /// The API's serving names ([`Inventory::api_names`]): the node's names, the serving
    /// row's extra SANs, the first service IP and the `kubernetes` service names.
    Api,
}

/// One certificate a component carries on every node, issued into `pki/<node>/`.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertSpec {
    /// File stem, in `pki/<node>/` and in the node's certificate folder.
    pub name: &'static str,
    pub cn: &'static str,
    pub org: Option<&'static str>,
    pub server: bool,
    pub client: bool,
    pub names: Names,
    pub issued_by: IssuedBy,
}

/// Stands for the node's name in a certificate's CN.
pub const NODE_NAME: &str = "{node}";

/// How a component's inventory section is read: the keys its row takes, and their
/// validation into its [`ComponentSettings`]. Every row reads the standard keys
/// ([`StandardKeys`]); a component with keys of its own reads them in its module.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// Reads the section as written: a key it does not take is the deserializer's error,
    /// placed at the key.
    pub read:
        for<'i> fn(toml::de::ValueDeserializer<'i>) -> Result<Box<dyn RawSection>, toml::de::Error>,
    /// The section of an inventory that does not name the component: every default.
    pub absent: fn() -> Box<dyn RawSection>,
}

impl Section {
    /// The section read as `T`, every key `T` takes with its default when it is absent.
    pub const fn of<T: RawSection + Default + serde::de::DeserializeOwned + 'static>() -> Self {
        Section {
            read: read_as::<T>,
            absent: absent_as::<T>,
        }
    }
}

fn read_as<T: RawSection + serde::de::DeserializeOwned + 'static>(
    de: toml::de::ValueDeserializer<'_>,
) -> Result<Box<dyn RawSection>, toml::de::Error> {
    Ok(Box::new(T::deserialize(de)?))
}

fn absent_as<T: RawSection + Default + 'static>() -> Box<dyn RawSection> {
    Box::new(T::default())
}

/// A section as written, validated once the cluster and the nodes are.
pub trait RawSection: std::fmt::Debug {
    fn validate(
        self: Box<Self>,
        c: &'static Component,
        check: &dyn SectionCheck,
        context: &mut SectionContext<'_>,
    ) -> crate::error::Result<ComponentSettings>;
}

/// What a section's validation may read beside its own keys.
pub struct SectionContext<'a> {
    /// The inventory file, for messages.
    pub path: &'a Path,
    pub cluster: &'a mut Cluster,
    pub nodes: &'a [Node],
    /// The rows the inventory builds, in start order.
    pub built: &'a [&'static Component],
    /// The nodes whose member joins a formed cluster (by the row's
    /// [`Component::node_state`]), in inventory order; the others bootstrap it.
    pub joining: &'a [String],
    /// Things worth saying that do not stop a build.
    pub warnings: &'a mut Vec<String>,
}

impl SectionContext<'_> {
    /// Whether the inventory builds the row named `name`.
    pub fn builds(&self, name: &str) -> bool {
        self.built.iter().any(|c| c.name == name)
    }
}

/// The inventory's validation rules a section's own keys use, so that every error names
/// the file, line and key the same way.
pub trait SectionCheck {
    /// `file:line:column: `field``, for a value read at `span`.
    fn at(&self, span: std::ops::Range<usize>, field: &str) -> String;
    /// `file: `field``, for a key that is missing or a rule over several keys.
    fn whole_file(&self, field: &str) -> String;
    /// The input error for the value of `field` read at `span`.
    fn error(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: String,
    ) -> crate::error::Error {
        crate::error::Error::input(self.at(span, field), message)
    }
    /// The standard keys: binary, port and `extra-args` (checked against `release`, the
    /// component's own release and its spelling, or else the Kubernetes `version`).
    fn standard(
        &self,
        c: &'static Component,
        keys: StandardKeys,
        version: &KubeVersion,
        release: Option<(u32, &str)>,
    ) -> crate::error::Result<ComponentSettings>;
    /// A port number from 1 to 65535, or `default` when the key is absent.
    fn port(
        &self,
        value: Option<toml::Spanned<i64>>,
        field: &str,
        default: u16,
    ) -> crate::error::Result<u16>;
    /// An executable of the build host to carry in the bundles, relative to the inventory.
    fn executable(
        &self,
        value: Option<toml::Spanned<String>>,
        field: &str,
        what: &str,
    ) -> crate::error::Result<Option<PathBuf>>;
    /// A plain name of letters, digits, `-` and `.`, or `default` when the key is absent.
    fn plain_name(
        &self,
        value: Option<toml::Spanned<String>>,
        field: &str,
        default: &str,
    ) -> crate::error::Result<String>;
    /// A path as written in the inventory, relative to its folder.
    fn relative(&self, value: &str) -> PathBuf;
}

/// The keys every component's section takes.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StandardKeys {
    pub binary: Option<toml::Spanned<String>>,
    pub binary_check: Option<bool>,
    pub secure_port: Option<toml::Spanned<i64>>,
    #[serde(default)]
    pub extra_args: BTreeMap<String, toml::Spanned<toml::Value>>,
}

impl RawSection for StandardKeys {
    fn validate(
        self: Box<Self>,
        c: &'static Component,
        check: &dyn SectionCheck,
        context: &mut SectionContext<'_>,
    ) -> crate::error::Result<ComponentSettings> {
        check.standard(c, *self, &context.cluster.version, None)
    }
}

/// A component's settings beyond the standard ones, kept on its [`ComponentSettings`]
/// and read back by its own module ([`Inventory::own`]).
pub trait OwnSettings: std::any::Any + std::fmt::Debug + Send + Sync {}

/// What `init` hands a row for its part of the starting inventory: the tutorial's
/// environment.sh variables and the masters it lists.
pub trait StarterEnv {
    /// A plain value of `name`, if environment.sh sets it.
    fn scalar(&self, name: &str) -> crate::error::Result<Option<String>>;
    /// The masters, as (name, IP) in NODE_NAMES and NODE_IPS order; none without
    /// environment.sh.
    fn nodes(&self) -> &[(String, String)];
    /// `file`: `NAME`, the location of an error about variable `name`.
    fn at(&self, name: &str) -> String;
}

/// A row's section of the inventory `init` writes.
#[derive(Debug, Clone, Copy)]
pub struct Starter {
    /// The environment.sh variables it reads.
    pub vars: &'static [&'static str],
    /// The section's text (every key present, optional ones commented), for a
    /// Kubernetes release, with what environment.sh gives; an error names a variable.
    pub section: fn(&dyn StarterEnv, &str) -> crate::error::Result<String>,
}

/// A key a component takes in each `[[nodes]]` table: whether that node's member
/// bootstraps the component's quorum or joins one that is formed.
#[derive(Debug, Clone, Copy)]
pub struct NodeState {
    /// The key, e.g. `etcd-state`.
    pub key: &'static str,
    /// The value of a member that bootstraps the cluster (the default).
    pub bootstraps: &'static str,
    /// The value of a member that joins a formed cluster.
    pub joins: &'static str,
    /// What the two values mean, for an unknown one.
    pub hint: &'static str,
}

/// A port a component listens on besides its main one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtraPort {
    /// The key under the component's section that sets it.
    pub key: &'static str,
    pub default: u16,
    /// What it serves, in the list of default ports.
    pub what: &'static str,
}

/// How install.sh and `verify` tell the component is healthy: an https GET of
/// `path` on its main port, trusting `ca`, whose body holds `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Health {
    pub scheme: &'static str,
    pub path: &'static str,
    pub ca: &'static str,
    pub ok: &'static str,
}

/// How install.sh starts the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Start {
    /// Whether `systemctl start` waits until it serves: false for a member that needs
    /// its peers first.
    pub blocking: bool,
    /// Whether it serves only once a quorum of its nodes run it.
    pub waits_for_quorum: bool,
}

/// A configuration file passed with `--config`.
#[derive(Debug)]
pub struct ConfigFile {
    /// The name of its Handlebars template, and the embedded text (overridable from
    /// `--templates`).
    pub template: &'static str,
    pub text: &'static str,
    pub kind: &'static str,
    /// The apiVersion of `kind` the release reads.
    pub api_version: fn(&KubeVersion) -> &'static str,
    /// Values its template reads beside `api_version`, `kind` and `kubeconfig`, for a
    /// node, as a JSON object.
    pub values: fn(&Inventory, &Node) -> serde_json::Value,
}

/// A certificate a component carries when another component is built too, as
/// (that component's name, the certificate).
pub type CertFrom = (&'static str, CertSpec);

/// A component's part of manifest.json: the object its module writes under `key`.
#[derive(Debug)]
pub struct ManifestPart {
    pub key: &'static str,
    /// Its object in a node's bundle, from the inventory; `None` writes none.
    pub write: fn(&Inventory, &Node) -> Option<Owned>,
    /// Reads an object back: why it is not one the module writes, if it is not.
    pub read: fn(&Owned) -> Result<(), String>,
}

/// A component's own checks in `verify`, beyond those every row gets; each runs at its
/// place among the common ones, so the findings keep one order.
#[derive(Debug)]
pub struct Checks {
    /// The names its certificates with more than the node's names must carry, from the
    /// manifest, given the node's (`IP:127.0.0.1`, `IP:<node IP>`, `DNS:<node>`); before
    /// the certificates are checked.
    pub names: Option<NamesCheck>,
    /// Files of its own, after the certificates and keys. It runs for every row, with
    /// whether the bundle carries the component: a file it owns is checked wherever it is.
    pub files: Option<FilesCheck>,
    /// Its unit beyond the common checks, after every unit and configuration file, given
    /// the bundle's components; returns what its `cluster` check compares.
    pub unit: Option<UnitCheck>,
    /// Its unit's flags after its guards, given the unit's bundle path and ExecStart words.
    pub flags: Option<FlagsCheck>,
    /// Across the bundles given together, with what `unit` returned for each.
    pub cluster: Option<ClusterCheck>,
}

/// [`Checks::names`].
pub type NamesCheck = fn(&mut dyn check::Bundle, &Manifest, &[String]) -> Vec<String>;
/// [`Checks::files`].
pub type FilesCheck = fn(&mut dyn check::Bundle, Option<&Manifest>, bool);
/// [`Checks::unit`].
pub type UnitCheck =
    fn(&mut dyn check::Bundle, &Manifest, &[&'static Component]) -> Option<Box<dyn std::any::Any>>;
/// [`Checks::flags`].
pub type FlagsCheck = fn(&mut dyn check::Bundle, Option<&Manifest>, &str, &[String]);
/// [`Checks::cluster`].
pub type ClusterCheck = fn(&[check::Seen], &mut dyn check::Report);

impl Checks {
    /// Only the checks every row gets.
    pub const NONE: Checks = Checks {
        names: None,
        files: None,
        unit: None,
        flags: None,
        cluster: None,
    };
}

/// A row; rows are told apart by name.
#[derive(Debug)]
pub struct Component {
    /// The binary, unit and inventory section name, e.g. `kube-controller-manager`.
    pub name: &'static str,
    /// Subject CN and O of its certificate: the built-in RBAC user and group.
    pub user: &'static str,
    /// `Description=` of its unit.
    pub description: &'static str,
    pub documentation: &'static str,
    /// The keys of its inventory section.
    pub section: Section,
    /// The key it takes in each `[[nodes]]` table, if any.
    pub node_state: Option<NodeState>,
    /// Its section of the inventory `init` writes; none leaves it out.
    pub starter: Option<Starter>,
    /// Whether it is built when the inventory has no section for it (with defaults).
    pub required: bool,
    pub default_secure_port: u16,
    /// The key under its section that sets the main port.
    pub port_key: &'static str,
    /// Ports it listens on besides the main one.
    pub extra_ports: &'static [ExtraPort],
    pub health: Health,
    /// Leader-election Lease (and, before 1.17, Endpoints) name in `kube-system`; `None`
    /// for a component every node runs active (kube-apiserver).
    pub lease: Option<&'static str>,
    /// Whether it talks to the apiserver through a kubeconfig of its own.
    pub kubeconfig: bool,
    /// Whether it serves the Kubernetes API: the others' kubeconfigs point at it, and
    /// its build brings the encryption key and the admin kubeconfig.
    pub serves_api: bool,
    /// Whether it listens on the node IP (`--bind-address`), which `verify` checks.
    pub binds_node_ip: bool,
    /// Its certificates: the first is its own (serving and, with a kubeconfig, client).
    pub certs: &'static [CertSpec],
    /// Certificates it carries when another component is built too.
    pub certs_from: &'static [CertFrom],
    /// Whether the components after it wait until it is healthy before they restart.
    pub gates_the_rest: bool,
    pub start: Start,
    /// Mode of its work dir on the node.
    pub work_mode: u32,
    /// Section keys of the data folders an uninstall keeps (and `--purge` removes), also
    /// its flags' names; the first is its work dir. Empty: its work dir is
    /// `<k8s-dir>/<name>`.
    pub data_dirs: &'static [&'static str],
    /// Extra `[Service]` lines of its unit: kube-apiserver and etcd tell systemd when they
    /// serve (`Type=notify`), with the tutorial's file limit.
    pub unit_settings: &'static [&'static str],
    /// A configuration file passed with `--config`, if any.
    pub config: Option<ConfigFile>,
    /// Its flags on one node, before `extra-args`.
    pub flags: fn(&Inventory, &Node, &ComponentSettings) -> Vec<Flag>,
    /// The Go main packages that build its binary, without a last `/vN` element; empty:
    /// any package whose path ends in `/<name>` (`k8s.io/kubernetes/cmd/kube-scheduler`).
    pub main_packages: &'static [&'static str],
    /// The flag catalogue: name, first and last minor release, source.
    pub catalogue: &'static str,
    /// The release series its catalogue's minor numbers belong to: `1.` for Kubernetes
    /// components, `3.` for etcd, which has its own versions.
    pub version_series: &'static str,
    /// The Go linker variable its binaries carry their release in, as (a part of its
    /// path, its end): read to check a carried binary's release without running it.
    pub version_stamp: (&'static str, &'static str),
    /// What its install.sh hooks and dist/rollout.sh read of the inventory on a node,
    /// under [`Component::data_key`].
    pub install_data: Option<fn(&Inventory, &Node) -> serde_json::Value>,
    /// Inventory keys that own a flag, as (flag, key under the component's section).
    pub managed_flags: &'static [(&'static str, &'static str)],
    /// Flags that decide who may do what, as (flag, the value kube-bundle gives it, what
    /// another value would open): `extra-args` cannot set them (they are in its managed
    /// flags) and `verify` finds a unit that gives them another value.
    pub guards: &'static [(&'static str, &'static str, &'static str)],
    /// Flags whose value every master must share (one service range, one token issuer),
    /// which `verify` compares across bundles.
    pub shared_flags: &'static [&'static str],
    /// Whether the component uses the service-account key pair (the controller-manager
    /// signs tokens, kube-apiserver signs and checks them).
    pub uses_service_account_key: bool,
    /// Whether the component runs the CSR signers (the controller-manager).
    pub signs_csrs: bool,
    /// Its hooks into install.sh (`hook_<name>_<hook>` functions, listed in
    /// `bundle-templates/install/20-hooks.sh.hbs`), a template rendered with install.sh's
    /// data; none gives it the common behaviour throughout.
    pub install_hooks: Option<&'static str>,
    /// Its object in manifest.json, if it writes one.
    pub manifest: Option<ManifestPart>,
    /// Its own checks in `verify`.
    pub verify: Checks,
}

/// Equality, hashing and order of a row type by one name field: rows are told apart
/// by name.
macro_rules! told_apart_by {
    ($type:ty, $field:ident) => {
        impl PartialEq for $type {
            fn eq(&self, other: &Self) -> bool {
                self.$field == other.$field
            }
        }

        impl Eq for $type {}

        impl std::hash::Hash for $type {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.$field.hash(state);
            }
        }

        impl PartialOrd for $type {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $type {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.$field.cmp(other.$field)
            }
        }
    };
}

told_apart_by!(CaSpec, stem);
told_apart_by!(Component, name);

// ---- the rendered flag ------------------------------------------------------------------

/// One flag as it appears on the command line: `--name` or `--name=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// Length of the aescbc key that encrypts Secrets at rest, in bytes.
pub const ENCRYPTION_KEY_BYTES: usize = 32;

// ---- the validated inventory -------------------------------------------------------------

pub const NODE_IP_PLACEHOLDER: &str = "{{node.ip}}";

#[derive(Debug, Clone)]
pub struct Inventory {
    /// The inventory file, for messages.
    pub path: PathBuf,
    pub cluster: Cluster,
    pub pki: PkiSettings,
    pub nodes: Vec<Node>,
    /// The components built for every node, in start order.
    pub components: Vec<ComponentSettings>,
    /// Things worth saying that do not stop a build, one line each.
    pub warnings: Vec<String>,
}

/// The names every serving certificate of a node carries: loopback, its IP and name.
pub fn node_names(node: &Node) -> Vec<San> {
    vec![
        San::Ip("127.0.0.1".parse().expect("loopback")),
        San::Ip(node.ip),
        San::Dns(node.name.clone()),
    ]
}

/// An IP as the host part of a URL or `host:port`: an IPv6 address in brackets.
pub fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
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
    /// The stems of the CAs whose `[pki]` key (their [`CaChoice`]) says `shared`: the
    /// root CA serves in their place.
    pub shared_cas: Vec<&'static str>,
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
    /// Executables carried beside its binary, as (name in the binaries' folder, path on
    /// the build host): etcd's etcdctl.
    pub tools: Vec<(&'static str, PathBuf)>,
    /// The minor release its binaries must be, when it is released apart from Kubernetes
    /// (etcd's 3.x): its row's `version_series` and this.
    pub release: Option<u32>,
    /// Files copied into its bundles as given on the build host (an external etcd's CA
    /// and client pair).
    pub copied: Vec<Copied>,
    /// Names its serving certificate carries beyond the node's and the service's (a
    /// load balancer's).
    pub extra_sans: Vec<San>,
    /// Its settings beyond the standard ones, read back by its own module.
    pub own: Option<std::sync::Arc<dyn OwnSettings>>,
}

/// A certificate or key carried as the inventory names it.
#[derive(Debug, Clone)]
pub struct Copied {
    /// Where it lands on the node.
    pub path: &'static str,
    /// A private key (0600), or a certificate.
    pub private: bool,
    pub from: PathBuf,
}

impl Inventory {
    /// The apiserver URL one node's kubeconfig points at.
    pub fn apiserver_for(&self, node: &Node) -> String {
        self.cluster
            .apiserver
            .replace(NODE_IP_PLACEHOLDER, &url_host(node.ip))
    }

    /// The names the API's serving certificate carries on `node`, in certificate order:
    /// the node's own, the serving component's extra SANs, the `kubernetes` service's IP
    /// and names.
    pub fn api_names(&self, node: &Node) -> Vec<San> {
        let mut names = node_names(node);
        for s in self.components.iter().filter(|s| s.component.serves_api) {
            names.extend(s.extra_sans.iter().cloned());
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
    pub fn certs(&self, c: &'static Component) -> Vec<&'static CertSpec> {
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

    /// Whether a component serving the Kubernetes API is built.
    pub fn serves_api(&self) -> bool {
        self.components.iter().any(|s| s.component.serves_api)
    }

    /// The own settings of `c` (see [`OwnSettings`]), when the inventory builds it and
    /// they are of type `T`.
    pub fn own<T: OwnSettings>(&self, c: &Component) -> Option<&T> {
        let own: &dyn std::any::Any = self.settings(c)?.own.as_deref()?;
        own.downcast_ref()
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

/// Whether `url` is an `https://HOST[:PORT]` URL a kubeconfig can take, `{{node.ip}}`
/// standing for the host; why not when it is not.
pub fn check_https_url(url: &str) -> Result<(), String> {
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
