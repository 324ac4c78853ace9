//! Bundle signatures: SSHSIG signatures over a bundle's SHA256SUMS, made with an Ed25519
//! OpenSSH key at build time and checked against an allowed-signers file, the same format
//! and namespace `ssh-keygen -Y sign/verify` use, so install.sh can check them with the
//! node's own OpenSSH. This module signs and checks bytes; it knows nothing about tar.

use std::path::Path;

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::error::{Error, Result};

/// The signature file beside SHA256SUMS in a bundle.
pub const SIG_FILE: &str = "SHA256SUMS.sig";
/// An allowed-signers file pinned into the bundle at build time.
pub const PINNED_FILE: &str = "allowed_signers";
/// SSHSIG namespace: a signature made for another purpose never verifies as a bundle's.
pub const NAMESPACE: &str = "kube-bundle";

pub struct Signer {
    key: PrivateKey,
}

impl Signer {
    pub fn load(path: &Path) -> Result<Self> {
        let loc = || format!("`{}`", path.display());
        let text = fs_err::read_to_string(path).map_err(|e| Error::input(loc(), e.to_string()))?;
        let key = PrivateKey::from_openssh(&text).map_err(|e| {
            Error::input(loc(), format!("is not an OpenSSH private key ({e})"))
                .with_hint("make one with `ssh-keygen -t ed25519 -N '' -f bundle-signing-key`")
        })?;
        if key.is_encrypted() {
            return Err(Error::input(loc(), "is encrypted with a passphrase")
                .with_hint("sign with an unencrypted key kept on the build host, or decrypt a copy with `ssh-keygen -p`"));
        }
        if key.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(Error::input(
                loc(),
                format!(
                    "is a {} key; bundles are signed with Ed25519",
                    key.algorithm()
                ),
            ));
        }
        Ok(Signer { key })
    }

    /// An armored SSHSIG over `msg`. Ed25519 signatures are deterministic, so bundles stay
    /// reproducible.
    pub fn sign(&self, msg: &[u8]) -> Result<String> {
        let sig = self
            .key
            .sign(NAMESPACE, HashAlg::Sha512, msg)
            .map_err(|e| Error::crypto("signing SHA256SUMS", e))?;
        sig.to_pem(LineEnding::LF)
            .map_err(|e| Error::crypto("encoding the signature", e))
    }
}

/// One line of an allowed-signers file.
struct AllowedSigner {
    principal: String,
    key: PublicKey,
}

pub struct AllowedSigners {
    signers: Vec<AllowedSigner>,
}

impl AllowedSigners {
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs_err::read_to_string(path)
            .map_err(|e| Error::input(format!("`{}`", path.display()), e.to_string()))?;
        Self::parse(&text).map_err(|e| match e {
            Error::Input { message, hint, .. } => Error::Input {
                location: format!("`{}`", path.display()),
                message,
                hint,
            },
            other => other,
        })
    }

    /// Parses `principals [options] keytype base64 [comment]` lines; signers limited to
    /// other namespaces are left out.
    pub fn parse(text: &str) -> Result<Self> {
        let mut signers = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let bad = || {
                Error::input(
                    format!("allowed signers line {}", n + 1),
                    "is not `principal [options] key-type base64-key`",
                )
            };
            let (principal, rest) = words.split_first().ok_or_else(bad)?;
            let (options, key_words) = match rest.first() {
                Some(w)
                    if w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-") =>
                {
                    (None, rest)
                }
                Some(w) => (Some(*w), &rest[1..]),
                None => return Err(bad()),
            };
            if key_words.len() < 2 {
                return Err(bad());
            }
            if let Some(opts) = options {
                if opts.contains("cert-authority") {
                    continue;
                }
                let namespaces = split_options(opts)
                    .into_iter()
                    .find_map(|o| o.strip_prefix("namespaces=").map(str::to_string));
                if namespaces
                    .is_some_and(|ns| !ns.trim_matches('"').split(',').any(|n| n == NAMESPACE))
                {
                    continue;
                }
            }
            let key = PublicKey::from_openssh(&format!("{} {}", key_words[0], key_words[1]))
                .map_err(|e| {
                    Error::input(
                        format!("allowed signers line {}", n + 1),
                        format!("has an unreadable key ({e})"),
                    )
                })?;
            signers.push(AllowedSigner {
                principal: principal.to_string(),
                key,
            });
        }
        Ok(AllowedSigners { signers })
    }

    /// Checks an armored signature over `msg`; the error is a finding for the user.
    pub fn verify(&self, msg: &[u8], armored: &str) -> std::result::Result<String, String> {
        let sig =
            SshSig::from_pem(armored).map_err(|e| format!("is not an SSH signature ({e})"))?;
        if sig.namespace() != NAMESPACE {
            return Err(format!(
                "was made for namespace `{}`, not `{NAMESPACE}`",
                sig.namespace()
            ));
        }
        let Some(signer) = self
            .signers
            .iter()
            .find(|s| s.key.key_data() == sig.public_key())
        else {
            let fingerprint =
                PublicKey::from(sig.public_key().clone()).fingerprint(HashAlg::Sha256);
            return Err(format!(
                "is signed by {fingerprint}, which is not an allowed signer"
            ));
        };
        signer
            .key
            .verify(NAMESPACE, msg, &sig)
            .map(|()| signer.principal.clone())
            .map_err(|_| format!("does not verify: SHA256SUMS was altered or the signature is damaged (key of `{}`)", signer.principal))
    }
}

/// Splits `a,b="x,y",c` at the commas outside double quotes.
fn split_options(opts: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in opts.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                parts.last_mut().expect("one part").push(c);
            }
            ',' if !quoted => parts.push(String::new()),
            c => parts.last_mut().expect("one part").push(c),
        }
    }
    parts
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    fn keypair() -> PrivateKey {
        PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]))
    }

    fn allowed(key: &PrivateKey, options: &str) -> AllowedSigners {
        let line = format!(
            "ops@site {options} {}",
            key.public_key().to_openssh().unwrap()
        );
        AllowedSigners::parse(&line).unwrap()
    }

    #[test]
    fn round_trip_and_tamper() {
        let signer = Signer { key: keypair() };
        let sig = signer.sign(b"sums").unwrap();
        assert_eq!(sig, signer.sign(b"sums").unwrap(), "deterministic");
        let trust = allowed(&signer.key, "");
        assert_eq!(trust.verify(b"sums", &sig).unwrap(), "ops@site");
        assert!(trust
            .verify(b"sumz", &sig)
            .unwrap_err()
            .contains("does not verify"));
    }

    #[test]
    fn unlisted_keys_and_other_namespaces_are_refused() {
        let signer = Signer { key: keypair() };
        let sig = signer.sign(b"sums").unwrap();
        let other = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[8u8; 32]));
        assert!(allowed(&other, "")
            .verify(b"sums", &sig)
            .unwrap_err()
            .contains("not an allowed signer"));
        assert!(allowed(&signer.key, "namespaces=\"git\"")
            .verify(b"sums", &sig)
            .unwrap_err()
            .contains("not an allowed signer"));
        assert!(allowed(&signer.key, "namespaces=\"git,kube-bundle\"")
            .verify(b"sums", &sig)
            .is_ok());
    }
}
