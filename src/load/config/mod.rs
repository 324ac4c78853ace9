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
use crate::component::{self, Component};
use crate::error::{Error, Result};
use crate::model::{
    check_https_url, is_host_name, Arch, CaSpec, Cluster, ComponentSettings, CsrSigning, Inventory,
    KeyAlgorithm, Node, PkiSettings, RawSection, San, SectionCheck, SectionContext,
    ServiceAccountKey, StandardKeys, Subject, NODE_IP_PLACEHOLDER,
};

mod sections;
use crate::version::KubeVersion;
use sections::check_service_range;

pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
pub const DEFAULT_APISERVER: &str = "https://{{node.ip}}:6443";
pub const DEFAULT_K8S_DIR: &str = "/data/k8s/k8s";
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";

// ---- raw, as written -------------------------------------------------------------------

#[derive(Debug)]
struct RawInventory {
    cluster: RawCluster,
    pki: RawPki,
    nodes: Vec<RawNode>,
    /// The components' sections, keyed by their row's name: the rows are the only
    /// sections besides `cluster`, `pki` and `nodes`. Each is read with its row's keys
    /// once the document is (see [`parse`]).
    sections: BTreeMap<&'static str, Box<dyn RawSection>>,
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
                        TopKey::Row(c) => {
                            map.next_value::<de::IgnoredAny>()?;
                            sections
                                .insert(c.name, (c.section.absent)())
                                .map(|_| c.name)
                        }
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

#[derive(Debug, Default)]
struct RawPki {
    dir: Option<Spanned<String>>,
    ca_cert: Option<Spanned<String>>,
    ca_key: Option<Spanned<String>>,
    key_algorithm: Option<Spanned<String>>,
    cert_validity: Option<Spanned<String>>,
    ca_validity: Option<Spanned<String>>,
    service_account_key: Option<Spanned<String>>,
    csr_signing: Option<Spanned<String>>,
    /// The rows' CAs' [`CaChoice`] keys it sets, by the CA's stem.
    ca_choices: BTreeMap<&'static str, Spanned<String>>,
    seal_secrets: Option<bool>,
    country: Option<Spanned<String>>,
    state: Option<Spanned<String>>,
    locality: Option<Spanned<String>>,
    organizational_unit: Option<Spanned<String>>,
}

/// `[pki]`'s own keys, before and after the CAs' keys (the order of the
/// unknown-key error's list).
const PKI_KEYS: [&str; 8] = [
    "dir",
    "ca-cert",
    "ca-key",
    "key-algorithm",
    "cert-validity",
    "ca-validity",
    "service-account-key",
    "csr-signing",
];
const PKI_KEYS_AFTER: [&str; 5] = ["seal-secrets", "C", "ST", "L", "OU"];

/// A `[pki]` key: one of its own, or a CA's [`CaChoice`] key. Any other is the
/// deserializer's unknown-field error, which it places at the key.
enum PkiKey {
    Own(&'static str),
    Ca(&'static CaSpec),
}

impl<'de> Deserialize<'de> for PkiKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = PkiKey;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("field identifier")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<PkiKey, E> {
                let ca_keys = || {
                    component::CAS
                        .into_iter()
                        .filter_map(|ca| Some((ca, ca.pki_key.as_ref()?.key)))
                };
                if let Some(own) = PKI_KEYS
                    .into_iter()
                    .chain(PKI_KEYS_AFTER)
                    .find(|k| *k == key)
                {
                    return Ok(PkiKey::Own(own));
                }
                ca_keys()
                    .find(|(_, k)| *k == key)
                    .map(|(ca, _)| PkiKey::Ca(ca))
                    .ok_or_else(|| {
                        let keys: Vec<&'static str> = PKI_KEYS
                            .into_iter()
                            .chain(ca_keys().map(|(_, k)| k))
                            .chain(PKI_KEYS_AFTER)
                            .collect();
                        de::Error::unknown_field(key, keys.leak())
                    })
            }
        }
        deserializer.deserialize_identifier(Key)
    }
}

impl<'de> Deserialize<'de> for RawPki {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pki;
        impl<'de> Visitor<'de> for Pki {
            type Value = RawPki;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("struct RawPki")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPki, A::Error> {
                let mut raw = RawPki::default();
                while let Some(key) = map.next_key::<PkiKey>()? {
                    let text = match key {
                        PkiKey::Ca(ca) => {
                            raw.ca_choices.insert(ca.stem, map.next_value()?);
                            continue;
                        }
                        PkiKey::Own("seal-secrets") => {
                            raw.seal_secrets = Some(map.next_value()?);
                            continue;
                        }
                        PkiKey::Own(key) => key,
                    };
                    let slot = match text {
                        "dir" => &mut raw.dir,
                        "ca-cert" => &mut raw.ca_cert,
                        "ca-key" => &mut raw.ca_key,
                        "key-algorithm" => &mut raw.key_algorithm,
                        "cert-validity" => &mut raw.cert_validity,
                        "ca-validity" => &mut raw.ca_validity,
                        "service-account-key" => &mut raw.service_account_key,
                        "csr-signing" => &mut raw.csr_signing,
                        "C" => &mut raw.country,
                        "ST" => &mut raw.state,
                        "L" => &mut raw.locality,
                        _ => &mut raw.organizational_unit,
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(raw)
            }
        }
        deserializer.deserialize_map(Pki)
    }
}

#[derive(Debug)]
struct RawNode {
    name: Spanned<String>,
    ip: Spanned<String>,
    /// The rows' [`NodeState`] keys it sets, by row name.
    states: BTreeMap<&'static str, Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Node;
        impl<'de> Visitor<'de> for Node {
            type Value = RawNode;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("struct RawNode")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
                let (mut name, mut ip) = (None, None);
                let mut states = BTreeMap::new();
                while let Some(key) = map.next_key::<NodeKey>()? {
                    match key {
                        NodeKey::Name => name = Some(map.next_value()?),
                        NodeKey::Ip => ip = Some(map.next_value()?),
                        NodeKey::State(c) => {
                            states.insert(c.name, map.next_value()?);
                        }
                    }
                }
                Ok(RawNode {
                    name: name.ok_or_else(|| de::Error::missing_field("name"))?,
                    ip: ip.ok_or_else(|| de::Error::missing_field("ip"))?,
                    states,
                })
            }
        }
        deserializer.deserialize_map(Node)
    }
}

/// A key of a `[[nodes]]` table: `name`, `ip` or a row's [`NodeState`] key. Any other
/// is the deserializer's unknown-field error, which it places at the key.
enum NodeKey {
    Name,
    Ip,
    State(&'static Component),
}

impl<'de> Deserialize<'de> for NodeKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = NodeKey;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("field identifier")
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<NodeKey, E> {
                let rows = component::all();
                match key {
                    "name" => Ok(NodeKey::Name),
                    "ip" => Ok(NodeKey::Ip),
                    key => rows
                        .iter()
                        .find(|c| c.node_state.is_some_and(|s| s.key == key))
                        .map(|c| NodeKey::State(c))
                        .ok_or_else(|| {
                            let keys: Vec<&'static str> = ["name", "ip"]
                                .into_iter()
                                .chain(rows.iter().filter_map(|c| Some(c.node_state?.key)))
                                .collect();
                            de::Error::unknown_field(key, keys.leak())
                        }),
                }
            }
        }
        deserializer.deserialize_identifier(Key)
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
    let toml_error = |mut e: toml::de::Error| {
        e.set_input(Some(text));
        Error::Toml {
            path: path.to_path_buf(),
            source: Box::new(e),
        }
    };
    // The text is parsed once: the document is read whole, then each component's section
    // again from the same tree with the keys of its row, its values keeping their spans.
    let document = toml::de::DeTable::parse(text).map_err(toml_error)?;
    let mut raw = RawInventory::deserialize(toml::de::Deserializer::from(document.clone()))
        .map_err(toml_error)?;
    for (name, section) in &mut raw.sections {
        let (Some(c), Some(value)) = (component::by_name(name), document.get_ref().get(*name))
        else {
            continue;
        };
        let de = toml::de::ValueDeserializer::from(value.clone());
        *section = (c.section.read)(de).map_err(toml_error)?;
    }
    Validator { path, text }.inventory(raw)
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn err<T>(&self, value: &Spanned<T>, field: &str, message: impl Into<String>) -> Error {
        Error::input(self.at(value.span(), field), message)
    }

    fn inventory(&self, raw: RawInventory) -> Result<Inventory> {
        let apiserver_span = raw.cluster.apiserver.as_ref().map(Spanned::span);
        let mut cluster = self.cluster(raw.cluster)?;
        let pki = self.pki(raw.pki)?;
        let joining = self.joining(&raw.nodes)?;
        let nodes = self.nodes(raw.nodes)?;
        let mut warnings = Vec::new();
        let mut sections = raw.sections;
        // In start order; a required component is built with defaults when its section
        // is absent.
        let built: Vec<&'static Component> = component::all()
            .into_iter()
            .filter(|c| c.required || sections.contains_key(c.name))
            .collect();
        let mut components = Vec::new();
        for &c in &built {
            let raw = sections
                .remove(c.name)
                .unwrap_or_else(|| (c.section.absent)());
            let mut context = SectionContext {
                path: self.path,
                cluster: &mut cluster,
                nodes: &nodes,
                built: &built,
                joining: joining.get(c.name).map_or(&[], Vec::as_slice),
                warnings: &mut warnings,
            };
            let settings = raw.validate(c, self, &mut context)?;
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
            warnings,
        };
        self.apiserver_in_certificate(&inv, apiserver_span)?;
        Ok(inv)
    }

    fn cluster(&self, raw: RawCluster) -> Result<Cluster> {
        let name = self.plain_name(raw.name, "cluster.name", DEFAULT_CLUSTER_NAME)?;
        let Some(version_text) = raw.kubernetes_version else {
            return Err(Error::input(self.whole_file("cluster.kubernetes-version"), "is required")
                .with_hint("add `kubernetes-version = \"1.20.2\"` (the Kubernetes release your control plane runs) under [cluster]"));
        };
        let version = KubeVersion::parse(version_text.get_ref())
            .map_err(|m| self.err(&version_text, "cluster.kubernetes-version", m))?;

        let apiserver_set = raw.apiserver.is_some();
        let apiserver = match raw.apiserver {
            None => DEFAULT_APISERVER.to_string(),
            Some(a) => {
                check_https_url(a.get_ref())
                    .map_err(|m| self.err(&a, "cluster.apiserver", m).with_hint("write it as `https://HOST:PORT`, with `{{node.ip}}` standing for each master's own IP"))?;
                a.into_inner()
            }
        };

        // For workers: `{{node.ip}}` would be each worker's own address, which no
        // apiserver certificate names.
        let worker_apiserver = match raw.worker_apiserver {
            None => None,
            Some(a) => {
                check_https_url(a.get_ref())
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
                .with_hint(format!("set it to the same range as {}'s `--service-cluster-ip-range`, e.g. `10.254.0.0/16`", component::api_server_name())));
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
                // The folder itself and each component's work dir in it (a component with
                // data dirs works in its first).
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
        let mut shared_cas = Vec::new();
        for (stem, v) in &raw.ca_choices {
            let ca = component::CAS.into_iter().find(|ca| ca.stem == *stem);
            let Some(choice) = ca.and_then(|ca| ca.pki_key.as_ref()) else {
                continue;
            };
            match v.get_ref().as_str() {
                "dedicated" => {}
                "shared" => shared_cas.push(*stem),
                other => {
                    return Err(self
                        .err(
                            v,
                            &format!("pki.{}", choice.key),
                            format!("unknown value `{other}`"),
                        )
                        .with_hint(choice.hint))
                }
            }
        }
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
            shared_cas,
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
}

impl SectionCheck for Validator<'_> {
    fn at(&self, span: Range<usize>, field: &str) -> String {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}: `{field}`", self.path.display())
    }

    fn whole_file(&self, field: &str) -> String {
        format!("{}: `{field}`", self.path.display())
    }

    fn standard(
        &self,
        c: &'static Component,
        raw: StandardKeys,
        version: &KubeVersion,
        release: Option<(u32, &str)>,
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
            let checked = match release {
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
            tools: Vec::new(),
            copied: Vec::new(),
            release: None,
            extra_sans: Vec::new(),
            own: None,
        })
    }

    fn port(&self, value: Option<Spanned<i64>>, field: &str, default: u16) -> Result<u16> {
        match value {
            None => Ok(default),
            Some(p) => u16::try_from(*p.get_ref())
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| self.err(&p, field, "must be a port number from 1 to 65535")),
        }
    }

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

    fn relative(&self, value: &str) -> PathBuf {
        let base = self.path.parent().unwrap_or(Path::new("."));
        base.join(value)
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
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
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
        assert!(check_https_url("https://{{node.ip}}:6443").is_ok());
        assert!(check_https_url("https://[::1]:6443").is_ok());
        assert!(check_https_url("https://lb.example.com").is_ok());
        assert!(check_https_url("https://lb.example.com:8443/").is_ok());
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
            assert!(check_https_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_nodes_are_bracketed_in_urls() {
        let inv = parse_str(&MINIMAL.replace("10.0.0.1", "fd00::1")).unwrap();
        assert_eq!(inv.apiserver_for(&inv.nodes[0]), "https://[fd00::1]:6443");
    }
}
