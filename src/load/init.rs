//! `kube-bundle init`: a commented starting inventory, optionally filled from the
//! tutorial's environment.sh. The shell file is parsed as text and never executed; this
//! module only produces inventory text and a report of what it used.

use std::collections::BTreeMap;
use std::path::Path;

use crate::component::{self, kube_apiserver::DEFAULT_NODE_PORT_RANGE};
use crate::error::{Error, Result};
use crate::load::config::{self, DEFAULT_DNS_DOMAIN, DEFAULT_K8S_DIR};

/// The environment.sh variables `init` understands.
pub const USED: [&str; 14] = [
    "NODE_NAMES",
    "NODE_IPS",
    "KUBE_APISERVER",
    "K8S_DIR",
    "SERVICE_CIDR",
    "CLUSTER_CIDR",
    "CLUSTER_DNS_DOMAIN",
    "CLUSTER_KUBERNETES_SVC_IP",
    "NODE_PORT_RANGE",
    "ETCD_ENDPOINTS",
    "ETCD_NODES",
    "ETCD_DATA_DIR",
    "ETCD_WAL_DIR",
    "ENCRYPTION_KEY",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellValue {
    Scalar(String),
    Array(Vec<String>),
    /// A value that would need the shell to run something (`$(...)`, `$VAR`, backticks).
    Dynamic,
}

/// Variable assignments of a bash file, in the simple forms environment.sh uses:
/// `[export] NAME=value`, `NAME="value"`, `NAME='value'` and `NAME=(a b c)`.
pub fn parse_env(text: &str) -> BTreeMap<String, ShellValue> {
    let mut vars = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        let mut value = value.trim().to_string();
        // An array may span lines, one element each: `NODE_NAMES=(\n  m1\n  m2\n)`.
        if value.starts_with('(') && !value.contains(')') {
            for more in lines.by_ref() {
                let more = more.split('#').next().unwrap_or_default().trim();
                value.push(' ');
                value.push_str(more);
                if more.contains(')') {
                    break;
                }
            }
            if !value.contains(')') {
                vars.insert(name.to_string(), ShellValue::Dynamic);
                continue;
            }
        }
        vars.insert(name.to_string(), shell_value(&value));
    }
    vars
}

fn shell_value(raw: &str) -> ShellValue {
    if let Some(inner) = raw.strip_prefix('(') {
        let Some(inner) = inner.split(')').next() else {
            return ShellValue::Dynamic;
        };
        let words: Vec<String> = inner.split_whitespace().map(unquote).collect();
        if words.iter().any(|w| w.contains('$') || w.contains('`')) {
            return ShellValue::Dynamic;
        }
        return ShellValue::Array(words);
    }
    let value = match raw.chars().next() {
        Some(q @ ('"' | '\'')) => raw[1..].split(q).next().unwrap_or_default().to_string(),
        // An unquoted word ends at white space (a trailing comment, say).
        _ => raw
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    if value.contains('$') || value.contains('`') {
        ShellValue::Dynamic
    } else {
        ShellValue::Scalar(value)
    }
}

fn unquote(word: &str) -> String {
    word.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// What `init` found in environment.sh.
#[derive(Debug, Default)]
pub struct Imported {
    pub nodes: Vec<(String, String)>,
    /// KUBE_APISERVER: the address workers reach the apiservers at (the tutorial's
    /// kube-nginx proxy), kept as `worker-apiserver`; masters use their own apiserver.
    pub worker_apiserver: Option<String>,
    pub k8s_dir: Option<String>,
    pub service_cidr: Option<String>,
    pub cluster_cidr: Option<String>,
    pub dns_domain: Option<String>,
    pub node_port_range: Option<String>,
    /// etcd's client and peer ports, from ETCD_ENDPOINTS and ETCD_NODES.
    pub etcd_ports: (Option<u16>, Option<u16>),
    pub etcd_data_dir: Option<String>,
    pub etcd_wal_dir: Option<String>,
    /// A literal ENCRYPTION_KEY (base64 of 32 bytes), for `pki/encryption-key`.
    pub encryption_key: Option<String>,
    pub used: Vec<String>,
    pub ignored: Vec<String>,
    /// Why a variable `init` understands was not taken, one line each.
    pub notes: Vec<String>,
}

pub fn import_env(path: &Path) -> Result<Imported> {
    // The file is the user's input: missing or not text is exit 2, like an inventory.
    let text = fs_err::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => {
            Error::input(format!("`{}`", path.display()), e.to_string())
                .with_hint("pass the tutorial's environment.sh with `--from-env FILE`")
        }
        _ => Error::Io(e),
    })?;
    let vars = parse_env(&text);
    let loc = |name: &str| format!("`{}`: `{name}`", path.display());
    let scalar = |name: &str| -> Result<Option<String>> {
        match vars.get(name) {
            None => Ok(None),
            Some(ShellValue::Scalar(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::input(
                loc(name),
                "must be a plain quoted or unquoted value",
            )),
        }
    };
    let array = |name: &str| -> Result<Vec<String>> {
        match vars.get(name) {
            Some(ShellValue::Array(a)) => Ok(a.clone()),
            None => Err(Error::input(loc(name), "is not set")
                .with_hint("environment.sh must define NODE_NAMES=(…) and NODE_IPS=(…)")),
            Some(_) => Err(Error::input(
                loc(name),
                "must be a bash array like `(a b c)`",
            )),
        }
    };
    let names = array("NODE_NAMES")?;
    let ips = array("NODE_IPS")?;
    if names.len() != ips.len() {
        return Err(Error::input(
            loc("NODE_IPS"),
            format!(
                "has {} entries but NODE_NAMES has {}",
                ips.len(),
                names.len()
            ),
        ));
    }
    let mut imported = Imported {
        nodes: names.into_iter().zip(ips).collect(),
        worker_apiserver: scalar("KUBE_APISERVER")?,
        k8s_dir: scalar("K8S_DIR")?,
        service_cidr: scalar("SERVICE_CIDR")?,
        cluster_cidr: scalar("CLUSTER_CIDR")?,
        dns_domain: scalar("CLUSTER_DNS_DOMAIN")?,
        node_port_range: scalar("NODE_PORT_RANGE")?,
        etcd_data_dir: scalar("ETCD_DATA_DIR")?,
        etcd_wal_dir: scalar("ETCD_WAL_DIR")?,
        ..Default::default()
    };
    // etcd's members are the masters: ETCD_NODES (`name=https://ip:2380,…`) and
    // ETCD_ENDPOINTS (`https://ip:2379,…`) must name the same nodes and IPs.
    let node_names: Vec<&str> = imported.nodes.iter().map(|(n, _)| n.as_str()).collect();
    let node_ips: Vec<&str> = imported.nodes.iter().map(|(_, ip)| ip.as_str()).collect();
    let url_parts = |var: &str, url: &str| -> Result<(String, u16)> {
        let bad = || {
            Error::input(
                loc(var),
                format!("`{url}` is not a URL like `https://10.0.0.11:2379`"),
            )
        };
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        Ok((host.trim_matches(['[', ']']).to_string(), port))
    };
    let one_port = |var: &str, ports: &[u16]| -> Result<Option<u16>> {
        match ports.first() {
            Some(first) if ports.iter().all(|p| p == first) => Ok(Some(*first)),
            Some(_) => Err(Error::input(
                loc(var),
                format!("uses several ports ({ports:?}); every member listens on the same one"),
            )),
            None => Ok(None),
        }
    };
    if let Some(endpoints) = scalar("ETCD_ENDPOINTS")? {
        let parts = endpoints
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|u| url_parts("ETCD_ENDPOINTS", u))
            .collect::<Result<Vec<_>>>()?;
        let ips: Vec<&str> = parts.iter().map(|(h, _)| h.as_str()).collect();
        if ips != node_ips {
            return Err(Error::input(
                loc("ETCD_ENDPOINTS"),
                format!(
                    "names the IPs {} but NODE_IPS is ({})",
                    ips.join(" "),
                    node_ips.join(" ")
                ),
            )
            .with_hint("etcd runs on every master: list one endpoint per NODE_IPS entry, in the same order"));
        }
        let ports: Vec<u16> = parts.iter().map(|(_, p)| *p).collect();
        imported.etcd_ports.0 = one_port("ETCD_ENDPOINTS", &ports)?;
    }
    if let Some(members) = scalar("ETCD_NODES")? {
        let mut names = Vec::new();
        let mut ips = Vec::new();
        let mut ports = Vec::new();
        for member in members.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((name, url)) = member.split_once('=') else {
                return Err(Error::input(
                    loc("ETCD_NODES"),
                    format!("`{member}` is not `name=https://ip:2380`"),
                ));
            };
            let (host, port) = url_parts("ETCD_NODES", url)?;
            names.push(name.to_string());
            ips.push(host);
            ports.push(port);
        }
        if names != node_names || ips != node_ips {
            return Err(Error::input(
                loc("ETCD_NODES"),
                format!(
                    "names the members {} but NODE_NAMES and NODE_IPS are {}",
                    names
                        .iter()
                        .zip(&ips)
                        .map(|(n, i)| format!("{n}={i}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                    node_names
                        .iter()
                        .zip(&node_ips)
                        .map(|(n, i)| format!("{n}={i}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            )
            .with_hint("etcd runs on every master: one member per node, with its name and IP, in the same order"));
        }
        imported.etcd_ports.1 = one_port("ETCD_NODES", &ports)?;
    }
    if let Some(domain) = &imported.dns_domain {
        if domain.ends_with('.') {
            return Err(Error::input(
                loc("CLUSTER_DNS_DOMAIN"),
                format!("`{domain}` ends with a dot"),
            )
            .with_hint(format!(
                "write it without the trailing dot, as the tutorial asks: `{}`",
                domain.trim_end_matches('.')
            )));
        }
    }
    if let Some(range) = &imported.node_port_range {
        let ok = range
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
            .is_some_and(|(a, b)| a > 0 && a <= b);
        if !ok {
            return Err(Error::input(
                loc("NODE_PORT_RANGE"),
                format!("`{range}` is not a port range like `30000-32767`"),
            ));
        }
    }
    // The `kubernetes` service takes the first IP of the service range: a different
    // CLUSTER_KUBERNETES_SVC_IP in the apiserver's certificate would not match it.
    if let Some(svc_ip) = scalar("CLUSTER_KUBERNETES_SVC_IP")? {
        let cidr = imported.service_cidr.as_deref().unwrap_or("10.254.0.0/16");
        if let Ok(net) = cidr.parse::<ipnet::IpNet>() {
            let first = crate::model::first_ip(&net.trunc());
            if svc_ip.parse::<std::net::IpAddr>().ok() != Some(first) {
                return Err(Error::input(
                    loc("CLUSTER_KUBERNETES_SVC_IP"),
                    format!("`{svc_ip}` is not the first IP of SERVICE_CIDR `{cidr}`, {first}, which kube-apiserver gives the `kubernetes` service"),
                )
                .with_hint(format!("set CLUSTER_KUBERNETES_SVC_IP=\"{first}\", or change SERVICE_CIDR")));
            }
        }
    }
    if let Some(url) = &imported.worker_apiserver {
        imported.notes.push(format!(
            "KUBE_APISERVER `{url}` (the tutorial's kube-nginx proxy, for kubelets and kube-proxy) kept as `worker-apiserver`; the controller-manager and scheduler talk to their own master's kube-apiserver"
        ));
    }
    match vars.get("ENCRYPTION_KEY") {
        Some(ShellValue::Scalar(key)) => {
            use base64::Engine;
            let len = base64::engine::general_purpose::STANDARD
                .decode(key)
                .map(|b| b.len());
            if len.as_ref().ok() != Some(&crate::model::ENCRYPTION_KEY_BYTES) {
                return Err(Error::input(
                    loc("ENCRYPTION_KEY"),
                    match len {
                        Ok(n) => format!("decodes to {n} bytes; an aescbc key is 32"),
                        Err(e) => format!("is not base64 ({e})"),
                    },
                )
                .with_hint("give the cluster's key, the base64 of 32 bytes (`head -c 32 /dev/urandom | base64`)"));
            }
            imported.encryption_key = Some(key.clone());
        }
        Some(_) => imported.notes.push(
            "ENCRYPTION_KEY runs a command, which would make a new key each time environment.sh is sourced; not taken: kube-bundle makes one key once, in pki/encryption-key (to keep a cluster's key, write it there)".into(),
        ),
        None => {}
    }
    for name in vars.keys() {
        let taken = USED.contains(&name.as_str())
            && !(name == "ENCRYPTION_KEY" && imported.encryption_key.is_none());
        if taken {
            imported.used.push(name.clone());
        } else {
            imported.ignored.push(name.clone());
        }
    }
    Ok(imported)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The inventory text `init` writes: every key present, optional ones commented.
pub fn inventory_text(imported: &Imported, kubernetes_version: &str) -> String {
    let nodes = if imported.nodes.is_empty() {
        vec![
            ("master-1".to_string(), "10.0.0.11".to_string()),
            ("master-2".to_string(), "10.0.0.12".to_string()),
            ("master-3".to_string(), "10.0.0.13".to_string()),
        ]
    } else {
        imported.nodes.clone()
    };
    let mut out = String::new();
    out.push_str(&format!(
        r#"# kube-bundle inventory: one file describes every master of one cluster.
# `kube-bundle build -c cluster.toml -o dist` turns it into one bundle per master.

[cluster]
# name = "kubernetes"                  # --cluster-name
kubernetes-version = {version}         # the control-plane release you run (1.16 or newer)
# arch = "amd64"                       # the masters' architecture: amd64, arm64, arm,
#                                      #   ppc64le or s390x; every `binary` must be built for it
# The controller-manager and scheduler talk to their own master's kube-apiserver. Set
# `apiserver` only to send them elsewhere, such as a load balancer listed in the
# apiservers' `extra-sans`.
# apiserver = "https://lb.example.com:6443"
# Where kubelets and kube-proxy reach the apiservers (the tutorial's local kube-nginx
# proxy, chapter 06), kept for worker bundles; masters do not use it.
{worker_apiserver}
service-cidr = {service_cidr}          # must equal kube-apiserver's --service-cluster-ip-range
{cluster_cidr}
k8s-dir = {k8s_dir}                    # work dirs live under here
{dns_domain}

[pki]
# dir = "pki"                          # PKI state, beside this file; keep it safe and backed up
# ca-cert = "ca.pem"                   # import an existing CA (both or neither);
# ca-key = "ca-key.pem"                #   without them a CA is generated once in pki/
key-algorithm = "rsa-2048"             # rsa-2048, rsa-3072, rsa-4096 or ecdsa-p256
cert-validity = "8760h"
ca-validity = "87600h"
# service-account-key = "generate"     # or "ca": sign tokens with the CA key, as the tutorial does
# csr-signing = "signer"               # kubelet CSRs signed by a self-signed signing CA
#                                      #   trusted only by kube-apiserver's client CA; the root
#                                      #   CA key stays here; "ca" ships the root CA key
#                                      #   to every master as the tutorial does; "off" signs none
# seal-secrets = true                  # private files sealed with each node's pki/<node>/seal.key,
#                                      #   for bundles pushed to a registry (README: Sealed secrets)
# C = "CN"
# ST = "BeiJing"
# L = "BeiJing"
# OU = "opsnull"
"#,
        version = toml_str(kubernetes_version),
        worker_apiserver = match &imported.worker_apiserver {
            Some(url) => format!("worker-apiserver = {}", toml_str(url)),
            None => "# worker-apiserver = \"https://127.0.0.1:8443\"".to_string(),
        },
        service_cidr = toml_str(imported.service_cidr.as_deref().unwrap_or("10.254.0.0/16")),
        cluster_cidr = match &imported.cluster_cidr {
            Some(c) => format!(
                "cluster-cidr = {}          # pod network, for --cluster-cidr",
                toml_str(c)
            ),
            None => "# cluster-cidr = \"172.30.0.0/16\"     # pod network, for --cluster-cidr"
                .to_string(),
        },
        k8s_dir = toml_str(imported.k8s_dir.as_deref().unwrap_or(DEFAULT_K8S_DIR)),
        dns_domain = match &imported.dns_domain {
            Some(d) => format!(
                "dns-domain = {}          # the kubernetes service's names end in it",
                toml_str(d)
            ),
            None => format!(
                "# dns-domain = {}  # the kubernetes service's names end in it",
                toml_str(DEFAULT_DNS_DOMAIN)
            ),
        },
    ));
    for (name, ip) in &nodes {
        out.push_str(&format!(
            "\n[[nodes]]\nname = {}\nip = {}\n",
            toml_str(name),
            toml_str(ip)
        ));
    }
    out.push_str(
        r#"
# A `binary` is read (never run) before the build: it must be a Linux executable for
# `arch` of the release stated, or `binary-check = false` in its section carries it as is.
[kube-controller-manager]
# binary = "/opt/k8s/bin/kube-controller-manager"   # carried in each bundle when set
secure-port = 10257
# Flags appended to the unit, overriding kube-bundle's defaults; names without dashes.
# A flag the target version does not have is refused.
[kube-controller-manager.extra-args]
# v = 4

# kube-scheduler on every master, as the tutorial's chapter 05-4; remove the section to
# leave it out.
[kube-scheduler]
# binary = "/opt/k8s/bin/kube-scheduler"            # carried in each bundle when set
secure-port = 10259
[kube-scheduler.extra-args]
# v = 4
"#,
    );
    out.push_str(&format!(
        r#"
# kube-apiserver on every master, as the tutorial's chapter 05-2, talking to the etcd
# members below. For an etcd of your own, remove [etcd] and set `etcd-servers`, and
# `etcd-ca`, `etcd-cert` and `etcd-key` for its CA and the apiserver's client pair.
[kube-apiserver]
# binary = "/opt/k8s/bin/kube-apiserver"            # carried in each bundle when set
secure-port = 6443
# extra-sans = ["lb.example.com"]                     # a load balancer's name or VIP
service-node-port-range = {range}
[kube-apiserver.extra-args]
# v = 4

# etcd on every master, as the tutorial's chapter 04: one member per node.
[etcd]
version = {etcd_version}                              # the etcd release you carry: 3.4, 3.5 or 3.6
# binary = "/opt/k8s/bin/etcd"                        # carried in each bundle when set
# etcdctl = "/opt/k8s/bin/etcdctl"                    # for install.sh's snapshots and checks
client-port = {client_port}
peer-port = {peer_port}
data-dir = {data_dir}
wal-dir = {wal_dir}                    # best on another disk than the data
cluster-token = "etcd-cluster-0"
[etcd.extra-args]
# snapshot-count = 50000
"#,
        range = toml_str(
            imported
                .node_port_range
                .as_deref()
                .unwrap_or(DEFAULT_NODE_PORT_RANGE)
        ),
        etcd_version = toml_str(etcd_version_for(kubernetes_version)),
        client_port = imported.etcd_ports.0.unwrap_or(2379),
        peer_port = imported.etcd_ports.1.unwrap_or(2380),
        data_dir = toml_str(
            imported
                .etcd_data_dir
                .as_deref()
                .unwrap_or(component::etcd::DEFAULT_DATA_DIR)
        ),
        wal_dir = toml_str(
            imported
                .etcd_wal_dir
                .as_deref()
                .unwrap_or(component::etcd::DEFAULT_WAL_DIR)
        ),
    ));
    out
}

/// The etcd release kubeadm pairs with a Kubernetes release: 3.4 up to 1.21, 3.5 from
/// 1.22, 3.6 from 1.34.
fn etcd_version_for(kubernetes_version: &str) -> &'static str {
    match crate::version::KubeVersion::parse(kubernetes_version).map(|v| v.minor) {
        Ok(..=21) => "3.4",
        Ok(22..=33) => "3.5",
        Ok(_) => "3.6",
        Err(_) => "3.5",
    }
}

/// Checks generated text against the same validation `build` uses.
pub fn validate(path: &Path, text: &str) -> Result<()> {
    config::parse(path, text).map(|_| ())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    /// `USED` is what `init --help` lists: each of its variables changes what init
    /// takes (or makes it refuse the file), and a variable outside it changes nothing.
    #[test]
    fn every_variable_in_used_is_read_and_no_other() {
        let every = include_str!("../../tests/fixtures/environment-every.sh");
        let other: BTreeMap<&str, &str> = BTreeMap::from([
            ("NODE_NAMES", "(n1 n2)"),
            ("NODE_IPS", "(10.0.0.3 10.0.0.4)"),
            ("KUBE_APISERVER", "https://10.0.0.200:8443"),
            ("K8S_DIR", "/opt/k8s"),
            ("SERVICE_CIDR", "10.97.0.0/16"),
            ("CLUSTER_CIDR", "10.245.0.0/16"),
            ("CLUSTER_DNS_DOMAIN", "cluster.other"),
            ("CLUSTER_KUBERNETES_SVC_IP", "10.96.0.2"),
            ("NODE_PORT_RANGE", "31000-32767"),
            (
                "ETCD_ENDPOINTS",
                "https://10.0.0.1:12379,https://10.0.0.2:12379",
            ),
            (
                "ETCD_NODES",
                "m1=https://10.0.0.1:12380,m2=https://10.0.0.2:12380",
            ),
            ("ETCD_DATA_DIR", "/var/etcd"),
            ("ETCD_WAL_DIR", "/var/etcd-wal"),
            (
                "ENCRYPTION_KEY",
                "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
            ),
            ("IFACE", "eth1"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        // What init takes, without its report of names (which lists USED by design).
        let taken = |text: &str| -> String {
            let path = dir.path().join("environment.sh");
            std::fs::write(&path, text).unwrap();
            match import_env(&path) {
                Ok(mut imported) => {
                    imported.used.clear();
                    imported.ignored.clear();
                    format!("{imported:?}")
                }
                Err(e) => format!("error: {e}"),
            }
        };
        let reference = taken(every);
        assert!(!reference.starts_with("error"), "{reference}");
        let names: Vec<String> = parse_env(every).into_keys().collect();
        assert_eq!(names.len(), other.len());
        for name in &names {
            let changed: String = every
                .lines()
                .map(|line| match line.starts_with(&format!("export {name}=")) {
                    true => format!("export {name}={}\n", other[name.as_str()]),
                    false => format!("{line}\n"),
                })
                .collect();
            let read = taken(&changed) != reference;
            assert_eq!(read, USED.contains(&name.as_str()), "{name}");
        }
    }

    #[test]
    fn parses_the_tutorial_forms_without_running_anything() {
        let vars = parse_env(
            "export NODE_IPS=(172.27.138.251 172.27.137.229)\n\
             # comment\nSERVICE_CIDR=\"10.254.0.0/16\"\n\
             export ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)\n\
             K8S_DIR='/data/k8s/k8s'\nPATH=/opt/k8s/bin:$PATH\n",
        );
        assert_eq!(
            vars["NODE_IPS"],
            ShellValue::Array(vec!["172.27.138.251".into(), "172.27.137.229".into()])
        );
        assert_eq!(
            vars["SERVICE_CIDR"],
            ShellValue::Scalar("10.254.0.0/16".into())
        );
        assert_eq!(vars["K8S_DIR"], ShellValue::Scalar("/data/k8s/k8s".into()));
        assert_eq!(vars["ENCRYPTION_KEY"], ShellValue::Dynamic);
        assert_eq!(vars["PATH"], ShellValue::Dynamic);
    }

    #[test]
    fn arrays_may_span_lines() {
        let vars = parse_env(
            "export NODE_NAMES=(\n  m1   # first\n  \"m2\"\n)\nNODE_IPS=(10.0.0.1\n10.0.0.2)\nBROKEN=(\n a\n",
        );
        assert_eq!(
            vars["NODE_NAMES"],
            ShellValue::Array(vec!["m1".into(), "m2".into()])
        );
        assert_eq!(
            vars["NODE_IPS"],
            ShellValue::Array(vec!["10.0.0.1".into(), "10.0.0.2".into()])
        );
        assert_eq!(vars["BROKEN"], ShellValue::Dynamic);
    }

    #[test]
    fn the_default_inventory_is_valid() {
        let text = inventory_text(&Imported::default(), "1.20.2");
        validate(Path::new("cluster.toml"), &text).unwrap();
        let inv = config::parse(Path::new("cluster.toml"), &text).unwrap();
        let built: Vec<&str> = inv.components.iter().map(|s| s.component.name).collect();
        assert_eq!(
            built,
            [
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler"
            ]
        );
        assert_eq!(
            component::etcd::own(&inv).unwrap().minor,
            4,
            "kubeadm's etcd for 1.20"
        );
    }
}
