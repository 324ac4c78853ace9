//! Tar archives written block by block, for hostile bundles: `..` and absolute names,
//! links, devices, FIFOs, long names and PAX headers, which `tar::Builder` refuses or
//! normalises. Also the bundles a build wrote, read from its SHA256SUMS, and the
//! certificates in pki/.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// One archive member as it is stored: raw name, type flag, mode, data, link target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub data: Vec<u8>,
    pub link: Vec<u8>,
}

impl Member {
    pub fn file(name: &str, mode: u32, data: &[u8]) -> Member {
        Member {
            name: name.as_bytes().to_vec(),
            kind: b'0',
            mode,
            data: data.to_vec(),
            link: Vec::new(),
        }
    }

    /// A link, device or FIFO (`kind` is the tar type flag).
    pub fn special(name: &str, kind: u8, link: &str) -> Member {
        Member {
            name: name.as_bytes().to_vec(),
            kind,
            mode: 0o644,
            data: Vec::new(),
            link: link.as_bytes().to_vec(),
        }
    }

    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// The tarballs `dist/SHA256SUMS` lists, in its order (it lists the other dist files too).
pub fn built_bundles(dist: &Path) -> Vec<PathBuf> {
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    let bundles: Vec<PathBuf> = sums
        .lines()
        .map(|l| l.split_once("  ").unwrap().1)
        .filter(|name| name.ends_with(".tar.gz"))
        .map(|name| dist.join(name))
        .collect();
    assert!(!bundles.is_empty(), "SHA256SUMS lists no bundle:\n{sums}");
    bundles
}

/// The certificates in pki/'s per-node folders, sorted.
pub fn leaf_certificates(pki: &Path) -> Vec<PathBuf> {
    let leaves: Vec<PathBuf> = walkdir::WalkDir::new(pki)
        .min_depth(2)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".pem") && !name.ends_with("-key.pem")
        })
        .collect();
    assert!(!leaves.is_empty(), "no certificate in {}", pki.display());
    leaves
}

/// A tarball's members in order, long names resolved, as GNU tar would list them.
pub fn read_members(tarball: &Path) -> Vec<Member> {
    let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(tarball).unwrap());
    let mut archive = tar::Archive::new(gz);
    let mut members = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        members.push(Member {
            name: entry.path_bytes().into_owned(),
            kind: entry.header().entry_type().as_byte(),
            mode: entry.header().mode().unwrap(),
            data,
            link: entry
                .link_name_bytes()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
        });
    }
    members
}

/// A 512-byte GNU header with the name and link written as they are (no checks).
pub fn header_block(name: &[u8], kind: u8, mode: u32, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::new(kind));
    let old = h.as_old_mut();
    let n = name.len().min(100);
    old.name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    old.linkname[..l].copy_from_slice(&link[..l]);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// Data followed by the zeros that fill its last block.
pub fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

/// The tar stream of `members`: a GNU long-name entry before any name over 100 bytes,
/// then the two zero blocks that end an archive.
pub fn tar_bytes(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        if m.name.len() > 100 {
            let mut long = m.name.clone();
            long.push(0);
            out.extend(header_block(
                b"././@LongLink",
                b'L',
                0o644,
                long.len() as u64,
                b"",
            ));
            out.extend(padded(&long));
        }
        out.extend(header_block(
            &m.name,
            m.kind,
            m.mode,
            m.data.len() as u64,
            &m.link,
        ));
        out.extend(padded(&m.data));
    }
    out.extend([0u8; 1024]);
    out
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

pub fn write_tar_gz(path: &Path, members: &[Member]) {
    std::fs::write(path, gzip(&tar_bytes(members))).unwrap();
}

/// The bundle's top folder, from its first member.
pub fn top_of(members: &[Member]) -> String {
    let name = members[0].name();
    name.split('/').next().unwrap().to_string()
}

/// Adds `rel` (relative to the top folder) to SHA256SUMS and manifest.json, so verify
/// sees it listed and described, as a forger who rebuilt both would leave it.
pub fn list_in_bundle(members: &mut [Member], rel: &str, mode: u32, data: &[u8]) {
    use sha2::Digest;
    let top = top_of(members);
    let sha = hex::encode(sha2::Sha256::digest(data));
    for m in members.iter_mut() {
        if m.name() == format!("{top}/SHA256SUMS") {
            m.data.extend(format!("{sha}  {rel}\n").as_bytes());
        }
        if m.name() == format!("{top}/manifest.json") {
            let mut manifest: serde_json::Value = serde_json::from_slice(&m.data).unwrap();
            manifest["files"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                    "path": rel,
                    "mode": format!("{mode:04o}"),
                    "sha256": sha,
                }));
            m.data = serde_json::to_vec_pretty(&manifest).unwrap();
        }
    }
    // SHA256SUMS covers manifest.json: bring its line up to date.
    let manifest = members
        .iter()
        .find(|m| m.name() == format!("{top}/manifest.json"))
        .unwrap()
        .data
        .clone();
    let manifest_sha = hex::encode(sha2::Sha256::digest(&manifest));
    for m in members.iter_mut() {
        if m.name() == format!("{top}/SHA256SUMS") {
            let text = String::from_utf8(m.data.clone()).unwrap();
            let lines: Vec<String> = text
                .lines()
                .map(|l| match l.split_once("  ") {
                    Some((_, "manifest.json")) => format!("{manifest_sha}  manifest.json"),
                    _ => l.to_string(),
                })
                .collect();
            m.data = format!("{}\n", lines.join("\n")).into_bytes();
        }
    }
}
