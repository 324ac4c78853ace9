//! PKI state in `pki/`: the CA (imported or generated once), the service-account key pair
//! and one key and certificate per node and component (`pki/<node>/<component>.pem`). State is reused while it still
//! fits the inventory and the CA; a leaf that no longer fits is reissued and reported. With
//! `seal-secrets`, also each node's seal key (`pki/<node>/seal.key`). This module never
//! regenerates a CA, a service-account key or a seal key that already exists, replaces
//! the CSR signing CA only with a new key (when asked, or when it is not its own trust
//! anchor), and never touches `dist/`.

pub mod certs;
pub mod keys;
pub mod seal;
pub mod signature;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, RsaKeySize, SanType, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use self::seal::SealKey;
use crate::component::{CertSpec, Component, IssuedBy, Names, ADMIN};
use crate::error::{Error, Result};
use crate::fsx::{ensure_dir, restrict_dir, write_private, write_public};
use crate::model::{
    CsrSigning, EtcdCa, Inventory, KeyAlgorithm, Node, San, ServiceAccountKey, Subject,
};
pub use crate::pack::manifest::CertSummary;
use crate::pack::parallel;

/// Certificates start this long before they are made, so nodes with a slow clock accept them.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    /// `None` when the CA key signs service-account tokens.
    pub service_account: Option<ServiceAccountPair>,
    /// The signing CA of the CSR signers, with `csr-signing = "signer"`: self-signed, so
    /// nothing that trusts only the root CA trusts what its key signs.
    pub csr_signer: Option<Leaf>,
    /// The certificate of the signing CA it replaced (`pki/csr-signer-previous.pem`),
    /// still trusted by kube-apiserver until it is dropped.
    pub csr_signer_previous: Option<String>,
    /// (node, certificate name) → its key and certificate.
    pub leaves: BTreeMap<(String, &'static str), Leaf>,
    /// The aggregation layer's CA (certificate, key), when kube-apiserver is built.
    pub front_proxy_ca: Option<Leaf>,
    /// The secrets encryption key (base64 of 32 bytes), when kube-apiserver is built.
    pub encryption_key: Option<String>,
    /// The operator's client certificate, when kube-apiserver is built.
    pub admin: Option<Leaf>,
    /// etcd's own CA, with `[etcd]` and `etcd-ca = "dedicated"`.
    pub etcd_ca: Option<Leaf>,
    /// node → its seal key, with `seal-secrets = true`; empty otherwise.
    pub seal_keys: BTreeMap<String, SealKey>,
}

impl Pki {
    /// A component's own certificate on a node.
    pub fn leaf(&self, node: &str, c: &Component) -> &Leaf {
        self.cert(node, c.own_cert())
    }

    pub fn cert(&self, node: &str, spec: &CertSpec) -> &Leaf {
        &self.leaves[&(node.to_string(), spec.name)]
    }

    /// The CA etcd trusts: its own, or the root CA when shared.
    pub fn etcd_ca_pem(&self) -> &str {
        self.etcd_ca
            .as_ref()
            .map_or(&self.ca_cert_pem, |ca| &ca.cert_pem)
    }

    /// kube-apiserver's `--client-ca-file`: the root CA, then the CSR signing CA whose
    /// kubelet and client certificates it must accept, then the signing CA it replaced
    /// while that one is kept. Go treats every certificate in that file as a trust
    /// anchor, and kubelets present their certificate alone. The signing CAs are in no
    /// other bundle of trust.
    pub fn client_ca_pem(&self) -> String {
        let mut pem = self.ca_cert_pem.clone();
        if let Some(signer) = &self.csr_signer {
            pem.push_str(&signer.cert_pem);
            if let Some(previous) = &self.csr_signer_previous {
                pem.push_str(previous);
            }
        }
        pem
    }
}

#[derive(Debug, Clone)]
pub struct ServiceAccountPair {
    pub private_pem: String,
    pub public_pem: String,
}

#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Which leaves to reissue under the same CA although they are still valid.
#[derive(Debug, Clone, Default)]
pub struct Renewal {
    /// `None`: no renewal; `Some(empty)`: every node; otherwise these nodes.
    pub nodes: Option<std::collections::BTreeSet<String>>,
    /// Only these components' certificates (empty: every component).
    pub components: std::collections::BTreeSet<String>,
    /// Generate new keys for the renewed certificates instead of keeping theirs.
    pub rotate_keys: bool,
    /// Replacing the CSR signing CA, or dropping the one it replaced.
    pub csr_signer: SignerChange,
}

/// What a build does to the CSR signing CA besides keeping it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignerChange {
    /// A new key and certificate; the current certificate becomes the previous signer,
    /// which `client-ca.pem` keeps trusting.
    pub replace: bool,
    /// Stop trusting the previous signer (before a replacement in the same build).
    pub drop_previous: bool,
}

impl Renewal {
    fn covers(&self, node: &str, c: &Component) -> bool {
        self.nodes
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.contains(node))
            && (self.components.is_empty() || self.components.contains(c.name))
    }
}

/// Loads, checks and completes the PKI state for `inv`, calling `say` once for every
/// file it creates or reissues.
pub fn prepare(inv: &Inventory, renew: &Renewal, say: &mut dyn FnMut(String)) -> Result<Pki> {
    if let Some(unknown) = renew
        .nodes
        .iter()
        .flatten()
        .find(|n| !inv.nodes.iter().any(|node| &&node.name == n))
    {
        return Err(Error::input(
            format!("--renew {unknown}"),
            format!("`{unknown}` is not a node of `{}`", inv.path.display()),
        ));
    }
    if let Some(unknown) = renew.components.iter().find(|n| {
        !inv.components
            .iter()
            .any(|s| s.component.name == n.as_str())
    }) {
        let built: Vec<&str> = inv.components.iter().map(|s| s.component.name).collect();
        return Err(Error::input(
            format!("--component {unknown}"),
            format!(
                "`{unknown}` is not a component `{}` builds",
                inv.path.display()
            ),
        )
        .with_hint(format!("it builds {}", built.join(", "))));
    }
    let dir = &inv.pki.dir;
    // What happens to the CSR signing CA is decided, and any state that forbids it
    // refused, before anything is written; the new one is made after the leaves.
    let signs_csrs = inv.pki.csr_signing == CsrSigning::Signer
        && inv.components.iter().any(|s| s.component.signs_csrs);
    let signer_plan = if signs_csrs {
        Some(plan_signer(inv, renew.csr_signer, say)?)
    } else {
        refuse_signer_change(inv, renew.csr_signer)?;
        None
    };
    // A saved encryption key that cannot be used, or a missing one in a pki/ that
    // already holds the cluster, stops the build before anything is written; in a new
    // pki/ it is generated below, after the CA.
    let saved_encryption_key = if inv.serves_api() {
        saved_encryption_key(inv)?
    } else {
        None
    };
    // Likewise a saved seal key: a node holds it, so it is never replaced.
    let mut seal_keys = if inv.pki.seal_secrets {
        saved_seal_keys(inv)?
    } else {
        BTreeMap::new()
    };
    // Key generation is most of a fresh build: a new CA and the service-account key are
    // made side by side, then the leaves on every core. An existing CA is checked first,
    // so a bad one stops the build before anything is written. Notes keep the order of
    // a sequential run.
    let (mut ca_notes, mut sa_notes) = (Vec::new(), Vec::new());
    let new_ca = inv.pki.import_ca.is_none()
        && !dir.join("ca.pem").exists()
        && !dir.join("ca-key.pem").exists();
    let load_ca = |notes: &mut Vec<String>| match &inv.pki.import_ca {
        Some((cert, key)) => load_ca(cert, key),
        None => saved_ca(inv, &mut |line| notes.push(line)),
    };
    let sa_key = |notes: &mut Vec<String>| match inv.pki.service_account_key {
        ServiceAccountKey::Ca => Ok(None),
        ServiceAccountKey::Dedicated => {
            service_account_key(inv, &mut |line| notes.push(line)).map(Some)
        }
    };
    let (ca, service_account) = if new_ca {
        std::thread::scope(|s| {
            let sa = s.spawn(|| sa_key(&mut sa_notes));
            let ca = load_ca(&mut ca_notes);
            (ca, sa.join().expect("service-account key thread"))
        })
    } else {
        let ca = load_ca(&mut ca_notes)?;
        (Ok(ca), sa_key(&mut sa_notes))
    };
    ca_notes.into_iter().chain(sa_notes).for_each(&mut *say);
    let (ca, service_account) = (ca?, service_account?);
    let with_apiserver = inv.serves_api();
    let front_proxy = if with_apiserver {
        let cert_path = dir.join("front-proxy-ca.pem");
        let key_path = dir.join("front-proxy-ca-key.pem");
        Some(saved_ca_at(
            inv,
            &cert_path,
            &key_path,
            &format!("{}-front-proxy-ca", inv.cluster.name),
            "the front-proxy CA",
            say,
        )?)
    } else {
        None
    };
    let etcd_ca = match (inv.needs_ca(IssuedBy::Etcd), inv.pki.etcd_ca) {
        (true, EtcdCa::Dedicated) => Some(saved_ca_at(
            inv,
            &dir.join("etcd-ca.pem"),
            &dir.join("etcd-ca-key.pem"),
            &format!("{}-etcd-ca", inv.cluster.name),
            "the etcd CA",
            say,
        )?),
        _ => None,
    };
    let wanted: Vec<(&Node, &'static Component, &'static CertSpec)> = inv
        .nodes
        .iter()
        .flat_map(|node| {
            inv.components.iter().flat_map(move |s| {
                inv.certs(s.component)
                    .into_iter()
                    .map(move |spec| (node, s.component, spec))
            })
        })
        .collect();
    let issued = parallel::map(&wanted, parallel::threads(), |_, (node, c, spec)| {
        let mut notes = Vec::new();
        let issuer = match spec.issued_by {
            IssuedBy::Root => &ca,
            IssuedBy::FrontProxy => front_proxy.as_ref().expect("made with kube-apiserver"),
            IssuedBy::Etcd => etcd_ca.as_ref().unwrap_or(&ca),
        };
        let leaf = leaf(
            inv,
            Some(node),
            spec,
            issuer,
            renew.covers(&node.name, c).then_some(renew.rotate_keys),
            &mut |line| notes.push(line),
        );
        (leaf, notes)
    });
    let mut leaves = BTreeMap::new();
    for ((node, _, spec), (leaf, notes)) in wanted.iter().zip(issued) {
        notes.into_iter().for_each(&mut *say);
        leaves.insert((node.name.clone(), spec.name), leaf?);
    }
    let admin = if with_apiserver {
        // Renewed with every node's certificates, not with some nodes' or components'.
        let renewing =
            renew.nodes.as_ref().is_some_and(|n| n.is_empty()) && renew.components.is_empty();
        Some(leaf(
            inv,
            None,
            &ADMIN,
            &ca,
            renewing.then_some(renew.rotate_keys),
            say,
        )?)
    } else {
        None
    };
    let encryption_key = match saved_encryption_key {
        Some(key) => Some(key),
        None if with_apiserver => Some(new_encryption_key(inv, say)?),
        None => None,
    };
    let (csr_signer, csr_signer_previous) = match signer_plan {
        Some(plan) => {
            let (signer, previous) = apply_signer(inv, plan, say)?;
            (Some(signer), previous)
        }
        None => (None, None),
    };
    if inv.pki.seal_secrets {
        for node in &inv.nodes {
            if !seal_keys.contains_key(&node.name) {
                seal_keys.insert(node.name.clone(), new_seal_key(inv, node, say)?);
            }
        }
    }
    restrict_dir(dir)?;
    Ok(Pki {
        ca_cert_pem: ca.cert_pem,
        ca_key_pem: ca.key_pem,
        service_account,
        csr_signer,
        csr_signer_previous,
        leaves,
        front_proxy_ca: front_proxy.map(|ca| Leaf {
            cert_pem: ca.cert_pem,
            key_pem: ca.key_pem,
        }),
        encryption_key,
        admin,
        etcd_ca: etcd_ca.map(|ca| Leaf {
            cert_pem: ca.cert_pem,
            key_pem: ca.key_pem,
        }),
        seal_keys,
    })
}

fn seal_key_path(inv: &Inventory, node: &Node) -> PathBuf {
    inv.pki.dir.join(&node.name).join(seal::KEY_FILE)
}

/// The seal keys already in `pki/<node>/seal.key`. One that is not a key stops the build:
/// its node holds the key it was made with, and a new one would not open its bundles.
fn saved_seal_keys(inv: &Inventory) -> Result<BTreeMap<String, SealKey>> {
    let mut keys = BTreeMap::new();
    for node in &inv.nodes {
        let path = seal_key_path(inv, node);
        if !path.exists() {
            continue;
        }
        let key = SealKey::parse(&read_text(&path)?).ok_or_else(|| {
            Error::pki(loc(&path), "is not a seal key (one line of 64 lowercase hex digits)")
                .with_hint(format!("restore it from backup; or delete it to make a new key, which then goes to {} in place of the old one", node.name))
        })?;
        keys.insert(node.name.clone(), key);
    }
    Ok(keys)
}

/// A new seal key for `node`, saved in `pki/<node>/seal.key` (0600).
fn new_seal_key(inv: &Inventory, node: &Node, say: &mut dyn FnMut(String)) -> Result<SealKey> {
    let path = seal_key_path(inv, node);
    let key = SealKey::generate();
    ensure_dir(&inv.pki.dir.join(&node.name))?;
    write_private(&path, key.file_text().as_bytes())?;
    say(format!(
        "generated the seal key `{}`; copy it to {} as {} (mode 0600, owner root) by another path than the bundles",
        path.display(),
        node.name,
        seal::NODE_KEY_PATH
    ));
    Ok(key)
}

/// Length of an aescbc key, in bytes.
pub const ENCRYPTION_KEY_BYTES: usize = 32;

fn encryption_key_path(inv: &Inventory) -> PathBuf {
    inv.pki.dir.join("encryption-key")
}

/// The secrets encryption key saved in `pki/encryption-key` (base64 of 32 bytes, the
/// same for every master), if there is one. A saved key that does not decode to 32
/// bytes is refused, never replaced: Secrets written with it could not be read again.
/// So is a missing key while pki/ holds the cluster's CA, keys or certificates: the
/// apiservers of that cluster have stored Secrets with the lost key (or, for a pki/
/// made before kube-apiserver joined, with a key of their own).
fn saved_encryption_key(inv: &Inventory) -> Result<Option<String>> {
    use base64::Engine;
    let path = encryption_key_path(inv);
    if path.exists() {
        let text = read_text(&path)?;
        let key = text.trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|e| {
                Error::pki(loc(&path), format!("is not base64 ({e})"))
                    .with_hint("it holds one line: the base64 of 32 random bytes, as `head -c 32 /dev/urandom | base64` prints")
            })?;
        if decoded.len() != ENCRYPTION_KEY_BYTES {
            return Err(Error::pki(
                loc(&path),
                format!(
                    "decodes to {} bytes; an aescbc key is {ENCRYPTION_KEY_BYTES}",
                    decoded.len()
                ),
            )
            .with_hint("restore the cluster's key from backup; a new key (`head -c 32 /dev/urandom | base64`) only suits a cluster without encrypted Secrets"));
        }
        return Ok(Some(key.to_string()));
    }
    if let Some(held) = cluster_file(&inv.pki.dir)? {
        return Err(Error::pki(
            loc(&path),
            format!(
                "is missing, but `{}` already holds the cluster (`{}`), whose Secrets are encrypted with it",
                inv.pki.dir.display(),
                held.display()
            ),
        )
        .with_hint(format!(
            "restore it from backup; only for a cluster that has no encrypted Secrets, create a new one: `(umask 077; head -c 32 /dev/urandom | base64 > {})`",
            path.display()
        )));
    }
    Ok(None)
}

/// The first file in `dir` that shows it holds a cluster: a certificate or key (`*.pem`)
/// or the service-account key pair, in `dir` or a node's folder in it.
fn cluster_file(dir: &Path) -> Result<Option<PathBuf>> {
    fn sorted(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut paths = fs_err::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<Vec<_>>>()?;
        paths.sort();
        Ok(paths)
    }
    let held = |path: &Path, names: &[&str]| {
        path.is_file()
            && path.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.ends_with(".pem") || names.contains(&n.as_ref())
            })
    };
    if !dir.is_dir() {
        return Ok(None);
    }
    // The CA first: it is what the message names when it is there.
    let mut top = sorted(dir)?;
    top.sort_by_key(|p| p.file_name().is_none_or(|n| n != "ca.pem"));
    for path in top {
        if held(&path, &["sa.key", "sa.pub"]) {
            return Ok(Some(path));
        }
        if path.is_dir() {
            if let Some(leaf) = sorted(&path)?.into_iter().find(|p| held(p, &[])) {
                return Ok(Some(leaf));
            }
        }
    }
    Ok(None)
}

/// A new encryption key of 32 random bytes, saved in `pki/encryption-key` (0600).
fn new_encryption_key(inv: &Inventory, say: &mut dyn FnMut(String)) -> Result<String> {
    use base64::Engine;
    let path = encryption_key_path(inv);
    let bytes: [u8; ENCRYPTION_KEY_BYTES] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    ensure_dir(&inv.pki.dir)?;
    write_private(&path, format!("{key}\n").as_bytes())?;
    say(format!(
        "generated the secrets encryption key `{}`; back it up: Secrets in etcd cannot be read without it",
        path.display()
    ));
    Ok(key)
}

/// The files of the CSR signing CA in `pki/`.
pub(crate) struct SignerFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The certificate of the signing CA it replaced, trusted until dropped.
    pub previous: PathBuf,
    /// A new signing CA is written here first, key then certificate; the certificate
    /// is the commit point, after which it is moved in place (by the next build if
    /// this one dies).
    next_cert: PathBuf,
    next_key: PathBuf,
}

impl SignerFiles {
    pub fn of(inv: &Inventory) -> SignerFiles {
        let at = |name: &str| inv.pki.dir.join(name);
        SignerFiles {
            cert: at("csr-signer.pem"),
            key: at("csr-signer-key.pem"),
            previous: at("csr-signer-previous.pem"),
            next_cert: at("csr-signer-next.pem"),
            next_key: at("csr-signer-next-key.pem"),
        }
    }
}

const REPLACE_SIGNER_HINT: &str = "restore it from backup, or replace the signing CA with a new key: `kube-bundle build --replace-csr-signer` (see the README's \"CSR signing\")";

/// What a build does with the CSR signing CA, decided before anything is written.
struct SignerPlan {
    action: SignerAction,
    /// The previous signer `client-ca.pem` trusts after this build, unless `action`
    /// retires the current one into its place.
    previous: Option<String>,
    drop_previous: bool,
}

enum SignerAction {
    Keep(Leaf),
    /// A new key and certificate, `why` (none for the first one); `retire` is the
    /// certificate it replaces, kept as the previous signer.
    Make {
        why: Option<String>,
        retire: Option<String>,
    },
}

/// `--replace-csr-signer` and `--drop-previous-csr-signer` without a signing CA.
fn refuse_signer_change(inv: &Inventory, change: SignerChange) -> Result<()> {
    let flag = match (change.replace, change.drop_previous) {
        (true, _) => "--replace-csr-signer",
        (false, true) => "--drop-previous-csr-signer",
        (false, false) => return Ok(()),
    };
    let why = if inv.pki.csr_signing == CsrSigning::Signer {
        "no component it builds signs CSRs".to_string()
    } else {
        format!("`pki.csr-signing = \"{}\"`", inv.pki.csr_signing.name())
    };
    Err(Error::input(
        flag,
        format!("`{}` has no CSR signing CA ({why})", inv.path.display()),
    )
    .with_hint("a signing CA exists with `[pki] csr-signing = \"signer\"` (the default) and the controller-manager"))
}

/// Decides what happens to the signing CA in `pki/csr-signer{,-key}.pem`. It is kept
/// while it is its own issuer (self-signed: what its key signs chains to nothing else),
/// its key matches, fits the key algorithm and it has not expired. Any new signing CA
/// has a new key: re-certifying a key that may have leaked would revoke nothing. A
/// certificate without its key, a key without its certificate or a key that does not
/// match are refused unless a replacement was asked for.
fn plan_signer(
    inv: &Inventory,
    change: SignerChange,
    say: &mut dyn FnMut(String),
) -> Result<SignerPlan> {
    let files = SignerFiles::of(inv);
    if finish_signer_change(&files)? {
        say(format!(
            "finished putting in place the new CSR signing CA `{}` that an interrupted build made",
            files.cert.display()
        ));
    }
    // Dropped unread: a damaged one must not stand in the way of dropping it.
    let previous = if files.previous.exists() && !change.drop_previous {
        let hint = "it holds the signing CA the current one replaced; restore it from backup, or build with `--drop-previous-csr-signer` to stop trusting it";
        let (text, der) =
            read_pem(&files.previous, &["CERTIFICATE"]).map_err(|e| e.with_hint(hint))?;
        if X509Certificate::from_der(&der).is_err() {
            return Err(
                Error::pki(loc(&files.previous), "is not an X.509 certificate").with_hint(hint),
            );
        }
        Some(text)
    } else {
        None
    };
    let saved_key = if files.key.exists() {
        Some(read_key_text(&files.key)?)
    } else {
        None
    };
    let saved_cert = if files.cert.exists() {
        Some(read_pem(&files.cert, &["CERTIFICATE"])?)
    } else {
        None
    };
    let make = |why: &str, retire: Option<String>| SignerAction::Make {
        why: Some(why.to_string()),
        retire,
    };
    let action = match (saved_cert, saved_key) {
        (None, None) => SignerAction::Make {
            why: None,
            retire: None,
        },
        (Some((text, der)), _) if change.replace => {
            if let Some(issuer) = foreign_issuer(&der) {
                say(issued_by_another_ca(&files.cert, &issuer));
            }
            make(
                "replacement was asked for",
                X509Certificate::from_der(&der).is_ok().then_some(text),
            )
        }
        (None, Some(_)) if change.replace => make(
            "replacement was asked for; the old certificate is gone, so nothing its key signed stays trusted",
            None,
        ),
        (None, Some(_)) => {
            return Err(Error::pki(
                loc(&files.cert),
                format!(
                    "is missing while its key `{}` exists; kube-bundle does not certify that key again, since a new certificate for it would revoke nothing",
                    files.key.display()
                ),
            )
            .with_hint("restore csr-signer.pem from backup (or from a bundle: rootfs/etc/kubernetes/cert/csr-signer.pem), or replace the signing CA with a new key: `kube-bundle build --replace-csr-signer`"))
        }
        (Some(_), None) => {
            return Err(Error::pki(
                loc(&files.cert),
                format!("exists but its key `{}` does not", files.key.display()),
            )
            .with_hint(REPLACE_SIGNER_HINT))
        }
        (Some((text, der)), Some(key_pem)) => {
            let Ok((_, cert)) = X509Certificate::from_der(&der) else {
                return Err(
                    Error::pki(loc(&files.cert), "is not an X.509 certificate")
                        .with_hint(REPLACE_SIGNER_HINT),
                );
            };
            if !key_matches(&files.key, &key_pem, &cert)? {
                return Err(Error::pki(
                    loc(&files.key),
                    format!("does not match `{}`", files.cert.display()),
                )
                .with_hint(REPLACE_SIGNER_HINT));
            }
            let end = cert.validity().not_after.to_datetime();
            if let Some(issuer) = foreign_issuer(&der) {
                say(issued_by_another_ca(&files.cert, &issuer));
                make(
                    &format!("it was issued by `{issuer}`, not by itself"),
                    Some(text),
                )
            } else if end <= OffsetDateTime::now_utc() {
                // Nothing an expired CA signed is still valid: no previous to keep.
                make(&format!("it expired on {}", rfc3339(end)), None)
            } else if key_algorithm_of(&cert) != Some(inv.pki.key_algorithm) {
                make(
                    &format!(
                        "the key algorithm changed to {}",
                        inv.pki.key_algorithm.name()
                    ),
                    Some(text),
                )
            } else {
                SignerAction::Keep(Leaf {
                    cert_pem: text,
                    key_pem,
                })
            }
        }
    };
    if let (
        Some(_),
        SignerAction::Make {
            why,
            retire: Some(_),
        },
    ) = (&previous, &action)
    {
        return Err(Error::pki(
            loc(&files.previous),
            format!(
                "still holds the signing CA replaced before, and this build would replace `{}` ({}), which must become the previous one",
                files.cert.display(),
                why.as_deref().unwrap_or("replacement was asked for")
            ),
        )
        .with_hint("finish the roll-out of the last replacement first: once every master runs it and no kubelet certificate of the old signer is in use, build with `--drop-previous-csr-signer` (add `--replace-csr-signer` to replace again in the same build)"));
    }
    Ok(SignerPlan {
        action,
        previous,
        drop_previous: change.drop_previous,
    })
}

/// Carries out a [`SignerPlan`]: drops the previous signer, makes and puts in place a
/// new signing CA. Returns the signing CA and the previous one kube-apiserver trusts.
fn apply_signer(
    inv: &Inventory,
    plan: SignerPlan,
    say: &mut dyn FnMut(String),
) -> Result<(Leaf, Option<String>)> {
    let files = SignerFiles::of(inv);
    if plan.drop_previous {
        if files.previous.exists() {
            let issuer = read_pem(&files.previous, &["CERTIFICATE"])
                .ok()
                .and_then(|(_, der)| foreign_issuer(&der));
            fs_err::remove_file(&files.previous)?;
            say(match issuer {
                None => format!(
                    "dropped the previous CSR signing CA `{}`: kube-apiserver refuses what its key signed once it runs with the new client-ca.pem",
                    files.previous.display()
                ),
                Some(issuer) => format!(
                    "warning: dropped the previous CSR signing CA `{}`, but it was issued by `{issuer}`: what its key signs, presented with that certificate, stays trusted by everything that trusts `{issuer}` (kube-apiserver too, for the root CA) until `{issuer}` itself is replaced",
                    files.previous.display()
                ),
            });
        } else {
            say(format!(
                "no previous CSR signing CA to drop (`{}` does not exist)",
                files.previous.display()
            ));
        }
    }
    let (why, retire) = match plan.action {
        SignerAction::Keep(leaf) => return Ok((leaf, plan.previous)),
        SignerAction::Make { why, retire } => (why, retire),
    };
    let signer = new_signer(inv)?;
    ensure_dir(&inv.pki.dir)?;
    // The old certificate first: until the new one is committed, a previous equal to
    // the current one is an interrupted replacement that the next build undoes.
    if let Some(old) = &retire {
        write_public(&files.previous, old.as_bytes())?;
    }
    write_private(&files.next_key, signer.key_pem.as_bytes())?;
    write_public(&files.next_cert, signer.cert_pem.as_bytes())?;
    finish_signer_change(&files)?;
    let path = files.cert.display();
    say(match (why, &retire) {
        (None, _) => format!("issued the CSR signing CA `{path}` (self-signed); its key goes to the masters, the root CA key stays in pki/"),
        (Some(why), Some(_)) => format!(
            "replaced the CSR signing CA `{path}` with a new key: {why}; the new dist/client-ca.pem trusts both (the old certificate is `{}`): install the new bundles on every master, let kubelets renew their certificates, then build with `--drop-previous-csr-signer`",
            files.previous.display()
        ),
        (Some(why), None) => format!(
            "replaced the CSR signing CA `{path}` with a new key: {why}; kube-apiserver refuses certificates of the old one once the new bundles are installed"
        ),
    });
    let previous = retire.or(plan.previous);
    Ok((signer, previous))
}

/// A new self-signed signing CA (CA:TRUE, path length 0) with a new key. Its common name
/// ends with the start of its key identifier, so that the signing CAs a client CA file
/// holds during a replacement have different names.
fn new_signer(inv: &Inventory) -> Result<Leaf> {
    let key = generate_key(inv.pki.key_algorithm)?;
    let mut params = CertificateParams::default();
    let id = params.key_identifier(&key);
    params.distinguished_name = subject_dn(
        &inv.pki.subject,
        None,
        &format!(
            "{}-csr-signer-{}",
            inv.cluster.name,
            hex::encode(&id[..4.min(id.len())])
        ),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    validity(&mut params, inv.pki.ca_validity)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::crypto("self-signing the CSR signing CA", e))?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Completes or undoes what an interrupted build left of a new signing CA; returns
/// whether it put one in place. With `csr-signer-next.pem` written, the new signing CA
/// is decided: its key, then its certificate, are moved over the current ones (the old
/// key is not kept). Without it, the new key is removed and a previous signer equal to
/// the current one is too.
fn finish_signer_change(files: &SignerFiles) -> Result<bool> {
    if !files.next_cert.exists() {
        if files.next_key.exists() {
            fs_err::remove_file(&files.next_key)?;
        }
        if files.previous.exists() && files.cert.exists() {
            let previous = read_pem(&files.previous, &["CERTIFICATE"]).ok();
            let current = read_pem(&files.cert, &["CERTIFICATE"]).ok();
            if previous.is_some_and(|(_, p)| current.is_some_and(|(_, c)| p == c)) {
                fs_err::remove_file(&files.previous)?;
            }
        }
        return Ok(false);
    }
    let key_path = if files.next_key.exists() {
        &files.next_key
    } else {
        &files.key
    };
    let (_, der) = read_pem(&files.next_cert, &["CERTIFICATE"])?;
    let key_pem = read_key_text(key_path)?;
    let fits = match X509Certificate::from_der(&der) {
        Ok((_, cert)) => key_matches(key_path, &key_pem, &cert)?,
        Err(_) => false,
    };
    if !fits {
        return Err(Error::pki(
            loc(&files.next_cert),
            format!(
                "is a new signing CA an interrupted build wrote, but `{}` is not its key",
                key_path.display()
            ),
        )
        .with_hint("restore pki/ from backup, or delete csr-signer-next.pem and csr-signer-next-key.pem and build with `--replace-csr-signer`"));
    }
    if key_path == &files.next_key {
        fs_err::rename(&files.next_key, &files.key)?;
    }
    fs_err::rename(&files.next_cert, &files.cert)?;
    if let Some(dir) = files.cert.parent() {
        fs_err::File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

/// Whether a certificate is its own issuer: same name, signed by its own key.
pub(crate) fn self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == cert.subject().as_raw() && cert.verify_signature(None).is_ok()
}

/// The issuer of a certificate that is not its own issuer, by name.
fn foreign_issuer(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    (!self_signed(&cert)).then(|| pki_name(cert.issuer()))
}

/// The warning for a signing CA that another CA issued, as earlier releases made it.
fn issued_by_another_ca(path: &Path, issuer: &str) -> String {
    format!(
        "warning: the CSR signing CA `{}` is issued by `{issuer}` (as earlier kube-bundle releases made it): it is replaced by a self-signed one with a new key. Until `{issuer}` itself is replaced, the old key (on every master that ran the earlier bundles) still signs certificates that everything trusting `{issuer}` accepts; for the root CA that is kubectl with the kubeconfigs, etcd with `etcd-ca = \"shared\"` and kube-apiserver",
        path.display()
    )
}

/// A name's common name, or the whole name without one.
fn pki_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    attr_of(name, &x509_parser::oid_registry::OID_X509_COMMON_NAME)
        .unwrap_or_else(|| name.to_string())
}

struct Ca {
    cert_pem: String,
    key_pem: String,
    key_path: PathBuf,
    cert_der: Vec<u8>,
    /// Parsed on first use: a build that issues nothing never needs it.
    key: std::sync::OnceLock<KeyPair>,
}

impl Ca {
    fn parsed(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.cert_der)
            .expect("CA parsed when loaded")
            .1
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>> {
        if self.key.get().is_none() {
            let _ = self.key.set(parse_key_text(&self.key_path, &self.key_pem)?);
        }
        let key = self.key.get().expect("set above");
        Issuer::from_ca_cert_der(&self.cert_der.clone().into(), key)
            .map_err(|e| Error::crypto("CA certificate", e))
    }
}

fn loc(path: &Path) -> String {
    format!("`{}`", path.display())
}

/// A PEM file's text. A file that is missing or not text is bad PKI state (exit 2); any
/// other failure to read it (permissions, I/O) is an I/O error naming it (exit 1).
fn read_text(path: &Path) -> Result<String> {
    fs_err::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => {
            Error::pki(loc(path), e.to_string())
        }
        _ => Error::Io(e),
    })
}

/// Reads the first PEM block of `label` from a file.
fn read_pem(path: &Path, labels: &[&str]) -> Result<(String, Vec<u8>)> {
    let text = read_text(path)?;
    let blocks =
        pem::parse_many(&text).map_err(|e| Error::pki(loc(path), format!("is not PEM: {e}")))?;
    let block = blocks
        .into_iter()
        .find(|b| labels.contains(&b.tag()))
        .ok_or_else(|| {
            Error::pki(
                loc(path),
                format!("holds no {} PEM block", labels.join(" or ")),
            )
        })?;
    Ok((text, block.into_contents()))
}

fn read_key_text(path: &Path) -> Result<String> {
    read_text(path)
}

fn parse_key_text(path: &Path, text: &str) -> Result<KeyPair> {
    KeyPair::from_pem(text).map_err(|e| {
        Error::pki(loc(path), format!("is not a usable private key ({e})")).with_hint(
            "PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) PEM keys are accepted",
        )
    })
}

/// Whether a saved key is of the inventory's algorithm (and, for RSA, size).
fn key_fits(key_pem: &str, alg: KeyAlgorithm) -> bool {
    match (keys::of_private_pem(key_pem), alg) {
        (Some(keys::PublicHalf::Ec(_)), KeyAlgorithm::EcdsaP256) => true,
        (Some(keys::PublicHalf::Rsa { modulus, .. }), rsa) => {
            let bits = modulus.len() * 8;
            matches!(
                (bits, rsa),
                (2048, KeyAlgorithm::Rsa2048)
                    | (3072, KeyAlgorithm::Rsa3072)
                    | (4096, KeyAlgorithm::Rsa4096)
            )
        }
        _ => false,
    }
}

/// Whether the private key `key_pem` (from `path`) belongs to `cert`. Public halves are
/// compared as read from the key's DER; a key that cannot be read that way is parsed.
fn key_matches(path: &Path, key_pem: &str, cert: &X509Certificate<'_>) -> Result<bool> {
    match (keys::of_private_pem(key_pem), keys::of_cert(cert)) {
        (Some(key), Some(cert)) => Ok(key == cert),
        _ => Ok(spki_matches(&parse_key_text(path, key_pem)?, cert)),
    }
}

pub(crate) fn spki_matches(key: &KeyPair, cert: &X509Certificate<'_>) -> bool {
    key.subject_public_key_info() == cert.tbs_certificate.subject_pki.raw
}

fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Ca> {
    let (cert_text, cert_der) = read_pem(cert_path, &["CERTIFICATE"])?;
    let key_text = read_key_text(key_path)?;
    let (_, cert) = X509Certificate::from_der(&cert_der)
        .map_err(|e| Error::pki(loc(cert_path), format!("is not an X.509 certificate ({e})")))?;
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(Error::pki(
            loc(cert_path),
            "is not a CA certificate (no basicConstraints CA:TRUE)",
        )
        .with_hint(
            "`pki.ca-cert` must be the cluster's root CA, as made by `cfssl gencert -initca`",
        ));
    }
    let now = OffsetDateTime::now_utc();
    if cert.validity().not_after.to_datetime() <= now {
        return Err(Error::pki(
            loc(cert_path),
            format!("the CA expired on {}", cert.validity().not_after),
        )
        .with_hint("renew the CA first; every certificate it signed must be reissued too"));
    }
    if !key_matches(key_path, &key_text, &cert)? {
        return Err(Error::pki(
            loc(key_path),
            format!(
                "does not match the CA certificate `{}`",
                cert_path.display()
            ),
        )
        .with_hint("`pki.ca-key` must be the private key of `pki.ca-cert`"));
    }
    let pem_cert = pem::encode(&pem::Pem::new("CERTIFICATE", cert_der.clone()));
    // Keep an imported CA's file as written; a generated one is already plain PEM.
    let cert_pem = if pem::parse_many(&cert_text).map(|b| b.len()).unwrap_or(0) == 1 {
        cert_text
    } else {
        pem_cert
    };
    Ok(Ca {
        cert_pem,
        key_pem: key_text,
        key_path: key_path.to_path_buf(),
        cert_der,
        key: std::sync::OnceLock::new(),
    })
}

fn saved_ca(inv: &Inventory, say: &mut dyn FnMut(String)) -> Result<Ca> {
    saved_ca_at(
        inv,
        &inv.pki.dir.join("ca.pem"),
        &inv.pki.dir.join("ca-key.pem"),
        &format!("{}-ca", inv.cluster.name),
        "a new CA",
        say,
    )
}

/// A self-signed CA kept in `cert_path` and `key_path`: loaded, or generated once with
/// common name `cn` when neither file exists.
fn saved_ca_at(
    inv: &Inventory,
    cert_path: &Path,
    key_path: &Path,
    cn: &str,
    what: &str,
    say: &mut dyn FnMut(String),
) -> Result<Ca> {
    let (cert_path, key_path) = (cert_path.to_path_buf(), key_path.to_path_buf());
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => load_ca(&cert_path, &key_path),
        (false, false) => {
            let ca = generate_ca(inv, &key_path, cn)?;
            ensure_dir(&inv.pki.dir)?;
            write_private(&key_path, ca.key_pem.as_bytes())?;
            write_public(&cert_path, ca.cert_pem.as_bytes())?;
            say(format!("generated {what} in `{}`", cert_path.display()));
            Ok(ca)
        }
        (true, false) => Err(Error::pki(
            loc(&cert_path),
            format!("exists but its key `{}` does not", key_path.display()),
        )
        .with_hint("restore the CA key from backup; kube-bundle never replaces a CA on its own")),
        (false, true) => {
            let dir = cert_path.parent().unwrap_or(Path::new("."));
            if let Some(tmp) = recover_ca_cert(dir, &cert_path, &key_path)? {
                say(format!(
                    "recovered `{}` from `{}`, which an interrupted build wrote in full",
                    cert_path.display(),
                    tmp.display()
                ));
                return load_ca(&cert_path, &key_path);
            }
            Err(Error::pki(
                loc(&key_path),
                format!(
                    "exists but its certificate `{}` does not",
                    cert_path.display()
                ),
            )
            .with_hint(
                "restore the CA certificate from backup; kube-bundle never replaces a CA on its own",
            ))
        }
    }
}

/// A first build writes `ca-key.pem`, then `ca.pem` through a synced temporary file. If
/// it died between the two, that temporary file is the certificate: it is put in place
/// when it parses and matches the key. Returns the file it came from.
fn recover_ca_cert(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<Option<PathBuf>> {
    let Ok(key) = KeyPair::from_pem(&fs_err::read_to_string(key_path)?) else {
        return Ok(None);
    };
    let prefix = format!(
        "{}.tmp-",
        cert_path.file_stem().unwrap_or_default().to_string_lossy()
    );
    for entry in fs_err::read_dir(dir)? {
        let tmp = entry?.path();
        let is_candidate = tmp
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&prefix));
        let Some(text) = is_candidate
            .then(|| fs_err::read_to_string(&tmp).ok())
            .flatten()
        else {
            continue;
        };
        let matches = pem::parse(&text).ok().is_some_and(|block| {
            block.tag() == "CERTIFICATE"
                && X509Certificate::from_der(block.contents())
                    .is_ok_and(|(_, cert)| spki_matches(&key, &cert))
        });
        if matches {
            fs_err::rename(&tmp, cert_path)?;
            return Ok(Some(tmp));
        }
    }
    Ok(None)
}

fn generate_key(alg: KeyAlgorithm) -> Result<KeyPair> {
    let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
    match alg {
        KeyAlgorithm::Rsa2048 => rsa(RsaKeySize::_2048),
        KeyAlgorithm::Rsa3072 => rsa(RsaKeySize::_3072),
        KeyAlgorithm::Rsa4096 => rsa(RsaKeySize::_4096),
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
    }
    .map_err(|e| Error::crypto(format!("generating a {} key", alg.name()), e))
}

/// What algorithm a certificate's public key uses, in inventory terms.
pub(crate) fn key_algorithm_of(cert: &X509Certificate<'_>) -> Option<KeyAlgorithm> {
    use x509_parser::public_key::PublicKey;
    match cert.public_key().parsed().ok()? {
        PublicKey::RSA(rsa) => match rsa.key_size() {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        },
        PublicKey::EC(point) if point.key_size() == 256 => Some(KeyAlgorithm::EcdsaP256),
        _ => None,
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and of full length, as RFC 5280 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn subject_dn(
    subject: &Subject,
    organization: Option<&str>,
    common_name: &str,
) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    let fields = [
        (DnType::CountryName, subject.country.as_deref()),
        (DnType::StateOrProvinceName, subject.state.as_deref()),
        (DnType::LocalityName, subject.locality.as_deref()),
        (DnType::OrganizationName, organization),
        (
            DnType::OrganizationalUnitName,
            subject.organizational_unit.as_deref(),
        ),
    ];
    for (ty, value) in fields {
        if let Some(v) = value {
            dn.push(ty, v);
        }
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

fn validity(params: &mut CertificateParams, lifetime: std::time::Duration) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    let lifetime =
        time::Duration::try_from(lifetime).map_err(|e| Error::crypto("certificate lifetime", e))?;
    params.not_after = now + lifetime;
    Ok(())
}

fn generate_ca(inv: &Inventory, key_path: &Path, cn: &str) -> Result<Ca> {
    let key = generate_key(inv.pki.key_algorithm)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject_dn(&inv.pki.subject, None, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    validity(&mut params, inv.pki.ca_validity)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::crypto("self-signing the CA", e))?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        key_path: key_path.to_path_buf(),
        cert_der: cert.der().to_vec(),
        key: std::sync::OnceLock::from(key),
    })
}

fn service_account_key(inv: &Inventory, say: &mut dyn FnMut(String)) -> Result<ServiceAccountPair> {
    let key_path = inv.pki.dir.join("sa.key");
    let pub_path = inv.pki.dir.join("sa.pub");
    if key_path.exists() {
        let private_pem = read_key_text(&key_path)?;
        if pub_path.exists() {
            let public_pem = fs_err::read_to_string(&pub_path)?;
            let same = match (
                keys::of_private_pem(&private_pem),
                keys::of_public_pem(&public_pem),
            ) {
                (Some(a), Some(b)) => a == b,
                _ => parse_key_text(&key_path, &private_pem)?.public_key_pem() == public_pem,
            };
            if !same {
                return Err(Error::pki(
                    loc(&pub_path),
                    format!("does not match `{}`", key_path.display()),
                )
                .with_hint("delete sa.pub to have it derived again from sa.key"));
            }
            return Ok(ServiceAccountPair {
                private_pem,
                public_pem,
            });
        }
        let public_pem = parse_key_text(&key_path, &private_pem)?.public_key_pem();
        write_public(&pub_path, public_pem.as_bytes())?;
        say(format!(
            "wrote `{}` from the existing key",
            pub_path.display()
        ));
        return Ok(ServiceAccountPair {
            private_pem,
            public_pem,
        });
    }
    if pub_path.exists() {
        return Err(Error::pki(loc(&pub_path), format!("exists but its private key `{}` does not", key_path.display()))
            .with_hint("restore sa.key from backup: a new key would invalidate every service-account token; delete sa.pub only if that is intended"));
    }
    let key = generate_key(inv.pki.key_algorithm)?;
    let pair = ServiceAccountPair {
        private_pem: key.serialize_pem(),
        public_pem: key.public_key_pem(),
    };
    ensure_dir(&inv.pki.dir)?;
    write_private(&key_path, pair.private_pem.as_bytes())?;
    write_public(&pub_path, pair.public_pem.as_bytes())?;
    say(format!(
        "generated the service-account key pair `{}`",
        key_path.display()
    ));
    Ok(pair)
}

/// The names a certificate of `spec` carries on `node`, in certificate order.
pub fn names(inv: &Inventory, node: Option<&Node>, spec: &CertSpec) -> Vec<San> {
    let Some(node) = node else { return Vec::new() };
    let mut names = match spec.names {
        Names::None => Vec::new(),
        Names::Node => crate::model::node_names(node),
        Names::ApiServer => inv.apiserver_names(node),
    };
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// The SANs a certificate must carry, sorted, as [`cert_sans`] lists them.
fn expected_sans(inv: &Inventory, node: Option<&Node>, spec: &CertSpec) -> Vec<String> {
    let mut sans: Vec<String> = names(inv, node, spec).iter().map(San::to_string).collect();
    sans.sort();
    sans.dedup();
    sans
}

pub(crate) fn cert_sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut sans: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .map(|name| match name {
                    GeneralName::DNSName(d) => format!("DNS:{d}"),
                    GeneralName::IPAddress(raw) => match raw.len() {
                        4 => format!("IP:{}", IpAddr::from(<[u8; 4]>::try_from(*raw).unwrap())),
                        16 => format!("IP:{}", IpAddr::from(<[u8; 16]>::try_from(*raw).unwrap())),
                        _ => "IP:?".to_string(),
                    },
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .unwrap_or_default();
    sans.sort();
    sans
}

pub(crate) fn attr(
    cert: &X509Certificate<'_>,
    oid: &x509_parser::der_parser::Oid<'_>,
) -> Option<String> {
    attr_of(cert.subject(), oid)
}

pub(crate) fn attr_of(
    name: &x509_parser::x509::X509Name<'_>,
    oid: &x509_parser::der_parser::Oid<'_>,
) -> Option<String> {
    name.iter_by_oid(oid)
        .next()
        .and_then(|a| a.as_str().ok().map(str::to_string))
}

fn subject_matches(
    cert: &X509Certificate<'_>,
    spec: &CertSpec,
    node: Option<&Node>,
    subject: &Subject,
) -> bool {
    use x509_parser::oid_registry as oids;
    attr(cert, &oids::OID_X509_COMMON_NAME) == Some(cn_of(spec, node))
        && attr(cert, &oids::OID_X509_ORGANIZATION_NAME).as_deref() == spec.org
        && attr(cert, &oids::OID_X509_COUNTRY_NAME) == subject.country
        && attr(cert, &oids::OID_X509_STATE_OR_PROVINCE_NAME) == subject.state
        && attr(cert, &oids::OID_X509_LOCALITY_NAME) == subject.locality
        && attr(cert, &oids::OID_X509_ORGANIZATIONAL_UNIT) == subject.organizational_unit
}

/// Why a saved leaf certificate cannot be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LeafProblem {
    Unreadable,
    Issuer,
    Sans {
        have: Vec<String>,
        want: Vec<String>,
    },
    Subject,
    KeyMismatch,
    Algorithm(KeyAlgorithm),
    Expired(String),
    Renewal,
}

impl std::fmt::Display for LeafProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeafProblem::Unreadable => write!(f, "the saved certificate is unreadable"),
            LeafProblem::Issuer => write!(f, "its issuer is no longer the CA"),
            LeafProblem::Sans { have, want } => write!(
                f,
                "its SANs changed from {} to {}",
                have.join(","),
                want.join(",")
            ),
            LeafProblem::Subject => write!(f, "its subject no longer matches the inventory"),
            LeafProblem::KeyMismatch => write!(f, "the saved key does not match the certificate"),
            LeafProblem::Algorithm(a) => write!(f, "the key algorithm changed to {}", a.name()),
            LeafProblem::Expired(when) => write!(f, "it expired on {when}"),
            LeafProblem::Renewal => write!(f, "renewal was asked for"),
        }
    }
}

impl LeafProblem {
    /// Whether the saved key can sign the new certificate.
    fn keeps_key(&self) -> bool {
        !matches!(
            self,
            LeafProblem::KeyMismatch | LeafProblem::Algorithm(_) | LeafProblem::Unreadable
        )
    }
}

/// The subject CN of `spec` on `node`, or of a cluster certificate (no node).
fn cn_of(spec: &CertSpec, node: Option<&Node>) -> String {
    node.map_or_else(|| spec.cn.to_string(), |n| spec.cn_on(&n.name))
}

/// Why a saved leaf cannot be reused, or `None` when it can.
fn leaf_problem(
    inv: &Inventory,
    node: Option<&Node>,
    spec: &CertSpec,
    ca: &Ca,
    cert_der: &[u8],
    key_path: &Path,
    key_pem: &str,
) -> Result<Option<LeafProblem>> {
    let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
        return Ok(Some(LeafProblem::Unreadable));
    };
    let ca_cert = ca.parsed();
    if cert.issuer().as_raw() != ca_cert.subject().as_raw()
        || cert.verify_signature(Some(ca_cert.public_key())).is_err()
    {
        return Ok(Some(LeafProblem::Issuer));
    }
    let (have, want) = (cert_sans(&cert), expected_sans(inv, node, spec));
    if have != want {
        return Ok(Some(LeafProblem::Sans { have, want }));
    }
    if !subject_matches(&cert, spec, node, &inv.pki.subject) {
        return Ok(Some(LeafProblem::Subject));
    }
    if !key_matches(key_path, key_pem, &cert)? {
        return Ok(Some(LeafProblem::KeyMismatch));
    }
    if key_algorithm_of(&cert) != Some(inv.pki.key_algorithm) {
        return Ok(Some(LeafProblem::Algorithm(inv.pki.key_algorithm)));
    }
    if cert.validity().not_after.to_datetime() <= OffsetDateTime::now_utc() {
        return Ok(Some(LeafProblem::Expired(rfc3339(
            cert.validity().not_after.to_datetime(),
        ))));
    }
    Ok(None)
}

/// The key and certificate of `spec` on `node` (`pki/<node>/<name>.pem`), or with no
/// node one of the cluster's (`pki/<name>.pem`): reused while it fits, otherwise issued
/// by `ca` and reported. `renewing` reissues a fitting one under the same names, with a
/// new key when it holds `true`.
fn leaf(
    inv: &Inventory,
    node: Option<&Node>,
    spec: &CertSpec,
    ca: &Ca,
    renewing: Option<bool>,
    say: &mut dyn FnMut(String),
) -> Result<Leaf> {
    let dir = match node {
        Some(node) => inv.pki.dir.join(&node.name),
        None => inv.pki.dir.clone(),
    };
    let (cert_name, key_name) = spec.pki_files();
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    let whose = match node {
        Some(node) => format!("{}: ", node.name),
        None => String::new(),
    };
    let what = match node {
        Some(_) => format!("{} certificate", spec.name),
        None => format!("{} certificate `{}`", spec.name, cert_path.display()),
    };

    let saved_key = if key_path.exists() {
        Some(read_key_text(&key_path)?)
    } else {
        None
    };
    let problem = match (&saved_key, cert_path.exists()) {
        (Some(key_pem), true) => {
            let (cert_pem, cert_der) = read_pem(&cert_path, &["CERTIFICATE"])?;
            let found = leaf_problem(inv, node, spec, ca, &cert_der, &key_path, key_pem)?;
            match (found, renewing.is_some()) {
                (None, false) => return Ok(Leaf { cert_pem, key_pem: key_pem.clone() }),
                (None, true) => Some(LeafProblem::Renewal),
                (Some(LeafProblem::Sans { have, want }), true) => {
                    return Err(Error::input(
                        format!("`{}`", cert_path.display()),
                        format!("renewing the {what} of `{}` would change its SANs from {} to {}", node.map_or("the cluster", |n| n.name.as_str()), have.join(","), want.join(",")),
                    )
                    .with_hint("renewal keeps a certificate's names; build without --renew to reissue it with the inventory's names"))
                }
                (Some(problem), _) => Some(problem),
            }
        }
        _ => None,
    };

    let keep_key = saved_key.filter(|pem| {
        key_fits(pem, inv.pki.key_algorithm)
            && renewing != Some(true)
            && problem.as_ref().is_none_or(LeafProblem::keeps_key)
    });
    let kept_key = keep_key.is_some();
    let (key_pem, key) = kept_or_new_key(&key_path, keep_key, inv.pki.key_algorithm)?;

    let mut params = CertificateParams::default();
    params.distinguished_name = subject_dn(&inv.pki.subject, spec.org, &cn_of(spec, node));
    params.subject_alt_names = names(inv, node, spec)
        .into_iter()
        .map(|name| match name {
            San::Ip(ip) => Ok(SanType::IpAddress(ip)),
            San::Dns(dns) => dns
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| Error::crypto(format!("the name `{dns}`"), e)),
        })
        .collect::<Result<_>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = [
        (spec.server, ExtendedKeyUsagePurpose::ServerAuth),
        (spec.client, ExtendedKeyUsagePurpose::ClientAuth),
    ]
    .into_iter()
    .filter_map(|(on, usage)| on.then_some(usage))
    .collect();
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    validity(&mut params, inv.pki.cert_validity)?;
    // A leaf must not outlive its CA.
    let ca_end = ca.parsed().validity().not_after.to_datetime();
    if params.not_after > ca_end {
        if params.not_after - ca_end > time::Duration::days(1) {
            say(format!(
                "{whose}certificate ends with the CA on {}",
                rfc3339(ca_end)
            ));
        }
        params.not_after = ca_end;
    }
    let cert = params
        .signed_by(&key, &ca.issuer()?)
        .map_err(|e| Error::crypto(format!("signing the {what}"), e))?;

    ensure_dir(&dir)?;
    write_private(&key_path, key_pem.as_bytes())?;
    write_public(&cert_path, cert.pem().as_bytes())?;
    match problem {
        Some(problem) => {
            let key_note = if kept_key { "" } else { " (new key)" };
            say(format!("{whose}reissued the {what}{key_note}: {problem}"))
        }
        None if node.is_none() => say(format!("issued the {what}")),
        None => {
            let article = if spec.name.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            say(format!("{whose}issued {article} {what}"))
        }
    }
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem,
    })
}

/// The saved key `kept` (read from `path`), parsed so it can sign, or a new one.
fn kept_or_new_key(
    path: &Path,
    kept: Option<String>,
    alg: KeyAlgorithm,
) -> Result<(String, KeyPair)> {
    match kept {
        Some(pem) => {
            let key = parse_key_text(path, &pem)?;
            Ok((pem, key))
        }
        None => {
            let key = generate_key(alg)?;
            Ok((key.serialize_pem(), key))
        }
    }
}

/// Subject, SANs, serial and validity of a PEM certificate, for manifests.
pub fn describe(cert_pem: &str) -> Option<CertSummary> {
    let block = pem::parse(cert_pem).ok()?;
    let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
    Some(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans: cert_sans(&cert),
        serial: cert.raw_serial_as_string(),
        not_before: rfc3339(cert.validity().not_before.to_datetime()),
        not_after: rfc3339(cert.validity().not_after.to_datetime()),
    })
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests;
