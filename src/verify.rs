//! `kube-bundle verify`: checks finished bundles offline, from the tarballs alone, as the
//! receiving site would before touching a node. It reads archives and reports findings;
//! it never changes a bundle or `pki/`.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use flate2::read::MultiGzDecoder;
use rcgen::KeyPair;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::component::{self, Component};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::pki;
use crate::plan;
use crate::signature;
use crate::version::KubeVersion;

pub struct VerifyOptions {
    pub bundles: Vec<PathBuf>,
    pub warn_within: Duration,
    /// An allowed-signers file every bundle's signature must match.
    pub trust: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub bundle: String,
    pub file: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Checked {
    pub path: String,
    pub node: String,
    pub files: usize,
    pub signed: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub bundles: Vec<Checked>,
    pub findings: Vec<Finding>,
}

/// Files larger than this are hashed but not kept in memory (the binary).
const KEEP_LIMIT: u64 = 4 << 20;

struct Entry {
    mode: u32,
    sha256: String,
    bytes: Option<Vec<u8>>,
}

struct Bundle {
    /// The tarball's file name, for findings.
    name: String,
    top: String,
    files: BTreeMap<String, Entry>,
}

impl Bundle {
    fn text(&self, path: &str) -> Option<String> {
        self.files
            .get(path)?
            .bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

pub fn verify(opts: &VerifyOptions) -> Result<Report> {
    let trust = opts
        .trust
        .as_deref()
        .map(signature::AllowedSigners::load)
        .transpose()?;
    let bundles = opts
        .bundles
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>>>()?;
    let now = OffsetDateTime::now_utc();
    let warn = time::Duration::try_from(opts.warn_within)
        .map_err(|e| Error::input("--warn-within", e.to_string()))?;
    let mut findings = Vec::new();
    let mut checked = Vec::new();
    for (bundle, path) in bundles.iter().zip(&opts.bundles) {
        let mut check = Check {
            bundle,
            findings: &mut findings,
        };
        let node = check.run(now, warn, trust.as_ref());
        checked.push(Checked {
            path: path.display().to_string(),
            node,
            files: bundle.files.len(),
            signed: bundle.files.contains_key(signature::SIG_FILE),
        });
    }
    shared_keys(&bundles, &mut findings);
    Ok(Report {
        bundles: checked,
        findings,
    })
}

fn load(path: &Path) -> Result<Bundle> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::input(
            format!("`{}`", path.display()),
            format!("is not a readable .tar.gz ({e})"),
        )
        .with_hint("the file is truncated or damaged: copy it again from the build host")
    };
    let file = fs_err::File::open(path)
        .map_err(|e| Error::input(format!("`{}`", path.display()), e.to_string()))?;
    // Bundles may be multi-member gzip: GzDecoder would stop after the first member.
    let mut archive = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
    let mut top: Option<String> = None;
    let mut files = BTreeMap::new();
    for entry in archive.entries().map_err(|e| unreadable(&e))? {
        let mut entry = entry.map_err(|e| unreadable(&e))?;
        let full = entry
            .path()
            .map_err(|e| unreadable(&e))?
            .to_string_lossy()
            .into_owned();
        let (first, rest) = full.split_once('/').unwrap_or((full.as_str(), ""));
        match &top {
            None => top = Some(first.to_string()),
            Some(t) if t != first => {
                return Err(Error::input(
                    format!("`{}`", path.display()),
                    format!("holds more than one top folder (`{t}` and `{first}`)"),
                ))
            }
            Some(_) => {}
        }
        let rest = rest.trim_end_matches('/').to_string();
        if !entry.header().entry_type().is_file() || rest.is_empty() {
            continue;
        }
        let mode = entry.header().mode().map_err(|e| unreadable(&e))?;
        let size = entry.header().size().map_err(|e| unreadable(&e))?;
        let mut hasher = Sha256::new();
        let mut kept = (size <= KEEP_LIMIT).then(Vec::new);
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buf).map_err(|e| unreadable(&e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&buf[..n]);
            }
        }
        files.insert(
            rest,
            Entry {
                mode,
                sha256: hex::encode(hasher.finalize()),
                bytes: kept,
            },
        );
    }
    let Some(top) = top else {
        return Err(Error::input(
            format!("`{}`", path.display()),
            "is an empty archive",
        ));
    };
    Ok(Bundle { name, top, files })
}

struct Check<'a> {
    bundle: &'a Bundle,
    findings: &'a mut Vec<Finding>,
}

const CERT_CA: &str = "rootfs/etc/kubernetes/cert/ca.pem";
const CERT_CA_KEY: &str = "rootfs/etc/kubernetes/cert/ca-key.pem";
const SA_KEY: &str = "rootfs/etc/kubernetes/cert/sa.key";
const SA_PUB: &str = "rootfs/etc/kubernetes/cert/sa.pub";

/// A node path as it sits in a bundle.
fn in_bundle(node_path: &str) -> String {
    format!("rootfs{node_path}")
}

impl Check<'_> {
    fn find(&mut self, file: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            bundle: self.bundle.name.clone(),
            file: file.to_string(),
            message: message.into(),
        });
    }

    /// Runs every check on one bundle and returns its node name.
    fn run(
        &mut self,
        now: OffsetDateTime,
        warn: time::Duration,
        trust: Option<&signature::AllowedSigners>,
    ) -> String {
        self.checksums();
        self.signature(trust);
        let manifest = self.manifest();
        let node = manifest
            .as_ref()
            .map(|m| m.node.clone())
            .unwrap_or_default();
        let node_ip = manifest.as_ref().map(|m| m.node_ip.clone());
        let components = manifest
            .as_ref()
            .map(|m| self.components(m))
            .unwrap_or_default();
        if let Some(ca) = self.ca(now, warn) {
            for c in &components {
                self.leaf(c, &ca, node_ip.as_deref(), now, warn);
            }
        }
        self.service_account();
        for c in &components {
            self.kubeconfig(c);
            if let Some(m) = &manifest {
                self.unit(c, m);
                self.config_file(c, m);
            }
        }
        node
    }

    fn checksums(&mut self) {
        let Some(sums) = self.bundle.text("SHA256SUMS") else {
            self.find("SHA256SUMS", "is missing");
            return;
        };
        let mut listed = std::collections::BTreeSet::new();
        for line in sums.lines() {
            let Some((sha, path)) = line.split_once("  ") else {
                self.find("SHA256SUMS", format!("malformed line `{line}`"));
                continue;
            };
            listed.insert(path.to_string());
            match self.bundle.files.get(path) {
                None => self.find(path, "is listed in SHA256SUMS but missing"),
                Some(e) if e.sha256 != sha => {
                    self.find(path, "does not match its checksum in SHA256SUMS")
                }
                Some(_) => {}
            }
        }
        let unlisted: Vec<String> = self
            .bundle
            .files
            .keys()
            .filter(|p| !listed.contains(*p) && *p != "SHA256SUMS" && *p != signature::SIG_FILE)
            .cloned()
            .collect();
        for path in unlisted {
            self.find(&path, "is in the bundle but not in SHA256SUMS");
        }
    }

    fn signature(&mut self, trust: Option<&signature::AllowedSigners>) {
        let pinned = self
            .bundle
            .text(signature::PINNED_FILE)
            .map(|t| signature::AllowedSigners::parse(&t));
        let signers = match (trust, &pinned) {
            (Some(t), _) => t,
            (None, Some(Ok(p))) => p,
            (None, Some(Err(e))) => {
                let message = e.to_string();
                self.find(signature::PINNED_FILE, message);
                return;
            }
            (None, None) => return,
        };
        let (Some(sig), Some(sums)) = (
            self.bundle.text(signature::SIG_FILE),
            self.bundle.files.get("SHA256SUMS"),
        ) else {
            self.find(
                signature::SIG_FILE,
                "is missing, but a signature is required",
            );
            return;
        };
        let sums = sums.bytes.clone().unwrap_or_default();
        if let Err(message) = signers.verify(&sums, &sig) {
            self.find(signature::SIG_FILE, message);
        }
    }

    fn manifest(&mut self) -> Option<Manifest> {
        let Some(text) = self.bundle.text("manifest.json") else {
            self.find("manifest.json", "is missing");
            return None;
        };
        let manifest: Manifest = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                self.find("manifest.json", format!("is not a bundle manifest ({e})"));
                return None;
            }
        };
        if self.bundle.top != plan::top_dir(&manifest.node) {
            self.find(
                "manifest.json",
                format!(
                    "names node `{}` but the bundle folder is `{}`",
                    manifest.node, self.bundle.top
                ),
            );
        }
        let mut described = std::collections::BTreeSet::new();
        for f in &manifest.files {
            described.insert(f.path.clone());
            match self.bundle.files.get(&f.path) {
                None => self.find(&f.path, "is in manifest.json but not in the bundle"),
                Some(e) => {
                    if e.sha256 != f.sha256 {
                        self.find(&f.path, "does not match its sha256 in manifest.json");
                    }
                    if format!("{:04o}", e.mode) != f.mode {
                        self.find(
                            &f.path,
                            format!("has mode {:04o} but manifest.json says {}", e.mode, f.mode),
                        );
                    }
                }
            }
        }
        let undescribed: Vec<String> = self
            .bundle
            .files
            .keys()
            .filter(|p| p.starts_with("rootfs/") && !described.contains(*p))
            .cloned()
            .collect();
        for path in undescribed {
            self.find(&path, "is not described in manifest.json");
        }
        Some(manifest)
    }

    fn pem_der(&mut self, path: &str) -> Option<Vec<u8>> {
        let text = self.bundle.text(path)?;
        match pem::parse(&text) {
            Ok(p) if p.tag() == "CERTIFICATE" => Some(p.into_contents()),
            _ => {
                self.find(path, "is not a PEM certificate");
                None
            }
        }
    }

    fn key(&mut self, path: &str) -> Option<KeyPair> {
        let text = self.bundle.text(path)?;
        match KeyPair::from_pem(&text) {
            Ok(k) => Some(k),
            Err(e) => {
                self.find(path, format!("is not a usable private key ({e})"));
                None
            }
        }
    }

    /// The components the manifest names; an unknown one or none at all is a finding.
    fn components(&mut self, manifest: &Manifest) -> Vec<&'static Component> {
        if manifest.components.is_empty() {
            self.find("manifest.json", "names no components");
        }
        let mut found = Vec::new();
        for name in &manifest.components {
            match component::by_name(name) {
                Some(c) => found.push(c),
                None => self.find(
                    "manifest.json",
                    format!("names an unknown component `{}`", name.escape_debug()),
                ),
            }
        }
        found
    }

    /// The bundled CA, checked, as DER.
    fn ca(&mut self, now: OffsetDateTime, warn: time::Duration) -> Option<Vec<u8>> {
        let Some(ca_der) = self.pem_der(CERT_CA) else {
            if !self.bundle.files.contains_key(CERT_CA) {
                self.find(CERT_CA, "is missing");
            }
            return None;
        };
        let Ok((_, ca)) = X509Certificate::from_der(&ca_der) else {
            self.find(CERT_CA, "is not an X.509 certificate");
            return None;
        };
        if !ca
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
        {
            self.find(CERT_CA, "is not a CA certificate");
        }
        self.expiry(CERT_CA, &ca, now, warn);
        if let Some(key) = self.key(CERT_CA_KEY) {
            if !pki::spki_matches(&key, &ca) {
                self.find(CERT_CA_KEY, "does not match ca.pem");
            }
        }
        Some(ca_der)
    }

    /// One component's certificate and key: chain, identity, usages and SANs.
    fn leaf(
        &mut self,
        c: &Component,
        ca_der: &[u8],
        node_ip: Option<&str>,
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        let Ok((_, ca)) = X509Certificate::from_der(ca_der) else {
            return;
        };
        let cert_file = in_bundle(&c.cert_path());
        let key_file = in_bundle(&c.key_path());
        let Some(leaf_der) = self.pem_der(&cert_file) else {
            if !self.bundle.files.contains_key(&cert_file) {
                self.find(&cert_file, "is missing");
            }
            return;
        };
        let Ok((_, leaf)) = X509Certificate::from_der(&leaf_der) else {
            self.find(&cert_file, "is not an X.509 certificate");
            return;
        };
        let (cert_name, _) = c.pki_files();
        if leaf.issuer().as_raw() != ca.subject().as_raw()
            || leaf.verify_signature(Some(ca.public_key())).is_err()
        {
            self.find(&cert_file, "does not chain to the bundled CA");
        }
        self.expiry(&cert_file, &leaf, now, warn);
        if let Some(key) = self.key(&key_file) {
            if !pki::spki_matches(&key, &leaf) {
                self.find(&key_file, format!("does not match {cert_name}"));
            }
        }
        use x509_parser::oid_registry as oids;
        let cn = pki::attr(&leaf, &oids::OID_X509_COMMON_NAME);
        let o = pki::attr(&leaf, &oids::OID_X509_ORGANIZATION_NAME);
        if cn.as_deref() != Some(c.user) || o.as_deref() != Some(c.user) {
            self.find(
                &cert_file,
                format!(
                    "subject CN and O must be `{}`, found CN `{}` O `{}`",
                    c.user,
                    cn.unwrap_or_default(),
                    o.unwrap_or_default()
                ),
            );
        }
        let ku = leaf
            .key_usage()
            .ok()
            .flatten()
            .map(|k| (k.value.digital_signature(), k.value.key_encipherment()));
        if ku != Some((true, true)) {
            self.find(
                &cert_file,
                "key usage must include digitalSignature and keyEncipherment",
            );
        }
        let eku = leaf
            .extended_key_usage()
            .ok()
            .flatten()
            .map(|e| (e.value.server_auth, e.value.client_auth));
        if eku != Some((true, true)) {
            self.find(
                &cert_file,
                "extended key usage must include serverAuth and clientAuth",
            );
        }
        let sans = pki::cert_sans(&leaf);
        let mut wanted = vec!["IP:127.0.0.1".to_string()];
        if let Some(ip) = node_ip.and_then(|ip| ip.parse::<std::net::IpAddr>().ok()) {
            wanted.push(format!("IP:{ip}"));
        }
        for want in wanted {
            if !sans.contains(&want) {
                self.find(
                    &cert_file,
                    format!("SANs lack {want} (has {})", sans.join(",")),
                );
            }
        }
    }

    fn service_account(&mut self) {
        if self.bundle.files.contains_key(SA_KEY) || self.bundle.files.contains_key(SA_PUB) {
            match (self.key(SA_KEY), self.bundle.text(SA_PUB)) {
                (Some(key), Some(public)) if key.public_key_pem() == public => {}
                (Some(_), Some(_)) => self.find(SA_PUB, "is not the public half of sa.key"),
                (None, _) if !self.bundle.files.contains_key(SA_KEY) => {
                    self.find(SA_KEY, "is missing while sa.pub is present")
                }
                (_, None) => self.find(SA_PUB, "is missing while sa.key is present"),
                _ => {}
            }
        }
    }

    fn expiry(
        &mut self,
        path: &str,
        cert: &X509Certificate<'_>,
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        let start = cert.validity().not_before.to_datetime();
        let end = cert.validity().not_after.to_datetime();
        if start > now {
            self.find(path, format!("is not valid until {}", pki::rfc3339(start)));
        }
        if end <= now {
            self.find(path, format!("expired on {}", pki::rfc3339(end)));
        } else if end <= now + warn {
            self.find(
                path,
                format!("expires on {}, within {}", pki::rfc3339(end), human(warn)),
            );
        }
    }

    fn kubeconfig(&mut self, c: &Component) {
        let file = in_bundle(&c.kubeconfig_path());
        let cert_file = in_bundle(&c.cert_path());
        let key_file = in_bundle(&c.key_path());
        let Some(text) = self.bundle.text(&file) else {
            self.find(&file, "is missing");
            return;
        };
        let config: Kubeconfig = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.find(&file, format!("is not a kubeconfig ({e})"));
                return;
            }
        };
        let Some(context) = config
            .contexts
            .iter()
            .find(|c| c.name == config.current_context)
        else {
            self.find(
                &file,
                format!(
                    "current-context `{}` is not defined",
                    config.current_context
                ),
            );
            return;
        };
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.context.cluster);
        let user = config.users.iter().find(|u| u.name == context.context.user);
        let (Some(cluster), Some(user)) = (cluster, user) else {
            self.find(
                &file,
                "the current context names a cluster or user that is not defined",
            );
            return;
        };
        if !cluster.cluster.server.starts_with("https://") {
            self.find(
                &file,
                format!("server `{}` is not https", cluster.cluster.server),
            );
        }
        let pairs = [
            (
                &cluster.cluster.certificate_authority_data,
                CERT_CA,
                "certificate-authority-data",
            ),
            (
                &user.user.client_certificate_data,
                cert_file.as_str(),
                "client-certificate-data",
            ),
            (
                &user.user.client_key_data,
                key_file.as_str(),
                "client-key-data",
            ),
        ];
        for (data, bundled, field) in pairs {
            let decoded = data
                .as_deref()
                .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok());
            let bundled_bytes = self.bundle.files.get(bundled).and_then(|e| e.bytes.clone());
            if decoded.is_none() || decoded != bundled_bytes {
                self.find(
                    &file,
                    format!(
                        "{field} is not the bundled {}",
                        bundled.rsplit('/').next().unwrap_or(bundled)
                    ),
                );
            }
        }
    }

    fn unit(&mut self, c: &Component, manifest: &Manifest) {
        let file = in_bundle(&c.unit_path());
        let Some(text) = self.bundle.text(&file) else {
            self.find(&file, "is missing");
            return;
        };
        let words = exec_start_words(&text);
        if words.is_empty() {
            self.find(&file, "has no ExecStart");
            return;
        }
        let bind = words.iter().find_map(|w| w.strip_prefix("--bind-address="));
        if bind != Some(manifest.node_ip.as_str()) {
            self.find(
                &file,
                format!(
                    "--bind-address is `{}`, not the node IP {}",
                    bind.unwrap_or("unset"),
                    manifest.node_ip
                ),
            );
        }
        let mut named: Vec<&str> = vec![words[0].as_str()];
        named.extend(
            words
                .iter()
                .filter_map(|w| w.split_once('=').map(|(_, v)| v))
                .filter(|v| v.starts_with('/')),
        );
        for path in named {
            let in_bundle = self.bundle.files.contains_key(&format!("rootfs{path}"));
            if !in_bundle && !manifest.external.iter().any(|e| e == path) {
                self.find(
                    &file,
                    format!(
                        "names `{path}`, which is neither in the bundle nor listed as external"
                    ),
                );
            }
        }
    }

    /// The `--config` file of a component that has one: an apiVersion the bundle's
    /// release accepts, leader election on, and the bundled kubeconfig.
    fn config_file(&mut self, c: &Component, manifest: &Manifest) {
        let Some(path) = c.config_path() else { return };
        let file = in_bundle(&path);
        let Some(text) = self.bundle.text(&file) else {
            self.find(&file, "is missing");
            return;
        };
        let config: ComponentConfig = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.find(&file, format!("is not a {} configuration ({e})", c.name));
                return;
            }
        };
        if let Ok(version) = KubeVersion::parse(&manifest.kubernetes_version) {
            let want = crate::flags::scheduler_config_api(&version);
            if config.api_version != want {
                self.find(
                    &file,
                    format!(
                        "apiVersion `{}` is not the one {} {version} reads (`{want}`)",
                        config.api_version, c.name
                    ),
                );
            }
        }
        if config.kind != "KubeSchedulerConfiguration" {
            self.find(
                &file,
                format!("kind `{}` is not KubeSchedulerConfiguration", config.kind),
            );
        }
        let kubeconfig = c.kubeconfig_path();
        if config.client_connection.kubeconfig != kubeconfig {
            self.find(
                &file,
                format!(
                    "clientConnection.kubeconfig is `{}`, not the bundled `{kubeconfig}`",
                    config.client_connection.kubeconfig
                ),
            );
        }
        if config.leader_election.leader_elect != Some(true) {
            self.find(
                &file,
                "leaderElection.leaderElect is not true: every master would schedule",
            );
        }
    }
}

/// The ExecStart command line of a unit, split into words (continuations joined,
/// double quotes removed).
fn exec_start_words(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let Some(line) = joined
        .lines()
        .find_map(|l| l.trim().strip_prefix("ExecStart="))
    else {
        return Vec::new();
    };
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => word.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

fn human(d: time::Duration) -> String {
    let days = d.whole_days();
    if days * 86_400 == d.whole_seconds() {
        format!("{days}d")
    } else {
        format!("{}h", d.whole_hours())
    }
}

/// Every master must trust the same CA and sign tokens with the same key.
fn shared_keys(bundles: &[Bundle], findings: &mut Vec<Finding>) {
    let Some(first) = bundles.first() else { return };
    for (path, what) in [(CERT_CA, "CA"), (SA_KEY, "service-account key")] {
        let reference = first.files.get(path).map(|e| &e.sha256);
        for other in &bundles[1..] {
            if other.files.get(path).map(|e| &e.sha256) != reference {
                findings.push(Finding {
                    bundle: other.name.clone(),
                    file: path.to_string(),
                    message: format!(
                        "the {what} differs from {}'s: every master must share it",
                        first.name
                    ),
                });
            }
        }
    }
}

#[derive(Deserialize)]
struct ComponentConfig {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(rename = "clientConnection", default)]
    client_connection: ClientConnection,
    #[serde(rename = "leaderElection", default)]
    leader_election: LeaderElection,
}

#[derive(Deserialize, Default)]
struct ClientConnection {
    #[serde(default)]
    kubeconfig: String,
}

#[derive(Deserialize, Default)]
struct LeaderElection {
    #[serde(rename = "leaderElect")]
    leader_elect: Option<bool>,
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<NamedUser>,
    #[serde(default)]
    contexts: Vec<NamedContext>,
    #[serde(rename = "current-context", default)]
    current_context: String,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    cluster: T,
}

#[derive(Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: Option<String>,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    user: UserEntry,
}

#[derive(Deserialize)]
struct UserEntry {
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: Option<String>,
    #[serde(rename = "client-key-data")]
    client_key_data: Option<String>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_words_join_continuations_and_unquote() {
        let unit = "[Service]\nExecStart=/opt/k8s/bin/kcm \\\n  --a=1 \\\n  \"--b=x y\" \\\n  --c\nRestart=no\n";
        assert_eq!(
            exec_start_words(unit),
            ["/opt/k8s/bin/kcm", "--a=1", "--b=x y", "--c"]
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(time::Duration::days(30)), "30d");
        assert_eq!(human(time::Duration::hours(36)), "36h");
    }
}
