//! PKI state in `pki/`: the CA (imported or generated once), the CAs the built rows
//! declare (`pki/<stem>.pem`), the service-account key pair and one key and certificate
//! per node and component (`pki/<node>/<component>.pem`). State is reused while it still
//! fits the inventory and the CA; a leaf that no longer fits is reissued and reported. With
//! `seal-secrets`, also each node's seal key (`pki/<node>/seal.key`). This module never
//! regenerates a CA, a service-account key or a seal key that already exists, replaces
//! the CSR signing CA only with a new key (when asked, or when it is not its own trust
//! anchor), and never touches `dist/`.

pub mod certs;
pub mod keys;
pub mod seal;
pub mod signature;

mod ca;
mod leaf;
mod secrets;
mod signer;
mod x509;

pub(crate) use ca::*;
pub use leaf::*;
pub use secrets::*;
pub(crate) use signer::*;
pub use x509::*;

use std::collections::BTreeMap;
use std::path::Path;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use self::seal::SealKey;
use crate::component::{self, CaSpec, CertSpec, Component, IssuedBy, Names, ADMIN};
use crate::error::{Error, Result};
use crate::fsx::{ensure_dir, restrict_dir, write_private, write_public};
pub use crate::manifest::CertSummary;
use crate::model::{CsrSigning, Inventory, KeyAlgorithm, Node, San, ServiceAccountKey, Subject};
use crate::parallel;

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
    /// still trusted by the API server until it is dropped.
    pub csr_signer_previous: Option<String>,
    /// (node, certificate name) → its key and certificate.
    pub leaves: BTreeMap<(String, &'static str), Leaf>,
    /// The secrets encryption key (base64 of 32 bytes), when a row serving the API is
    /// built.
    pub encryption_key: Option<String>,
    /// The operator's client certificate, when a row serving the API is built.
    pub admin: Option<Leaf>,
    /// The CAs of their own (certificate, key) that the built rows need: every one of
    /// [`component::cas`] but those the root CA serves for.
    pub cas: BTreeMap<&'static CaSpec, Leaf>,
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

    /// The certificate of `ca` that nodes trust: its own, or the root CA's where the
    /// root serves in its place.
    pub fn ca_pem(&self, ca: &CaSpec) -> &str {
        self.cas
            .get(ca)
            .map_or(&self.ca_cert_pem, |ca| &ca.cert_pem)
    }

    /// The API server's `--client-ca-file`: the root CA, then the CSR signing CA whose
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
    let serves_api = inv.serves_api();
    let mut cas = BTreeMap::new();
    for spec in component::cas(inv) {
        if spec.root_serves(&inv.pki) {
            continue;
        }
        let (cert, key) = spec.pki_files();
        let ca = saved_ca_at(
            inv,
            &dir.join(cert),
            &dir.join(key),
            &spec.cn(&inv.cluster.name),
            &format!("the {}", spec.what),
            say,
        )?;
        cas.insert(spec, ca);
    }
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
        // A CA the rows need that was not made is one the root CA serves for.
        let issuer = match spec.issued_by {
            IssuedBy::Root => &ca,
            IssuedBy::Ca(own) => cas.get(own).unwrap_or(&ca),
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
    let admin = if serves_api {
        // Renewed with every node's certificates, not with some nodes' or components'.
        let renewing = renew
            .nodes
            .as_ref()
            .is_some_and(std::collections::BTreeSet::is_empty)
            && renew.components.is_empty();
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
        None if serves_api => Some(new_encryption_key(inv, say)?),
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
        encryption_key,
        admin,
        cas: cas
            .into_iter()
            .map(|(spec, ca)| {
                let leaf = Leaf {
                    cert_pem: ca.cert_pem,
                    key_pem: ca.key_pem,
                };
                (spec, leaf)
            })
            .collect(),
        seal_keys,
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests;
