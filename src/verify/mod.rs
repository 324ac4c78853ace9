//! `kube-bundle verify`: checks finished bundles offline, from the tarballs alone, as the
//! receiving site would before touching a node. A sealed bundle's private files are
//! opened with the nodes' seal keys when given, and otherwise checked only as far as
//! their sums go. It reads archives and reports findings; it never changes a bundle or
//! `pki/`.

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

use crate::check::{self, exec_start_words, flag_value, in_bundle};
use crate::component::{self, CertSpec, Component, IssuedBy, Names};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::pack::sbom;
use crate::pki;
use crate::pki::keys;
use crate::pki::seal::{self, SealKey};
use crate::pki::signature;
use crate::plan;
use crate::version::KubeVersion;

mod archive;
mod certs;
mod cluster;
mod files;

use archive::{bytes, load, open_sealed, seal_key_for, Bundle, KEEP_LIMIT};
use certs::{CERT_CA, CLIENT_CA, FRONT_PROXY_CA, SA_KEY, SIGNER_CERT};
use cluster::{same_flags, shared_keys};
use files::shared_flags;

pub struct VerifyOptions {
    pub bundles: Vec<PathBuf>,
    pub warn_within: Duration,
    /// An allowed-signers file every bundle's signature must match.
    pub trust: Option<PathBuf>,
    /// The seal key that opens the bundles' sealed files: one node's `seal.key`, or a
    /// folder holding `<node>/seal.key` for each (pki/).
    pub seal_key: Option<PathBuf>,
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
    /// Private files the bundle carries sealed; absent for a bundle without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Option<usize>,
    /// Whether the sealed files were opened and checked like the others (with a seal key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsealed: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub bundles: Vec<Checked>,
    pub findings: Vec<Finding>,
    /// Risks that do not make a bundle wrong: the root CA key on a master.
    pub warnings: Vec<Finding>,
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
    for path in &opts.bundles {
        if path.is_dir() {
            return Err(folder_for_bundle(path));
        }
    }
    if let Some(path) = opts.trust.as_deref().filter(|p| p.is_dir()) {
        return Err(Error::input(
            "--trust",
            format!("`{}` is a folder", escape(&path.display().to_string())),
        )
        .with_hint(
            "pass the allowed-signers file itself (ssh-keygen format), such as `allowed_signers`",
        ));
    }
    let trust = opts
        .trust
        .as_deref()
        .map(signature::AllowedSigners::load)
        .transpose()?;
    let mut bundles = opts
        .bundles
        .iter()
        .map(|p| load(p))
        .collect::<Result<Vec<_>>>()?;
    for bundle in &mut bundles {
        let key = match &opts.seal_key {
            Some(path) if bundle.files.contains_key(seal::SEALED_SUMS) => {
                Some(seal_key_for(path, &bundle.top)?)
            }
            _ => None,
        };
        open_sealed(bundle, key.as_ref());
    }
    let now = OffsetDateTime::now_utc();
    let warn = pki::certs::warn_window(now, opts.warn_within)?;
    let mut findings = Vec::new();
    let mut warnings = Vec::new();
    let mut checked = Vec::new();
    let mut seen = Vec::new();
    for (bundle, path) in bundles.iter().zip(&opts.bundles) {
        let mut check = Check {
            bundle,
            findings: &mut findings,
            warnings: &mut warnings,
            seen: Seen::default(),
        };
        let node = check.run(now, warn, trust.as_ref());
        seen.push((bundle, check.seen));
        checked.push(Checked {
            path: path.display().to_string(),
            node,
            files: bundle.files.len(),
            signed: bundle.files.contains_key(signature::SIG_FILE),
            sealed: bundle
                .files
                .contains_key(seal::SEALED_SUMS)
                .then_some(bundle.sealed.len()),
            unsealed: bundle
                .files
                .contains_key(seal::SEALED_SUMS)
                .then(|| bundle.files.values().all(|e| !e.locked)),
        });
    }
    shared_keys(&bundles, &mut findings);
    for row in component::all() {
        let Some(check) = row.verify.cluster else {
            continue;
        };
        let given: Vec<check::Seen> = seen
            .iter()
            .map(|(b, s)| check::Seen {
                bundle: &b.name,
                record: s
                    .records
                    .iter()
                    .find(|(name, _)| *name == row.name)
                    .map(|(_, r)| r.as_ref()),
            })
            .collect();
        check(
            &given,
            &mut Reported {
                findings: &mut findings,
                warnings: &mut warnings,
            },
        );
    }
    same_flags(&seen, &mut findings);
    Ok(Report {
        bundles: checked,
        findings,
        warnings,
    })
}

/// Text from a bundle, safe to print: control characters (and the bidirectional
/// overrides that reorder a line) are written as escapes, so a member name cannot end a
/// line, forge another or drive the terminal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`escape`], cut to a length that fits in one line of an error.
fn shown(text: &str) -> String {
    const MAX: usize = 200;
    let escaped = escape(text);
    match escaped.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} bytes)", &escaped[..at], text.len()),
        None => escaped,
    }
}

/// A folder given where a bundle (`control-plane-<node>.tar.gz`) is expected: an output
/// folder, whose bundles the hint names, or an unpacked bundle.
fn folder_for_bundle(path: &Path) -> Error {
    let shown = escape(&path.display().to_string());
    let mut bundles: Vec<String> = fs_err::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(std::result::Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| crate::plan::is_bundle_name(name))
                .collect()
        })
        .unwrap_or_default();
    bundles.sort();
    let hint = if !bundles.is_empty() {
        format!(
            "verify takes the bundles themselves: `kube-bundle verify {}/control-plane-*.tar.gz` ({} here)",
            shown.trim_end_matches('/'),
            bundles.len()
        )
    } else if path.join("install.sh").is_file() {
        "this looks like an unpacked bundle: verify the `.tar.gz` it came from (on the node, \
         `sudo ./install.sh --check` compares it with what is installed)"
            .to_string()
    } else {
        "pass the bundles (`control-plane-<node>.tar.gz`) that `build` wrote".to_string()
    };
    Error::input(format!("`{shown}`"), "is a folder, not a bundle").with_hint(hint)
}

struct Check<'a> {
    bundle: &'a Bundle,
    findings: &'a mut Vec<Finding>,
    warnings: &'a mut Vec<Finding>,
    /// What the bundle says that the checks across bundles compare.
    seen: Seen,
}

/// What one bundle says that the checks across bundles compare.
#[derive(Default)]
struct Seen {
    /// What a row's own unit check returned, by the row's name.
    records: Vec<(&'static str, Box<dyn std::any::Any>)>,
    /// The values every master must share, as (unit file, flag, value or `unset`).
    shared: Vec<(String, &'static str, String)>,
}

/// Where the rows' checks across bundles report.
struct Reported<'a> {
    findings: &'a mut Vec<Finding>,
    warnings: &'a mut Vec<Finding>,
}

impl check::Report for Reported<'_> {
    fn find(&mut self, bundle: &str, file: &str, message: String) {
        self.findings.push(Finding {
            bundle: bundle.to_string(),
            file: file.to_string(),
            message: escape(&message),
        });
    }

    fn warn(&mut self, bundle: &str, file: &str, message: String) {
        self.warnings.push(Finding {
            bundle: bundle.to_string(),
            file: file.to_string(),
            message: escape(&message),
        });
    }
}

impl check::Bundle for Check<'_> {
    fn has(&self, path: &str) -> bool {
        self.bundle.files.contains_key(path)
    }

    fn paths(&self) -> Vec<String> {
        self.bundle.files.keys().cloned().collect()
    }

    fn peek(&self, path: &str) -> Option<String> {
        self.bundle.text(path)
    }

    fn text(&mut self, path: &str) -> Option<String> {
        Check::text(self, path)
    }

    fn required(&mut self, path: &str) -> Option<String> {
        Check::required(self, path)
    }

    fn find(&mut self, file: &str, message: String) {
        Check::find(self, file, message);
    }
}

impl Check<'_> {
    fn warn(&mut self, file: &str, message: impl Into<String>) {
        self.warnings.push(Finding {
            bundle: self.bundle.name.clone(),
            file: escape(file),
            message: escape(&message.into()),
        });
    }

    fn find(&mut self, file: &str, message: impl Into<String>) {
        self.findings.push(Finding {
            bundle: self.bundle.name.clone(),
            file: escape(file),
            message: escape(&message.into()),
        });
    }

    /// A file's text, or `None` when it is absent or too large to keep (which is a
    /// finding, so it is never mistaken for a missing file).
    fn text(&mut self, path: &str) -> Option<String> {
        let entry = self.bundle.files.get(path)?;
        if entry.bytes.is_none() && !entry.locked {
            self.find(
                path,
                format!(
                    "is larger than the {} verify reads of a file",
                    bytes(KEEP_LIMIT)
                ),
            );
        }
        self.bundle.text(path)
    }

    /// [`Check::text`] of a file the bundle must have.
    fn required(&mut self, path: &str) -> Option<String> {
        if !self.bundle.files.contains_key(path) {
            self.find(path, "is missing");
        }
        self.text(path)
    }

    /// Runs every check on one bundle and returns its node name.
    fn run(
        &mut self,
        now: OffsetDateTime,
        warn: time::Duration,
        trust: Option<&signature::AllowedSigners>,
    ) -> String {
        for (file, message) in &self.bundle.findings {
            self.find(file, message.as_str());
        }
        self.checksums();
        self.sbom();
        self.signature(trust);
        let manifest = self.manifest();
        let node = manifest
            .as_ref()
            .map(|m| escape(&m.node))
            .unwrap_or_default();
        let components = manifest
            .as_ref()
            .map(|m| self.components(m))
            .unwrap_or_default();
        let serves_api = components.iter().any(|c| c.serves_api);
        let names = manifest
            .as_ref()
            .map(|m| self.expected_names(m, &components))
            .unwrap_or_default();
        if let Some(ca) = self.ca(now, warn) {
            // A component's certificates, and those it needs from another one the bundle
            // carries, with the component that carries them.
            let mut specs: Vec<(&Component, &CertSpec)> = components
                .iter()
                .flat_map(|c| c.certs.iter().map(move |s| (*c, s)))
                .collect();
            specs.extend(components.iter().flat_map(|c| {
                c.certs_from
                    .iter()
                    .filter(|(other, _)| components.iter().any(|o| o.name == *other))
                    .map(move |(_, spec)| (*c, spec))
            }));
            // The CAs besides the root that the bundle's certificates chain to, in the order
            // they first appear; the front proxy's has checks of its own.
            let mut own_cas: Vec<(&component::CaSpec, Option<Vec<u8>>)> = Vec::new();
            for (_, spec) in &specs {
                if let IssuedBy::Ca(ca) = spec.issued_by {
                    if *ca != component::FRONT_PROXY_CA && !own_cas.iter().any(|(c, _)| *c == ca) {
                        own_cas.push((ca, self.ca_cert(&in_bundle(ca.node_path), now, warn)));
                    }
                }
            }
            let front_proxy = if specs
                .iter()
                .any(|(_, s)| s.issued_by == IssuedBy::Ca(&component::FRONT_PROXY_CA))
                || self.bundle.files.contains_key(FRONT_PROXY_CA)
            {
                self.front_proxy_ca(&ca, now, warn)
            } else {
                None
            };
            for (owner, spec) in specs {
                let issuer = match spec.issued_by {
                    IssuedBy::Root => Some(&ca),
                    IssuedBy::Ca(ca) if *ca == component::FRONT_PROXY_CA => front_proxy.as_ref(),
                    IssuedBy::Ca(ca) => own_cas
                        .iter()
                        .find(|(c, _)| *c == ca)
                        .and_then(|(_, der)| der.as_ref()),
                };
                self.leaf(owner, spec, issuer, &names, now, warn);
            }
            if serves_api || self.bundle.files.contains_key(CLIENT_CA) {
                self.client_ca(&ca);
            }
        }
        self.service_account();
        for row in component::all() {
            if let Some(check) = row.verify.files {
                check(self, manifest.as_ref(), components.contains(&row));
            }
        }
        self.outside_pairs(&components, now, warn);
        for c in &components {
            if c.kubeconfig {
                self.kubeconfig(c);
            }
            if let Some(m) = &manifest {
                self.unit(c, m);
                self.config_file(c, m);
            }
        }
        if let Some(m) = &manifest {
            for c in &components {
                if let Some(check) = c.verify.unit {
                    if let Some(record) = check(self, m, &components) {
                        self.seen.records.push((c.name, record));
                    }
                }
            }
        }
        for c in &components {
            self.guards(c, manifest.as_ref());
        }
        self.ca_keys();
        self.shared_flags(&components);
        node
    }

    fn checksums(&mut self) {
        let Some(sums) = self.required("SHA256SUMS") else {
            return;
        };
        let mut listed = std::collections::BTreeSet::new();
        for line in sums.split_terminator('\n') {
            let Some((sha, path)) = crate::digest::parse_sha256sum_line(line) else {
                self.find("SHA256SUMS", format!("malformed line `{}`", shown(line)));
                continue;
            };
            listed.insert(path.to_string());
            match self.bundle.files.get(path) {
                None => self.find(path, "is listed in SHA256SUMS but missing"),
                Some(e) if e.sha256 != sha => {
                    self.find(path, "does not match its checksum in SHA256SUMS");
                }
                Some(_) => {}
            }
        }
        let mut mismatched = Vec::new();
        for (path, sha) in &self.bundle.sealed {
            listed.insert(path.clone());
            if self
                .bundle
                .files
                .get(path)
                .is_some_and(|e| e.sha256 != *sha)
            {
                mismatched.push(path.clone());
            }
        }
        for path in mismatched {
            self.find(&path, "does not match its checksum in SHA256SUMS.sealed");
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
        let sealed_names: std::collections::BTreeSet<String> = self
            .bundle
            .sealed
            .keys()
            .filter_map(|p| seal::sealed_path(p))
            .collect();
        self.find_unknown(
            "sealed/",
            &sealed_names,
            "is sealed but not listed in SHA256SUMS.sealed",
        );
    }

    /// sbom.spdx.json lists exactly the files SHA256SUMS lists (but itself) with the same
    /// sha256, and names the origin of every binary. It is held against SHA256SUMS, which
    /// [`Check::checksums`] holds against the files, so each fault is one finding.
    fn sbom(&mut self) {
        let Some(text) = self.required(sbom::FILE) else {
            return;
        };
        let doc: sbom::Document = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                self.find(sbom::FILE, format!("is not an SPDX JSON document ({e})"));
                return;
            }
        };
        if doc.spdx_version != sbom::SPDX_VERSION {
            self.find(
                sbom::FILE,
                format!("is `{}`, not {}", doc.spdx_version, sbom::SPDX_VERSION),
            );
        }
        // A missing or malformed SHA256SUMS is already a finding.
        let Some(sums) = self.bundle.text("SHA256SUMS") else {
            return;
        };
        let Ok(sums) = crate::digest::parse_sha256sums(&sums) else {
            return;
        };
        let mut want: BTreeMap<&str, &str> = sums
            .into_iter()
            .map(|(sha, path)| (path, sha))
            .filter(|(path, _)| *path != sbom::FILE)
            .collect();
        let mut findings = Vec::new();
        for f in &doc.files {
            let path = f.path();
            match (want.remove(path), f.sha256()) {
                (None, _) => findings.push(format!("lists `{path}`, which SHA256SUMS does not")),
                (Some(_), None) => findings.push(format!("gives no SHA256 for `{path}`")),
                (Some(listed), Some(sha)) if listed != sha => findings.push(format!(
                    "gives `{path}` the sha256 {sha}, but SHA256SUMS has {listed}"
                )),
                _ => {}
            }
        }
        for path in want.keys() {
            findings.push(format!("does not list `{path}`"));
        }
        let mut origins = std::collections::BTreeSet::new();
        for (package, file) in sbom::binaries(&doc) {
            match file {
                Some(f) if f.sha256().is_some() && f.sha256() == package.sha256() => {
                    if package.file_name.as_deref().is_some_and(|n| !n.is_empty()) {
                        origins.insert(f.path().to_string());
                    }
                }
                _ => findings.push(format!(
                    "package `{}` is not the sha256 of a file it lists",
                    package.name
                )),
            }
        }
        let bin_dir = format!("{}/", in_bundle(component::paths::BIN_DIR));
        for f in &doc.files {
            if f.path().starts_with(&bin_dir) && !origins.contains(f.path()) {
                findings.push(format!("names no origin for the binary `{}`", f.path()));
            }
        }
        for message in findings {
            self.find(sbom::FILE, message);
        }
    }

    /// A finding for every file under `folder` that `known` does not hold.
    fn find_unknown(
        &mut self,
        folder: &str,
        known: &std::collections::BTreeSet<String>,
        message: &str,
    ) {
        let unknown: Vec<String> = self
            .bundle
            .files
            .keys()
            .filter(|p| p.starts_with(folder) && !known.contains(*p))
            .cloned()
            .collect();
        for path in unknown {
            self.find(&path, message);
        }
    }

    fn signature(&mut self, trust: Option<&signature::AllowedSigners>) {
        let pinned = self
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
            self.text(signature::SIG_FILE),
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
        let text = self.required("manifest.json")?;
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
                    let sealed = self.bundle.sealed.contains_key(&f.path);
                    if f.sealed != sealed {
                        self.find(
                            &f.path,
                            if sealed {
                                "is sealed but manifest.json says it is in clear"
                            } else {
                                "is in clear but manifest.json says it is sealed"
                            },
                        );
                    } else if !sealed
                        && self.bundle.files.contains_key(seal::SEALED_SUMS)
                        && seal::is_private(e.mode)
                        && f.path.starts_with("rootfs/")
                    {
                        self.find(
                            &f.path,
                            "is a private file in clear in a bundle whose private files are sealed",
                        );
                    }
                }
            }
        }
        self.find_unknown("rootfs/", &described, "is not described in manifest.json");
        for part in component::all()
            .into_iter()
            .filter_map(|c| c.manifest.as_ref())
        {
            if let Some(Err(e)) = manifest.own(part.key).map(part.read) {
                self.find("manifest.json", format!("is not a bundle manifest ({e})"));
                return None;
            }
        }
        Some(manifest)
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
                    format!("names an unknown component `{}`", escape(name)),
                ),
            }
        }
        found
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::certs::{human, pem_blocks};
    use super::files::working_directory;
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
    fn a_flag_takes_its_last_value_and_a_bare_boolean_is_true() {
        let words: Vec<String> = [
            "/bin/x",
            "--a=1",
            "--ab=2",
            "--a=3",
            "--b",
            "--b=false",
            "--c",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(flag_value(&words, "a"), Some("3"));
        assert_eq!(flag_value(&words, "ab"), Some("2"));
        assert_eq!(flag_value(&words, "b"), Some("false"));
        assert_eq!(flag_value(&words, "c"), Some("true"));
        assert_eq!(flag_value(&words, "d"), None);
    }

    #[test]
    fn every_pem_block_is_found_even_after_a_broken_one() {
        let good = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3]));
        let text =
            format!("kind: Policy\n-----BEGIN BROKEN-----\n!!\n-----END BROKEN-----\n{good}");
        let blocks = pem_blocks(text.as_bytes());
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].contents(), [1, 2, 3]);
    }

    #[test]
    fn the_working_directory_is_read_from_the_unit() {
        let unit = "[Service]\nWorkingDirectory=/data/k8s/k8s/kube-apiserver/\nExecStart=/x\n";
        assert_eq!(
            working_directory(unit).as_deref(),
            Some("/data/k8s/k8s/kube-apiserver")
        );
        assert_eq!(working_directory("[Service]\nExecStart=/x\n"), None);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(time::Duration::days(30)), "30d");
        assert_eq!(human(time::Duration::hours(36)), "36h");
    }
}
