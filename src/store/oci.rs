//! OCI vocabulary shared by `push`, `pull` and fetch.sh: registry references, the media
//! types and annotation keys of kube-bundle's artifacts, and the manifest and index
//! documents with their exact serialization (the registry keeps the bytes we send, so the
//! same dist always gives the same digests). This module does no I/O.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The empty config every artifact manifest carries (image-spec 1.1 "empty descriptor").
pub const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// `artifactType` of the index at the pushed reference.
pub const ARTIFACT_SET: &str = "application/vnd.kube-bundle.set.v1";
/// `artifactType` of one node's bundle.
pub const ARTIFACT_BUNDLE: &str = "application/vnd.kube-bundle.bundle.v1";
/// `artifactType` of the dist extras (SHA256SUMS, ca.pem, client-ca.pem, sa.pub, rollout.sh,
/// fetch.sh).
pub const ARTIFACT_DIST: &str = "application/vnd.kube-bundle.dist.v1";
/// A layer that is one gzip member of a bundle; the bundle is its members in order.
pub const MEDIA_MEMBER: &str = "application/vnd.kube-bundle.bundle.member.v1+gzip";
/// A dist file, stored as is.
pub const MEDIA_FILE: &str = "application/vnd.kube-bundle.file.v1";

pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_NODE: &str = "io.kube-bundle.node";
pub const ANNOTATION_COMPONENTS: &str = "io.kube-bundle.components";
pub const ANNOTATION_K8S_VERSION: &str = "io.kube-bundle.kubernetes-version";
/// The bundle's file name, e.g. `control-plane-m1.tar.gz`.
pub const ANNOTATION_BUNDLE: &str = "io.kube-bundle.bundle";
/// `sha256:<hex>` of the reassembled tarball, as in dist/SHA256SUMS.
pub const ANNOTATION_BUNDLE_DIGEST: &str = "io.kube-bundle.bundle.digest";
/// `dist` on the index entry of the extras artifact.
pub const ANNOTATION_PART: &str = "io.kube-bundle.part";

/// Where an artifact lives: `host[:port]/repo[:tag][@sha256:hex]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |why: &str| {
            Error::input(format!("reference `{text}`"), why.to_string()).with_hint(
                "write it as `registry.example:5000/k8s/control-plane:v1.20.2-r3` \
                 (registry host, repository, tag)",
            )
        };
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("the digest must be `sha256:` and 64 hex digits"))?;
                if !is_sha256_hex(hex) {
                    return Err(bad("the digest must be `sha256:` and 64 hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (text, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("it names no repository"))?;
        let host_like = registry.contains('.')
            || registry.contains(':')
            || registry == "localhost"
            || registry.starts_with('[');
        if registry.is_empty() || !host_like {
            return Err(bad(
                "it must start with the registry's host (`host:port/` or a name with a dot)",
            ));
        }
        if !registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return Err(bad("the registry host has characters a host cannot have"));
        }
        split_host_port(registry).map_err(bad)?;
        // A colon after the last slash starts the tag.
        let (repository, tag) = match path.rfind(':') {
            Some(i) if !path[i..].contains('/') => (&path[..i], Some(&path[i + 1..])),
            _ => (path, None),
        };
        if repository.is_empty()
            || !repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                    && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && part.ends_with(|c: char| c.is_ascii_alphanumeric())
            })
        {
            return Err(bad(
                "the repository must be lowercase letters, digits and `._-`, parts separated by `/`",
            ));
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad(
                    "the tag must be at most 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
                ));
            }
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The tag or digest to ask the registry for.
    pub fn target(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// The same repository at another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// `host/repo:tag@digest` for printing.
    pub fn pinned(&self, digest: &str) -> String {
        match &self.tag {
            Some(t) => format!("{}/{}:{t}@{digest}", self.registry, self.repository),
            None => format!("{}/{}@{digest}", self.registry, self.repository),
        }
    }

    /// The registry's host name or address, without the brackets of an IPv6 address.
    pub fn host(&self) -> &str {
        split_host_port(&self.registry).map_or("", |(h, _)| h)
    }

    /// The registry's port when the reference names one.
    pub fn port(&self) -> Option<u16> {
        split_host_port(&self.registry).ok().and_then(|(_, p)| p)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` → (host, port); a port is 1 to 65535.
fn split_host_port(registry: &str) -> std::result::Result<(&str, Option<u16>), &'static str> {
    let (host, port) = match registry.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest
                .split_once(']')
                .ok_or("an IPv6 address must be closed with `]`")?;
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("the text in brackets is not an IPv6 address");
            }
            match after {
                "" => (v6, None),
                _ => (
                    v6,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or("only `:port` may follow an IPv6 address")?,
                    ),
                ),
            }
        }
        None if registry.matches(':').count() > 1 || registry.contains(['[', ']']) => {
            return Err(
                "the registry host has more than one `:` (write an IPv6 address in brackets)",
            )
        }
        None => match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        },
    };
    if host.is_empty() {
        return Err("the registry host is empty");
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|n| *n != 0 && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or("the port must be a number from 1 to 65535")?,
        ),
    };
    Ok((host, port))
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// The tag a node's bundle manifest gets beside the index: `<tag>-<node>`.
pub fn node_tag(tag: &str, node: &str) -> Result<String> {
    let t = format!("{tag}-{node}");
    if valid_tag(&t) {
        Ok(t)
    } else {
        Err(Error::input(
            format!("tag `{tag}`"),
            format!("`{t}` (the tag of node `{node}`'s bundle) is not a valid tag"),
        )
        .with_hint("tags are at most 128 letters, digits, `_`, `.` and `-`; use a shorter tag"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(
        rename = "artifactType",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn empty_config() -> Descriptor {
        Descriptor {
            media_type: MEDIA_EMPTY.into(),
            digest: crate::digest::sha256_digest(EMPTY_CONFIG),
            size: EMPTY_CONFIG.len() as u64,
            artifact_type: None,
            // base64 of `{}`, so readers need not fetch it.
            data: Some("e30=".into()),
            annotations: BTreeMap::new(),
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// An image manifest used as an artifact manifest (image-spec 1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(
        rename = "artifactType",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(
        rename = "artifactType",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// Compact JSON, fields in declaration order, maps sorted: the same document always gives
/// the same bytes and so the same digest.
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    serde_json::to_vec(doc).expect("OCI documents serialize")
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    #[test]
    fn references_parse_into_their_parts() {
        let r = Reference::parse("registry.example:5000/k8s/control-plane:v1.20.2-r3").unwrap();
        assert_eq!(r.registry, "registry.example:5000");
        assert_eq!(r.repository, "k8s/control-plane");
        assert_eq!(r.tag.as_deref(), Some("v1.20.2-r3"));
        assert_eq!(
            r.to_string(),
            "registry.example:5000/k8s/control-plane:v1.20.2-r3"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("127.0.0.1:5000/k8s@{d}")).unwrap();
        assert_eq!(r.target(), d);
        assert_eq!((r.host(), r.port()), ("127.0.0.1", Some(5000)));
        let r = Reference::parse("[::1]:5000/x:y").unwrap();
        assert_eq!((r.host(), r.port()), ("::1", Some(5000)));
        let r = Reference::parse("[fd00::1]/x").unwrap();
        assert_eq!((r.host(), r.port()), ("fd00::1", None));
        let r = Reference::parse("localhost/x").unwrap();
        assert_eq!((r.host(), r.port()), ("localhost", None));
    }

    #[test]
    fn malformed_references_name_what_is_wrong() {
        for (text, why) in [
            ("control-plane:v1", "repository"),
            ("k8s/control-plane:v1", "registry's host"),
            ("reg.example/K8s:v1", "lowercase"),
            ("reg.example/k8s:-v1", "tag"),
            ("reg.example/k8s@sha256:abc", "64 hex"),
            ("reg.example/k8s:", "tag"),
            (
                "127.0.0.1:99999/k8s:v1",
                "port must be a number from 1 to 65535",
            ),
            (
                "127.0.0.1:65536/k8s:v1",
                "port must be a number from 1 to 65535",
            ),
            (
                "127.0.0.1:0/k8s:v1",
                "port must be a number from 1 to 65535",
            ),
            (
                "127.0.0.1:abc/k8s:v1",
                "port must be a number from 1 to 65535",
            ),
            ("127.0.0.1:/k8s:v1", "port must be a number from 1 to 65535"),
            (
                "127.0.0.1:123456/k8s:v1",
                "port must be a number from 1 to 65535",
            ),
            ("a:1:2/k8s:v1", "more than one `:`"),
            (":5000/k8s:v1", "empty"),
            ("[::1/k8s:v1", "closed with `]`"),
            ("[::1]x/k8s:v1", "only `:port`"),
            ("[nothost]:5000/k8s:v1", "not an IPv6 address"),
        ] {
            let e = Reference::parse(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn the_empty_config_is_the_spec_one() {
        let d = Descriptor::empty_config();
        assert_eq!(
            d.digest,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.size, 2);
    }

    #[test]
    fn created_is_rfc3339_utc() {
        assert_eq!(crate::manifest::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            crate::manifest::rfc3339(1_700_000_000),
            "2023-11-14T22:13:20Z"
        );
    }
}
