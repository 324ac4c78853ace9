//! The keys that are not certificates: each node's seal key, the encryption key for
//! Secrets at rest and the service-account key pair.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::seal::{self, SealKey};
use super::x509::{generate_key, loc, parse_key_text, read_key_text, read_text};
use super::{keys, ServiceAccountPair};
use crate::error::{Error, Result};
use crate::fsx::{ensure_dir, write_private, write_public};
use crate::model::{Inventory, Node};

fn seal_key_path(inv: &Inventory, node: &Node) -> PathBuf {
    inv.pki.dir.join(&node.name).join(seal::KEY_FILE)
}

/// The seal keys already in `pki/<node>/seal.key`. One that is not a key stops the build:
/// its node holds the key it was made with, and a new one would not open its bundles.
pub(super) fn saved_seal_keys(inv: &Inventory) -> Result<BTreeMap<String, SealKey>> {
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
pub(super) fn new_seal_key(
    inv: &Inventory,
    node: &Node,
    say: &mut dyn FnMut(String),
) -> Result<SealKey> {
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

pub use crate::model::ENCRYPTION_KEY_BYTES;

fn encryption_key_path(inv: &Inventory) -> PathBuf {
    inv.pki.dir.join("encryption-key")
}

/// The secrets encryption key saved in `pki/encryption-key` (base64 of 32 bytes, the
/// same for every master), if there is one. A saved key that does not decode to 32
/// bytes is refused, never replaced: Secrets written with it could not be read again.
/// So is a missing key while pki/ holds the cluster's CA, keys or certificates: the
/// apiservers of that cluster have stored Secrets with the lost key (or, for a pki/
/// made before a row serving the API joined, with a key of their own).
pub(super) fn saved_encryption_key(inv: &Inventory) -> Result<Option<String>> {
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
pub(super) fn new_encryption_key(inv: &Inventory, say: &mut dyn FnMut(String)) -> Result<String> {
    use base64::Engine;
    let path = encryption_key_path(inv);
    let bytes: [u8; ENCRYPTION_KEY_BYTES] = rand::random();
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    ensure_dir(&inv.pki.dir)?;
    write_private(&path, format!("{key}\n").as_bytes())?;
    say(format!(
        "generated the secrets encryption key `{}`; back it up: the Secrets stored with it cannot be read without it",
        path.display()
    ));
    Ok(key)
}

pub(super) fn service_account_key(
    inv: &Inventory,
    say: &mut dyn FnMut(String),
) -> Result<ServiceAccountPair> {
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
