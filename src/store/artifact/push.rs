//! `push`: the members as blobs (each once), a manifest per node and an index, signed
//! when asked, and read back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};
use std::path::PathBuf;

use serde::Serialize;

use super::local::{read_dist, LocalBundle, LocalDist};
use super::pull::{parse_document, Document};
use super::Transfer;
use crate::error::{Error, Result};
use crate::store::cosign;
use crate::store::oci::{self, Descriptor, Index, Manifest, Reference};
use crate::store::registry::{self, Registry};

pub struct PushOptions {
    pub dist: PathBuf,
    pub reference: Reference,
    pub registry: registry::Options,
    /// SOURCE_DATE_EPOCH at push time; else the bundles' own entry mtime.
    pub created: Option<u64>,
    /// Push bundles whose private files are in clear (not sealed).
    pub allow_plain_secrets: bool,
    /// `--cosign-key`: sign the index and every manifest in it for `cosign verify`.
    pub cosign_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushedNode {
    pub node: String,
    pub bundle: String,
    pub reference: String,
    pub digest: String,
    pub sha256: String,
    pub size: u64,
    /// The bundle's gzip members in order: their concatenation is the bundle.
    pub layers: Vec<PushedLayer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushedLayer {
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    pub reference: String,
    pub digest: String,
    pub nodes: Vec<PushedNode>,
    pub dist: PushedDist,
    /// `<tag>-<node>` tags an earlier push left for nodes this one does not have. They are
    /// reported, not deleted: distribution deletes by digest only, which would also take
    /// the manifest from every other tag and index that holds it.
    pub stale_tags: Vec<StaleTag>,
    /// What push could not check (the tag list unreadable), one line each.
    pub warnings: Vec<String>,
    /// Bytes sent to the registry in blob uploads.
    pub uploaded_bytes: u64,
    /// Bytes of blobs the registry already had (HEAD found them).
    pub skipped_bytes: u64,
    pub uploaded_blobs: usize,
    pub skipped_blobs: usize,
    /// With `--cosign-key`: the signature manifests written, index first.
    pub signatures: Vec<PushedSignature>,
    /// With `--cosign-key`: the public key file verifiers take (`<key>.pub`).
    pub cosign_public_key: Option<PathBuf>,
}

/// A cosign signature manifest, tagged `sha256-<hex>.sig`.
#[derive(Debug, Clone, Serialize)]
pub struct PushedSignature {
    /// What is signed: `index`, `dist` or a node's name.
    pub signs: String,
    /// The digest of the signed manifest or index.
    pub signed: String,
    pub reference: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaleTag {
    pub tag: String,
    pub node: String,
    pub digest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushedDist {
    pub reference: String,
    pub digest: String,
    pub files: Vec<String>,
}

/// A blob to push: a byte range of a file.
struct Blob {
    pub(super) path: PathBuf,
    pub(super) offset: u64,
    pub(super) len: u64,
}

/// A registry's readers would read the private files of a bundle that carries them in
/// clear: such bundles are pushed only when the user says so.
fn refuse_plain_secrets(bundles: &[LocalBundle]) -> Result<()> {
    let Some(b) = bundles.iter().find(|b| !b.plain_secrets.is_empty()) else {
        return Ok(());
    };
    let more = bundles
        .iter()
        .filter(|b| !b.plain_secrets.is_empty())
        .count()
        - 1;
    Err(Error::input(
        format!("`{}`", b.path.display()),
        format!(
            "carries {} private files in clear ({}{}){}: whoever can read the repository could read them",
            b.plain_secrets.len(),
            b.plain_secrets[0].trim_start_matches("rootfs"),
            if b.plain_secrets.len() > 1 { ", …" } else { "" },
            match more {
                0 => String::new(),
                n => format!(", and so do {n} other bundle(s)"),
            }
        ),
    )
    .with_hint("seal them: `seal-secrets = true` under [pki], build again and copy each node's pki/<node>/seal.key to it; or, for a registry only trusted hands can read, pass --allow-plain-secrets"))
}

pub fn push(opts: &PushOptions, progress: &dyn Fn(Transfer)) -> Result<PushReport> {
    let reference = &opts.reference;
    let tag = match (&reference.tag, &reference.digest) {
        (Some(t), None) => t.clone(),
        _ => {
            return Err(Error::input(
                format!("reference `{reference}`"),
                "push needs a tag and no digest",
            )
            .with_hint("e.g. `registry.example:5000/k8s/control-plane:v1.20.2-r3`"))
        }
    };
    let LocalDist { bundles, extras } = read_dist(&opts.dist)?;
    let node_tags = bundles
        .iter()
        .map(|b| oci::node_tag(&tag, &b.node))
        .collect::<Result<Vec<_>>>()?;
    let created = crate::manifest::rfc3339(
        opts.created
            .unwrap_or_else(|| bundles.iter().map(|b| b.mtime).max().unwrap_or(0)),
    );

    // Every distinct blob, in first-use order.
    let mut blobs: Vec<(String, Blob)> = Vec::new();
    let mut seen = BTreeSet::new();
    for b in &bundles {
        for m in &b.members {
            if seen.insert(m.digest.clone()) {
                blobs.push((
                    m.digest.clone(),
                    Blob {
                        path: b.path.clone(),
                        offset: m.offset,
                        len: m.len,
                    },
                ));
            }
        }
    }
    let mut extra_layers = Vec::new();
    for f in &extras {
        let digest = format!("sha256:{}", f.sha256);
        if seen.insert(digest.clone()) {
            blobs.push((
                digest.clone(),
                Blob {
                    path: f.path.clone(),
                    offset: 0,
                    len: f.size,
                },
            ));
        }
        extra_layers.push(Descriptor {
            media_type: oci::MEDIA_FILE.into(),
            digest,
            size: f.size,
            artifact_type: None,
            data: None,
            annotations: [(oci::ANNOTATION_TITLE.to_string(), f.name.clone())].into(),
        });
    }

    let client = Registry::connect(reference, &opts.registry)?;
    // Before the first request: nothing is sent, no credentials either.
    if !opts.allow_plain_secrets {
        refuse_plain_secrets(&bundles)?;
    }
    let signer = opts
        .cosign_key
        .as_deref()
        .map(cosign::Signer::load)
        .transpose()?;
    let cosign_public_key = signer
        .as_ref()
        .map(super::super::cosign::Signer::write_public_key)
        .transpose()?;
    client.check()?;
    let total: u64 = blobs.iter().map(|(_, b)| b.len).sum();
    let mut done = 0u64;
    let (mut uploaded_bytes, mut skipped_bytes, mut uploaded_blobs, mut skipped_blobs) =
        (0, 0, 0, 0);
    let empty = Descriptor::empty_config();
    // Which blobs the registry has, asked all at once: a push of an unchanged dist is
    // mostly these questions, and each waits on the registry's disk, not on this machine.
    let mut asks: Vec<&str> = vec![&empty.digest];
    asks.extend(blobs.iter().map(|(d, _)| d.as_str()));
    let mut present = crate::parallel::map(&asks, REQUESTS_AT_ONCE, |_, d| client.blob_size(d))
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    if present.next().flatten().is_none() {
        let payload =
            || -> std::io::Result<(Box<dyn Read>, u64)> { Ok((Box::new(oci::EMPTY_CONFIG), 2)) };
        client.upload_blob(&empty.digest, &payload)?;
    }
    for ((digest, blob), have) in blobs.iter().zip(present) {
        if have == Some(blob.len) {
            skipped_bytes += blob.len;
            skipped_blobs += 1;
        } else {
            let base = done;
            let payload = || -> std::io::Result<(Box<dyn Read + '_>, u64)> {
                let mut f = fs_err::File::open(&blob.path)?;
                f.seek(std::io::SeekFrom::Start(blob.offset))?;
                let reader = std::io::BufReader::with_capacity(1 << 20, f).take(blob.len);
                // A retry starts the blob again, and so does its count.
                Ok((
                    Box::new(Counting {
                        inner: reader,
                        done: base,
                        total,
                        progress,
                    }),
                    blob.len,
                ))
            };
            client.upload_blob(digest, &payload)?;
            uploaded_bytes += blob.len;
            uploaded_blobs += 1;
        }
        done += blob.len;
        progress(Transfer {
            verb: "pushing",
            done,
            total,
        });
    }

    let pairs: Vec<(&LocalBundle, &String)> = bundles.iter().zip(&node_tags).collect();
    let put = crate::parallel::map(&pairs, REQUESTS_AT_ONCE, |_, (b, node_tag)| {
        put_node_manifest(&client, reference, b, node_tag, &created, &empty)
    });
    let mut index_entries = Vec::new();
    let mut nodes = Vec::new();
    for r in put {
        let (entry, node) = r?;
        index_entries.push(entry);
        nodes.push(node);
    }

    let dist_manifest = Manifest {
        schema_version: 2,
        media_type: oci::MEDIA_MANIFEST.into(),
        artifact_type: Some(oci::ARTIFACT_DIST.into()),
        config: empty.clone(),
        layers: extra_layers,
        annotations: [(oci::ANNOTATION_CREATED.to_string(), created.clone())].into(),
    };
    let bytes = oci::to_bytes(&dist_manifest);
    let dist_digest = crate::digest::sha256_digest(&bytes);
    client.put_manifest(&dist_digest, oci::MEDIA_MANIFEST, &bytes)?;
    index_entries.push(Descriptor {
        media_type: oci::MEDIA_MANIFEST.into(),
        digest: dist_digest.clone(),
        size: bytes.len() as u64,
        artifact_type: Some(oci::ARTIFACT_DIST.into()),
        data: None,
        annotations: [(oci::ANNOTATION_PART.to_string(), "dist".to_string())].into(),
    });

    let index = Index {
        schema_version: 2,
        media_type: oci::MEDIA_INDEX.into(),
        artifact_type: Some(oci::ARTIFACT_SET.into()),
        manifests: index_entries,
        annotations: [(oci::ANNOTATION_CREATED.to_string(), created)].into(),
    };
    let bytes = oci::to_bytes(&index);
    let digest = client.put_manifest(&tag, oci::MEDIA_INDEX, &bytes)?;
    let (stale_tags, warnings) = read_back(&client, reference, &tag, &digest, &nodes)?;
    let mut signatures = Vec::new();
    if let Some(signer) = &signer {
        let signed = std::iter::once(("index", &digest))
            .chain(nodes.iter().map(|n| (n.node.as_str(), &n.digest)))
            .chain(std::iter::once(("dist", &dist_digest)));
        for (what, d) in signed {
            signatures.push(push_signature(&client, signer, reference, what, d)?);
        }
    }
    Ok(PushReport {
        reference: reference.pinned(&digest),
        digest,
        nodes,
        dist: PushedDist {
            reference: Reference {
                tag: None,
                ..reference.clone()
            }
            .pinned(&dist_digest),
            digest: dist_digest,
            files: extras.into_iter().map(|f| f.name).collect(),
        },
        stale_tags,
        warnings,
        uploaded_bytes,
        skipped_bytes,
        uploaded_blobs,
        skipped_blobs,
        signatures,
        cosign_public_key,
    })
}

/// Signs `digest` and pushes the signature where cosign looks for it: the payload and
/// config blobs, then the manifest at `sha256-<hex>.sig`.
fn push_signature(
    client: &Registry,
    signer: &cosign::Signer,
    reference: &Reference,
    signs: &str,
    digest: &str,
) -> Result<PushedSignature> {
    let repository = format!("{}/{}", reference.registry, reference.repository);
    let payload = cosign::payload(&repository, digest);
    let signature = signer.sign(&payload)?;
    let config = cosign::config(&crate::digest::sha256_digest(&payload));
    for blob in [&payload, &config] {
        let blob_digest = crate::digest::sha256_digest(blob);
        if client.blob_size(&blob_digest)? != Some(blob.len() as u64) {
            let body = || -> std::io::Result<(Box<dyn Read>, u64)> {
                Ok((
                    Box::new(std::io::Cursor::new(blob.clone())),
                    blob.len() as u64,
                ))
            };
            client.upload_blob(&blob_digest, &body)?;
        }
    }
    let bytes = oci::to_bytes(&cosign::manifest(&config, &payload, &signature));
    let tag = cosign::signature_tag(digest);
    let sig_digest = client.put_manifest(&tag, oci::MEDIA_MANIFEST, &bytes)?;
    Ok(PushedSignature {
        signs: signs.to_string(),
        signed: digest.to_string(),
        reference: reference.with_tag(&tag).pinned(&sig_digest),
        digest: sig_digest,
    })
}

/// Requests in flight at once where push and pull ask many small questions.
const REQUESTS_AT_ONCE: usize = 8;

/// Puts one node's manifest at its node tag; returns its index entry and report line.
fn put_node_manifest(
    client: &Registry,
    reference: &Reference,
    b: &LocalBundle,
    node_tag: &str,
    created: &str,
    empty: &Descriptor,
) -> Result<(Descriptor, PushedNode)> {
    let width = 2.max(b.members.len().saturating_sub(1).to_string().len());
    let layers: Vec<Descriptor> = b
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| Descriptor {
            media_type: oci::MEDIA_MEMBER.into(),
            digest: m.digest.clone(),
            size: m.len,
            artifact_type: None,
            data: None,
            annotations: [(
                oci::ANNOTATION_TITLE.to_string(),
                format!("{}.part{i:0width$}", b.name),
            )]
            .into(),
        })
        .collect();
    let annotations: BTreeMap<String, String> = [
        (oci::ANNOTATION_CREATED, created.to_string()),
        (oci::ANNOTATION_NODE, b.node.clone()),
        (oci::ANNOTATION_COMPONENTS, b.components.join(",")),
        (oci::ANNOTATION_K8S_VERSION, b.kubernetes_version.clone()),
        (oci::ANNOTATION_BUNDLE, b.name.clone()),
        (
            oci::ANNOTATION_BUNDLE_DIGEST,
            format!("sha256:{}", b.sha256),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let manifest = Manifest {
        schema_version: 2,
        media_type: oci::MEDIA_MANIFEST.into(),
        artifact_type: Some(oci::ARTIFACT_BUNDLE.into()),
        config: empty.clone(),
        layers: layers.clone(),
        annotations,
    };
    let bytes = oci::to_bytes(&manifest);
    let digest = client.put_manifest(node_tag, oci::MEDIA_MANIFEST, &bytes)?;
    let entry = Descriptor {
        media_type: oci::MEDIA_MANIFEST.into(),
        digest: digest.clone(),
        size: bytes.len() as u64,
        artifact_type: Some(oci::ARTIFACT_BUNDLE.into()),
        data: None,
        annotations: [(oci::ANNOTATION_NODE.to_string(), b.node.clone())].into(),
    };
    let node = PushedNode {
        node: b.node.clone(),
        bundle: b.name.clone(),
        reference: reference.with_tag(node_tag).pinned(&digest),
        digest,
        sha256: b.sha256.clone(),
        size: b.size,
        layers: layers
            .into_iter()
            .map(|l| PushedLayer {
                digest: l.digest,
                size: l.size,
            })
            .collect(),
    };
    Ok((entry, node))
}

/// Reads back the index and node tags just written. Another push that moved any of them
/// in the meantime is an error (the tag and its node tags would come from different
/// pushes). Returns the node tags earlier pushes left for nodes this one does not have, and
/// warnings for what could not be checked.
fn read_back(
    client: &Registry,
    reference: &Reference,
    tag: &str,
    index_digest: &str,
    nodes: &[PushedNode],
) -> Result<(Vec<StaleTag>, Vec<String>)> {
    let what = format!("checking `{reference}` after the push");
    let moved = |t: &str, now: &str, ours: &str| {
        Error::registry(
            &what,
            format!(
                "another push changed `{t}` while this one ran: it now holds {now}, not this \
                 push's {ours}"
            ),
        )
        .with_hint(
            "push to one tag from one place at a time, then push again: a tag and its node \
             tags must come from one push",
        )
    };
    let now = crate::digest::sha256_digest(&client.get_manifest(tag)?.1);
    if now != index_digest {
        return Err(moved(tag, &now, index_digest));
    }
    let mut ours = BTreeSet::new();
    let read = crate::parallel::map(nodes, REQUESTS_AT_ONCE, |_, n| -> Result<_> {
        let node_tag = oci::node_tag(tag, &n.node)?;
        let now = crate::digest::sha256_digest(&client.get_manifest(&node_tag)?.1);
        Ok((node_tag, now))
    });
    for (n, r) in nodes.iter().zip(read) {
        let (node_tag, now) = r?;
        if now != n.digest {
            return Err(moved(&node_tag, &now, &n.digest));
        }
        ours.insert(node_tag);
    }
    let tags = match client.tags() {
        Ok(t) => t,
        Err(e) => {
            return Ok((
                Vec::new(),
                vec![format!("stale node tags were not looked for: {e}")],
            ))
        }
    };
    let prefix = format!("{tag}-");
    let mut stale = Vec::new();
    for t in tags {
        let Some(node) = t.strip_prefix(&prefix) else {
            continue;
        };
        if ours.contains(&t) {
            continue;
        }
        // Only a bundle manifest of that very node is a node tag (`v1-rc1` may be a tag of
        // its own).
        let Ok((_, bytes)) = client.get_manifest(&t) else {
            continue;
        };
        if let Ok(Document::Manifest(m)) = parse_document(&what, &bytes) {
            if m.artifact_type.as_deref() == Some(oci::ARTIFACT_BUNDLE)
                && m.annotation(oci::ANNOTATION_NODE) == Some(node)
            {
                stale.push(StaleTag {
                    tag: t.clone(),
                    node: node.to_string(),
                    digest: crate::digest::sha256_digest(&bytes),
                });
            }
        }
    }
    Ok((stale, Vec::new()))
}

/// A blob's reader that reports the bytes read so far as pushing progress.
struct Counting<'a, R> {
    pub(super) inner: R,
    pub(super) done: u64,
    pub(super) total: u64,
    pub(super) progress: &'a dyn Fn(Transfer),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(Transfer {
            verb: "pushing",
            done: self.done,
            total: self.total,
        });
        Ok(n)
    }
}
