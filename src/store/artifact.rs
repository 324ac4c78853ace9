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
//!   client-ca.pem, sa.pub, rollout.sh, fetch.sh and kube-apiserver-rbac.yaml (those the
//!   build wrote), each a layer titled with its name. Nothing else in `dist/` is pushed.
//! - with `--cosign-key`, a cosign signature of the index and of every manifest it lists,
//!   each at the tag `sha256-<hex>.sig` cosign looks up (documents and keys: `cosign`).
//!
//! `dist/SHA256SUMS` lists every file that travels (the bundles and those extras), and is
//! read strictly: push sends only what it lists and matches, pull writes only what it lists
//! and matches. Each bundle's node, components and version are read from its own
//! manifest.json, so no file-name pattern is assumed. After writing, push reads the tags
//! back, so a concurrent push or a stale node tag is reported. pull refuses what the
//! registry cannot vouch for (tags where digests belong, two outputs for one path, names
//! off the list, more bytes than allowed) before it downloads anything, keeps its cache
//! private, and puts files in place only once every one is checked. Every blob streams
//! from or to disk; memory stays at a few buffers whatever the bundle size.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};

use flate2::{Decompress, FlushDecompress, Status};
use serde::Serialize;
use sha2::{Digest, Sha256};

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};

use crate::digest::sha256_file;
use crate::error::{Error, Result};
use crate::store::cosign;
use crate::store::oci::{self, Descriptor, Index, Manifest, Reference};
use crate::store::registry::{self, Registry};

/// The dist files besides the bundles that a site needs; never keys or admin credentials.
/// All but SHA256SUMS are listed in SHA256SUMS ([`travels`]).
pub const DIST_EXTRAS: [&str; 7] = [
    "SHA256SUMS",
    "ca.pem",
    "client-ca.pem",
    "sa.pub",
    "rollout.sh",
    "fetch.sh",
    crate::component::dist::KUBELET_RBAC,
];

/// Whether `name` is a dist file that leaves with the bundles, and so is listed in
/// `dist/SHA256SUMS` beside them.
pub fn travels(name: &str) -> bool {
    name != "SHA256SUMS" && DIST_EXTRAS.contains(&name)
}

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
#[derive(Default, Clone)]
pub struct KnownMembers {
    by_prefix: BTreeMap<Vec<u8>, Vec<KnownMember>>,
}

/// A member already hashed: where its bytes lie, so a candidate is compared with them.
#[derive(Clone)]
struct KnownMember {
    len: u64,
    digest: String,
    path: PathBuf,
    offset: u64,
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
            for k in candidates {
                if pos + k.len > size {
                    continue;
                }
                let start = r.stream_position()?;
                // The whole-file hash goes on from a copy, kept only on a match.
                let mut w = whole.clone();
                if same_bytes(&mut r, k, &mut w)? {
                    whole = w;
                    matched = Some((k.len, k.digest.clone()));
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
                .push(KnownMember {
                    len,
                    digest: digest.clone(),
                    path: path.to_path_buf(),
                    offset: pos,
                });
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

/// Whether the next `k.len` bytes of `r` are the known member's bytes, feeding them to
/// `whole`. Bytes equal to a member already hashed have its digest: comparing them costs a
/// fraction of hashing them again, which is most of a push of many masters.
fn same_bytes(r: &mut dyn BufRead, k: &KnownMember, whole: &mut Sha256) -> Result<bool> {
    let mut theirs = fs_err::File::open(&k.path)?;
    theirs.seek(std::io::SeekFrom::Start(k.offset))?;
    let mut theirs = std::io::BufReader::with_capacity(1 << 20, theirs);
    let mut len = k.len;
    while len > 0 {
        let ours = r.fill_buf()?;
        let other = theirs.fill_buf()?;
        let n = ours.len().min(other.len()).min(len as usize);
        if n == 0 {
            return Ok(false);
        }
        if ours[..n] != other[..n] {
            return Ok(false);
        }
        whole.update(&ours[..n]);
        r.consume(n);
        theirs.consume(n);
        len -= n as u64;
    }
    Ok(true)
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
fn read_bundle_manifest(path: &Path) -> Result<(crate::pack::manifest::Manifest, u64)> {
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
            let m: crate::pack::manifest::Manifest = serde_json::from_str(&text)
                .map_err(|e| bad(&format!("its manifest.json does not read: {e}")))?;
            return Ok((m, mtime));
        }
    }
    Err(bad("holds no manifest.json: is it a kube-bundle bundle?"))
}

/// A dist file besides the bundles, as push sends it.
#[derive(Debug, Clone)]
pub struct LocalFile {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// `dist/` as push reads it.
#[derive(Debug, Clone)]
pub struct LocalDist {
    pub bundles: Vec<LocalBundle>,
    /// SHA256SUMS first, then the other extras in [`DIST_EXTRAS`] order.
    pub extras: Vec<LocalFile>,
}

/// Reads `dist/`: every file `dist/SHA256SUMS` lists, each checked against its sha256, the
/// bundles split into members. A line that does not read, a name that is neither a bundle
/// nor a dist file, or a dist file that is there but not listed is bad input.
pub fn read_dist(dist: &Path) -> Result<LocalDist> {
    let sums_path = dist.join("SHA256SUMS");
    if dist.is_file() {
        return Err(Error::input(
            format!("`{}`", dist.display()),
            "is a file, not an output folder",
        )
        .with_hint(
            "push takes the whole folder `build` wrote (`-o dist`), not one bundle: every \
             node's bundle and the dist files travel together",
        ));
    }
    if !sums_path.is_file() {
        return Err(Error::input(
            format!("`{}`", dist.display()),
            "has no SHA256SUMS: it is not a kube-bundle output folder",
        )
        .with_hint("build first (`kube-bundle build -o DIR`) and pass that folder with --out"));
    }
    let text = fs_err::read_to_string(&sums_path)?;
    let rebuild = "rebuild the dist folder";
    let entries = crate::digest::parse_sha256sums(&text).map_err(|(n, line)| {
        Error::input(
            format!("`{}` line {n}", sums_path.display()),
            format!(
                "`{}` is not `SHA256  NAME` (64 lowercase hex digits, two spaces, a file name)",
                line.escape_debug()
            ),
        )
        .with_hint(
            "rebuild the dist folder; sha256sum's binary-mode `HASH *NAME` lines are not read",
        )
    })?;
    let mut known = KnownMembers::default();
    let mut bundles = Vec::new();
    let mut files = BTreeMap::new();
    let mut nodes = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut listed = Vec::new();
    for (i, (sha, name)) in entries.into_iter().enumerate() {
        let where_ = format!("`{}` line {}", sums_path.display(), i + 1);
        if !names.insert(name) {
            return Err(Error::input(where_, format!("`{name}` is listed twice")));
        }
        let path = dist.join(name);
        let is_bundle = is_file_name(name) && name.ends_with(".tar.gz");
        if !travels(name) && !is_bundle {
            return Err(Error::input(
                where_,
                format!(
                    "`{}` is neither a bundle (`NAME.tar.gz`) nor a dist file kube-bundle writes",
                    name.escape_debug()
                ),
            )
            .with_hint(rebuild));
        }
        if !path.is_file() {
            return Err(Error::input(
                where_,
                format!("`{name}` is listed but missing"),
            ));
        }
        let mismatch = || {
            Error::input(
                format!("`{}`", path.display()),
                "does not match its sha256 in SHA256SUMS",
            )
            .with_hint(rebuild)
        };
        if !is_bundle {
            let (actual, size) = sha256_file(&path)?;
            if actual != sha {
                return Err(mismatch());
            }
            files.insert(
                name,
                LocalFile {
                    name: name.to_string(),
                    path,
                    sha256: actual,
                    size,
                },
            );
            continue;
        }
        listed.push((where_, name, path, sha));
    }
    // The first bundle teaches the shared member (the binary); the others are read on
    // every core, each matching it by its bytes.
    let read = |known: &mut KnownMembers, path: &Path, sha: &str| -> Result<_> {
        let size = fs_err::metadata(path)?.len();
        let (members, actual) = split_members(path, known)?;
        if actual != sha {
            return Err(Error::input(
                format!("`{}`", path.display()),
                "does not match its sha256 in SHA256SUMS",
            )
            .with_hint(rebuild));
        }
        let (manifest, mtime) = read_bundle_manifest(path)?;
        Ok((size, members, actual, manifest, mtime))
    };
    let mut split = Vec::new();
    if let Some((_, _, path, sha)) = listed.first() {
        split.push(read(&mut known, path, sha));
        let rest = crate::parallel::map(&listed[1..], crate::parallel::threads(), |_, l| {
            read(&mut known.clone(), &l.2, l.3)
        });
        split.extend(rest);
    }
    for ((where_, name, path, _), r) in listed.into_iter().zip(split) {
        let (size, members, actual, manifest, mtime) = r?;
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
                !f.sealed && u32::from_str_radix(&f.mode, 8).is_ok_and(crate::pki::seal::is_private)
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
    let (sums_sha, sums_size) = sha256_file(&sums_path)?;
    let mut extras = vec![LocalFile {
        name: "SHA256SUMS".into(),
        path: sums_path.clone(),
        sha256: sums_sha,
        size: sums_size,
    }];
    for name in DIST_EXTRAS.into_iter().filter(|n| travels(n)) {
        match files.remove(name) {
            Some(f) => extras.push(f),
            None if dist.join(name).exists() => {
                return Err(Error::input(
                    format!("`{}`", dist.join(name).display()),
                    format!(
                        "is not listed in `{}`, so nothing could check it after the push",
                        sums_path.display()
                    ),
                )
                .with_hint(
                    "rebuild the dist folder with this kube-bundle (earlier builds listed only \
                     the bundles)",
                ))
            }
            None => {}
        }
    }
    Ok(LocalDist { bundles, extras })
}

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
    let LocalDist { bundles, extras } = read_dist(&opts.dist)?;
    let node_tags = bundles
        .iter()
        .map(|b| oci::node_tag(&tag, &b.node))
        .collect::<Result<Vec<_>>>()?;
    let created = oci::rfc3339(
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
    let cosign_public_key = signer.as_ref().map(|s| s.write_public_key()).transpose()?;
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
                    Box::new(std::io::Cursor::new(blob.to_vec())),
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
    /// The most the artifact's files may add up to, by their declared sizes.
    pub max_size: u64,
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

/// One file pull writes: a node's bundle (its members in order) or a dist file (one layer).
struct Output {
    node: Option<String>,
    name: String,
    /// sha256 hex of the whole file.
    sha256: String,
    layers: Vec<Descriptor>,
    mode: u32,
}

/// The largest SHA256SUMS pull reads: 30 masters' worth is 3 KiB.
const MAX_SUMS: u64 = 1 << 20;

pub fn pull(opts: &PullOptions, progress: &dyn Fn(Transfer)) -> Result<PullReport> {
    let reference = &opts.reference;
    let client = Registry::connect(reference, &opts.registry)?;
    client.check()?;
    let what = format!("`{reference}`");
    let outputs = plan_pull(&client, opts, &what)?;

    // Every layer once, in order of first use; a digest with two sizes is a lie somewhere.
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut layers = Vec::new();
    for l in outputs.iter().flat_map(|o| &o.layers) {
        match sizes.insert(&l.digest, l.size) {
            None => layers.push((l.digest.as_str(), l.size)),
            Some(size) if size == l.size => {}
            Some(_) => {
                return Err(Error::registry(
                    &what,
                    format!("the layer {} is given two different sizes", l.digest),
                ))
            }
        }
    }
    let declared = outputs
        .iter()
        .flat_map(|o| &o.layers)
        .try_fold(0u64, |sum, l| sum.checked_add(l.size))
        .unwrap_or(u64::MAX);
    if declared > opts.max_size {
        return Err(Error::registry(
            &what,
            format!(
                "its files add up to {declared} bytes, more than --max-size ({} bytes); \
                 nothing was downloaded",
                opts.max_size
            ),
        )
        .with_hint("if the artifact really is that large, raise --max-size"));
    }

    make_private_dir(&opts.out)?;
    let cache = Cache::open(&opts.out)?;
    let total: u64 = layers.iter().map(|(_, size)| size).sum();
    let mut done = 0u64;
    for (digest, size) in &layers {
        cache.fetch(&client, digest, *size, &mut |n| {
            done += n;
            progress(Transfer {
                verb: "pulling",
                done,
                total,
            });
        })?;
    }
    // Every file is assembled and checked before any takes its name.
    let ready = outputs
        .iter()
        .map(|o| cache.assemble(o, &what))
        .collect::<Result<Vec<_>>>()?;
    let mut files = Vec::new();
    for (o, (tmp, size)) in outputs.iter().zip(ready) {
        let dest = opts.out.join(&o.name);
        tmp.persist(&dest)
            .map_err(|e| Error::from(e.error).doing("moving into place", &dest))?;
        files.push(PulledFile {
            node: o.node.clone(),
            path: dest,
            sha256: o.sha256.clone(),
            size,
        });
    }
    cache.finish();
    Ok(PullReport {
        reference: reference.to_string(),
        files,
    })
}

/// What `opts` asks for, read from the registry's documents and checked before any blob is
/// downloaded: digests are sha256, each node and file name appears once, names are bundle
/// names or dist file names, and through an index every file is checked against the
/// artifact's SHA256SUMS.
fn plan_pull(client: &Registry, opts: &PullOptions, what: &str) -> Result<Vec<Output>> {
    let reference = &opts.reference;
    let (_, bytes) = client.get_manifest(reference.target())?;
    let index = match parse_document(what, &bytes)? {
        Document::Manifest(m) => {
            let node = m.annotation(oci::ANNOTATION_NODE).map(str::to_string);
            if let (Some(want), Some(have)) = (&opts.node, &node) {
                if want != have {
                    return Err(node_missing(want, reference, &[have.as_str()]));
                }
            }
            let outputs = match node {
                Some(n) => vec![bundle_output(&n, &m, what)?],
                None if opts.node.is_some() => {
                    return Err(Error::input(
                        "--node",
                        format!("`{reference}` holds the dist files, no node's bundle"),
                    ))
                }
                None => {
                    let outputs = dist_outputs(&m, what)?;
                    check_unique(&outputs, what)?;
                    let sums = read_sums(client, &m, what)?;
                    check_sums(&outputs, &sums, false, what)?;
                    outputs
                }
            };
            return Ok(outputs);
        }
        Document::Index(index) => index,
    };
    let mut nodes: BTreeMap<&str, &Descriptor> = BTreeMap::new();
    let mut dist = None;
    for d in &index.manifests {
        check_digest(&d.digest, what)?;
        if let Some(n) = d.annotation(oci::ANNOTATION_NODE) {
            if nodes.insert(n, d).is_some() {
                return Err(Error::registry(
                    what,
                    format!("the index lists node `{}` twice", n.escape_debug()),
                ));
            }
        } else if d.annotation(oci::ANNOTATION_PART) == Some("dist") && dist.replace(d).is_some() {
            return Err(Error::registry(what, "the index lists two dist artifacts"));
        }
    }
    if nodes.is_empty() {
        return Err(Error::registry(
            what,
            "the index lists no kube-bundle node bundle",
        ));
    }
    if let Some(n) = &opts.node {
        if !nodes.contains_key(n.as_str()) {
            return Err(node_missing(
                n,
                reference,
                &nodes.keys().copied().collect::<Vec<_>>(),
            ));
        }
    }
    let dist = dist.ok_or_else(|| {
        Error::registry(
            what,
            "the index has no dist artifact, so no SHA256SUMS to check the bundles against",
        )
        .with_hint("push the dist folder again with this kube-bundle")
    })?;
    let dist = read_manifest(client, dist, what)?;
    let mut outputs = Vec::new();
    // Index order, which is push's (the inventory's).
    for d in &index.manifests {
        let Some(node) = d.annotation(oci::ANNOTATION_NODE) else {
            continue;
        };
        if opts.node.as_deref().is_some_and(|n| n != node) {
            continue;
        }
        let m = read_manifest(client, d, what)?;
        if m.annotation(oci::ANNOTATION_NODE) != Some(node) {
            return Err(Error::registry(
                what,
                format!(
                    "the index lists node `{}` with a manifest of {}",
                    node.escape_debug(),
                    match m.annotation(oci::ANNOTATION_NODE) {
                        Some(other) => format!("node `{}`", other.escape_debug()),
                        None => "no node".into(),
                    }
                ),
            ));
        }
        outputs.push(bundle_output(node, &m, what)?);
    }
    if opts.node.is_none() {
        outputs.extend(dist_outputs(&dist, what)?);
    }
    check_unique(&outputs, what)?;
    let sums = read_sums(client, &dist, what)?;
    check_sums(&outputs, &sums, opts.node.is_none(), what)?;
    Ok(outputs)
}

/// An index entry's manifest, checked against the entry's digest and size.
fn read_manifest(client: &Registry, d: &Descriptor, what: &str) -> Result<Manifest> {
    let (_, bytes) = client.get_manifest(&d.digest)?;
    if bytes.len() as u64 != d.size {
        return Err(Error::registry(
            what,
            format!(
                "the manifest {} is {} bytes, the index says {}",
                d.digest,
                bytes.len(),
                d.size
            ),
        ));
    }
    match parse_document(what, &bytes)? {
        Document::Manifest(m) => Ok(m),
        Document::Index(_) => Err(Error::registry(what, "an index inside the index")),
    }
}

/// Digests must name content: `sha256:` and 64 hex digits, never a tag or a path.
fn check_digest(digest: &str, what: &str) -> Result<()> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if oci::is_sha256_hex(hex) => Ok(()),
        _ => Err(Error::registry(
            what,
            format!(
                "`{}` is not a sha256 digest (`sha256:` and 64 hex digits): refusing what it \
                 does not pin",
                digest.escape_debug()
            ),
        )),
    }
}

fn bundle_output(node: &str, m: &Manifest, what: &str) -> Result<Output> {
    let name = safe_name(m.annotation(oci::ANNOTATION_BUNDLE), what)?;
    if !name.ends_with(".tar.gz") {
        return Err(Error::registry(
            what,
            format!(
                "node `{}`: the bundle name `{name}` does not end in `.tar.gz`",
                node.escape_debug()
            ),
        ));
    }
    let sha256 = m
        .annotation(oci::ANNOTATION_BUNDLE_DIGEST)
        .and_then(|d| d.strip_prefix("sha256:"))
        .filter(|h| oci::is_sha256_hex(h))
        .ok_or_else(|| {
            Error::registry(
                what,
                format!(
                    "node `{}`'s manifest has no sha256 bundle digest",
                    node.escape_debug()
                ),
            )
        })?;
    for l in &m.layers {
        check_digest(&l.digest, what)?;
    }
    Ok(Output {
        node: Some(node.to_string()),
        name: name.to_string(),
        sha256: sha256.to_string(),
        layers: m.layers.clone(),
        mode: 0o600,
    })
}

/// The dist manifest's files: each title one of [`DIST_EXTRAS`].
fn dist_outputs(m: &Manifest, what: &str) -> Result<Vec<Output>> {
    m.layers
        .iter()
        .map(|l| {
            check_digest(&l.digest, what)?;
            let name = safe_name(l.annotation(oci::ANNOTATION_TITLE), what)?;
            if !DIST_EXTRAS.contains(&name) {
                return Err(Error::registry(
                    what,
                    format!(
                        "refusing the dist file `{name}`: dist files are {}",
                        DIST_EXTRAS.join(", ")
                    ),
                ));
            }
            Ok(Output {
                node: None,
                name: name.to_string(),
                sha256: l.digest["sha256:".len()..].to_string(),
                layers: vec![l.clone()],
                mode: if name.ends_with(".sh") { 0o755 } else { 0o644 },
            })
        })
        .collect()
}

/// The dist artifact's SHA256SUMS, read strictly: name → sha256.
fn read_sums(client: &Registry, dist: &Manifest, what: &str) -> Result<BTreeMap<String, String>> {
    let layer = dist
        .layers
        .iter()
        .find(|l| l.annotation(oci::ANNOTATION_TITLE) == Some("SHA256SUMS"))
        .ok_or_else(|| Error::registry(what, "the dist artifact has no SHA256SUMS"))?;
    check_digest(&layer.digest, what)?;
    if layer.size > MAX_SUMS {
        return Err(Error::registry(
            what,
            format!(
                "its SHA256SUMS is {} bytes, more than {MAX_SUMS}",
                layer.size
            ),
        ));
    }
    let mut bytes = Vec::new();
    client.download_blob(&layer.digest, layer.size, &mut bytes, &mut |_| {})?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::registry(what, "its SHA256SUMS is not UTF-8"))?;
    let entries = crate::digest::parse_sha256sums(&text).map_err(|(n, line)| {
        Error::registry(
            what,
            format!(
                "its SHA256SUMS line {n}, `{}`, is not `SHA256  NAME`",
                line.escape_debug()
            ),
        )
    })?;
    let mut sums = BTreeMap::new();
    for (sha, name) in entries {
        if sums.insert(name.to_string(), sha.to_string()).is_some() {
            return Err(Error::registry(
                what,
                format!("its SHA256SUMS lists `{}` twice", name.escape_debug()),
            ));
        }
    }
    Ok(sums)
}

/// Every output but SHA256SUMS itself must be listed in it with its sha256; with
/// `complete`, everything listed must be among the outputs.
fn check_sums(
    outputs: &[Output],
    sums: &BTreeMap<String, String>,
    complete: bool,
    what: &str,
) -> Result<()> {
    for o in outputs.iter().filter(|o| o.name != "SHA256SUMS") {
        match sums.get(&o.name) {
            Some(sha) if *sha == o.sha256 => {}
            Some(_) => {
                return Err(Error::registry(
                    what,
                    format!(
                        "`{}` does not match its sha256 in the artifact's SHA256SUMS: the \
                         artifact was changed after the push; nothing was written",
                        o.name
                    ),
                ))
            }
            None => {
                return Err(Error::registry(
                    what,
                    format!(
                        "`{}` is not listed in the artifact's SHA256SUMS; nothing was written",
                        o.name
                    ),
                )
                .with_hint(
                    "an artifact pushed by an earlier kube-bundle lists only its bundles: push \
                     the dist folder again",
                ))
            }
        }
    }
    if complete {
        if let Some(name) = sums.keys().find(|n| !outputs.iter().any(|o| o.name == **n)) {
            return Err(Error::registry(
                what,
                format!(
                    "its SHA256SUMS lists `{}`, which the artifact does not carry",
                    name.escape_debug()
                ),
            ));
        }
    }
    Ok(())
}

/// One output per path.
fn check_unique(outputs: &[Output], what: &str) -> Result<()> {
    let mut seen = BTreeSet::new();
    for o in outputs {
        if !seen.insert(o.name.as_str()) {
            return Err(Error::registry(
                what,
                format!(
                    "two files of the artifact are named `{}`; nothing was written",
                    o.name
                ),
            ));
        }
    }
    Ok(())
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

/// A plain file name: letters, digits and `._-`, not starting with a dot.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A file name from the registry, refused if it could land outside the output folder.
fn safe_name<'a>(name: Option<&'a str>, what: &str) -> Result<&'a str> {
    match name {
        Some(n) if is_file_name(n) => Ok(n),
        _ => Err(Error::registry(
            what,
            format!("refusing the file name {name:?}: only letters, digits and `._-`"),
        )),
    }
}

/// Creates `dir` (and its parents) 0700 when it does not exist; an existing folder is the
/// user's and keeps its mode.
fn make_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::from(e).doing("creating", dir))?;
    fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// `DIR/.kube-bundle-pull/`: checked layers, named by their sha256, and temporary files,
/// `.tmp-` and 12 random characters, created exclusively (`O_CREAT|O_EXCL`, so never
/// through a planted link). The folder is 0700 and every file in it 0600 whatever the
/// umask, from the moment it exists, so a failed or killed pull leaves no key readable.
/// Only those two kinds of files are ever deleted.
struct Cache {
    dir: PathBuf,
}

const CACHE_DIR: &str = ".kube-bundle-pull";
const TEMP_PREFIX: &str = ".tmp-";
const TEMP_RANDOM: usize = 12;

impl Cache {
    fn open(out: &Path) -> Result<Cache> {
        let dir = out.join(CACHE_DIR);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::input(
                    format!("`{}`", dir.display()),
                    "exists and is not a folder (pull keeps its layer cache there)",
                )
                .with_hint("move it away and pull again"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| Error::from(e).doing("creating", &dir))?;
            }
            Err(e) => return Err(Error::from(e).doing("reading", &dir)),
        }
        fs_err::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let cache = Cache { dir };
        // What an earlier pull (or an earlier kube-bundle) left: private again.
        for path in cache.own_files()? {
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(cache)
    }

    /// The regular files in the cache that kube-bundle names: layers and temporaries.
    fn own_files(&self) -> Result<Vec<PathBuf>> {
        let mut own = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let ours = oci::is_sha256_hex(&name)
                || name.strip_prefix(TEMP_PREFIX).is_some_and(|r| {
                    r.len() == TEMP_RANDOM && r.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if ours && entry.file_type()?.is_file() {
                own.push(entry.path());
            }
        }
        Ok(own)
    }

    fn temp(&self) -> Result<tempfile::NamedTempFile> {
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .rand_bytes(TEMP_RANDOM)
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(|e| Error::from(e).doing("creating a file in", &self.dir))?;
        // The umask may have taken bits off; set exactly 0600.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::from(e).doing("setting the mode of", tmp.path()))?;
        Ok(tmp)
    }

    fn layer(&self, digest: &str) -> PathBuf {
        self.dir.join(&digest["sha256:".len()..])
    }

    /// Downloads a layer unless a checked copy is there already (a regular file, never a
    /// link, of the right size and sha256).
    fn fetch(
        &self,
        client: &Registry,
        digest: &str,
        size: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let path = self.layer(digest);
        let have = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() && m.len() == size => {
                sha256_file(&path)?.0 == digest["sha256:".len()..]
            }
            _ => false,
        };
        if have {
            progress(size);
            return Ok(());
        }
        let tmp = self.temp()?;
        let mut w = std::io::BufWriter::new(tmp.as_file());
        client
            .download_blob(digest, size, &mut w, progress)
            .map_err(|e| e.doing("writing", tmp.path()))?;
        w.flush()
            .map_err(|e| Error::from(e).doing("writing", tmp.path()))?;
        drop(w);
        // rename: a link planted at the name is replaced, never followed.
        tmp.persist(&path)
            .map_err(|e| Error::from(e.error).doing("renaming into", &path))?;
        Ok(())
    }

    /// An output's bytes in a temporary file with its final mode, checked against its
    /// sha256; with its size.
    fn assemble(&self, o: &Output, what: &str) -> Result<(tempfile::NamedTempFile, u64)> {
        let tmp = self.temp()?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file());
            let mut buf = vec![0u8; 1 << 16];
            for layer in &o.layers {
                let mut src = fs_err::File::open(self.layer(&layer.digest))?;
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    w.write_all(&buf[..n])
                        .map_err(|e| Error::from(e).doing("writing", tmp.path()))?;
                    size += n as u64;
                }
            }
            w.flush()
                .map_err(|e| Error::from(e).doing("writing", tmp.path()))?;
        }
        let actual = hex::encode(hasher.finalize());
        if actual != o.sha256 {
            return Err(Error::registry(
                what,
                format!(
                    "the reassembled `{}` is sha256:{actual}, the manifest says sha256:{}; \
                     nothing was written",
                    o.name, o.sha256
                ),
            ));
        }
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(o.mode))
            .map_err(|e| Error::from(e).doing("setting the mode of", tmp.path()))?;
        Ok((tmp, size))
    }

    /// Removes the layers and temporaries, then the folder if nothing else is in it.
    fn finish(self) {
        for path in self.own_files().unwrap_or_default() {
            let _ = fs_err::remove_file(path);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

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
            crate::digest::sha256_hex(&std::fs::read(&one).unwrap())
        );
        assert_eq!(m1[1].digest, crate::digest::sha256_digest(&b));
        let (m2, sha2) = split_members(&two, &mut known).unwrap();
        assert_eq!(m2[1].digest, m1[1].digest);
        assert_eq!(m2[2].digest, m1[2].digest);
        assert_eq!(
            sha2,
            crate::digest::sha256_hex(&std::fs::read(&two).unwrap())
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
