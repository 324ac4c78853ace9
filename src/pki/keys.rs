//! The public half of a saved private key, read straight from its DER. Parsing a private
//! key with aws-lc checks it with a private-key operation (about a millisecond for
//! RSA-2048), which a rebuild that only reuses keys does not need: reuse checks compare
//! public halves, and the full parse waits until a key signs. This module only reads.

use x509_parser::der_parser::ber::{BerObject, BerObjectContent};
use x509_parser::der_parser::der::parse_der;
use x509_parser::prelude::X509Certificate;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicHalf {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    /// The uncompressed curve point.
    Ec(Vec<u8>),
}

fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

/// From a PEM private key: PKCS#8, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`.
/// `None` when the file holds something else, or an EC key without its public point.
pub fn of_private_pem(text: &str) -> Option<PublicHalf> {
    of_private_block(&pem::parse(text).ok()?)
}

/// [`of_private_pem`] of one parsed PEM block.
pub fn of_private_block(block: &pem::Pem) -> Option<PublicHalf> {
    match block.tag() {
        "PRIVATE KEY" => pkcs8(block.contents()),
        "RSA PRIVATE KEY" => rsa_private(block.contents()),
        "EC PRIVATE KEY" => ec_private(block.contents()),
        _ => None,
    }
}

fn sequence(der: &[u8]) -> Option<Vec<BerObject<'_>>> {
    let (_, obj) = parse_der(der).ok()?;
    obj.as_sequence().ok().cloned()
}

fn pkcs8(der: &[u8]) -> Option<PublicHalf> {
    let seq = sequence(der)?;
    let algorithm = seq
        .get(1)?
        .as_sequence()
        .ok()?
        .first()?
        .as_oid()
        .ok()?
        .to_id_string();
    let inner = seq.get(2)?.as_slice().ok()?;
    match algorithm.as_str() {
        RSA_ENCRYPTION => rsa_private(inner),
        EC_PUBLIC_KEY => ec_private(inner),
        _ => None,
    }
}

/// RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, ... }
fn rsa_private(der: &[u8]) -> Option<PublicHalf> {
    let seq = sequence(der)?;
    Some(PublicHalf::Rsa {
        modulus: unsigned(seq.get(1)?.as_slice().ok()?),
        exponent: unsigned(seq.get(2)?.as_slice().ok()?),
    })
}

/// ECPrivateKey ::= SEQUENCE { version, privateKey, [0] parameters OPTIONAL,
/// [1] publicKey BIT STRING OPTIONAL }
fn ec_private(der: &[u8]) -> Option<PublicHalf> {
    let seq = sequence(der)?;
    seq.iter().skip(2).find_map(|item| {
        if item.header.tag().0 != 1 {
            return None;
        }
        let bits = match &item.content {
            BerObjectContent::Tagged(_, _, inner) => inner.as_bitstring().ok()?.data.to_vec(),
            BerObjectContent::Unknown(any) => {
                let (_, inner) = parse_der(any.data).ok()?;
                inner.as_bitstring().ok()?.data.to_vec()
            }
            _ => return None,
        };
        Some(PublicHalf::Ec(bits))
    })
}

pub fn of_spki(spki: &SubjectPublicKeyInfo<'_>) -> Option<PublicHalf> {
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => Some(PublicHalf::Rsa {
            modulus: unsigned(rsa.modulus),
            exponent: unsigned(rsa.exponent),
        }),
        PublicKey::EC(point) => Some(PublicHalf::Ec(point.data().to_vec())),
        _ => None,
    }
}

pub fn of_cert(cert: &X509Certificate<'_>) -> Option<PublicHalf> {
    of_spki(cert.public_key())
}

/// From a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
pub fn of_public_pem(text: &str) -> Option<PublicHalf> {
    use x509_parser::prelude::FromDer;
    let block = pem::parse(text).ok()?;
    let (_, spki) = SubjectPublicKeyInfo::from_der(block.contents()).ok()?;
    of_spki(&spki)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use rcgen::{KeyPair, PublicKeyData};
    use x509_parser::prelude::FromDer;

    /// What aws-lc says the public key is, for comparison.
    fn reference(key: &KeyPair) -> PublicHalf {
        let spki = key.subject_public_key_info();
        let (_, spki) = SubjectPublicKeyInfo::from_der(&spki).unwrap();
        of_spki(&spki).unwrap()
    }

    #[test]
    fn pkcs8_keys_of_both_kinds() {
        for alg in [&rcgen::PKCS_RSA_SHA256, &rcgen::PKCS_ECDSA_P256_SHA256] {
            let key = KeyPair::generate_for(alg).unwrap();
            assert_eq!(of_private_pem(&key.serialize_pem()), Some(reference(&key)));
            assert_eq!(of_public_pem(&key.public_key_pem()), Some(reference(&key)));
        }
    }

    #[test]
    fn pkcs1_and_sec1_keys_as_openssl_and_cfssl_write_them() {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            let ok = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "openssl {args:?}");
        };
        openssl(&["genrsa", "-traditional", "-out", "rsa.pem", "2048"]);
        openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.pem",
        ]);
        for (file, header) in [("rsa.pem", "RSA PRIVATE KEY"), ("ec.pem", "EC PRIVATE KEY")] {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(text.contains(header), "{file}");
            let key = KeyPair::from_pem(&text).unwrap();
            assert_eq!(of_private_pem(&text), Some(reference(&key)), "{file}");
        }
    }

    #[test]
    fn different_keys_differ_and_junk_is_none() {
        let a = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let b = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert_ne!(
            of_private_pem(&a.serialize_pem()),
            of_private_pem(&b.serialize_pem())
        );
        assert_eq!(of_private_pem("not pem"), None);
        assert_eq!(
            of_private_pem(&pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3]))),
            None
        );
    }
}
