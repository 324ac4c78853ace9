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

use crate::component::paths::inside;
use crate::component::{self, CertSpec, Component, IssuedBy, Names};
use crate::error::{Error, Result};
use crate::keys;
use crate::manifest::{Manifest, ManifestApiServer, ManifestEtcd};
use crate::pki;
use crate::plan;
use crate::sbom;
use crate::seal::{self, SealKey};
use crate::signature;
use crate::version::KubeVersion;

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

/// Files up to this size are kept in memory for the checks that read them; larger ones
/// (the binary) are only hashed, and a check that needs one reports it.
const KEEP_LIMIT: u64 = 4 << 20;
/// Limits on what one archive may make verify hold, so a small hostile file cannot make
/// it allocate gigabytes. Past any of them the archive is refused as unreadable (exit 2),
/// naming the limit. Real bundles stay far below every one.
const NAME_LIMIT: u64 = 4096;
const PAX_LIMIT: u64 = 64 << 10;
const TOTAL_LIMIT: u64 = 64 << 20;
const ENTRY_LIMIT: usize = 10_000;

struct Entry {
    mode: u32,
    sha256: String,
    bytes: Option<Vec<u8>>,
    /// A sealed file verify has no key for: its sha256 is the one SHA256SUMS.sealed
    /// gives, and the checks that read it pass it by.
    locked: bool,
}

struct Bundle {
    /// The tarball's file name, for findings.
    name: String,
    top: String,
    files: BTreeMap<String, Entry>,
    /// (file, message) about the archive itself: links, devices, names leaving the top
    /// folder, repeated members; and sealed files that do not open.
    findings: Vec<(String, String)>,
    /// rootfs path → sha256 of every file SHA256SUMS.sealed lists.
    sealed: BTreeMap<String, String>,
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
    let warn = warn_window(now, opts.warn_within)?;
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
    etcd_cluster(&seen, &mut findings, &mut warnings);
    same_flags(&seen, &mut findings);
    Ok(Report {
        bundles: checked,
        findings,
        warnings,
    })
}

/// The seal key for the bundle with top folder `top`: `path` itself, or, when it is a
/// folder (pki/), the node's `seal.key` in it.
fn seal_key_for(path: &Path, top: &str) -> Result<SealKey> {
    if !path.is_dir() {
        return SealKey::load(path).map_err(|e| {
            e.with_hint("pass --seal-key one node's pki/<node>/seal.key, or pki/ for every node's")
        });
    }
    let node = top
        .strip_prefix(crate::component::BUNDLE_PREFIX)
        .and_then(|n| n.strip_prefix('-'))
        .unwrap_or(top);
    let file = path.join(node).join(seal::KEY_FILE);
    if !file.is_file() {
        return Err(Error::input(
            "--seal-key",
            format!("`{}` holds no `{node}/{}`", path.display(), seal::KEY_FILE),
        )
        .with_hint(
            "pass the pki/ folder the bundles were built with, or the node's own seal.key",
        ));
    }
    SealKey::load(&file)
}

/// Reads SHA256SUMS.sealed and puts each sealed file in place under its rootfs path:
/// opened with `key`, or without one as a locked entry carrying its listed sha256. A key
/// that does not open a file is one finding for the bundle.
fn open_sealed(bundle: &mut Bundle, key: Option<&SealKey>) {
    let Some(listing) = bundle.text(seal::SEALED_SUMS) else {
        return;
    };
    for line in listing.lines() {
        match line.split_once("  ") {
            Some((sha, path))
                if sha.len() == 64
                    && sha.bytes().all(|b| b.is_ascii_hexdigit())
                    && seal::sealed_path(path).is_some() =>
            {
                bundle.sealed.insert(path.to_string(), sha.to_string());
            }
            _ => bundle.findings.push((
                seal::SEALED_SUMS.into(),
                format!("malformed line `{}`", shown(line)),
            )),
        }
    }
    let mut refused = Vec::new();
    for (path, sha) in bundle.sealed.clone() {
        let name = seal::sealed_path(&path).expect("checked above");
        let Some(enc) = bundle.files.get(&name) else {
            bundle.findings.push((
                shown(&name),
                "is listed in SHA256SUMS.sealed but missing".into(),
            ));
            continue;
        };
        if bundle.files.contains_key(&path) {
            bundle.findings.push((
                shown(&path),
                "is in the bundle both sealed and in clear".into(),
            ));
            continue;
        }
        let opened = key.and_then(|k| enc.bytes.as_deref().and_then(|b| k.unseal(b)));
        if key.is_some() && opened.is_none() {
            refused.push(name);
        }
        let entry = match opened {
            Some(plain) => Entry {
                mode: enc.mode,
                sha256: hex::encode(Sha256::digest(&plain)),
                bytes: Some(plain),
                locked: false,
            },
            None => Entry {
                mode: enc.mode,
                sha256: sha,
                bytes: None,
                locked: true,
            },
        };
        bundle.files.insert(path, entry);
    }
    if let Some(first) = refused.first() {
        bundle.findings.push((
            shown(first),
            format!(
                "the seal key does not open it{}: it is not this node's key",
                match refused.len() {
                    1 => String::new(),
                    n => format!(" nor {} other sealed files", n - 1),
                }
            ),
        ));
    }
}

/// `--warn-within` as a span that can be added to `now`: one that reaches past the
/// year 9999 is refused, not left to overflow.
pub(crate) fn warn_window(now: OffsetDateTime, within: Duration) -> Result<time::Duration> {
    time::Duration::try_from(within)
        .ok()
        .filter(|warn| now.checked_add(*warn).is_some())
        .ok_or_else(|| {
            Error::input(
                "--warn-within",
                match within.as_secs() {
                    s if s % 86_400 == 0 => format!("{}d reaches past the year 9999", s / 86_400),
                    s => format!("{s}s reaches past the year 9999"),
                },
            )
            .with_hint("give a window such as `30d` or `365d`")
        })
}

fn load(path: &Path) -> Result<Bundle> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let location = format!("`{}`", escape(&path.display().to_string()));
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::input(
            location.clone(),
            format!("is not a readable .tar.gz ({})", shown(&e.to_string())),
        )
        .with_hint("the file is truncated or damaged: copy it again from the build host")
    };
    let over = |what: &str, limit: &str| {
        Error::input(
            location.clone(),
            format!("holds {what} over verify's limit of {limit}"),
        )
        .with_hint("no bundle kube-bundle builds comes near it: this archive is not one of them")
    };
    let file =
        fs_err::File::open(path).map_err(|e| Error::input(location.clone(), e.to_string()))?;
    // Bundles may be multi-member gzip: GzDecoder would stop after the first member.
    let mut archive = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
    // Raw entries: the tar crate would read GNU long names and PAX headers whole, at
    // whatever size the archive claims. They are read here, within limits.
    let entries = archive.entries().map_err(|e| unreadable(&e))?.raw(true);
    let mut top: Option<String> = None;
    let mut files = BTreeMap::new();
    let mut findings = Vec::new();
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax_path: Option<Vec<u8>> = None;
    let mut total = 0u64;
    for (count, entry) in entries.enumerate() {
        if count >= ENTRY_LIMIT {
            return Err(over("a number of entries", &ENTRY_LIMIT.to_string()));
        }
        let mut entry = entry.map_err(|e| unreadable(&e))?;
        let kind = entry.header().entry_type();
        let size = entry.header().entry_size().map_err(|e| unreadable(&e))?;
        if kind.is_gnu_longname() || kind.is_gnu_longlink() {
            if size > NAME_LIMIT {
                return Err(over("a member name", &bytes(NAME_LIMIT)));
            }
            let mut text = read_small(&mut entry, size).map_err(|e| unreadable(&e))?;
            while text.last() == Some(&0) {
                text.pop();
            }
            // A long link name belongs to a link, which is a finding on its own.
            if kind.is_gnu_longname() {
                long_name = Some(text);
            }
            continue;
        }
        if kind.is_pax_global_extensions() {
            // Global headers change how every later member reads, and readers disagree on
            // them (the tar crate lists one as an entry, GNU tar applies it): kube-bundle
            // never writes one, and GNU tar and bsdtar repacking a bundle write none.
            findings.push((
                shown(&String::from_utf8_lossy(&entry.path_bytes())),
                "is a PAX global header, which kube-bundle never writes".to_string(),
            ));
            continue;
        }
        if kind.is_pax_local_extensions() {
            if size > PAX_LIMIT {
                return Err(over("a PAX header", &bytes(PAX_LIMIT)));
            }
            let text = read_small(&mut entry, size).map_err(|e| unreadable(&e))?;
            let global = kind.is_pax_global_extensions();
            for record in tar::PaxExtensions::new(&text) {
                let record = record.map_err(|e| unreadable(&e))?;
                let key = record.key().map_err(|e| unreadable(&e))?;
                match key {
                    "path" if !global => {
                        if record.value_bytes().len() as u64 > NAME_LIMIT {
                            return Err(over("a member name", &bytes(NAME_LIMIT)));
                        }
                        pax_path = Some(record.value_bytes().to_vec());
                    }
                    // Times and owners change nothing verify or install.sh relies on.
                    "mtime" | "atime" | "ctime" | "uid" | "gid" | "uname" | "gname" => {}
                    // A size or name record changes how tar reads what follows, and
                    // extended attributes would reach the node: kube-bundle writes none.
                    _ => {
                        return Err(Error::input(
                            location.clone(),
                            format!(
                                "holds a PAX {} record `{}`, which kube-bundle never writes",
                                if global { "global" } else { "extended" },
                                shown(key)
                            ),
                        ))
                    }
                }
            }
            continue;
        }
        let raw_name = match (pax_path.take(), long_name.take()) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => entry.path_bytes().into_owned(),
        };
        let full = String::from_utf8_lossy(&raw_name).into_owned();
        total += full.len() as u64;
        // `./top/x`, `top//x` and `top/./x` unpack to the same place as `top/x`.
        let parts: Vec<&str> = full
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let Some((&first, rest)) = parts.split_first() else {
            if full.starts_with('/') {
                findings.push((shown(&full), "is an absolute path".to_string()));
            }
            continue;
        };
        if full.starts_with('/') || first == ".." || rest.contains(&"..") {
            findings.push((
                shown(&full),
                "leaves the bundle's top folder (an absolute path or `..`)".to_string(),
            ));
            continue;
        }
        match &top {
            None => top = Some(first.to_string()),
            Some(t) if t != first => {
                return Err(Error::input(
                    location.clone(),
                    format!(
                        "holds more than one top folder (`{}` and `{}`)",
                        shown(t),
                        shown(first)
                    ),
                ))
            }
            Some(_) => {}
        }
        let rest = rest.join("/");
        let what = if rest.is_empty() { first } else { &rest };
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            findings.push((
                shown(what),
                format!(
                    "is {}, but a bundle holds only regular files and folders",
                    kind_name(kind)
                ),
            ));
            continue;
        }
        if rest.is_empty() {
            findings.push((shown(first), "is a file in place of the top folder".into()));
            continue;
        }
        let mode = entry.header().mode().map_err(|e| unreadable(&e))?;
        if mode & !0o777 != 0 {
            findings.push((
                shown(&rest),
                format!("has mode {mode:o}, with bits beyond rwx (setuid, setgid, sticky or a file type)"),
            ));
        }
        let mut hasher = Sha256::new();
        let mut kept = (size <= KEEP_LIMIT).then(Vec::new);
        if kept.is_some() {
            total += size;
            if total > TOTAL_LIMIT {
                return Err(over(
                    "files to check (names and files up to 4 MiB, together)",
                    &bytes(TOTAL_LIMIT),
                ));
            }
        }
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
        if files.contains_key(&rest) {
            findings.push((
                shown(&rest),
                "appears more than once in the archive; tar keeps the last".into(),
            ));
        }
        files.insert(
            rest,
            Entry {
                mode,
                sha256: hex::encode(hasher.finalize()),
                bytes: kept,
                locked: false,
            },
        );
    }
    if long_name.is_some() || pax_path.is_some() {
        return Err(unreadable(&"it ends with a long name that names no member"));
    }
    let Some(top) = top else {
        return Err(Error::input(location, "is an empty archive"));
    };
    Ok(Bundle {
        name: escape(&name),
        top,
        files,
        findings,
        sealed: BTreeMap::new(),
    })
}

/// Every PEM block in `bytes`, wherever it starts: one that cannot be read does not hide
/// the ones after it.
fn pem_blocks(bytes: &[u8]) -> Vec<pem::Pem> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(found) = bytes[at..].windows(BEGIN.len()).position(|w| w == BEGIN) {
        let start = at + found;
        if let Ok(block) = pem::parse(&bytes[start..]) {
            blocks.push(block);
        }
        at = start + BEGIN.len();
    }
    blocks
}

/// Reads the whole of a small entry whose size was checked against a limit.
fn read_small(entry: &mut impl Read, size: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(size as usize);
    entry.take(size).read_to_end(&mut data)?;
    Ok(data)
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "a symbolic link".into(),
        tar::EntryType::Link => "a hard link".into(),
        tar::EntryType::Char => "a character device".into(),
        tar::EntryType::Block => "a block device".into(),
        tar::EntryType::Fifo => "a FIFO".into(),
        tar::EntryType::GNUSparse => "a sparse file".into(),
        other => format!(
            "an entry of type `{}`",
            escape(&(other.as_byte() as char).to_string())
        ),
    }
}

fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
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

struct Check<'a> {
    bundle: &'a Bundle,
    findings: &'a mut Vec<Finding>,
    warnings: &'a mut Vec<Finding>,
    /// What the bundle says that the checks across bundles compare.
    seen: Seen,
}

/// What one bundle says about the etcd cluster, for the checks across bundles.
#[derive(Default)]
struct Seen {
    /// Its etcd member, when it carries etcd and the unit could be read.
    etcd: Option<EtcdMember>,
    /// kube-apiserver's `--etcd-servers`, in a bundle with etcd.
    etcd_servers: Option<Vec<String>>,
    /// The values every master must share, as (unit file, flag, value or `unset`).
    shared: Vec<(String, &'static str, String)>,
}

/// Flags whose value every master must share, as (component, flag), from the rows'
/// [`Component::shared_flags`]: one service range, one token issuer.
fn shared_flags() -> Vec<(&'static Component, &'static str)> {
    component::all()
        .into_iter()
        .flat_map(|c| c.shared_flags.iter().map(move |flag| (c, *flag)))
        .collect()
}

/// One bundle's etcd member, from its unit's flags.
#[derive(Clone)]
struct EtcdMember {
    name: String,
    /// `--initial-advertise-peer-urls`.
    peer_url: String,
    /// `--advertise-client-urls`.
    client_urls: Vec<String>,
    /// `--initial-cluster`, as (name, peer URL) pairs.
    cluster: Vec<(String, String)>,
    /// `--initial-cluster-state`: `new` (bootstraps) or `existing` (joins).
    state: String,
    token: String,
}

const CERT_CA: &str = "rootfs/etc/kubernetes/cert/ca.pem";
const SIGNER_CERT: &str = "rootfs/etc/kubernetes/cert/csr-signer.pem";
const SIGNER_KEY: &str = "rootfs/etc/kubernetes/cert/csr-signer-key.pem";
const CERT_CA_KEY: &str = "rootfs/etc/kubernetes/cert/ca-key.pem";
const SA_KEY: &str = "rootfs/etc/kubernetes/cert/sa.key";
const SA_PUB: &str = "rootfs/etc/kubernetes/cert/sa.pub";
const FRONT_PROXY_CA: &str = "rootfs/etc/kubernetes/cert/front-proxy-ca.pem";
const CLIENT_CA: &str = "rootfs/etc/kubernetes/cert/client-ca.pem";
const ENCRYPTION_CONFIG: &str = "rootfs/etc/kubernetes/encryption-config.yaml";
const ETCD_CA: &str = "rootfs/etc/kubernetes/cert/etcd-ca.pem";
const ETCD_CLIENT_CERT: &str = "rootfs/etc/kubernetes/cert/apiserver-etcd-client.pem";
const ETCD_CLIENT_KEY: &str = "rootfs/etc/kubernetes/cert/apiserver-etcd-client-key.pem";

/// A node path as it sits in a bundle.
fn in_bundle(node_path: &str) -> String {
    format!("rootfs{node_path}")
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
        let apiserver = components.iter().any(|c| c.serves_api);
        let names = manifest
            .as_ref()
            .map(|m| self.expected_names(m, apiserver))
            .unwrap_or_default();
        let member = components.iter().copied().find(|c| is_member(c));
        let etcd = member.is_some();
        if let Some(ca) = self.ca(now, warn) {
            let mut specs: Vec<&CertSpec> = components.iter().flat_map(|c| c.certs).collect();
            // With etcd in the bundle, the apiserver's client certificate for it is ours:
            // what a component needs from another one the bundle carries.
            specs.extend(components.iter().flat_map(|c| {
                c.certs_from
                    .iter()
                    .filter(|(other, _)| components.iter().any(|o| o.name == *other))
                    .map(|(_, spec)| spec)
            }));
            let etcd_ca = if etcd {
                self.ca_cert(ETCD_CA, now, warn)
            } else {
                None
            };
            let front_proxy = if specs.iter().any(|s| s.issued_by == IssuedBy::FrontProxy)
                || self.bundle.files.contains_key(FRONT_PROXY_CA)
            {
                self.front_proxy_ca(&ca, now, warn)
            } else {
                None
            };
            for spec in specs {
                let issuer = match spec.issued_by {
                    IssuedBy::Root => Some(&ca),
                    IssuedBy::FrontProxy => front_proxy.as_ref(),
                    IssuedBy::Etcd => etcd_ca.as_ref(),
                };
                self.leaf(spec, issuer, &names, now, warn);
            }
            if apiserver || self.bundle.files.contains_key(CLIENT_CA) {
                self.client_ca(&ca);
            }
        }
        self.service_account();
        if apiserver || self.bundle.files.contains_key(ENCRYPTION_CONFIG) {
            self.encryption_config(manifest.as_ref());
        }
        // An external etcd's files; the bundled etcd's are checked with the certificates.
        if !etcd {
            self.etcd_client(now, warn);
        }
        for c in &components {
            if c.kubeconfig {
                self.kubeconfig(c);
            }
            if let Some(m) = &manifest {
                self.unit(c, m);
                self.config_file(c, m);
            }
        }
        if let (Some(m), Some(member)) = (&manifest, member) {
            self.seen.etcd = self.etcd_unit(member, m);
            if let Some(api) = components.iter().find(|c| c.serves_api) {
                self.seen.etcd_servers = self.etcd_servers(api);
            }
        }
        for c in &components {
            self.guards(c, manifest.as_ref());
        }
        self.ca_keys();
        self.shared_flags(&components);
        node
    }

    /// A component's flags that decide who may do what ([`Component::guards`]) hold
    /// kube-bundle's values, and the API server's service range is the one its serving
    /// certificate was made for.
    fn guards(&mut self, c: &Component, manifest: Option<&Manifest>) {
        if c.guards.is_empty() && !c.serves_api {
            return;
        }
        let file = in_bundle(&c.unit_path());
        let Some(text) = self.bundle.text(&file) else {
            return;
        };
        let words = exec_start_words(&text);
        if words.is_empty() {
            return;
        }
        for (flag, want, risk) in c.guards {
            let have = flag_value(&words, flag);
            if have != Some(*want) {
                self.find(
                    &file,
                    format!(
                        "--{flag} is `{}`, not kube-bundle's `{want}`: {risk}",
                        have.unwrap_or("unset")
                    ),
                );
            }
        }
        if !c.serves_api {
            return;
        }
        let service_ip = manifest
            .and_then(|m| m.apiserver.as_ref())
            .map(|a| a.service_ip.clone());
        let range = flag_value(&words, "service-cluster-ip-range");
        match range.map(|r| (r, r.parse::<ipnet::IpNet>())) {
            None => self.find(&file, "--service-cluster-ip-range is not set"),
            Some((r, Err(_))) => self.find(
                &file,
                format!("--service-cluster-ip-range `{r}` is not a CIDR"),
            ),
            Some((r, Ok(net))) => {
                let first = crate::config::first_ip(&net).to_string();
                if let Some(ip) = service_ip.filter(|ip| *ip != first) {
                    self.find(
                        &file,
                        format!("--service-cluster-ip-range `{r}` gives the `kubernetes` service {first}, but manifest.json's apiserver.service-ip (the serving certificate's) is {ip}"),
                    );
                }
            }
        }
    }

    /// Records the values of [`shared_flags`] for the checks across bundles, and finds
    /// components of this bundle that disagree on one.
    fn shared_flags(&mut self, components: &[&'static Component]) {
        let mut seen: Vec<(String, &'static str, String)> = Vec::new();
        for (row, flag) in shared_flags() {
            let Some(c) = components.iter().find(|c| *c == &row) else {
                continue;
            };
            let file = in_bundle(&c.unit_path());
            let Some(text) = self.bundle.text(&file) else {
                continue;
            };
            let value = flag_value(&exec_start_words(&text), flag)
                .unwrap_or("unset")
                .to_string();
            if let Some((other, _, v)) = seen.iter().find(|(_, f, v)| *f == flag && *v != value) {
                let message = format!(
                    "--{flag} is `{value}`, but {} of this bundle gives `{v}`: they must agree",
                    other.rsplit('/').next().unwrap_or(other)
                );
                self.find(&file, message);
            }
            seen.push((file, flag, value));
        }
        self.seen.shared = seen;
    }

    /// The names the node's certificates must carry, from the manifest: the node's own
    /// and, for a bundle with kube-apiserver, those of its serving certificate. A value
    /// the manifest gives that could not have come from a valid inventory is a finding.
    fn expected_names(&mut self, manifest: &Manifest, apiserver: bool) -> ExpectedNames {
        let mut names = ExpectedNames {
            node_name: manifest.node.clone(),
            ..ExpectedNames::default()
        };
        match manifest.node_ip.parse::<std::net::IpAddr>() {
            Ok(ip) => names.node.push(format!("IP:{ip}")),
            Err(_) => self.find(
                "manifest.json",
                format!("node-ip `{}` is not an IP address", manifest.node_ip),
            ),
        }
        names.node.insert(0, "IP:127.0.0.1".to_string());
        names.node.push(format!("DNS:{}", manifest.node));
        if !apiserver {
            return names;
        }
        let mut api = names.node.clone();
        api.extend(
            ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
                .map(|n| format!("DNS:{n}")),
        );
        let Some(ManifestApiServer {
            service_ip,
            dns_domain,
            extra_sans,
        }) = &manifest.apiserver
        else {
            self.find(
                "manifest.json",
                "has no `apiserver` object although the bundle carries kube-apiserver: the serving certificate's service IP, DNS-domain and extra names cannot be checked",
            );
            names.apiserver = Some(api);
            return names;
        };
        match service_ip.parse::<std::net::IpAddr>() {
            Ok(ip) => api.push(format!("IP:{ip}")),
            Err(_) => self.find(
                "manifest.json",
                format!("apiserver.service-ip `{service_ip}` is not an IP address"),
            ),
        }
        if dns_domain.is_empty() || dns_domain.ends_with('.') {
            self.find(
                "manifest.json",
                format!(
                    "apiserver.dns-domain `{dns_domain}` is not a DNS domain like `cluster.local`"
                ),
            );
        } else {
            api.push(format!("DNS:kubernetes.default.svc.{dns_domain}"));
        }
        for (i, san) in extra_sans.iter().enumerate() {
            match san.parse::<std::net::IpAddr>() {
                Ok(ip) => api.push(format!("IP:{}", ip.to_canonical())),
                Err(_) if san.is_empty() || san.ends_with('.') => self.find(
                    "manifest.json",
                    format!("apiserver.extra-sans[{i}] `{san}` is not a DNS name without a trailing dot"),
                ),
                Err(_) => api.push(format!("DNS:{}", san.to_ascii_lowercase())),
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        api.retain(|n| seen.insert(n.clone()));
        names.apiserver = Some(api);
        names
    }

    fn checksums(&mut self) {
        let Some(sums) = self.required("SHA256SUMS") else {
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
        let Ok(sums) = crate::bundle::parse_sha256sums(&sums) else {
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
        Some(manifest)
    }

    fn pem_der(&mut self, path: &str) -> Option<Vec<u8>> {
        let text = self.text(path)?;
        match pem::parse(&text) {
            Ok(p) if p.tag() == "CERTIFICATE" => Some(p.into_contents()),
            _ => {
                self.find(path, "is not a PEM certificate");
                None
            }
        }
    }

    fn key(&mut self, path: &str) -> Option<KeyPair> {
        let text = self.text(path)?;
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
                    format!("names an unknown component `{}`", escape(name)),
                ),
            }
        }
        found
    }

    /// A bundled CA certificate at `path`, checked (a CA, within its validity), as DER.
    fn ca_cert(
        &mut self,
        path: &str,
        now: OffsetDateTime,
        warn: time::Duration,
    ) -> Option<Vec<u8>> {
        let Some(ca_der) = self.pem_der(path) else {
            if !self.bundle.files.contains_key(path) {
                self.find(path, "is missing");
            }
            return None;
        };
        let Ok((_, ca)) = X509Certificate::from_der(&ca_der) else {
            self.find(path, "is not an X.509 certificate");
            return None;
        };
        if !ca
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
        {
            self.find(path, "is not a CA certificate");
        }
        self.expiry(path, &ca, now, warn);
        Some(ca_der)
    }

    /// The aggregation layer's CA, checked, as DER. It must not be the root CA: every
    /// client certificate the root issues could then act as the front proxy and name any
    /// user in request headers.
    fn front_proxy_ca(
        &mut self,
        root_der: &[u8],
        now: OffsetDateTime,
        warn: time::Duration,
    ) -> Option<Vec<u8>> {
        let der = self.ca_cert(FRONT_PROXY_CA, now, warn)?;
        let same_key = match (
            X509Certificate::from_der(&der),
            X509Certificate::from_der(root_der),
        ) {
            (Ok((_, fp)), Ok((_, root))) => fp.public_key().raw == root.public_key().raw,
            _ => false,
        };
        if same_key {
            self.find(
                FRONT_PROXY_CA,
                "is the root CA (same key as ca.pem): every client certificate it issues could act as the front proxy",
            );
        }
        Some(der)
    }

    /// kube-apiserver's `--client-ca-file`: the bundled CA, then the CSR signing CA when
    /// the bundle carries one, then at most the signing CA that one replaced (another
    /// CA), and nothing else.
    fn client_ca(&mut self, ca_der: &[u8]) {
        let Some(text) = self.required(CLIENT_CA) else {
            return;
        };
        let blocks = match pem::parse_many(&text) {
            Ok(blocks) => blocks,
            Err(e) => {
                self.find(CLIENT_CA, format!("is not PEM ({e})"));
                return;
            }
        };
        let have: Vec<Vec<u8>> = blocks
            .iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.contents().to_vec())
            .collect();
        if have.len() != blocks.len() {
            self.find(CLIENT_CA, "holds PEM blocks that are not certificates");
        }
        let mut want = vec![ca_der.to_vec()];
        let signer = self.bundle.files.contains_key(SIGNER_CERT);
        if signer {
            match self.pem_der(SIGNER_CERT) {
                Some(der) => want.push(der),
                None => return,
            }
        }
        // The previous signing CA, trusted during a replacement's roll-out.
        let previous_ok = |der: &Vec<u8>| {
            !want.contains(der)
                && X509Certificate::from_der(der).is_ok_and(|(_, c)| {
                    c.basic_constraints()
                        .ok()
                        .flatten()
                        .is_some_and(|bc| bc.value.ca)
                })
        };
        let previous = (signer
            && have.len() == want.len() + 1
            && have[..want.len()] == want[..]
            && previous_ok(&have[want.len()]))
        .then(|| &have[want.len()]);
        if let Some(der) = previous {
            let name = X509Certificate::from_der(der)
                .ok()
                .and_then(|(_, c)| pki::attr(&c, &x509_parser::oid_registry::OID_X509_COMMON_NAME))
                .unwrap_or_default();
            self.warn(
                CLIENT_CA,
                format!("also trusts `{name}`, the signing CA csr-signer.pem replaced: kube-apiserver accepts what its key signed until a build with `--drop-previous-csr-signer` is installed"),
            );
        }
        if have != want && previous.is_none() {
            self.find(
                CLIENT_CA,
                if signer {
                    "must hold ca.pem, then csr-signer.pem, then at most the signing CA it replaced, and nothing else"
                } else {
                    "must hold ca.pem alone (the bundle has no csr-signer.pem)"
                },
            );
        }
    }

    /// The bundled CA, checked, as DER.
    fn ca(&mut self, now: OffsetDateTime, warn: time::Duration) -> Option<Vec<u8>> {
        let ca_der = self.ca_cert(CERT_CA, now, warn)?;
        let Ok((_, ca)) = X509Certificate::from_der(&ca_der) else {
            return None;
        };
        if let Some(key) = self.key(CERT_CA_KEY) {
            if pki::spki_matches(&key, &ca) {
                // It ships only for a unit that signs with it (`csr-signing = "ca"`,
                // `service-account-key = "ca"`), never beside a signing CA of its own.
                let signer = self.bundle.files.contains_key(SIGNER_CERT)
                    || self.bundle.files.contains_key(SIGNER_KEY);
                if signer || !self.units_name(component::paths::CA_KEY) {
                    self.find(
                        CERT_CA_KEY,
                        if signer {
                            "is the root CA key, in a bundle whose CSRs are signed by csr-signer.pem: nothing here needs it, and whoever reads it can sign any certificate the cluster trusts"
                        } else {
                            "is the root CA key, which no unit of this bundle uses: whoever reads it can sign any certificate the cluster trusts"
                        },
                    );
                } else {
                    self.warn(
                        CERT_CA_KEY,
                        "is the root CA key: whoever reads it on this master can sign any certificate the cluster trusts; build with `[pki] csr-signing = \"signer\"` to keep it on the build host",
                    );
                }
            } else {
                self.find(CERT_CA_KEY, "does not match ca.pem");
            }
        }
        self.csr_signer(&ca, now, warn);
        Some(ca_der)
    }

    /// Whether a flag of any unit in the bundle names `node_path`.
    fn units_name(&self, node_path: &str) -> bool {
        let units = in_bundle(&format!("{}/", component::paths::UNIT_DIR));
        self.bundle
            .files
            .keys()
            .filter(|p| p.starts_with(&units) && p.ends_with(".service"))
            .filter_map(|p| self.bundle.text(p))
            .any(|unit| {
                exec_start_words(&unit)
                    .iter()
                    .any(|w| w.split_once('=').is_some_and(|(_, v)| v == node_path))
            })
    }

    /// Private keys of CAs, under any name: every PEM private key in every file verify
    /// reads, against every CA certificate in the bundle. Only the CSR signing CA's key
    /// belongs in a bundle (as csr-signer-key.pem); the root CA's at ca-key.pem is
    /// judged by [`Check::ca`]. An encrypted key cannot be told apart, so it is a finding
    /// too: kube-bundle never writes one.
    fn ca_keys(&mut self) {
        let mut cas: Vec<(keys::PublicHalf, String)> = Vec::new();
        // (file, the public half, or `None` for an encrypted key)
        let mut private: Vec<(String, Option<Option<keys::PublicHalf>>)> = Vec::new();
        for (path, entry) in &self.bundle.files {
            let Some(bytes) = &entry.bytes else { continue };
            for block in pem_blocks(bytes) {
                if block.tag() == "CERTIFICATE" {
                    let Ok((_, cert)) = X509Certificate::from_der(block.contents()) else {
                        continue;
                    };
                    let is_ca = cert
                        .basic_constraints()
                        .ok()
                        .flatten()
                        .is_some_and(|bc| bc.value.ca);
                    if let (true, Some(public)) = (is_ca, keys::of_cert(&cert)) {
                        if !cas.iter().any(|(p, _)| *p == public) {
                            cas.push((public, path.clone()));
                        }
                    }
                } else if block.tag().ends_with("PRIVATE KEY") {
                    let encrypted = block.tag().starts_with("ENCRYPTED")
                        || block.headers().get("Proc-Type").is_some();
                    let public = (!encrypted).then(|| keys::of_private_block(&block));
                    private.push((path.clone(), public));
                }
            }
        }
        let own_key = |cert: &str| {
            self.bundle
                .text(cert)
                .and_then(|t| pem::parse(t).ok())
                .and_then(|b| {
                    X509Certificate::from_der(b.contents())
                        .ok()
                        .map(|(_, c)| keys::of_cert(&c))
                })
                .flatten()
        };
        let (root, signer) = (own_key(CERT_CA), own_key(SIGNER_CERT));
        let mut found = Vec::new();
        for (path, public) in private {
            let public = match public {
                None => {
                    found.push((path, "holds an encrypted private key, which kube-bundle never writes: verify cannot tell whose it is".to_string()));
                    continue;
                }
                Some(None) => continue,
                Some(Some(public)) => public,
            };
            let Some((_, ca_file)) = cas.iter().find(|(p, _)| *p == public) else {
                continue;
            };
            if (path == SIGNER_KEY && signer.as_ref() == Some(&public))
                || (path == CERT_CA_KEY && root.as_ref() == Some(&public))
            {
                continue;
            }
            let ca = ca_file.rsplit('/').next().unwrap_or(ca_file);
            found.push((
                path,
                format!("holds the private key of the CA in {ca}: with it, anyone who reads this file can sign certificates that CA's trusters accept; a CA key stays on the build host"),
            ));
        }
        for (path, message) in found {
            self.find(&path, message);
        }
    }

    /// The CSR signing CA, when the bundle carries one: a self-signed CA other than the
    /// bundled root, with its key.
    fn csr_signer(&mut self, ca: &X509Certificate<'_>, now: OffsetDateTime, warn: time::Duration) {
        if !self.bundle.files.contains_key(SIGNER_CERT)
            && !self.bundle.files.contains_key(SIGNER_KEY)
        {
            return;
        }
        let Some(der) = self
            .required(SIGNER_CERT)
            .and_then(|_| self.pem_der(SIGNER_CERT))
        else {
            return;
        };
        let Ok((_, signer)) = X509Certificate::from_der(&der) else {
            self.find(SIGNER_CERT, "is not an X.509 certificate");
            return;
        };
        if !signer
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca)
        {
            self.find(
                SIGNER_CERT,
                "is not a CA certificate, so it cannot sign CSRs",
            );
        }
        // Its own trust anchor, in client-ca.pem only: what its key signs must chain to
        // nothing a root-only truster (kubeconfigs, etcd, kube-apiserver's serving
        // side) accepts.
        if signer.public_key().raw == ca.public_key().raw {
            self.find(SIGNER_CERT, "has the root CA's key (ca.pem)");
        } else if signer.issuer().as_raw() == ca.subject().as_raw()
            && signer.verify_signature(Some(ca.public_key())).is_ok()
        {
            self.find(
                SIGNER_CERT,
                "is issued by the bundled CA (ca.pem), so everything that trusts ca.pem (kubeconfigs, etcd, kube-apiserver) accepts what its key signs; build again: the signing CA is replaced by a self-signed one",
            );
        } else if !pki::self_signed(&signer) {
            self.find(
                SIGNER_CERT,
                "is not self-signed: what its key signs would chain to its issuer",
            );
        }
        self.expiry(SIGNER_CERT, &signer, now, warn);
        if !self.bundle.files.contains_key(SIGNER_KEY) {
            self.find(SIGNER_KEY, "is missing while csr-signer.pem is present");
        } else if let Some(key) = self.key(SIGNER_KEY) {
            if !pki::spki_matches(&key, &signer) {
                self.find(SIGNER_KEY, "does not match csr-signer.pem");
            }
        }
    }

    /// One certificate a component carries, by its spec: chain to the CA that issues it,
    /// validity, key, subject, usages and names.
    fn leaf(
        &mut self,
        spec: &CertSpec,
        issuer_der: Option<&Vec<u8>>,
        names: &ExpectedNames,
        now: OffsetDateTime,
        warn: time::Duration,
    ) {
        let cert_file = in_bundle(&spec.cert_path());
        let key_file = in_bundle(&spec.key_path());
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
        let (cert_name, _) = spec.pki_files();
        if let Some(Ok((_, ca))) = issuer_der.map(|der| X509Certificate::from_der(der)) {
            if leaf.issuer().as_raw() != ca.subject().as_raw()
                || leaf.verify_signature(Some(ca.public_key())).is_err()
            {
                self.find(
                    &cert_file,
                    match spec.issued_by {
                        IssuedBy::Root => "does not chain to the bundled CA",
                        IssuedBy::FrontProxy => {
                            "does not chain to the bundled front-proxy CA (front-proxy-ca.pem)"
                        }
                        IssuedBy::Etcd => "does not chain to the bundled etcd CA (etcd-ca.pem)",
                    },
                );
            }
        }
        self.expiry(&cert_file, &leaf, now, warn);
        if !self.bundle.files.contains_key(&key_file) {
            self.find(
                &key_file,
                format!("is missing while {cert_name} is present"),
            );
        } else if let Some(key) = self.key(&key_file) {
            if !pki::spki_matches(&key, &leaf) {
                self.find(&key_file, format!("does not match {cert_name}"));
            }
        }
        self.subject(&cert_file, spec, &names.node_name, &leaf);
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
        let eku = leaf.extended_key_usage().ok().flatten().map(|e| {
            let e = &e.value;
            let others = e.any
                || e.code_signing
                || e.email_protection
                || e.time_stamping
                || e.ocsp_signing
                || !e.other.is_empty();
            (e.server_auth, e.client_auth, others)
        });
        if eku != Some((spec.server, spec.client, false)) {
            let want: Vec<&str> = [(spec.server, "serverAuth"), (spec.client, "clientAuth")]
                .into_iter()
                .filter_map(|(on, name)| on.then_some(name))
                .collect();
            self.find(
                &cert_file,
                format!("extended key usage must be exactly {}", want.join(" and ")),
            );
        }
        let sans = pki::cert_sans(&leaf);
        let wanted = match spec.names {
            Names::None => return,
            Names::Node => &names.node,
            Names::ApiServer => {
                for san in sans.iter().filter(|s| s.ends_with('.')) {
                    self.find(
                        &cert_file,
                        format!("SAN {san} ends with a dot, which clients do not match"),
                    );
                }
                match &names.apiserver {
                    Some(names) => names,
                    None => &names.node,
                }
            }
        };
        for want in wanted {
            if !sans.contains(want) {
                self.find(
                    &cert_file,
                    format!("SANs lack {want} (has {})", sans.join(",")),
                );
            }
        }
    }

    /// Subject CN and O exactly as the spec gives them: one O, or none at all.
    fn subject(
        &mut self,
        cert_file: &str,
        spec: &CertSpec,
        node: &str,
        leaf: &X509Certificate<'_>,
    ) {
        use x509_parser::oid_registry as oids;
        let want_cn = spec.cn_on(node);
        let cn = pki::attr(leaf, &oids::OID_X509_COMMON_NAME);
        let orgs: Vec<String> = leaf
            .subject()
            .iter_by_oid(&oids::OID_X509_ORGANIZATION_NAME)
            .map(|a| a.as_str().map_or_else(|_| "?".to_string(), str::to_string))
            .collect();
        let want_orgs: Vec<String> = spec.org.iter().map(|o| o.to_string()).collect();
        if cn.as_ref() == Some(&want_cn) && orgs == want_orgs {
            return;
        }
        let found = format!(
            "found CN `{}` O `{}`",
            cn.unwrap_or_default(),
            orgs.join("`, `")
        );
        let message = match spec.org {
            Some(org) if org == want_cn => {
                format!("subject CN and O must be `{want_cn}`, {found}")
            }
            Some(org) => format!("subject must be CN `{want_cn}` O `{org}`, {found}"),
            None => format!("subject must be CN `{want_cn}` with no O, {found}"),
        };
        self.find(cert_file, message);
    }

    /// kube-apiserver's EncryptionConfiguration: the kind and apiVersion its release
    /// reads, Secrets encrypted first with aescbc, every aescbc key 32 bytes.
    fn encryption_config(&mut self, manifest: Option<&Manifest>) {
        use base64::Engine;
        let file = ENCRYPTION_CONFIG;
        let Some(text) = self.required(file) else {
            return;
        };
        let config: EncryptionConfig = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.find(file, format!("is not an EncryptionConfiguration ({e})"));
                return;
            }
        };
        if config.kind != "EncryptionConfiguration" {
            self.find(
                file,
                format!("kind `{}` is not EncryptionConfiguration", config.kind),
            );
        }
        if let Some(version) = manifest.and_then(|m| KubeVersion::parse(&m.kubernetes_version).ok())
        {
            let want = crate::flags::encryption_config_api(&version);
            if config.api_version != want {
                self.find(
                    file,
                    format!(
                        "apiVersion `{}` is not the one kube-apiserver {version} reads (`{want}`)",
                        config.api_version
                    ),
                );
            }
        }
        let secrets = config
            .resources
            .iter()
            .find(|r| r.resources.iter().any(|n| n == "secrets"));
        match secrets {
            None => self.find(file, "does not list the `secrets` resource"),
            Some(r) if r.providers.first().is_none_or(|p| p.aescbc.is_none()) => self.find(
                file,
                "the first provider for secrets is not aescbc: Secrets would be written unencrypted",
            ),
            Some(_) => {}
        }
        let mut findings = Vec::new();
        for (i, resource) in config.resources.iter().enumerate() {
            for (j, provider) in resource.providers.iter().enumerate() {
                let Some(aescbc) = &provider.aescbc else {
                    continue;
                };
                let at = format!("resources[{i}].providers[{j}].aescbc.keys");
                if aescbc.keys.is_empty() {
                    findings.push(format!("{at} is empty"));
                }
                for (k, key) in aescbc.keys.iter().enumerate() {
                    match base64::engine::general_purpose::STANDARD.decode(key.secret.trim()) {
                        Err(e) => findings.push(format!("{at}[{k}].secret is not base64 ({e})")),
                        Ok(bytes) if bytes.len() != pki::ENCRYPTION_KEY_BYTES => {
                            findings.push(format!(
                                "{at}[{k}].secret decodes to {} bytes; an aescbc key here is {}",
                                bytes.len(),
                                pki::ENCRYPTION_KEY_BYTES
                            ))
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
        for message in findings {
            self.find(file, message);
        }
    }

    /// An external etcd's CA and kube-apiserver's client pair for it, when the bundle
    /// carries them: certificates within their validity and a key that matches.
    fn etcd_client(&mut self, now: OffsetDateTime, warn: time::Duration) {
        if ![ETCD_CA, ETCD_CLIENT_CERT, ETCD_CLIENT_KEY]
            .iter()
            .any(|p| self.bundle.files.contains_key(*p))
        {
            return;
        }
        for path in [ETCD_CA, ETCD_CLIENT_CERT] {
            if !self.bundle.files.contains_key(path) {
                self.find(path, "is missing while the other etcd files are present");
            } else if let Some(der) = self.pem_der(path) {
                match X509Certificate::from_der(&der) {
                    Ok((_, cert)) => self.expiry(path, &cert, now, warn),
                    Err(_) => self.find(path, "is not an X.509 certificate"),
                }
            }
        }
        let Some(key_text) = self.required(ETCD_CLIENT_KEY) else {
            return;
        };
        let Some(key) = keys::of_private_pem(&key_text) else {
            self.find(
                ETCD_CLIENT_KEY,
                "is not a PEM private key (PKCS#8, RSA or EC)",
            );
            return;
        };
        let Some(der) = self
            .bundle
            .files
            .contains_key(ETCD_CLIENT_CERT)
            .then(|| self.pem_der(ETCD_CLIENT_CERT))
            .flatten()
        else {
            return;
        };
        if let Ok((_, cert)) = X509Certificate::from_der(&der) {
            if keys::of_cert(&cert).as_ref() != Some(&key) {
                self.find(ETCD_CLIENT_KEY, "does not match apiserver-etcd-client.pem");
            }
        }
    }

    fn service_account(&mut self) {
        if self.bundle.files.contains_key(SA_KEY) || self.bundle.files.contains_key(SA_PUB) {
            match (self.key(SA_KEY), self.text(SA_PUB)) {
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
        let Some(text) = self.required(&file) else {
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
        let Some(text) = self.required(&file) else {
            return;
        };
        let words = exec_start_words(&text);
        if words.is_empty() {
            self.find(&file, "has no ExecStart");
            return;
        }
        // etcd has no --bind-address: its listen URLs are checked by `etcd_unit`.
        if c.binds_node_ip {
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
        }
        // etcd's data and WAL folders are node folders it fills itself, accepted when
        // they are the ones manifest.json records.
        let data_dirs: Vec<(String, &str)> = match &manifest.etcd {
            Some(ManifestEtcd { data_dir, wal_dir }) if is_member(c) => c
                .data_dirs
                .iter()
                .map(|key| format!("--{key}"))
                .zip([data_dir.as_str(), wal_dir.as_str()])
                .collect(),
            _ => Vec::new(),
        };
        let mut named: Vec<&str> = vec![words[0].as_str()];
        named.extend(
            words
                .iter()
                .filter_map(|w| w.split_once('='))
                .filter(|(flag, value)| !data_dirs.iter().any(|(f, v)| f == flag && v == value))
                .map(|(_, value)| value)
                .filter(|v| v.starts_with('/')),
        );
        // The component's own folder (`<k8s-dir>/<component>`, the unit's working
        // directory) holds what it writes at run time, such as the audit log. It and
        // `<k8s-dir>` must pass the build's rule for such folders; etcd's is its data
        // dir, checked with manifest.json's.
        let work_dir = working_directory(&text).filter(|dir| {
            c.data_dirs.is_empty() && {
                let k8s_dir = match dir.rsplit_once('/') {
                    Some(("", _)) => "/",
                    Some((parent, _)) => parent,
                    None => dir.as_str(),
                };
                let unfit = component::paths::unfit_folder(dir)
                    .or_else(|| component::paths::unfit_folder(k8s_dir));
                if let Some(unfit) = &unfit {
                    self.find(&file, format!("WorkingDirectory: {unfit}"));
                }
                unfit.is_none() && dir.rsplit('/').next() == Some(c.name)
            }
        });
        let under_work_dir = |path: &str| {
            work_dir.as_deref().is_some_and(|dir| {
                path.strip_prefix(dir)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|rest| {
                        !rest.is_empty()
                            && !rest
                                .split('/')
                                .any(|p| p == ".." || p == "." || p.is_empty())
                    })
            })
        };
        for path in named {
            let in_bundle = self.bundle.files.contains_key(&format!("rootfs{path}"));
            if !in_bundle && !manifest.external.iter().any(|e| e == path) && !under_work_dir(path) {
                self.find(
                    &file,
                    format!(
                        "names `{path}`, which is neither in the bundle nor listed as external"
                    ),
                );
            }
        }
    }

    /// etcd's unit, beyond the paths `unit` checks: it is this node's member (its name,
    /// listening and advertising on the node IP, over TLS with the bundled etcd CA), its
    /// `--initial-cluster` names it with its own peer URL, and its data and WAL folders
    /// are the ones manifest.json records. Returns the member for the checks across
    /// bundles.
    fn etcd_unit(&mut self, c: &Component, manifest: &Manifest) -> Option<EtcdMember> {
        let file = in_bundle(&c.unit_path());
        let text = self.text(&file)?;
        let words = exec_start_words(&text);
        if words.is_empty() {
            return None;
        }
        let node_ip = manifest.node_ip.parse::<std::net::IpAddr>().ok();
        let flag = |name: &str| flag_value(&words, name);
        let mut found = Vec::new();
        match &manifest.etcd {
            None => self.find(
                "manifest.json",
                "has no `etcd` object although the bundle carries etcd: the unit's --data-dir and --wal-dir cannot be told from bundle files",
            ),
            Some(dirs) => {
                for (key, want) in [("data-dir", &dirs.data_dir), ("wal-dir", &dirs.wal_dir)] {
                    if let Some(unfit) = component::paths::unfit_folder(want) {
                        self.find("manifest.json", format!("etcd.{key}: {unfit}"));
                    } else if let Some(held) = self
                        .bundle
                        .files
                        .keys()
                        .find(|p| p.strip_prefix("rootfs").is_some_and(|p| inside(p, want)))
                    {
                        self.find(
                            "manifest.json",
                            format!("etcd.{key} `{want}` holds `{held}`, a file of the bundle: etcd's data needs a folder of its own"),
                        );
                    }
                    let have = flag(key);
                    if have != Some(want.as_str()) {
                        found.push(format!(
                            "--{key} is `{}`, not manifest.json's etcd.{key} `{want}`",
                            have.unwrap_or("unset")
                        ));
                    }
                }
                if inside(&dirs.data_dir, &dirs.wal_dir) || inside(&dirs.wal_dir, &dirs.data_dir)
                {
                    self.find(
                        "manifest.json",
                        format!(
                            "etcd.data-dir `{}` and etcd.wal-dir `{}` overlap",
                            dirs.data_dir, dirs.wal_dir
                        ),
                    );
                }
            }
        }
        let name = flag("name").unwrap_or_default().to_string();
        if name != manifest.node {
            found.push(format!(
                "--name is `{name}`, not the node name `{}`",
                manifest.node
            ));
        }
        let on_node = |url: &str| {
            url_host(url).is_some_and(|(scheme, host, _)| {
                scheme == "https" && host.parse().ok() == node_ip && node_ip.is_some()
            })
        };
        for key in [
            "listen-client-urls",
            "advertise-client-urls",
            "listen-peer-urls",
            "initial-advertise-peer-urls",
        ] {
            let urls = flag(key).unwrap_or_default();
            if !urls.split(',').any(on_node) {
                found.push(format!(
                    "--{key} is `{urls}`, which names no https URL on the node IP {}",
                    manifest.node_ip
                ));
            }
        }
        let cert = c.cert_path();
        let key = c.key_path();
        for (name, want) in [
            ("cert-file", cert.as_str()),
            ("key-file", key.as_str()),
            ("peer-cert-file", cert.as_str()),
            ("peer-key-file", key.as_str()),
            ("trusted-ca-file", component::paths::ETCD_CA),
            ("peer-trusted-ca-file", component::paths::ETCD_CA),
        ] {
            if flag(name) != Some(want) {
                found.push(format!(
                    "--{name} is `{}`, not the bundled `{want}`",
                    flag(name).unwrap_or("unset")
                ));
            }
        }
        for name in ["client-cert-auth", "peer-client-cert-auth"] {
            if !words.iter().any(|w| {
                w.strip_prefix("--")
                    .is_some_and(|w| w == name || w == format!("{name}=true"))
            }) {
                found.push(format!(
                    "--{name} is not set: etcd would take clients without a certificate of its CA"
                ));
            }
        }
        let peer_url = flag("initial-advertise-peer-urls")
            .unwrap_or_default()
            .to_string();
        let mut cluster = Vec::new();
        for entry in flag("initial-cluster").unwrap_or_default().split(',') {
            match entry.split_once('=') {
                Some((n, u)) if !n.is_empty() && url_host(u).is_some() => {
                    cluster.push((n.to_string(), u.to_string()))
                }
                _ => found.push(format!(
                    "--initial-cluster entry `{entry}` is not `name=https://ip:port`"
                )),
            }
        }
        let own: Vec<&str> = cluster
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, u)| u.as_str())
            .collect();
        if own.is_empty() {
            found.push(format!(
                "--initial-cluster does not name this member `{name}` (with its peer URL {peer_url})"
            ));
        } else if !own.contains(&peer_url.as_str()) {
            found.push(format!(
                "--initial-cluster gives `{name}` the peer URL {}, not its --initial-advertise-peer-urls {peer_url}",
                own.join(",")
            ));
        }
        let state = flag("initial-cluster-state").unwrap_or("new").to_string();
        if state != "new" && state != "existing" {
            found.push(format!(
                "--initial-cluster-state is `{state}`, neither `new` nor `existing`"
            ));
        }
        let token = flag("initial-cluster-token")
            .unwrap_or_default()
            .to_string();
        if token.is_empty() {
            found.push(
                "--initial-cluster-token is not set: members of another cluster could join this one"
                    .to_string(),
            );
        }
        for message in found {
            self.find(&file, message);
        }
        let client_urls = flag("advertise-client-urls")
            .unwrap_or_default()
            .split(',')
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        Some(EtcdMember {
            name,
            peer_url,
            client_urls,
            cluster,
            state,
            token,
        })
    }

    /// kube-apiserver's `--etcd-servers`, in a bundle with etcd.
    fn etcd_servers(&mut self, api: &Component) -> Option<Vec<String>> {
        let text = self.bundle.text(&in_bundle(&api.unit_path()))?;
        let words = exec_start_words(&text);
        let servers = flag_value(&words, "etcd-servers")?;
        Some(servers.split(',').map(str::to_string).collect())
    }

    /// The `--config` file of a component that has one: an apiVersion the bundle's
    /// release accepts, leader election on, and the bundled kubeconfig.
    fn config_file(&mut self, c: &Component, manifest: &Manifest) {
        let Some(path) = c.config_path() else { return };
        let file = in_bundle(&path);
        let Some(text) = self.required(&file) else {
            return;
        };
        let config: ComponentConfig = match yaml_serde::from_str(&text) {
            Ok(c) => c,
            Err(e) => {
                self.find(&file, format!("is not a {} configuration ({e})", c.name));
                return;
            }
        };
        let Some(spec) = &c.config else { return };
        if let Ok(version) = KubeVersion::parse(&manifest.kubernetes_version) {
            let want = (spec.api_version)(&version);
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
        if config.kind != spec.kind {
            self.find(
                &file,
                format!("kind `{}` is not {}", config.kind, spec.kind),
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

/// Whether `c` is an etcd member, whose unit the member checks read.
fn is_member(c: &Component) -> bool {
    c.section == component::Section::EtcdMember
}

/// The value a command line gives `--<name>`: the last `--<name>=value` or `--<name>`
/// (`true`, a boolean flag set bare), as Go's flag packages take it.
fn flag_value<'a>(words: &'a [String], name: &str) -> Option<&'a str> {
    words.iter().rev().find_map(|w| {
        let rest = w.strip_prefix("--")?.strip_prefix(name)?;
        match rest.strip_prefix('=') {
            Some(value) => Some(value),
            None => rest.is_empty().then_some("true"),
        }
    })
}

/// Scheme, host (without brackets) and port of a URL such as `https://[fd00::1]:2379`.
fn url_host(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, port) = v6.split_once(']')?;
            (host, port.strip_prefix(':')?)
        }
        None => authority.rsplit_once(':')?,
    };
    (!host.is_empty() && !port.is_empty()).then_some((scheme, host, port))
}

/// A unit's `WorkingDirectory=`, if it has one.
fn working_directory(unit: &str) -> Option<String> {
    unit.lines()
        .find_map(|l| l.trim().strip_prefix("WorkingDirectory="))
        .map(|d| d.trim().trim_end_matches('/').to_string())
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

/// Every master must trust the same CAs (etcd's too), sign tokens with the same key (sa.pub
/// is checked against sa.key in each bundle) and encrypt Secrets with the same key.
fn shared_keys(bundles: &[Bundle], findings: &mut Vec<Finding>) {
    let Some(first) = bundles.first() else { return };
    for (path, what) in [
        (CERT_CA, "CA"),
        (SA_KEY, "service-account key"),
        (SIGNER_CERT, "CSR signing CA"),
        (FRONT_PROXY_CA, "front-proxy CA"),
        (CLIENT_CA, "client CA bundle"),
        (ENCRYPTION_CONFIG, "encryption config"),
        (ETCD_CA, "etcd CA"),
    ] {
        let reference = first.files.get(path).map(|e| &e.sha256);
        for other in &bundles[1..] {
            let here = other.files.get(path).map(|e| &e.sha256);
            let message = match (here, reference) {
                (a, b) if a == b => continue,
                (None, Some(_)) => format!(
                    "is missing, but {} carries the {what}: every master must share it",
                    first.name
                ),
                (Some(_), None) => format!(
                    "the {what} is not in {}: every master must share it",
                    first.name
                ),
                _ => format!(
                    "the {what} differs from {}'s: every master must share it",
                    first.name
                ),
            };
            findings.push(Finding {
                bundle: other.name.clone(),
                file: path.to_string(),
                message,
            });
        }
    }
}

/// Every master gives [`shared_flags`] the same values: one service range, one token
/// issuer. Findings name the first bundle that carries the component.
fn same_flags(seen: &[(&Bundle, Seen)], findings: &mut Vec<Finding>) {
    for (c, flag) in shared_flags() {
        let unit = in_bundle(&c.unit_path());
        let values: Vec<(&Bundle, &str)> = seen
            .iter()
            .flat_map(|(b, s)| {
                s.shared
                    .iter()
                    .filter(|(file, f, _)| *file == unit && *f == flag)
                    .map(move |(_, _, v)| (*b, v.as_str()))
            })
            .collect();
        let Some((first, reference)) = values.first() else {
            continue;
        };
        for (bundle, value) in &values[1..] {
            if value != reference {
                findings.push(Finding {
                    bundle: bundle.name.clone(),
                    file: unit.clone(),
                    message: escape(&format!(
                        "--{flag} is `{value}`, but `{reference}` in {}: every master must use the same",
                        first.name
                    )),
                });
            }
        }
    }
}

/// The etcd members of bundles given together form one cluster: one token, distinct
/// names, peer URLs that agree with what each member advertises, one initial cluster
/// among the members that bootstrap it (state `new`) that lists every one of them, and
/// for a member that joins (state `existing`) that cluster and itself. kube-apiserver's
/// `--etcd-servers` name its own member, and on the host of a given bundle's member the
/// client URL that member advertises. Findings name the bundle compared with.
fn etcd_cluster(
    seen: &[(&Bundle, Seen)],
    findings: &mut Vec<Finding>,
    warnings: &mut Vec<Finding>,
) {
    let rows = component::all();
    let unit_of = |pick: fn(&Component) -> bool| {
        rows.iter()
            .find(|c| pick(c))
            .map(|c| in_bundle(&c.unit_path()))
            .unwrap_or_default()
    };
    let unit = unit_of(is_member);
    let apiserver_unit = unit_of(|c| c.serves_api);
    let members: Vec<(&Bundle, &EtcdMember)> = seen
        .iter()
        .filter_map(|(b, s)| s.etcd.as_ref().map(|m| (*b, m)))
        .collect();
    let mut find = |bundle: &Bundle, file: &str, message: String| {
        findings.push(Finding {
            bundle: bundle.name.clone(),
            file: file.to_string(),
            message: escape(&message),
        })
    };
    let Some((first, reference)) = members.first() else {
        return;
    };
    for (i, (bundle, member)) in members.iter().enumerate() {
        if i > 0 && member.token != reference.token {
            find(
                bundle,
                &unit,
                format!(
                    "--initial-cluster-token `{}` differs from `{}` in {}: the members of one cluster share it",
                    member.token, reference.token, first.name
                ),
            );
        }
        if let Some((other, _)) = members[..i].iter().find(|(_, m)| m.name == member.name) {
            find(
                bundle,
                &unit,
                format!(
                    "--name `{}` is also {}'s: every member needs a name of its own",
                    member.name, other.name
                ),
            );
        }
        for (name, url) in &member.cluster {
            for (other, m) in &members {
                if m.name != *name || std::ptr::eq(*m, *member) {
                    continue;
                }
                if m.peer_url != *url {
                    find(
                        bundle,
                        &unit,
                        format!(
                            "--initial-cluster gives `{name}` the peer URL {url}, but {} advertises {}",
                            other.name, m.peer_url
                        ),
                    );
                } else if member.state == "new" && m.state == "existing" {
                    find(
                        bundle,
                        &unit,
                        format!(
                            "--initial-cluster lists `{name}`, which joins the formed cluster later (state `existing` in {})",
                            other.name
                        ),
                    );
                }
            }
        }
    }
    let sorted = |m: &EtcdMember| {
        let mut c = m.cluster.clone();
        c.sort();
        c.dedup();
        c
    };
    let bootstrap: Vec<&(&Bundle, &EtcdMember)> =
        members.iter().filter(|(_, m)| m.state == "new").collect();
    if let Some((ref_bundle, ref_member)) = bootstrap.first() {
        let ref_cluster = sorted(ref_member);
        for (bundle, member) in &bootstrap[1..] {
            if sorted(member) != ref_cluster {
                find(
                    bundle,
                    &unit,
                    format!(
                        "--initial-cluster differs from {}'s: the members that bootstrap a cluster must list the same members",
                        ref_bundle.name
                    ),
                );
            }
            if !ref_cluster.contains(&(member.name.clone(), member.peer_url.clone())) {
                find(
                    bundle,
                    &unit,
                    format!(
                        "this member bootstraps the cluster (state `new`), but {}'s --initial-cluster does not list `{}={}`",
                        ref_bundle.name, member.name, member.peer_url
                    ),
                );
            }
        }
        for (bundle, member) in members.iter().filter(|(_, m)| m.state == "existing") {
            let missing: Vec<String> = ref_cluster
                .iter()
                .filter(|entry| !member.cluster.contains(entry))
                .map(|(n, u)| format!("{n}={u}"))
                .collect();
            if !missing.is_empty() {
                find(
                    bundle,
                    &unit,
                    format!(
                        "--initial-cluster of this joining member lacks {}, which bootstrap the cluster ({})",
                        missing.join(","),
                        ref_bundle.name
                    ),
                );
            }
        }
    }
    // The cluster as the bundles given know it: their members, with the client URLs
    // they advertise, and every member their --initial-cluster names.
    let named: Vec<(&str, &str, &Bundle)> = members
        .iter()
        .flat_map(|(b, m)| {
            m.cluster
                .iter()
                .map(move |(n, u)| (n.as_str(), u.as_str(), *b))
        })
        .collect();
    let host_of = |url: &str| url_host(url).map(|(_, host, _)| host.to_string());
    for (bundle, s) in seen {
        let Some(servers) = &s.etcd_servers else {
            continue;
        };
        let Some(own) = &s.etcd else { continue };
        if !own.client_urls.iter().any(|u| servers.contains(u)) {
            find(
                bundle,
                &apiserver_unit,
                format!(
                    "--etcd-servers does not list this node's member ({})",
                    own.client_urls.join(",")
                ),
            );
        }
        // Every member of a kube-bundle cluster serves clients on the same port.
        let client_url = |peer_url: &str| {
            let port = own
                .client_urls
                .first()
                .and_then(|u| url_host(u))
                .map(|(_, _, p)| p)?;
            let (base, _) = peer_url.rsplit_once(':')?;
            Some(format!("{base}:{port}"))
        };
        let listed: Vec<Option<String>> = servers.iter().map(|u| host_of(u)).collect();
        for (server, host) in servers.iter().zip(&listed) {
            if let Some((other, m)) = members
                .iter()
                .find(|(_, m)| host.is_some() && host_of(&m.peer_url) == *host)
            {
                if !m.client_urls.contains(server) {
                    find(
                        bundle,
                        &apiserver_unit,
                        format!(
                            "--etcd-servers lists {server}, but the member on that host ({}) advertises the client URL {}",
                            other.name,
                            m.client_urls.join(",")
                        ),
                    );
                }
                continue;
            }
            if let Some((name, peer_url, from)) = named
                .iter()
                .find(|(_, u, _)| host.is_some() && host_of(u) == *host)
            {
                let want = client_url(peer_url);
                if want.as_deref() != Some(server.as_str()) {
                    find(
                        bundle,
                        &apiserver_unit,
                        format!(
                            "--etcd-servers lists {server}, but member `{name}` ({}'s --initial-cluster) serves clients at {}",
                            from.name,
                            want.unwrap_or_default()
                        ),
                    );
                }
                continue;
            }
            // A member that joins later is in no bootstrapping member's --initial-cluster:
            // alone, a bundle cannot tell it from a wrong host.
            let message = format!(
                "--etcd-servers lists {server}, which is no member of the etcd cluster: no bundle given names it in --initial-cluster or advertises it"
            );
            if seen.len() == 1 {
                warnings.push(Finding {
                    bundle: bundle.name.clone(),
                    file: apiserver_unit.clone(),
                    message: escape(&format!(
                        "{message} (a member that joins later? verify every bundle together to tell)"
                    )),
                });
            } else {
                find(
                    bundle,
                    &apiserver_unit,
                    format!(
                        "{message}; if a member joins later, verify its bundle together with these"
                    ),
                );
            }
        }
        let mut required: Vec<(&str, Option<String>, String)> = members
            .iter()
            .map(|(b, m)| {
                let shown = format!("{}, the member of {}", m.client_urls.join(","), b.name);
                (m.name.as_str(), host_of(&m.peer_url), shown)
            })
            .collect();
        for (name, peer_url, from) in &named {
            if !required.iter().any(|(n, _, _)| n == name) {
                let url = client_url(peer_url).unwrap_or_default();
                required.push((
                    name,
                    host_of(peer_url),
                    format!("{url}, in {}'s --initial-cluster", from.name),
                ));
            }
        }
        for (name, host, shown) in required {
            if name != own.name && host.is_some() && !listed.contains(&host) {
                find(
                    bundle,
                    &apiserver_unit,
                    format!("--etcd-servers does not list member `{name}` of the etcd cluster ({shown})"),
                );
            }
        }
    }
}

/// The names certificates must carry, as [`pki::cert_sans`] writes them.
#[derive(Default)]
struct ExpectedNames {
    /// The node's name, for identities that name it.
    node_name: String,
    /// 127.0.0.1, the node IP and the node name: every serving certificate with the
    /// node's names.
    node: Vec<String>,
    /// Everything kube-apiserver's serving certificate must carry, in a bundle with it.
    apiserver: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct EncryptionConfig {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    resources: Vec<EncryptionResource>,
}

#[derive(Deserialize)]
struct EncryptionResource {
    #[serde(default)]
    resources: Vec<String>,
    #[serde(default)]
    providers: Vec<EncryptionProvider>,
}

/// One provider; only aescbc is read, the others (identity, secretbox...) are left be.
#[derive(Deserialize)]
struct EncryptionProvider {
    aescbc: Option<AesCbc>,
}

#[derive(Deserialize)]
struct AesCbc {
    #[serde(default)]
    keys: Vec<AesKey>,
}

#[derive(Deserialize)]
struct AesKey {
    secret: String,
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
