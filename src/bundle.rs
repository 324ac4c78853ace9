//! Packing: one deterministic `.tar.gz` per node plan, with SHA256SUMS and manifest.json
//! inside, and `dist/SHA256SUMS` over the tarballs. The output is a pure function of the
//! plan's bytes and the chosen mtime: entries sorted, every header field set by hand,
//! gzip without time or name at a fixed level. This module makes no keys or certificates.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::pki;
use crate::plan::{Content, Kind, NodePlan, PlannedFile, COMPONENT};
use crate::signature::{self, Signer};

/// gzip level: fixed, because the compressed bytes depend on it.
const GZIP_LEVEL: u32 = 6;

/// The mtime every entry carries: SOURCE_DATE_EPOCH when set, else 0.
pub fn mtime_from_env() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), len))
}

fn digest(content: &Content) -> Result<(String, u64)> {
    match content {
        Content::Bytes(b) => Ok((sha256_hex(b), b.len() as u64)),
        Content::File(p) => sha256_file(p),
    }
}

#[derive(Serialize)]
struct Manifest<'a> {
    node: &'a str,
    #[serde(rename = "node-ip")]
    node_ip: String,
    component: &'a str,
    #[serde(rename = "kubernetes-version")]
    kubernetes_version: &'a str,
    #[serde(rename = "kube-bundle-version")]
    kube_bundle_version: &'a str,
    files: Vec<ManifestFile>,
    certificates: Vec<ManifestCert>,
    /// Files the unit names that the bundle does not carry (the binary, when none is given).
    external: Vec<String>,
}

#[derive(Serialize)]
struct ManifestFile {
    path: String,
    mode: String,
    size: u64,
    sha256: String,
}

#[derive(Serialize)]
struct ManifestCert {
    path: String,
    #[serde(flatten)]
    summary: pki::CertSummary,
}

/// What a build adds to every bundle besides the plan: signature and pinned signers.
#[derive(Default, Clone, Copy)]
pub struct Extras<'a> {
    pub signer: Option<&'a Signer>,
    pub pinned_signers: Option<&'a str>,
}

/// The files of a finished bundle, SHA256SUMS and manifest.json included.
fn complete(plan: &NodePlan, extras: &Extras<'_>) -> Result<BTreeMap<String, PlannedFile>> {
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
    let mut manifest_files = Vec::new();
    let mut certificates = Vec::new();
    for (path, file) in &files {
        let (sha, size) = digest(&file.content)?;
        manifest_files.push(ManifestFile {
            path: path.clone(),
            mode: format!("{:04o}", file.mode),
            size,
            sha256: sha.clone(),
        });
        if let (Kind::Certificate, Content::Bytes(b)) = (file.kind, &file.content) {
            if let Some(summary) = pki::describe(&String::from_utf8_lossy(b)) {
                certificates.push(ManifestCert {
                    path: path.clone(),
                    summary,
                });
            }
        }
        sums.insert(path.clone(), sha);
    }
    let manifest = Manifest {
        node: &plan.node.name,
        node_ip: plan.node.ip.to_string(),
        component: COMPONENT,
        kubernetes_version: &plan.kubernetes_version,
        kube_bundle_version: env!("CARGO_PKG_VERSION"),
        files: manifest_files,
        certificates,
        external: plan.external.clone(),
    };
    let mut manifest_json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    manifest_json.push(b'\n');
    sums.insert("manifest.json".into(), sha256_hex(&manifest_json));
    files.insert("manifest.json".into(), bytes(manifest_json));
    let sums = sha256sums(&sums);
    if let Some(signer) = extras.signer {
        let sig = signer.sign(sums.as_bytes())?;
        files.insert(signature::SIG_FILE.into(), bytes(sig.into_bytes()));
    }
    files.insert("SHA256SUMS".into(), bytes(sums.into_bytes()));
    Ok(files)
}

/// `sha256sum -c` format, sorted by path.
pub fn sha256sums(sums: &BTreeMap<String, String>) -> String {
    sums.iter()
        .map(|(path, sha)| format!("{sha}  {path}\n"))
        .collect()
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

/// Writes one node's tarball to `out` (mode 0600) and returns its sha256.
pub fn pack_node(plan: &NodePlan, out: &Path, mtime: u64, extras: &Extras<'_>) -> Result<String> {
    let top = plan.top_dir();
    let files = complete(plan, extras)?;
    let file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)?;
    let hashing = HashingWriter {
        inner: std::io::BufWriter::new(file),
        hasher: Sha256::new(),
    };
    let gz = GzBuilder::new()
        .operating_system(3)
        .write(hashing, Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(gz);

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
                Content::File(p) => {
                    let src = fs_err::File::open(p)?;
                    let len = src.metadata()?.len();
                    let mut h = header(tar::EntryType::Regular, f.mode, len, mtime);
                    tar.append_data(&mut h, &path, src)?;
                }
            },
        }
    }
    let gz = tar.into_inner()?;
    let mut hashing = gz.finish()?;
    hashing.flush()?;
    let sha = hex::encode(hashing.hasher.finalize());
    hashing
        .inner
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(sha)
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Node;

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
            files,
            external: vec![],
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
        pack_node(&plan(), &out, 1_700_000_000, &Extras::default()).unwrap();
        let all = entries(&out);
        let paths: Vec<&str> = all.iter().map(|e| e.0.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "entries are sorted");
        assert_eq!(paths[0], "kube-controller-manager-m1/");
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
        assert!(paths.contains(&"kube-controller-manager-m1/SHA256SUMS"));
        assert!(paths.contains(&"kube-controller-manager-m1/manifest.json"));
    }

    #[test]
    fn the_same_plan_packs_to_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tar.gz"), dir.path().join("b.tar.gz"));
        let sha_a = pack_node(&plan(), &a, 0, &Extras::default()).unwrap();
        let sha_b = pack_node(&plan(), &b, 0, &Extras::default()).unwrap();
        assert_eq!(sha_a, sha_b);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(sha_a, sha256_hex(&std::fs::read(&a).unwrap()));
        let c = dir.path().join("c.tar.gz");
        assert_ne!(
            pack_node(&plan(), &c, 1, &Extras::default()).unwrap(),
            sha_a,
            "mtime is part of the bytes"
        );
    }

    #[test]
    fn sha256sums_is_sorted_sha256sum_format() {
        let sums = BTreeMap::from([
            ("b".to_string(), "22".to_string()),
            ("a".to_string(), "11".to_string()),
        ]);
        assert_eq!(sha256sums(&sums), "11  a\n22  b\n");
    }
}
