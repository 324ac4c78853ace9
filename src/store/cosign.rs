//! cosign signatures for pushed artifacts, in the layout `cosign verify --key` reads: for a
//! manifest or index of digest `sha256:<hex>`, a manifest tagged `sha256-<hex>.sig` in the
//! same repository whose one layer is a "simple signing" payload (the signed reference and
//! digest) with the base64 ECDSA P-256 signature of it in the layer's
//! `dev.cosignproject.cosign/signature` annotation. Nothing goes to a transparency log:
//! verifiers pass `--insecure-ignore-tlog=true` and the public key.
//!
//! The key is a PEM EC P-256 private key (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`,
//! as `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes), readable
//! by its owner only; its public half is `<key>.pub` (PEM `PUBLIC KEY`, what
//! `cosign verify --key` takes), written beside it when missing and required to match it
//! when present. This module builds the documents and signs; the registry calls are
//! `artifact`'s.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::Engine as _;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::oci::{self, Descriptor, Manifest};

/// The media type of a simple-signing payload layer.
pub const MEDIA_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 DER signature of the payload.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The config of a signature manifest is an image config (what cosign writes).
pub const MEDIA_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The `type` of every cosign container image signature payload.
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The tag cosign looks up for the signatures of `digest` (`sha256:<hex>`).
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

#[derive(Serialize)]
struct Payload<'a> {
    critical: Critical<'a>,
    optional: Option<()>,
}

#[derive(Serialize)]
struct Critical<'a> {
    identity: Identity<'a>,
    image: Image<'a>,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct Identity<'a> {
    #[serde(rename = "docker-reference")]
    docker_reference: &'a str,
}

#[derive(Serialize)]
struct Image<'a> {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: &'a str,
}

/// The simple-signing payload for `digest` in `repository` (`host:port/repo`, no tag), in
/// the field order cosign writes.
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    let doc = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: repository,
            },
            image: Image {
                docker_manifest_digest: digest,
            },
            kind: PAYLOAD_TYPE,
        },
        optional: None,
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The image config of a signature manifest with one payload layer of `payload_digest`:
/// the config go-containerregistry's empty image gets when cosign appends the layer.
pub fn config(payload_digest: &str) -> Vec<u8> {
    format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{payload_digest}"]}},"config":{{}}}}"#
    )
    .into_bytes()
}

/// The signature manifest: `config` as its config, the payload as its one layer.
pub fn manifest(config: &[u8], payload: &[u8], signature: &str) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: oci::MEDIA_MANIFEST.into(),
        artifact_type: None,
        config: Descriptor {
            media_type: MEDIA_IMAGE_CONFIG.into(),
            digest: crate::digest::sha256_digest(config),
            size: config.len() as u64,
            artifact_type: None,
            data: None,
            annotations: Default::default(),
        },
        layers: vec![Descriptor {
            media_type: MEDIA_SIMPLE_SIGNING.into(),
            digest: crate::digest::sha256_digest(payload),
            size: payload.len() as u64,
            artifact_type: None,
            data: None,
            annotations: [(ANNOTATION_SIGNATURE.to_string(), signature.to_string())].into(),
        }],
        annotations: Default::default(),
    }
}

/// `<key>.pub`: where the public half of `key` is written and read.
pub fn public_key_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    public_pem: String,
    path: PathBuf,
}

impl Signer {
    /// Reads the private key at `path`; refuses one that others can read, or that is not
    /// an EC P-256 key in PEM.
    pub fn load(path: &Path) -> Result<Signer> {
        let loc = || format!("--cosign-key `{}`", path.display());
        let meta = fs_err::metadata(path).map_err(|e| {
            Error::input(loc(), e.to_string()).with_hint(
                "make a key with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out cosign-key.pem` (umask 077)",
            )
        })?;
        if !crate::pki::seal::is_private(meta.permissions().mode()) {
            return Err(Error::input(
                loc(),
                format!(
                    "is readable by others (mode {:o}): a signing key must be private",
                    meta.permissions().mode() & 0o777
                ),
            )
            .with_hint(format!("run `chmod 600 {}`", path.display())));
        }
        let text = fs_err::read_to_string(path).map_err(|e| Error::input(loc(), e.to_string()))?;
        let not_key = || {
            Error::input(loc(), "is not a PEM EC P-256 private key").with_hint(
                "make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`; \
                 cosign's own encrypted keys are not read",
            )
        };
        let block = pem::parse(&text).map_err(|_| not_key())?;
        if !matches!(block.tag(), "PRIVATE KEY" | "EC PRIVATE KEY") {
            return Err(not_key());
        }
        let key =
            EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, block.contents())
                .map_err(|_| not_key())?;
        let der = key
            .public_key()
            .as_der()
            .map_err(|e| Error::crypto(format!("encoding the public half of {}", loc()), e))?;
        let public_pem = pem::encode_config(
            &pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        Ok(Signer {
            key,
            rng: SystemRandom::new(),
            public_pem,
            path: path.to_path_buf(),
        })
    }

    /// The public key in PEM, as `cosign verify --key` reads it.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// Writes `<key>.pub` when missing; when present it must hold this key's public half.
    pub fn write_public_key(&self) -> Result<PathBuf> {
        let path = public_key_path(&self.path);
        match fs_err::read_to_string(&path) {
            Ok(text) => {
                let same = pem::parse(&text).ok().map(|b| b.contents().to_vec())
                    == pem::parse(&self.public_pem)
                        .ok()
                        .map(|b| b.contents().to_vec());
                if !same {
                    return Err(Error::input(
                        format!("`{}`", path.display()),
                        format!(
                            "is not the public key of `{}`: verifiers given it would reject the signatures",
                            self.path.display()
                        ),
                    )
                    .with_hint("move it away; push writes the matching one"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::fsx::write_public(&path, self.public_pem.as_bytes())
                    .map_err(|e| e.doing("writing the cosign public key", &path))?;
            }
            Err(e) => return Err(Error::Io(e)),
        }
        Ok(path)
    }

    /// The base64 DER ECDSA P-256 SHA-256 signature of `payload`.
    pub fn sign(&self, payload: &[u8]) -> Result<String> {
        let sig = self
            .key
            .sign(&self.rng, payload)
            .map_err(|e| Error::crypto("signing a cosign payload", e))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sig.as_ref()))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

    #[test]
    fn the_payload_is_cosigns_simple_signing_document() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let text = String::from_utf8(payload("127.0.0.1:5000/k8s/cp", &digest)).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/k8s/cp"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        assert_eq!(
            signature_tag(&digest),
            format!("sha256-{}.sig", "ab".repeat(32))
        );
    }

    #[test]
    fn signatures_verify_with_the_public_half_and_a_shared_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let text = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        fs_err::write(&path, text).unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Signer::load(&path).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("readable by others"), "{err}");
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let signer = Signer::load(&path).unwrap();
        let sig = base64::engine::general_purpose::STANDARD
            .decode(signer.sign(b"payload").unwrap())
            .unwrap();
        let spki = pem::parse(signer.public_pem()).unwrap();
        let point = &spki.contents()[spki.contents().len() - 65..];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(b"payload", &sig)
            .unwrap();
        let pub_path = signer.write_public_key().unwrap();
        assert_eq!(pub_path, dir.path().join("k.pem.pub"));
        assert_eq!(
            fs_err::read_to_string(&pub_path).unwrap(),
            signer.public_pem()
        );
        // A second push finds the same key there; another key's is refused.
        signer.write_public_key().unwrap();
        fs_err::write(
            &pub_path,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let err = signer.write_public_key().err().unwrap();
        assert_eq!(err.exit_code(), 2);
    }
}
