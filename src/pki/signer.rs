//! The CSR signing CA (`csr-signing = "signer"`): kept, made, replaced and the previous
//! one dropped, each step safe to interrupt.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::ca::{ca_params, foreign_issuer, issued_by_another_ca};
use super::x509::{
    generate_key, key_algorithm_of, key_matches, loc, read_key_text, read_pem, rfc3339, subject_dn,
};
use super::{Leaf, SignerChange};
use crate::component;
use crate::error::{Error, Result};
use crate::fsx::{ensure_dir, write_private, write_public};
use crate::model::{CsrSigning, Inventory};

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
pub(super) struct SignerPlan {
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
pub(super) fn refuse_signer_change(inv: &Inventory, change: SignerChange) -> Result<()> {
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
    .with_hint(format!(
        "a signing CA exists with `[pki] csr-signing = \"signer\"` (the default) and {}",
        component::all()
            .into_iter()
            .find(|c| c.signs_csrs)
            .map_or("a component that signs CSRs", |c| c.name)
    )))
}

/// Decides what happens to the signing CA in `pki/csr-signer{,-key}.pem`. It is kept
/// while it is its own issuer (self-signed: what its key signs chains to nothing else),
/// its key matches, fits the key algorithm and it has not expired. Any new signing CA
/// has a new key: re-certifying a key that may have leaked would revoke nothing. A
/// certificate without its key, a key without its certificate or a key that does not
/// match are refused unless a replacement was asked for.
pub(super) fn plan_signer(
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
/// new signing CA. Returns the signing CA and the previous one the API server trusts.
pub(super) fn apply_signer(
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
                    "dropped the previous CSR signing CA `{}`: {} refuses what its key signed once it runs with the new client-ca.pem",
                    files.previous.display(),
                    component::api_server_name()
                ),
                Some(issuer) => format!(
                    "warning: dropped the previous CSR signing CA `{}`, but it was issued by `{issuer}`: what its key signs, presented with that certificate, stays trusted by everything that trusts `{issuer}` ({} too, for the root CA) until `{issuer}` itself is replaced",
                    files.previous.display(),
                    component::api_server_name()
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
            "replaced the CSR signing CA `{path}` with a new key: {why}; {} refuses certificates of the old one once the new bundles are installed",
            component::api_server_name()
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
    let id = CertificateParams::default().key_identifier(&key);
    let dn = subject_dn(
        &inv.pki.subject,
        None,
        &format!(
            "{}-csr-signer-{}",
            inv.cluster.name,
            hex::encode(&id[..4.min(id.len())])
        ),
    );
    let cert = ca_params(inv, dn, BasicConstraints::Constrained(0))?
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
