//! Reading a finished `dist/` before a push: every bundle checked against SHA256SUMS
//! and cut into its gzip members, the shared binary's member found once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Seek};
use std::path::{Path, PathBuf};

use flate2::{Decompress, FlushDecompress, Status};
use sha2::{Digest, Sha256};

use super::pull::is_file_name;
use super::{travels, DIST_EXTRAS};
use crate::digest::sha256_file;
use crate::error::{Error, Result};

/// One gzip member of a bundle: where it lies in the tarball and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub offset: u64,
    pub len: u64,
    pub digest: String,
}

/// A bundle in `dist/` as it will be pushed.
#[derive(Debug, Clone)]
pub(super) struct LocalBundle {
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
pub(super) struct KnownMembers {
    by_prefix: BTreeMap<Vec<u8>, Vec<KnownMember>>,
}

/// A member already hashed: where its bytes lie, so a candidate is compared with them.
#[derive(Clone)]
struct KnownMember {
    pub(super) len: u64,
    pub(super) digest: String,
    pub(super) path: PathBuf,
    pub(super) offset: u64,
}

const PREFIX: usize = 64;

/// Splits a `.tar.gz` into its gzip members by inflating each one to find its end.
pub(super) fn split_members(
    path: &Path,
    known: &mut KnownMembers,
) -> Result<(Vec<Member>, String)> {
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

/// A dist file besides the bundles, as push sends it.
#[derive(Debug, Clone)]
pub(super) struct LocalFile {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// `dist/` as push reads it.
#[derive(Debug, Clone)]
pub(super) struct LocalDist {
    pub bundles: Vec<LocalBundle>,
    /// SHA256SUMS first, then the other extras in [`DIST_EXTRAS`] order.
    pub extras: Vec<LocalFile>,
}

/// Reads `dist/`: every file `dist/SHA256SUMS` lists, each checked against its sha256, the
/// bundles split into members. A line that does not read, a name that is neither a bundle
/// nor a dist file, or a dist file that is there but not listed is bad input.
pub(super) fn read_dist(dist: &Path) -> Result<LocalDist> {
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
