//! `kube-bundle init`: a commented starting inventory, optionally filled from the
//! tutorial's environment.sh. The shell file is parsed as text and never executed; this
//! module only produces inventory text and a report of what it used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::component;
use crate::error::{Error, Result};
use crate::load::config::{self, DEFAULT_DNS_DOMAIN, DEFAULT_K8S_DIR};
use crate::model::StarterEnv;

/// The environment.sh variables `init` reads for `[cluster]`, `[[nodes]]` and `[pki]`;
/// the rows read theirs ([`used`]).
const CLUSTER_VARS: [&str; 9] = [
    "NODE_NAMES",
    "NODE_IPS",
    "KUBE_APISERVER",
    "K8S_DIR",
    "SERVICE_CIDR",
    "CLUSTER_CIDR",
    "CLUSTER_DNS_DOMAIN",
    "CLUSTER_KUBERNETES_SVC_IP",
    "ENCRYPTION_KEY",
];

/// Every environment.sh variable `init` understands: the cluster's, then each row's.
pub fn used() -> Vec<&'static str> {
    let mut vars = CLUSTER_VARS.to_vec();
    for c in component::all() {
        vars.extend(c.starter.iter().flat_map(|s| s.vars));
    }
    vars
}

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
    /// The file's variables, for the rows' sections, and the file, for their errors.
    pub vars: BTreeMap<String, ShellValue>,
    pub path: PathBuf,
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
        path: path.to_path_buf(),
        ..Default::default()
    };
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
    // The `kubernetes` service takes the first IP of the service range: a different
    // CLUSTER_KUBERNETES_SVC_IP in the API's serving certificate would not match it.
    if let Some(svc_ip) = scalar("CLUSTER_KUBERNETES_SVC_IP")? {
        let cidr = imported.service_cidr.as_deref().unwrap_or("10.254.0.0/16");
        if let Ok(net) = cidr.parse::<ipnet::IpNet>() {
            let first = crate::model::first_ip(&net.trunc());
            if svc_ip.parse::<std::net::IpAddr>().ok() != Some(first) {
                return Err(Error::input(
                    loc("CLUSTER_KUBERNETES_SVC_IP"),
                    format!("`{svc_ip}` is not the first IP of SERVICE_CIDR `{cidr}`, {first}, which the cluster gives the `kubernetes` service"),
                )
                .with_hint(format!("set CLUSTER_KUBERNETES_SVC_IP=\"{first}\", or change SERVICE_CIDR")));
            }
        }
    }
    if let Some(url) = &imported.worker_apiserver {
        imported.notes.push(format!(
            "KUBE_APISERVER `{url}` (the tutorial's kube-nginx proxy, for kubelets and kube-proxy) kept as `worker-apiserver`; the masters' components talk to their own master's API server"
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
    imported.vars = vars.clone();
    let used = used();
    for name in vars.keys() {
        let taken = used.contains(&name.as_str())
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
pub fn inventory_text(imported: &Imported, kubernetes_version: &str) -> Result<String> {
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
# The masters' components talk to their own master's API server. Set `apiserver` only
# to send them elsewhere, such as a load balancer listed in the API server's
# `extra-sans`.
# apiserver = "https://lb.example.com:6443"
# Where kubelets and kube-proxy reach the apiservers (the tutorial's local kube-nginx
# proxy, chapter 06), kept for worker bundles; masters do not use it.
{worker_apiserver}
service-cidr = {service_cidr}          # the API server's --service-cluster-ip-range
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
#                                      #   trusted only by the API server's client CA; the root
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
# `extra-args` are flags appended to the unit, overriding kube-bundle's defaults; names
# without dashes. A flag the target version does not have is refused.
"#,
    );
    for c in component::all() {
        if let Some(starter) = c.starter {
            out.push_str(&(starter.section)(imported, kubernetes_version)?);
        }
    }
    Ok(out)
}

impl StarterEnv for Imported {
    fn scalar(&self, name: &str) -> Result<Option<String>> {
        match self.vars.get(name) {
            None => Ok(None),
            Some(ShellValue::Scalar(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::input(
                self.at(name),
                "must be a plain quoted or unquoted value",
            )),
        }
    }

    fn nodes(&self) -> &[(String, String)] {
        &self.nodes
    }

    fn at(&self, name: &str) -> String {
        format!("`{}`: `{name}`", self.path.display())
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
        // What init takes: the inventory it writes, the key and its notes (not its
        // report of names, which lists `used()` by design).
        let taken = |text: &str| -> String {
            let path = dir.path().join("environment.sh");
            std::fs::write(&path, text).unwrap();
            match import_env(&path) {
                Ok(imported) => format!(
                    "{:?} {:?} {:?}",
                    inventory_text(&imported, "1.20.2").map_err(|e| e.to_string()),
                    imported.encryption_key,
                    imported.notes
                ),
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
            assert_eq!(read, used().contains(&name.as_str()), "{name}");
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
        let text = inventory_text(&Imported::default(), "1.20.2").unwrap();
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
