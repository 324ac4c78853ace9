//! `pull`: the index or one node's manifest, its blobs checked by digest into a private
//! cache, and the files put in place only whole.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Transfer, DIST_EXTRAS};
use crate::digest::sha256_file;
use crate::error::{Error, Result};
use crate::store::oci::{self, Descriptor, Index, Manifest, Reference};
use crate::store::registry::{self, Registry};

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

pub(super) enum Document {
    Index(Index),
    Manifest(Manifest),
}

pub(super) fn parse_document(what: &str, bytes: &[u8]) -> Result<Document> {
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
    pub(super) node: Option<String>,
    pub(super) name: String,
    /// sha256 hex of the whole file.
    pub(super) sha256: String,
    pub(super) layers: Vec<Descriptor>,
    pub(super) mode: u32,
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
pub(super) fn is_file_name(name: &str) -> bool {
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
    pub(super) dir: PathBuf,
}

const CACHE_DIR: &str = ".kube-bundle-pull";

const TEMP_PREFIX: &str = ".tmp-";

const TEMP_RANDOM: usize = 12;

impl Cache {
    pub(super) fn open(out: &Path) -> Result<Cache> {
        let dir = out.join(CACHE_DIR);
        #[allow(clippy::disallowed_methods)] // each outcome gets its own error, naming the path
        let meta = std::fs::symlink_metadata(&dir);
        match meta {
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
    pub(super) fn own_files(&self) -> Result<Vec<PathBuf>> {
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

    pub(super) fn temp(&self) -> Result<tempfile::NamedTempFile> {
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

    pub(super) fn layer(&self, digest: &str) -> PathBuf {
        self.dir.join(&digest["sha256:".len()..])
    }

    /// Downloads a layer unless a checked copy is there already (a regular file, never a
    /// link, of the right size and sha256).
    pub(super) fn fetch(
        &self,
        client: &Registry,
        digest: &str,
        size: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let path = self.layer(digest);
        #[allow(clippy::disallowed_methods)] // a missing or odd layer is fetched again
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
    pub(super) fn assemble(
        &self,
        o: &Output,
        what: &str,
    ) -> Result<(tempfile::NamedTempFile, u64)> {
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
    pub(super) fn finish(self) {
        for path in self.own_files().unwrap_or_default() {
            let _ = fs_err::remove_file(path);
        }
        #[allow(clippy::disallowed_methods)] // best effort: a folder others use stays
        let _ = std::fs::remove_dir(&self.dir);
    }
}
