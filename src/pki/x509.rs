//! Reading and making the parts of certificates and keys: PEM files, key algorithms and
//! fits, SANs, subject attributes, serials and validity.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData, RsaKeySize, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{keys, CLOCK_SKEW};
use crate::error::{Error, Result};
use crate::manifest::CertSummary;
use crate::model::{KeyAlgorithm, Subject};

pub(super) fn loc(path: &Path) -> String {
    format!("`{}`", path.display())
}

/// A PEM file's text. A file that is missing or not text is bad PKI state (exit 2); any
/// other failure to read it (permissions, I/O) is an I/O error naming it (exit 1).
pub(super) fn read_text(path: &Path) -> Result<String> {
    fs_err::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData => {
            Error::pki(loc(path), e.to_string())
        }
        _ => Error::Io(e),
    })
}

/// Reads the first PEM block of `label` from a file.
pub(super) fn read_pem(path: &Path, labels: &[&str]) -> Result<(String, Vec<u8>)> {
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

pub(super) fn read_key_text(path: &Path) -> Result<String> {
    read_text(path)
}

pub(super) fn parse_key_text(path: &Path, text: &str) -> Result<KeyPair> {
    KeyPair::from_pem(text).map_err(|e| {
        Error::pki(loc(path), format!("is not a usable private key ({e})")).with_hint(
            "PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) PEM keys are accepted",
        )
    })
}

/// Whether a saved key is of the inventory's algorithm (and, for RSA, size).
pub(super) fn key_fits(key_pem: &str, alg: KeyAlgorithm) -> bool {
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
pub(super) fn key_matches(path: &Path, key_pem: &str, cert: &X509Certificate<'_>) -> Result<bool> {
    match (keys::of_private_pem(key_pem), keys::of_cert(cert)) {
        (Some(key), Some(cert)) => Ok(key == cert),
        _ => Ok(spki_matches(&parse_key_text(path, key_pem)?, cert)),
    }
}

pub(crate) fn spki_matches(key: &KeyPair, cert: &X509Certificate<'_>) -> bool {
    key.subject_public_key_info() == cert.tbs_certificate.subject_pki.raw
}

pub(super) fn generate_key(alg: KeyAlgorithm) -> Result<KeyPair> {
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

pub(super) fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and of full length, as RFC 5280 wants.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

pub(super) fn subject_dn(
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

pub(super) fn validity(
    params: &mut CertificateParams,
    lifetime: std::time::Duration,
) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    let lifetime =
        time::Duration::try_from(lifetime).map_err(|e| Error::crypto("certificate lifetime", e))?;
    params.not_after = now + lifetime;
    Ok(())
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
