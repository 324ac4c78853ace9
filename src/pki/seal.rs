//! Sealed secrets: a bundle's private files (mode 0600 in the plan: keys, kubeconfigs with
//! their client key, the encryption config) encrypted with its node's seal key, so that a
//! bundle read from a registry, a mirror or a backup gives away no private key. The key is
//! 32 random bytes per node, kept in `pki/<node>/seal.key` as 64 hex digits and carried to
//! the node by another path than the bundle.
//!
//! A sealed file is exactly what `openssl enc -d -aes-256-cbc -pbkdf2 -iter 1 -md sha256
//! -pass file:seal.key` (OpenSSL 1.1.1 and newer) opens: `Salted__`, 8 bytes of salt, then
//! AES-256-CBC with PKCS#7 padding under the key and IV that PBKDF2-HMAC-SHA256 derives from
//! the key file's line and the salt. One iteration: PBKDF2's iterations slow down guessing a
//! password people chose, and 256 random bits cannot be guessed however fast each try is.
//! The salt is an HMAC of the plaintext under the seal key, not random, so a rebuild gives
//! the same bytes; it shows only whether two sealed files are equal, which their sha256 in
//! the manifest shows anyway.
//!
//! This module owns the format, the key file and the bundle names of sealed files; which
//! files are private is the plan's modes, and it writes nothing but a new key.

use std::num::NonZeroU32;
use std::path::Path;

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_256,
};
use aws_lc_rs::{hmac, pbkdf2};

use crate::error::{Error, Result};

/// The node's key file, in `pki/<node>/`.
pub const KEY_FILE: &str = "seal.key";
/// Where install.sh looks for the key when `--seal-key` is not given.
pub const NODE_KEY_PATH: &str = "/etc/kube-bundle/seal.key";
/// The folder of a bundle that holds its sealed files: `rootfs/etc/x` is `sealed/etc/x.enc`.
pub const SEALED_DIR: &str = "sealed";
const SEALED_SUFFIX: &str = ".enc";
/// The sha256 of every sealed file's plaintext, as `SHA256SUMS` would list it in clear.
pub const SEALED_SUMS: &str = "SHA256SUMS.sealed";

const MAGIC: &[u8; 8] = b"Salted__";
const SALT_LEN: usize = 8;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const KEY_BYTES: usize = 32;
/// Keeps the salt's HMAC apart from PBKDF2's own HMACs under the same key.
const SALT_CONTEXT: &[u8] = b"kube-bundle seal salt\0";

/// Whether a file of this mode is private: readable by its owner only.
pub fn is_private(mode: u32) -> bool {
    mode & 0o077 == 0
}

/// `sealed/etc/x.enc` for `rootfs/etc/x`; `None` for a path outside rootfs/.
pub fn sealed_path(bundle_path: &str) -> Option<String> {
    let rest = bundle_path.strip_prefix("rootfs/")?;
    Some(format!("{SEALED_DIR}/{rest}{SEALED_SUFFIX}"))
}

/// A node's seal key: the text of its key file's line, which openssl takes as the
/// passphrase.
#[derive(Clone)]
pub struct SealKey {
    line: String,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    pub fn generate() -> SealKey {
        let bytes: [u8; KEY_BYTES] = rand::random();
        SealKey {
            line: hex::encode(bytes),
        }
    }

    /// A key file's text: 64 lowercase hex digits on one line. Upper case is refused, not
    /// folded: openssl would take it as another passphrase.
    pub fn parse(text: &str) -> Option<SealKey> {
        let line = text.strip_suffix('\n').unwrap_or(text);
        (line.len() == 2 * KEY_BYTES
            && line.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| SealKey {
            line: line.to_string(),
        })
    }

    /// Reads a key file; a file that is not one is bad input naming it.
    pub fn load(path: &Path) -> Result<SealKey> {
        let loc = format!("`{}`", path.display());
        let text = fs_err::read_to_string(path).map_err(|e| Error::input(&loc, e.to_string()))?;
        SealKey::parse(&text).ok_or_else(|| {
            Error::input(
                &loc,
                "is not a seal key (one line of 64 lowercase hex digits)",
            )
            .with_hint("it is the node's `pki/<node>/seal.key` from the build host")
        })
    }

    /// What the key file holds.
    pub fn file_text(&self) -> String {
        format!("{}\n", self.line)
    }

    fn key_and_iv(&self, salt: &[u8]) -> ([u8; KEY_LEN], [u8; IV_LEN]) {
        let mut out = [0u8; KEY_LEN + IV_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::MIN,
            salt,
            self.line.as_bytes(),
            &mut out,
        );
        let mut key = [0u8; KEY_LEN];
        let mut iv = [0u8; IV_LEN];
        key.copy_from_slice(&out[..KEY_LEN]);
        iv.copy_from_slice(&out[KEY_LEN..]);
        (key, iv)
    }

    /// `plaintext` sealed: the same key and plaintext always give the same bytes.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mac = hmac::Key::new(hmac::HMAC_SHA256, self.line.as_bytes());
        let mut ctx = hmac::Context::with_key(&mac);
        ctx.update(SALT_CONTEXT);
        ctx.update(plaintext);
        let tag = ctx.sign();
        let salt = &tag.as_ref()[..SALT_LEN];
        let (key, iv) = self.key_and_iv(salt);
        let failed = |e| Error::crypto("sealing a private file", e);
        let cipher = UnboundCipherKey::new(&AES_256, &key)
            .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
            .map_err(failed)?;
        let mut body = plaintext.to_vec();
        cipher
            .less_safe_encrypt(&mut body, EncryptionContext::Iv128(iv.into()))
            .map_err(failed)?;
        let mut out = Vec::with_capacity(MAGIC.len() + SALT_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(salt);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The plaintext of a sealed file, or `None` when it is not one or this key does not
    /// open it. A wrong key is caught by the padding most of the time; the caller's
    /// sha256 check catches the rest.
    pub fn unseal(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let body = sealed.strip_prefix(MAGIC.as_slice())?;
        if body.len() < SALT_LEN + IV_LEN || !(body.len() - SALT_LEN).is_multiple_of(IV_LEN) {
            return None;
        }
        let (salt, body) = body.split_at(SALT_LEN);
        let (key, iv) = self.key_and_iv(salt);
        let cipher = UnboundCipherKey::new(&AES_256, &key)
            .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
            .ok()?;
        let mut body = body.to_vec();
        let plain = cipher
            .decrypt(&mut body, DecryptionContext::Iv128(iv.into()))
            .ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    fn key(c: char) -> SealKey {
        SealKey::parse(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn sealing_is_deterministic_and_opens_only_with_its_key() {
        let text = b"-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
        let a = key('a').seal(text).unwrap();
        assert_eq!(a, key('a').seal(text).unwrap(), "same key, same bytes");
        assert!(a.starts_with(b"Salted__"));
        assert_eq!((a.len() - 16) % 16, 0);
        assert!(!a.windows(11).any(|w| w == b"PRIVATE KEY"));
        assert_eq!(key('a').unseal(&a).unwrap(), text);
        assert_ne!(key('b').seal(text).unwrap(), a);
        assert_ne!(key('b').unseal(&a).as_deref(), Some(&text[..]));
        // Another plaintext gets another salt.
        assert_ne!(key('a').seal(b"other").unwrap()[8..16], a[8..16]);
        // Empty and block-sized plaintexts round-trip too.
        for len in [0, 15, 16, 17, 4096] {
            let data = vec![7u8; len];
            assert_eq!(
                key('c').unseal(&key('c').seal(&data).unwrap()).unwrap(),
                data
            );
        }
        assert_eq!(key('a').unseal(b"Salted__short"), None);
        assert_eq!(key('a').unseal(&a[8..]), None);
    }

    #[test]
    fn key_files_are_64_lowercase_hex_digits() {
        let k = SealKey::generate();
        assert_eq!(k.file_text().len(), 65);
        assert!(SealKey::parse(&k.file_text()).is_some());
        assert!(SealKey::parse(&"a".repeat(64)).is_some());
        assert!(SealKey::parse(&"A".repeat(64)).is_none());
        assert!(SealKey::parse(&"a".repeat(63)).is_none());
        assert!(SealKey::parse(&format!("{}\n\n", "a".repeat(64))).is_none());
        assert!(SealKey::parse("").is_none());
        assert_ne!(SealKey::generate().line, SealKey::generate().line);
    }

    #[test]
    fn sealed_paths_mirror_rootfs() {
        assert_eq!(
            sealed_path("rootfs/etc/kubernetes/cert/sa.key").as_deref(),
            Some("sealed/etc/kubernetes/cert/sa.key.enc")
        );
        assert_eq!(sealed_path("install.sh"), None);
        assert!(is_private(0o600) && is_private(0o400) && is_private(0o700));
        assert!(!is_private(0o644) && !is_private(0o640) && !is_private(0o755));
    }
}
