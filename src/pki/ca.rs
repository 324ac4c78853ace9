//! The cluster's CAs: loaded from pki/ (or recovered after an interrupted first build),
//! checked for being a CA whose key fits, or made new.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::x509::{
    attr_of, generate_key, key_matches, loc, parse_key_text, random_serial, read_key_text,
    read_pem, spki_matches, subject_dn, validity,
};
use crate::error::{Error, Result};
use crate::fsx::{ensure_dir, write_private, write_public};
use crate::model::Inventory;

/// Whether a certificate is its own issuer: same name, signed by its own key.
pub(crate) fn self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == cert.subject().as_raw() && cert.verify_signature(None).is_ok()
}

/// The issuer of a certificate that is not its own issuer, by name.
pub(super) fn foreign_issuer(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    (!self_signed(&cert)).then(|| pki_name(cert.issuer()))
}

/// The warning for a signing CA that another CA issued, as earlier releases made it.
pub(super) fn issued_by_another_ca(path: &Path, issuer: &str) -> String {
    format!(
        "warning: the CSR signing CA `{}` is issued by `{issuer}` (as earlier kube-bundle releases made it): it is replaced by a self-signed one with a new key. Until `{issuer}` itself is replaced, the old key (on every master that ran the earlier bundles) still signs certificates that everything trusting `{issuer}` accepts; for the root CA that is kubectl with the kubeconfigs, {} and the components of every CA set to `shared` in [pki]",
        path.display(),
        crate::component::api_server_name()
    )
}

/// A name's common name, or the whole name without one.
fn pki_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    attr_of(name, &x509_parser::oid_registry::OID_X509_COMMON_NAME)
        .unwrap_or_else(|| name.to_string())
}

pub(super) struct Ca {
    pub(super) cert_pem: String,
    pub(super) key_pem: String,
    pub(super) key_path: PathBuf,
    pub(super) cert_der: Vec<u8>,
    /// Parsed on first use: a build that issues nothing never needs it.
    pub(super) key: std::sync::OnceLock<KeyPair>,
}

impl Ca {
    pub(super) fn parsed(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.cert_der)
            .expect("CA parsed when loaded")
            .1
    }

    pub(super) fn issuer(&self) -> Result<Issuer<'static, &KeyPair>> {
        if self.key.get().is_none() {
            let _ = self.key.set(parse_key_text(&self.key_path, &self.key_pem)?);
        }
        let key = self.key.get().expect("set above");
        Issuer::from_ca_cert_der(&self.cert_der.clone().into(), key)
            .map_err(|e| Error::crypto("CA certificate", e))
    }
}

pub(super) fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Ca> {
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
    let cert_pem = if pem::parse_many(&cert_text).map_or(0, |b| b.len()) == 1 {
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

pub(super) fn saved_ca(inv: &Inventory, say: &mut dyn FnMut(String)) -> Result<Ca> {
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
pub(super) fn saved_ca_at(
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

fn generate_ca(inv: &Inventory, key_path: &Path, cn: &str) -> Result<Ca> {
    let key = generate_key(inv.pki.key_algorithm)?;
    let dn = subject_dn(&inv.pki.subject, None, cn);
    let cert = ca_params(inv, dn, BasicConstraints::Unconstrained)?
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

/// The parameters of every CA kube-bundle makes, to be self-signed: name `dn`, path
/// length `constraint`, a CA's key usages (certificates, CRLs, digital signatures), a
/// random serial and the inventory's CA validity.
pub(super) fn ca_params(
    inv: &Inventory,
    dn: DistinguishedName,
    constraint: BasicConstraints,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(constraint);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    validity(&mut params, inv.pki.ca_validity)?;
    Ok(params)
}
