//! Bundles as OCI artifacts: `push` stores a finished `dist/` in a registry and `pull`
//! brings it back. The layout (documented in the README):
//!
//! - the pushed tag holds an OCI index (`artifactType` [`oci::ARTIFACT_SET`]) listing one
//!   manifest per node and one for the dist extras;
//! - each node's manifest (`artifactType` [`oci::ARTIFACT_BUNDLE`], also tagged
//!   `<tag>-<node>`) has the empty config and the bundle's gzip members as layers, in
//!   order, so their concatenation is the tarball byte for byte. The binary's member is the
//!   same in every bundle, so the registry stores it once and a push uploads it once;
//! - the extras manifest ([`oci::ARTIFACT_DIST`]) carries SHA256SUMS, ca.pem,
//!   client-ca.pem, sa.pub, rollout.sh and fetch.sh (those the build wrote), each a layer
//!   titled with its name. Nothing else in `dist/`
//!   is pushed.
//!
//! Bundles are found through `dist/SHA256SUMS`, and each bundle's node, components and
//! version are read from its own manifest.json, so no file-name pattern is assumed. Every
//! blob streams from or to disk; memory stays at a few buffers whatever the bundle size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};

use flate2::{Decompress, FlushDecompress, Status};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bundle::sha256_file;
use crate::error::{Error, Result};
use crate::oci::{self, Descriptor, Index, Manifest, Reference};
use crate::registry::{self, Registry};

/// The dist files besides the bundles that a site needs; never keys or admin credentials.
pub const DIST_EXTRAS: [&str; 7] = [
    "SHA256SUMS",
    "ca.pem",
    "client-ca.pem",
    "sa.pub",
    "rollout.sh",
    "fetch.sh",
    crate::component::dist::KUBELET_RBAC,
];

/// How far a transfer is, for a progress line.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub verb: &'static str,
    pub done: u64,
    pub total: u64,
}

/// One gzip member of a bundle: where it lies in the tarball and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub offset: u64,
    pub len: u64,
    pub digest: String,
}

/// A bundle in `dist/` as it will be pushed.
#[derive(Debug, Clone)]
pub struct LocalBundle {
    pub path: PathBuf,
    pub name: String,
    pub node: String,
    pub components: Vec<String>,
    pub kubernetes_version: String,
    /// mtime of the bundle's entries: the build's SOURCE_DATE_EPOCH.
    pub mtime: u64,
    pub sha256: String,
    pub size: u64,
    pub members: Vec<Member>,
    /// Private files (mode 0600) the bundle carries in clear, not sealed.
    pub plain_secrets: Vec<String>,
}

/// Member boundaries seen in earlier bundles, so an identical member (the binary) is
/// recognised by its bytes instead of being inflated again.
#[derive(Default)]
pub struct KnownMembers {
    by_prefix: BTreeMap<Vec<u8>, Vec<(u64, String)>>,
}

const PREFIX: usize = 64;

/// Splits a `.tar.gz` into its gzip members by inflating each one to find its end.
pub fn split_members(path: &Path, known: &mut KnownMembers) -> Result<(Vec<Member>, String)> {
    let file = fs_err::File::open(path)?;
    let size = file.metadata()?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 20, file);
    let mut whole = Sha256::new();
    let mut members = Vec::new();
    let mut pos = 0u64;
    let bad = |m: String| Error::input(format!("`{}`", path.display()), m);
    while pos < size {
        // A member seen before: compare its bytes, which is far cheaper than inflating.
        let prefix = {
            let buf = r.fill_buf()?;
            buf[..buf.len().min(PREFIX)].to_vec()
        };
        let mut matched = None;
        if let Some(candidates) = known.by_prefix.get(&prefix) {
            for (len, digest) in candidates {
                if pos + len > size {
                    continue;
                }
                let start = r.stream_position()?;
                let mut h = Sha256::new();
                // The whole-file hash goes on from a copy, kept only on a match.
                let mut w = whole.clone();
                copy_hashing(&mut r, *len, &mut [&mut h, &mut w])?;
                if format!("sha256:{}", hex::encode(h.finalize())) == *digest {
                    whole = w;
                    matched = Some((*len, digest.clone()));
                    break;
                }
                r.seek(std::io::SeekFrom::Start(start))?;
            }
        }
        if let Some((len, digest)) = matched {
            members.push(Member {
                offset: pos,
                len,
                digest,
            });
            pos += len;
            continue;
        }
        let mut h = Sha256::new();
        let len = scan_member(&mut r, &mut h, &mut whole)
            .map_err(|e| bad(format!("at byte {pos}: {e}")))?;
        let digest = format!("sha256:{}", hex::encode(h.finalize()));
        if prefix.len() == PREFIX {
            known
                .by_prefix
                .entry(prefix)
                .or_default()
                .push((len, digest.clone()));
        }
        members.push(Member {
            offset: pos,
            len,
            digest,
        });
        pos += len;
    }
    if members.is_empty() {
        return Err(bad("is empty".into()));
    }
    Ok((members, hex::encode(whole.finalize())))
}

fn copy_hashing(r: &mut dyn BufRead, mut len: u64, hashers: &mut [&mut Sha256]) -> Result<()> {
    while len > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        let n = buf.len().min(len as usize);
        for h in hashers.iter_mut() {
            h.update(&buf[..n]);
        }
        r.consume(n);
        len -= n as u64;
    }
    Ok(())
}

/// Reads one gzip member (header, deflate stream, trailer), feeding its bytes to both
/// hashers; returns its length.
fn scan_member(
    r: &mut dyn BufRead,
    member: &mut Sha256,
    whole: &mut Sha256,
) -> std::result::Result<u64, String> {
    let mut len = 0u64;
    let take = |r: &mut dyn BufRead,
                n: usize,
                member: &mut Sha256,
                whole: &mut Sha256,
                len: &mut u64|
     -> std::result::Result<Vec<u8>, String> {
        let mut v = vec![0u8; n];
        r.read_exact(&mut v)
            .map_err(|_| "the gzip data ends early".to_string())?;
        member.update(&v);
        whole.update(&v);
        *len += n as u64;
        Ok(v)
    };
    let head = take(r, 10, member, whole, &mut len)?;
    if head[0] != 0x1f || head[1] != 0x8b || head[2] != 8 {
        return Err("not a gzip member".into());
    }
    let flags = head[3];
    if flags & 4 != 0 {
        let x = take(r, 2, member, whole, &mut len)?;
        take(
            r,
            u16::from_le_bytes([x[0], x[1]]) as usize,
            member,
            whole,
            &mut len,
        )?;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            while take(r, 1, member, whole, &mut len)?[0] != 0 {}
        }
    }
    if flags & 2 != 0 {
        take(r, 2, member, whole, &mut len)?;
    }
    let mut inflate = Decompress::new(false);
    let mut sink = vec![0u8; 1 << 16];
    loop {
        let buf = r.fill_buf().map_err(|e| e.to_string())?;
        if buf.is_empty() {
            return Err("the gzip data ends early".into());
        }
        let before = inflate.total_in();
        let status = inflate
            .decompress(buf, &mut sink, FlushDecompress::None)
            .map_err(|e| format!("corrupt deflate data: {e}"))?;
        let used = (inflate.total_in() - before) as usize;
        member.update(&buf[..used]);
        whole.update(&buf[..used]);
        r.consume(used);
        len += used as u64;
        if status == Status::StreamEnd {
            break;
        }
    }
    take(r, 8, member, whole, &mut len)?;
    Ok(len)
}

/// The bundle's `<top>/manifest.json` and its entry mtime.
fn read_bundle_manifest(path: &Path) -> Result<(crate::manifest::Manifest, u64)> {
    let file = fs_err::File::open(path)?;
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
    let mut archive = tar::Archive::new(gz);
    let bad = |m: &str| Error::input(format!("`{}`", path.display()), m.to_string());
    for entry in archive.entries()? {
        let mut entry = entry?;
        let p = entry.path()?.into_owned();
        let parts: Vec<_> = p.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "manifest.json" {
            let mtime = entry.header().mtime().unwrap_or(0);
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            let m: crate::manifest::Manifest = serde_json::from_str(&text)
                .map_err(|e| bad(&format!("its manifest.json does not read: {e}")))?;
            return Ok((m, mtime));
        }
    }
    Err(bad("holds no manifest.json: is it a kube-bundle bundle?"))
}

/// Reads `dist/`: every bundle `dist/SHA256SUMS` lists, split into members and checked
/// against its listed sha256.
pub fn read_dist(dist: &Path) -> Result<Vec<LocalBundle>> {
    let sums_path = dist.join("SHA256SUMS");
    if !sums_path.is_file() {
        return Err(Error::input(
            format!("`{}`", dist.display()),
            "has no SHA256SUMS: it is not a kube-bundle output folder",
        )
        .with_hint("build first (`kube-bundle build -o DIR`) and pass that folder with --out"));
    }
    let text = fs_err::read_to_string(&sums_path)?;
    let mut known = KnownMembers::default();
    let mut bundles = Vec::new();
    let mut nodes = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let Some((sha, name)) = line.split_once("  ") else {
            continue;
        };
        let where_ = format!("`{}` line {}", sums_path.display(), i + 1);
        if !oci::is_sha256_hex(sha) || name.contains('/') || !name.ends_with(".tar.gz") {
            return Err(Error::input(
                where_,
                format!("`{line}` is not `sha256  NAME.tar.gz`"),
            ));
        }
        let path = dist.join(name);
        if !path.is_file() {
            return Err(Error::input(
                where_,
                format!("`{name}` is listed but missing"),
            ));
        }
        let size = fs_err::metadata(&path)?.len();
        let (members, actual) = split_members(&path, &mut known)?;
        if actual != sha {
            return Err(Error::input(
                format!("`{}`", path.display()),
                "does not match its sha256 in SHA256SUMS",
            )
            .with_hint("rebuild the dist folder"));
        }
        let (manifest, mtime) = read_bundle_manifest(&path)?;
        let node = manifest.node.clone();
        if !nodes.insert(node.clone()) {
            return Err(Error::input(
                where_,
                format!("node `{node}` has two bundles"),
            ));
        }
        let plain_secrets = manifest
            .files
            .iter()
            .filter(|f| {
                !f.sealed && u32::from_str_radix(&f.mode, 8).is_ok_and(crate::seal::is_private)
            })
            .map(|f| f.path.clone())
            .collect();
        bundles.push(LocalBundle {
            path,
            name: name.to_string(),
            node,
            components: manifest.components,
            kubernetes_version: manifest.kubernetes_version,
            mtime,
            plain_secrets,
            sha256: actual,
            size,
            members,
        });
    }
    if bundles.is_empty() {
        return Err(Error::input(
            format!("`{}`", sums_path.display()),
            "lists no bundle",
        ));
    }
    Ok(bundles)
}

pub struct PushOptions {
    pub dist: PathBuf,
    pub reference: Reference,
    pub registry: registry::Options,
    /// SOURCE_DATE_EPOCH at push time; else the bundles' own entry mtime.
    pub created: Option<u64>,
    /// Push bundles whose private files are in clear (not sealed).
    pub allow_plain_secrets: bool,
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
    /// Bytes sent to the registry in blob uploads.
    pub uploaded_bytes: u64,
    /// Bytes of blobs the registry already had (HEAD found them).
    pub skipped_bytes: u64,
    pub uploaded_blobs: usize,
    pub skipped_blobs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushedDist {
    pub reference: String,
    pub digest: String,
    pub files: Vec<String>,
}

/// A blob to push: a byte range of a file.
struct Blob {
    path: PathBuf,
    offset: u64,
    len: u64,
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
    let bundles = read_dist(&opts.dist)?;
    let node_tags = bundles
        .iter()
        .map(|b| oci::node_tag(&tag, &b.node))
        .collect::<Result<Vec<_>>>()?;
    let created = oci::rfc3339(
        opts.created
            .unwrap_or_else(|| bundles.iter().map(|b| b.mtime).max().unwrap_or(0)),
    );
    let extras: Vec<(String, PathBuf)> = DIST_EXTRAS
        .iter()
        .map(|n| (n.to_string(), opts.dist.join(n)))
        .filter(|(_, p)| p.is_file())
        .collect();

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
    for (name, path) in &extras {
        let (sha, len) = sha256_file(path)?;
        let digest = format!("sha256:{sha}");
        if seen.insert(digest.clone()) {
            blobs.push((
                digest.clone(),
                Blob {
                    path: path.clone(),
                    offset: 0,
                    len,
                },
            ));
        }
        extra_layers.push(Descriptor {
            media_type: oci::MEDIA_FILE.into(),
            digest,
            size: len,
            artifact_type: None,
            data: None,
            annotations: [(oci::ANNOTATION_TITLE.to_string(), name.clone())].into(),
        });
    }

    let client = Registry::connect(reference, &opts.registry)?;
    // Before the first request: nothing is sent, no credentials either.
    if !opts.allow_plain_secrets {
        refuse_plain_secrets(&bundles)?;
    }
    client.check()?;
    let total: u64 = blobs.iter().map(|(_, b)| b.len).sum();
    let mut done = 0u64;
    let (mut uploaded_bytes, mut skipped_bytes, mut uploaded_blobs, mut skipped_blobs) =
        (0, 0, 0, 0);
    let empty = Descriptor::empty_config();
    if client.blob_size(&empty.digest)?.is_none() {
        let payload =
            || -> std::io::Result<(Box<dyn Read>, u64)> { Ok((Box::new(oci::EMPTY_CONFIG), 2)) };
        client.upload_blob(&empty.digest, &payload)?;
    }
    for (digest, blob) in &blobs {
        if client.blob_size(digest)? == Some(blob.len) {
            skipped_bytes += blob.len;
            skipped_blobs += 1;
        } else {
            let base = done;
            let payload = || -> std::io::Result<(Box<dyn Read + '_>, u64)> {
                let mut f = std::fs::File::open(&blob.path)?;
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

    let mut index_entries = Vec::new();
    let mut nodes = Vec::new();
    for (b, node_tag) in bundles.iter().zip(&node_tags) {
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
            (oci::ANNOTATION_CREATED, created.clone()),
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
        index_entries.push(Descriptor {
            media_type: oci::MEDIA_MANIFEST.into(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            artifact_type: Some(oci::ARTIFACT_BUNDLE.into()),
            data: None,
            annotations: [(oci::ANNOTATION_NODE.to_string(), b.node.clone())].into(),
        });
        nodes.push(PushedNode {
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
        });
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
    let dist_digest = oci::sha256_digest(&bytes);
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
            files: extras.into_iter().map(|(n, _)| n).collect(),
        },
        uploaded_bytes,
        skipped_bytes,
        uploaded_blobs,
        skipped_blobs,
    })
}

/// A blob's reader that reports the bytes read so far as pushing progress.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    progress: &'a dyn Fn(Transfer),
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

pub struct PullOptions {
    pub reference: Reference,
    pub out: PathBuf,
    pub node: Option<String>,
    pub registry: registry::Options,
}

#[derive(Debug, Clone, Serialize)]
pub struct PulledFile {
    pub node: Option<String>,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub reference: String,
    pub files: Vec<PulledFile>,
}

enum Document {
    Index(Index),
    Manifest(Manifest),
}

fn parse_document(what: &str, bytes: &[u8]) -> Result<Document> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::registry(what, format!("the manifest is not JSON: {e}")))?;
    let doc = if value.get("manifests").is_some() {
        serde_json::from_value(value).map(Document::Index)
    } else {
        serde_json::from_value(value).map(Document::Manifest)
    };
    doc.map_err(|e| Error::registry(what, format!("not an OCI manifest or index: {e}")))
}

pub fn pull(opts: &PullOptions, progress: &dyn Fn(Transfer)) -> Result<PullReport> {
    let reference = &opts.reference;
    let client = Registry::connect(reference, &opts.registry)?;
    client.check()?;
    let what = format!("`{reference}`");
    let (_, bytes) = client.get_manifest(reference.target())?;
    // (node, manifest) pairs and the dist manifest, if any.
    let mut wanted: Vec<(Option<String>, Manifest)> = Vec::new();
    match parse_document(&what, &bytes)? {
        Document::Index(index) => {
            let nodes: Vec<&str> = index
                .manifests
                .iter()
                .filter_map(|d| d.annotation(oci::ANNOTATION_NODE))
                .collect();
            if nodes.is_empty() {
                return Err(Error::registry(
                    &what,
                    "the index lists no kube-bundle node bundle",
                ));
            }
            if let Some(n) = &opts.node {
                if !nodes.contains(&n.as_str()) {
                    return Err(node_missing(n, reference, &nodes));
                }
            }
            for d in &index.manifests {
                let node = d.annotation(oci::ANNOTATION_NODE);
                let dist = d.annotation(oci::ANNOTATION_PART) == Some("dist");
                let take = match (&opts.node, node) {
                    (Some(n), Some(m)) => n == m,
                    (Some(_), None) => false,
                    (None, _) => node.is_some() || dist,
                };
                if take {
                    let (_, bytes) = client.get_manifest(&d.digest)?;
                    match parse_document(&what, &bytes)? {
                        Document::Manifest(m) => wanted.push((node.map(str::to_string), m)),
                        Document::Index(_) => {
                            return Err(Error::registry(&what, "an index inside the index"))
                        }
                    }
                }
            }
        }
        Document::Manifest(m) => {
            let node = m.annotation(oci::ANNOTATION_NODE).map(str::to_string);
            if let (Some(want), Some(have)) = (&opts.node, &node) {
                if want != have {
                    return Err(node_missing(want, reference, &[have.as_str()]));
                }
            }
            wanted.push((node, m));
        }
    }

    fs_err::create_dir_all(&opts.out)?;
    let cache = opts.out.join(".kube-bundle-pull");
    fs_err::create_dir_all(&cache)?;
    let total: u64 = wanted
        .iter()
        .flat_map(|(_, m)| m.layers.iter().map(|l| l.size))
        .sum();
    let mut done = 0u64;
    let mut files = Vec::new();
    for (node, manifest) in &wanted {
        // Download every layer into the cache, checked, then assemble.
        for layer in &manifest.layers {
            let hex = layer
                .digest
                .strip_prefix("sha256:")
                .filter(|h| oci::is_sha256_hex(h))
                .ok_or_else(|| {
                    Error::registry(&what, format!("unsupported digest `{}`", layer.digest))
                })?;
            let cached = cache.join(hex);
            let have = cached.is_file()
                && fs_err::metadata(&cached)?.len() == layer.size
                && sha256_file(&cached)?.0 == hex;
            if !have {
                let partial = cache.join(format!("{hex}.partial"));
                let mut f = std::io::BufWriter::new(fs_err::File::create(&partial)?);
                let result = client.download_blob(&layer.digest, layer.size, &mut f, &mut |n| {
                    done += n;
                    progress(Transfer {
                        verb: "pulling",
                        done,
                        total,
                    });
                });
                if let Err(e) = result {
                    drop(f);
                    let _ = fs_err::remove_file(&partial);
                    return Err(e);
                }
                f.flush()?;
                drop(f);
                fs_err::rename(&partial, &cached)?;
            } else {
                done += layer.size;
            }
        }
        match node {
            Some(node) => files.push(assemble(&opts.out, &cache, node, manifest, &what)?),
            None => {
                for layer in &manifest.layers {
                    let name = safe_name(layer.annotation(oci::ANNOTATION_TITLE), &what)?;
                    let dest = opts.out.join(name);
                    let src = cache.join(&layer.digest["sha256:".len()..]);
                    let tmp = opts.out.join(format!(".{name}.tmp"));
                    fs_err::copy(&src, &tmp)?;
                    let mode = if name.ends_with(".sh") { 0o755 } else { 0o644 };
                    fs_err::set_permissions(
                        &tmp,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )?;
                    fs_err::rename(&tmp, &dest)?;
                    files.push(PulledFile {
                        node: None,
                        path: dest,
                        sha256: layer.digest["sha256:".len()..].to_string(),
                        size: layer.size,
                    });
                }
            }
        }
    }
    fs_err::remove_dir_all(&cache)?;
    Ok(PullReport {
        reference: reference.to_string(),
        files,
    })
}

fn node_missing(node: &str, reference: &Reference, have: &[&str]) -> Error {
    Error::input(
        "--node",
        format!(
            "`{node}` is not in `{reference}`, which holds {}",
            have.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// A file name from the registry, refused if it could land outside the output folder.
fn safe_name<'a>(name: Option<&'a str>, what: &str) -> Result<&'a str> {
    match name {
        Some(n)
            if !n.is_empty()
                && !n.starts_with('.')
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            Ok(n)
        }
        _ => Err(Error::registry(
            what,
            format!("refusing the file name {name:?}: only letters, digits and `._-`"),
        )),
    }
}

/// Concatenates a node's cached members into its tarball and checks the whole against
/// the manifest's bundle digest before the tarball takes its name.
fn assemble(
    out: &Path,
    cache: &Path,
    node: &str,
    manifest: &Manifest,
    what: &str,
) -> Result<PulledFile> {
    let name = safe_name(manifest.annotation(oci::ANNOTATION_BUNDLE), what)?;
    let want = manifest
        .annotation(oci::ANNOTATION_BUNDLE_DIGEST)
        .ok_or_else(|| {
            Error::registry(
                what,
                format!("node `{node}`'s manifest has no bundle digest"),
            )
        })?;
    let tmp = out.join(format!(".{name}.tmp"));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    {
        let mut f = std::io::BufWriter::new(
            fs_err::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?,
        );
        for layer in &manifest.layers {
            let mut src = fs_err::File::open(cache.join(&layer.digest["sha256:".len()..]))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                f.write_all(&buf[..n])?;
                size += n as u64;
            }
        }
        f.flush()?;
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != want {
        let _ = fs_err::remove_file(&tmp);
        return Err(Error::registry(
            what,
            format!(
                "node `{node}`: the reassembled `{name}` is {actual}, the manifest says {want}"
            ),
        ));
    }
    let dest = out.join(name);
    fs_err::rename(&tmp, &dest)?;
    Ok(PulledFile {
        node: Some(node.to_string()),
        path: dest,
        sha256: actual["sha256:".len()..].to_string(),
        size,
    })
}

use fs_err::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn members_are_found_and_a_known_one_is_matched_by_its_bytes() {
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (a, b, c) = (gz(b"head"), gz(&big), gz(b"tail"));
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("one.tar.gz");
        let two = dir.path().join("two.tar.gz");
        std::fs::write(&one, [a.clone(), b.clone(), c.clone()].concat()).unwrap();
        std::fs::write(&two, [gz(b"other head"), b.clone(), c.clone()].concat()).unwrap();
        let mut known = KnownMembers::default();
        let (m1, sha1) = split_members(&one, &mut known).unwrap();
        assert_eq!(
            m1.iter().map(|m| m.len).collect::<Vec<_>>(),
            vec![a.len() as u64, b.len() as u64, c.len() as u64]
        );
        assert_eq!(
            sha1,
            crate::bundle::sha256_hex(&std::fs::read(&one).unwrap())
        );
        assert_eq!(m1[1].digest, oci::sha256_digest(&b));
        let (m2, sha2) = split_members(&two, &mut known).unwrap();
        assert_eq!(m2[1].digest, m1[1].digest);
        assert_eq!(m2[2].digest, m1[2].digest);
        assert_eq!(
            sha2,
            crate::bundle::sha256_hex(&std::fs::read(&two).unwrap())
        );
    }

    #[test]
    fn truncated_gzip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tar.gz");
        let data = gz(b"hello world");
        std::fs::write(&p, &data[..data.len() - 3]).unwrap();
        let e = split_members(&p, &mut KnownMembers::default()).unwrap_err();
        assert!(e.to_string().contains("ends early"), "{e}");
    }
}
