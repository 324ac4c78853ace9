//! Packing: one deterministic `.tar.gz` per node plan, with SHA256SUMS, manifest.json
//! and the SBOM (`sbom`) inside, and `dist/SHA256SUMS` over the tarballs. The output is a pure function of the
//! plan's bytes and the chosen mtime: entries sorted, every header field set by hand,
//! gzip without time or name at a fixed level. A file read from disk (the binary) is
//! compressed once per build by [`compress_shared`] and spliced into every tarball as its
//! own gzip member (see `member`). With a seal key, private files go in sealed (see
//! `seal`). This module makes no keys or certificates.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::digest::{sha256_file, sha256_hex, sha256sums};
use crate::error::Result;
use crate::manifest::{Manifest, ManifestCert, ManifestFile};
use crate::pack::cache::{self, MemberCache};
use crate::pack::member;
use crate::pack::sbom;
use crate::parallel;
use crate::pki;
use crate::pki::seal::{self, SealKey};
use crate::pki::signature::{self, Signer};
use crate::plan::{Content, Kind};
use crate::render::{BundleFile as PlannedFile, RenderedNode as NodePlan};

/// gzip level: fixed, because the compressed bytes depend on it.
const GZIP_LEVEL: u32 = 6;

/// The mtime every entry carries: SOURCE_DATE_EPOCH when set, else 0.
pub fn mtime_from_env() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn digest(content: &Content, shared: &SharedFiles) -> Result<(String, u64)> {
    match content {
        Content::Bytes(b) => Ok((sha256_hex(b), b.len() as u64)),
        Content::File(p) => match shared.files.get(p) {
            Some(f) => Ok((f.compressed.sha256.clone(), f.compressed.size)),
            None => sha256_file(p),
        },
    }
}

/// Files from disk that every bundle carries, each compressed once into a gzip member.
#[derive(Default)]
pub struct SharedFiles {
    files: BTreeMap<PathBuf, SharedFile>,
}

struct SharedFile {
    compressed: member::Compressed,
    /// The gzip member: the file's bytes and their tar padding. Unnamed, so it vanishes
    /// with the process.
    member: std::fs::File,
}

/// Zero bytes that follow `len` bytes of entry data in a tar stream.
fn tar_padding(len: u64) -> usize {
    ((512 - len % 512) % 512) as usize
}

/// Everything besides a binary's bytes that its member depends on, for the member cache:
/// the level, the block size, the framing, kube-bundle's version (which pins the deflate
/// library's) and a fingerprint of what the library writes for a fixed sample.
pub fn member_settings() -> String {
    let sample: Vec<u8> = (0..64u32 << 10)
        .map(|i| {
            if i % 5 < 3 {
                (i / 97) as u8
            } else {
                (i.wrapping_mul(2_654_435_761) >> 24) as u8
            }
        })
        .collect();
    let mut out = Vec::new();
    member::compress(
        &mut &sample[..],
        sample.len() as u64,
        tar_padding(sample.len() as u64),
        &mut out,
        GZIP_LEVEL,
        1,
        &mut |_| {},
    )
    .expect("deflate of in-memory data cannot fail");
    format!(
        "gzip member of the data and its tar padding, level {GZIP_LEVEL}, blocks of {} bytes, \
         kube-bundle {}, fingerprint {}",
        member::BLOCK,
        env!("CARGO_PKG_VERSION"),
        sha256_hex(&out)
    )
}

/// Compresses every file from disk that the plans name, once, on `threads` threads, into
/// unnamed files under `scratch`. With a member cache, a file whose member it holds is
/// not compressed: the cached member is checked and copied instead, and every member
/// compressed is stored in it. `notes` gets a line for each entry found damaged or
/// not stored. `progress` gets (bytes done, bytes in all).
pub fn compress_shared(
    plans: &[NodePlan],
    scratch: &Path,
    threads: usize,
    cache: Option<&MemberCache>,
    notes: &mut Vec<String>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SharedFiles> {
    let mut paths = std::collections::BTreeSet::new();
    for plan in plans {
        for file in plan.files.values() {
            if let Content::File(p) = &file.content {
                paths.insert(p.clone());
            }
        }
    }
    let paths: Vec<PathBuf> = paths.into_iter().collect();
    let mut sizes = Vec::new();
    for p in &paths {
        sizes.push(fs_err::metadata(p)?.len());
    }
    let total: u64 = sizes.iter().sum();
    let scratch_file = || {
        tempfile::tempfile_in(scratch).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("scratch file in `{}`: {e}", scratch.display()),
            )
        })
    };
    // With a cache: every file hashed (on every core, a file a thread), then each
    // entry checked and its member copied out.
    let found: Vec<Option<Reused>> = match cache {
        None => paths.iter().map(|_| None).collect(),
        Some(cache) => parallel::map(&paths, threads, |_, path| {
            look_up(cache, path, scratch_file()?).map(Some)
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?,
    };
    if let Some(cache) = cache.filter(|_| !paths.is_empty()) {
        let reused = found
            .iter()
            .filter(|f| matches!(f, Some(Reused::Hit(_))))
            .count();
        notes.push(format!(
            "member cache `{}`: {reused} of {} compressed binaries reused",
            cache.dir().display(),
            paths.len()
        ));
    }
    let mut before = 0u64;
    let mut shared = SharedFiles::default();
    for ((path, size), found) in paths.into_iter().zip(sizes).zip(found) {
        let hashed = match found {
            Some(Reused::Hit(file)) => {
                before += file.compressed.size;
                progress(before, total);
                shared.files.insert(path, file);
                continue;
            }
            Some(Reused::Damaged { sha256, size, note }) => {
                notes.push(note);
                Some((sha256, size))
            }
            Some(Reused::Miss { sha256, size }) => Some((sha256, size)),
            None => None,
        };
        let mut src = std::io::BufReader::with_capacity(1 << 16, fs_err::File::open(&path)?);
        let file = scratch_file()?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
        let compressed = member::compress(
            &mut src,
            size,
            tar_padding(size),
            &mut out,
            GZIP_LEVEL,
            threads,
            &mut |done| progress(before + done, total),
        )
        .and_then(|c| match &hashed {
            Some((sha256, size)) if (sha256, *size) != (&c.sha256, c.size) => Err(
                std::io::Error::other("the file changed while it was being read"),
            ),
            _ => Ok(c),
        })
        .map_err(|e| {
            std::io::Error::new(e.kind(), format!("compressing `{}`: {e}", path.display()))
        })?;
        out.flush()?;
        drop(out);
        before += size;
        if let Some(cache) = cache {
            let mut member = member::ReadAt::new(&file, compressed.member_len);
            if let Err(e) = cache.store(
                &compressed.sha256,
                compressed.size,
                &mut member,
                compressed.member_len,
            ) {
                notes.push(format!(
                    "warning: member cache: could not store the member of `{}`: {e}",
                    path.display()
                ));
            }
        }
        shared.files.insert(
            path,
            SharedFile {
                compressed,
                member: file,
            },
        );
    }
    if let Some(cache) = cache {
        cache.prune();
    }
    Ok(shared)
}

/// What the member cache held for a file.
enum Reused {
    Hit(SharedFile),
    Miss {
        sha256: String,
        size: u64,
    },
    Damaged {
        sha256: String,
        size: u64,
        note: String,
    },
}

/// Hashes the file at `path` and looks its member up in `cache`, copying it into
/// `scratch` when the entry passes its check.
fn look_up(cache: &MemberCache, path: &Path, scratch: std::fs::File) -> Result<Reused> {
    let (sha256, size) = sha256_file(path)?;
    let lookup = (|| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &scratch);
        let lookup = cache.lookup(&sha256, size, &mut out)?;
        out.flush()?;
        Ok(lookup)
    })()
    .map_err(|e: std::io::Error| {
        std::io::Error::new(
            e.kind(),
            format!("copying the cached member of `{}`: {e}", path.display()),
        )
    })?;
    Ok(match lookup {
        cache::Lookup::Hit { member_len } => Reused::Hit(SharedFile {
            compressed: member::Compressed {
                size,
                sha256,
                member_len,
            },
            member: scratch,
        }),
        cache::Lookup::Miss => Reused::Miss { sha256, size },
        cache::Lookup::Damaged { entry, why } => Reused::Damaged {
            sha256,
            size,
            note: format!(
                "warning: member cache: `{}` failed its check ({why}); compressed `{}` again \
                 and replaced it",
                entry.display(),
                path.display()
            ),
        },
    })
}

/// What a build adds to a bundle besides the plan: signature, pinned signers and the
/// node's seal key.
#[derive(Default, Clone, Copy)]
pub struct Extras<'a> {
    pub signer: Option<&'a Signer>,
    pub pinned_signers: Option<&'a str>,
    /// Private files (mode 0600) go in sealed with it, as `sealed/<node path>.enc`, their
    /// sha256 in `SHA256SUMS.sealed`.
    pub seal: Option<&'a SealKey>,
}

/// The files of a finished bundle, SHA256SUMS and manifest.json included.
fn complete(
    plan: &NodePlan,
    mtime: u64,
    shared: &SharedFiles,
    extras: &Extras<'_>,
) -> Result<BTreeMap<String, PlannedFile>> {
    let bytes = |b: Vec<u8>| PlannedFile {
        mode: 0o644,
        kind: Kind::Other,
        content: Content::Bytes(b),
    };
    let mut files = plan.files.clone();
    if let Some(pinned) = extras.pinned_signers {
        files.insert(
            signature::PINNED_FILE.into(),
            bytes(pinned.as_bytes().to_vec()),
        );
    }
    let mut sums = BTreeMap::new();
    let mut sealed_sums = BTreeMap::new();
    let mut manifest_files = Vec::new();
    let mut certificates = Vec::new();
    for (path, file) in &files {
        let (sha, size) = digest(&file.content, shared)?;
        let sealed =
            extras.seal.is_some() && seal::is_private(file.mode) && path.starts_with("rootfs/");
        manifest_files.push(ManifestFile {
            path: path.clone(),
            mode: format!("{:04o}", file.mode),
            size,
            sha256: sha.clone(),
            sealed,
        });
        if let (Kind::Certificate, Content::Bytes(b)) = (file.kind, &file.content) {
            if let Some(summary) = pki::describe(&String::from_utf8_lossy(b)) {
                certificates.push(ManifestCert {
                    path: path.clone(),
                    summary,
                });
            }
        }
        if sealed {
            sealed_sums.insert(path.clone(), sha);
        } else {
            sums.insert(path.clone(), sha);
        }
    }
    if let Some(key) = extras.seal {
        for path in sealed_sums.keys() {
            let file = files.remove(path).expect("listed from these files");
            let plain = match &file.content {
                Content::Bytes(b) => b.clone(),
                Content::File(p) => fs_err::read(p)?,
            };
            let sealed = key.seal(&plain)?;
            let name = seal::sealed_path(path).expect("sealed files are under rootfs/");
            sums.insert(name.clone(), sha256_hex(&sealed));
            files.insert(
                name,
                PlannedFile {
                    mode: file.mode,
                    kind: Kind::Other,
                    content: Content::Bytes(sealed),
                },
            );
        }
        let listing = sha256sums(&sealed_sums).into_bytes();
        sums.insert(seal::SEALED_SUMS.into(), sha256_hex(&listing));
        files.insert(seal::SEALED_SUMS.into(), bytes(listing));
    }
    let manifest = Manifest {
        node: plan.node.name.clone(),
        node_ip: plan.node.ip.to_string(),
        components: plan.components.iter().map(|c| c.name.to_string()).collect(),
        kubernetes_version: plan.kubernetes_version.clone(),
        kube_bundle_version: env!("CARGO_PKG_VERSION").to_string(),
        files: manifest_files,
        certificates,
        external: plan.external.clone(),
        own: plan.own.clone(),
    };
    let mut manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    manifest_json.push(b'\n');
    sums.insert("manifest.json".into(), sha256_hex(&manifest_json));
    files.insert("manifest.json".into(), bytes(manifest_json));
    // Every file but itself, SHA256SUMS and its signature, which list and sign it.
    let sbom = sbom::write(&sbom::Bundle {
        top: &plan.top_dir(),
        kubernetes_version: &plan.kubernetes_version,
        components: plan.components.iter().map(|c| c.name).collect(),
        created: mtime,
        files: &sums,
        binaries: &plan.origins,
    });
    sums.insert(sbom::FILE.into(), sha256_hex(&sbom));
    files.insert(sbom::FILE.into(), bytes(sbom));
    let sums = sha256sums(&sums);
    if let Some(signer) = extras.signer {
        let sig = signer.sign(sums.as_bytes())?;
        files.insert(signature::SIG_FILE.into(), bytes(sig.into_bytes()));
    }
    files.insert("SHA256SUMS".into(), bytes(sums.into_bytes()));
    Ok(files)
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    // new_gnu leaves the user and group names empty, which is what we want.
    h
}

/// Every folder above the bundle's files, the top folder included, as `a/b/`.
fn folders(top: &str, files: &BTreeMap<String, PlannedFile>) -> Vec<String> {
    let mut dirs = std::collections::BTreeSet::from([format!("{top}/")]);
    for path in files.keys() {
        let mut prefix = String::from(top);
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            prefix.push('/');
            prefix.push_str(part);
            dirs.insert(format!("{prefix}/"));
        }
    }
    dirs.into_iter().collect()
}

/// A finished tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub sha256: String,
    pub size: u64,
}

fn gzip_member<W: Write>(w: W) -> GzEncoder<W> {
    GzBuilder::new()
        .operating_system(3)
        .write(w, Compression::new(GZIP_LEVEL))
}

/// The tarball's gzip stream: members written here, with shared members copied in
/// between.
struct Members<W: Write> {
    current: Option<GzEncoder<W>>,
}

impl<W: Write> Members<W> {
    /// Ends the current member, copies `member` as is and starts a new one.
    fn splice(&mut self, member: &mut dyn Read) -> std::io::Result<()> {
        let mut inner = self.current.take().ok_or_else(closed)?.finish()?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = member.read(&mut buf)?;
            if n == 0 {
                break;
            }
            inner.write_all(&buf[..n])?;
        }
        self.current = Some(gzip_member(inner));
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.current.take().ok_or_else(closed)?.finish()
    }
}

/// After a write failed half-way through a member, no member is open; tar's
/// `Builder` still writes its trailer when dropped, which must get an error, not a panic.
fn closed() -> std::io::Error {
    std::io::Error::other("the gzip stream was closed by an earlier error")
}

impl<W: Write> Write for Members<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.current.as_mut().ok_or_else(closed)?.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.current.as_mut().ok_or_else(closed)?.flush()
    }
}

/// Writes one node's tarball to `out` (mode 0600). Files in `shared` are spliced in as
/// their compressed member; any other file from disk is compressed in line.
pub fn pack_node(
    plan: &NodePlan,
    out: &Path,
    mtime: u64,
    shared: &SharedFiles,
    extras: &Extras<'_>,
) -> Result<Packed> {
    let file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)?;
    let hashing = HashingWriter {
        inner: std::io::BufWriter::with_capacity(1 << 16, file),
        hasher: Sha256::new(),
        len: 0,
    };
    let members = write_tar(plan, hashing, mtime, shared, extras)?;
    let mut hashing = members.finish()?;
    hashing.flush()?;
    let packed = Packed {
        sha256: hex::encode(hashing.hasher.finalize()),
        size: hashing.len,
    };
    // No fsync: a bundle is rebuilt byte for byte from pki/ (which is synced), and
    // dist/SHA256SUMS shows a tarball a crash cut short.
    hashing
        .inner
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    Ok(packed)
}

fn write_tar<W: Write>(
    plan: &NodePlan,
    w: W,
    mtime: u64,
    shared: &SharedFiles,
    extras: &Extras<'_>,
) -> Result<Members<W>> {
    let top = plan.top_dir();
    let files = complete(plan, mtime, shared, extras)?;
    let mut tar = tar::Builder::new(Members {
        current: Some(gzip_member(w)),
    });

    // Folders first: sorted order already puts each folder before what it holds.
    let mut entries: BTreeMap<String, Option<&PlannedFile>> = folders(&top, &files)
        .into_iter()
        .map(|d| (d, None))
        .collect();
    for (path, f) in &files {
        entries.insert(format!("{top}/{path}"), Some(f));
    }
    for (path, entry) in entries {
        match entry {
            None => {
                let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
                tar.append_data(&mut h, &path, std::io::empty())?;
            }
            Some(f) => match &f.content {
                Content::Bytes(b) => {
                    let mut h = header(tar::EntryType::Regular, f.mode, b.len() as u64, mtime);
                    tar.append_data(&mut h, &path, &b[..])?;
                }
                Content::File(p) => match shared.files.get(p) {
                    Some(s) => {
                        // The header alone: tar pads by the bytes it copied, here none.
                        // The data and its padding follow as the shared member.
                        let size = s.compressed.size;
                        let mut h = header(tar::EntryType::Regular, f.mode, size, mtime);
                        tar.append_data(&mut h, &path, std::io::empty())?;
                        let mut member = member::ReadAt::new(&s.member, s.compressed.member_len);
                        tar.get_mut().splice(&mut member)?;
                    }
                    None => {
                        let src = fs_err::File::open(p)?;
                        let len = src.metadata()?.len();
                        let mut h = header(tar::EntryType::Regular, f.mode, len, mtime);
                        tar.append_data(&mut h, &path, src)?;
                    }
                },
            },
        }
    }
    Ok(tar.into_inner()?)
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use crate::model::Node;

    fn plan() -> NodePlan {
        let mut files = BTreeMap::new();
        let f = |mode, b: &str| PlannedFile {
            mode,
            kind: Kind::Other,
            content: Content::Bytes(b.as_bytes().to_vec()),
        };
        files.insert("install.sh".to_string(), f(0o755, "#!/bin/sh\n"));
        files.insert(
            "rootfs/etc/kubernetes/cert/ca-key.pem".to_string(),
            f(0o600, "secret"),
        );
        NodePlan {
            node: Node {
                name: "m1".into(),
                ip: "10.0.0.1".parse().unwrap(),
            },
            kubernetes_version: "1.20.2".into(),
            components: vec![&crate::component::KUBE_CONTROLLER_MANAGER],
            files,
            external: vec![],
            own: BTreeMap::new(),
            origins: BTreeMap::new(),
        }
    }

    fn entries(path: &Path) -> Vec<(String, u32, u64, u64, u64, String, String)> {
        let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap());
        let mut archive = tar::Archive::new(gz);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    h.username().unwrap().unwrap_or("").to_string(),
                    h.groupname().unwrap().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn every_header_is_fixed_and_keys_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar.gz");
        pack_node(
            &plan(),
            &out,
            1_700_000_000,
            &SharedFiles::default(),
            &Extras::default(),
        )
        .unwrap();
        let all = entries(&out);
        let paths: Vec<&str> = all.iter().map(|e| e.0.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "entries are sorted");
        assert_eq!(paths[0], "control-plane-m1/");
        for (path, mode, uid, gid, mtime, user, group) in &all {
            assert_eq!((*uid, *gid, *mtime), (0, 0, 1_700_000_000), "{path}");
            assert_eq!((user.as_str(), group.as_str()), ("", ""), "{path}");
            let want = match path.as_str() {
                p if p.ends_with('/') || p.ends_with("install.sh") => 0o755,
                p if p.ends_with("key.pem") => 0o600,
                _ => 0o644,
            };
            assert_eq!(*mode, want, "{path}");
        }
        assert!(paths.contains(&"control-plane-m1/SHA256SUMS"));
        assert!(paths.contains(&"control-plane-m1/manifest.json"));
    }

    #[test]
    fn the_same_plan_packs_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tar.gz"), dir.path().join("b.tar.gz"));
        let none = SharedFiles::default();
        let sha_a = pack_node(&plan(), &a, 0, &none, &Extras::default())
            .unwrap()
            .sha256;
        let sha_b = pack_node(&plan(), &b, 0, &none, &Extras::default())
            .unwrap()
            .sha256;
        assert_eq!(sha_a, sha_b);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(sha_a, sha256_hex(&std::fs::read(&a).unwrap()));
        let c = dir.path().join("c.tar.gz");
        assert_ne!(
            pack_node(&plan(), &c, 1, &none, &Extras::default())
                .unwrap()
                .sha256,
            sha_a,
            "mtime is part of the bytes"
        );
    }

    /// The plan with a binary of `len` bytes read from disk.
    fn plan_with_binary(dir: &Path, len: usize) -> NodePlan {
        let bin = dir.join("kcm");
        let data: Vec<u8> = (0..len)
            .map(|i| (((i * 7919) % 251) ^ (i / 4096)) as u8)
            .collect();
        std::fs::write(&bin, data).unwrap();
        let mut p = plan();
        p.files.insert(
            "rootfs/opt/k8s/bin/kube-controller-manager".into(),
            PlannedFile {
                mode: 0o755,
                kind: Kind::Other,
                content: Content::File(bin),
            },
        );
        p
    }

    /// The plan's binary compressed under `dir`, and the notes that made.
    fn shared_of(
        plan: &NodePlan,
        dir: &Path,
        threads: usize,
        cache: Option<&MemberCache>,
    ) -> (SharedFiles, Vec<String>) {
        let mut notes = Vec::new();
        let shared = compress_shared(
            std::slice::from_ref(plan),
            dir,
            threads,
            cache,
            &mut notes,
            &mut |_, _| {},
        )
        .unwrap();
        (shared, notes)
    }

    fn gunzip(path: &Path) -> Vec<u8> {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_end(&mut plain)
            .unwrap();
        plain
    }

    fn gzip_members(path: &Path) -> usize {
        let bytes = std::fs::read(path).unwrap();
        let mut reader = &bytes[..];
        let mut members = 0;
        while !reader.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(reader);
            std::io::copy(&mut d, &mut std::io::sink()).unwrap();
            reader = d.into_inner();
            members += 1;
        }
        members
    }

    #[test]
    fn a_spliced_member_gives_the_same_tar_stream_as_compressing_in_line() {
        let dir = tempfile::tempdir().unwrap();
        // Not a multiple of 512 nor of the deflate block: the padding lives in the member.
        for len in [0, 100, member::BLOCK * 2 + 1000] {
            let plan = plan_with_binary(dir.path(), len);
            let shared = shared_of(&plan, dir.path(), 2, None).0;
            let (spliced, inline) = (dir.path().join("s.tar.gz"), dir.path().join("i.tar.gz"));
            let _ = (
                std::fs::remove_file(&spliced),
                std::fs::remove_file(&inline),
            );
            let s = pack_node(&plan, &spliced, 0, &shared, &Extras::default()).unwrap();
            pack_node(
                &plan,
                &inline,
                0,
                &SharedFiles::default(),
                &Extras::default(),
            )
            .unwrap();
            assert!(
                gunzip(&spliced) == gunzip(&inline),
                "len {len}: tar streams differ"
            );
            assert_eq!(
                gzip_members(&spliced),
                3,
                "len {len}: before, binary, after"
            );
            assert_eq!(gzip_members(&inline), 1);
            assert_eq!(s.size, std::fs::metadata(&spliced).unwrap().len());
            assert_eq!(s.sha256, sha256_hex(&std::fs::read(&spliced).unwrap()));
        }
    }

    #[test]
    fn the_shared_binary_is_hashed_once_and_listed_like_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan_with_binary(dir.path(), 5000);
        let shared = shared_of(&plan, dir.path(), 1, None).0;
        let out = dir.path().join("b.tar.gz");
        pack_node(&plan, &out, 0, &shared, &Extras::default()).unwrap();
        let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(
            std::fs::File::open(&out).unwrap(),
        ));
        let mut sums = String::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().ends_with("SHA256SUMS") {
                e.read_to_string(&mut sums).unwrap();
            }
        }
        let want = sha256_hex(&std::fs::read(dir.path().join("kcm")).unwrap());
        assert!(
            sums.contains(&format!(
                "{want}  rootfs/opt/k8s/bin/kube-controller-manager\n"
            )),
            "{sums}"
        );
    }

    #[test]
    fn a_cached_member_packs_to_the_same_bytes_and_a_damaged_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan_with_binary(dir.path(), member::BLOCK + 3000);
        let cache =
            MemberCache::open(&dir.path().join("cache"), b"ca key", &member_settings()).unwrap();
        let mut n = 0;
        let mut pack = |cache: Option<&MemberCache>| {
            let (shared, notes) = shared_of(&plan, dir.path(), 2, cache);
            n += 1;
            let out = dir.path().join(format!("{n}.tar.gz"));
            pack_node(&plan, &out, 0, &shared, &Extras::default()).unwrap();
            (std::fs::read(out).unwrap(), notes)
        };
        let (plain, _) = pack(None);
        let (cold, notes) = pack(Some(&cache));
        assert!(
            notes.len() == 1 && notes[0].ends_with(": 0 of 1 compressed binaries reused"),
            "{notes:?}"
        );
        let entry = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect::<Vec<_>>();
        assert_eq!(entry.len(), 1, "one entry: {entry:?}");
        let stored = std::fs::read(&entry[0]).unwrap();
        let (warm, notes) = pack(Some(&cache));
        assert!(
            notes.len() == 1 && notes[0].ends_with(": 1 of 1 compressed binaries reused"),
            "{notes:?}"
        );
        assert!(plain == cold && cold == warm);
        // One bit flipped in the member: found, compressed again, and the entry rewritten.
        let mut bad = stored.clone();
        bad[1000] ^= 0x10;
        std::fs::write(&entry[0], &bad).unwrap();
        let (again, notes) = pack(Some(&cache));
        assert!(again == plain);
        assert!(
            notes.len() == 2
                && notes[1].starts_with("warning: ")
                && notes[1].contains("failed its check"),
            "{notes:?}"
        );
        assert!(std::fs::read(&entry[0]).unwrap() == stored);
    }

    #[test]
    fn the_member_settings_name_the_level_and_the_block() {
        let s = member_settings();
        assert!(
            s.contains("level 6") && s.contains("blocks of 1048576 bytes"),
            "{s}"
        );
        assert_eq!(s, member_settings());
    }
}
