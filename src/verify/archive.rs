//! Reading a bundle's tarball within fixed limits (entry count, sizes, names), and
//! opening its sealed private files with the node's seal key.

use super::{
    escape, seal, shown, BTreeMap, BufReader, Digest, Error, MultiGzDecoder, Path, Read, Result,
    SealKey, Sha256,
};

/// Files up to this size are kept in memory for the checks that read them; larger ones
/// (the binary) are only hashed, and a check that needs one reports it.
pub(super) const KEEP_LIMIT: u64 = 4 << 20;

/// Limits on what one archive may make verify hold, so a small hostile file cannot make
/// it allocate gigabytes. Past any of them the archive is refused as unreadable (exit 2),
/// naming the limit. Real bundles stay far below every one.
pub(super) const NAME_LIMIT: u64 = 4096;

pub(super) const PAX_LIMIT: u64 = 64 << 10;

pub(super) const TOTAL_LIMIT: u64 = 64 << 20;

pub(super) const ENTRY_LIMIT: usize = 10_000;

pub(super) struct Entry {
    pub(super) mode: u32,
    pub(super) sha256: String,
    pub(super) bytes: Option<Vec<u8>>,
    /// A sealed file verify has no key for: its sha256 is the one SHA256SUMS.sealed
    /// gives, and the checks that read it pass it by.
    pub(super) locked: bool,
}

pub(super) struct Bundle {
    /// The tarball's file name, for findings.
    pub(super) name: String,
    pub(super) top: String,
    pub(super) files: BTreeMap<String, Entry>,
    /// (file, message) about the archive itself: links, devices, names leaving the top
    /// folder, repeated members; and sealed files that do not open.
    pub(super) findings: Vec<(String, String)>,
    /// rootfs path → sha256 of every file SHA256SUMS.sealed lists.
    pub(super) sealed: BTreeMap<String, String>,
}

/// The seal key for the bundle with top folder `top`: `path` itself, or, when it is a
/// folder (pki/), the node's `seal.key` in it.
pub(super) fn seal_key_for(path: &Path, top: &str) -> Result<SealKey> {
    if !path.is_dir() {
        return SealKey::load(path).map_err(|e| {
            e.with_hint("pass --seal-key one node's pki/<node>/seal.key, or pki/ for every node's")
        });
    }
    let node = top
        .strip_prefix(crate::component::BUNDLE_PREFIX)
        .and_then(|n| n.strip_prefix('-'))
        .unwrap_or(top);
    let file = path.join(node).join(seal::KEY_FILE);
    if !file.is_file() {
        return Err(Error::input(
            "--seal-key",
            format!("`{}` holds no `{node}/{}`", path.display(), seal::KEY_FILE),
        )
        .with_hint(
            "pass the pki/ folder the bundles were built with, or the node's own seal.key",
        ));
    }
    SealKey::load(&file)
}

/// Reads SHA256SUMS.sealed and puts each sealed file in place under its rootfs path:
/// opened with `key`, or without one as a locked entry carrying its listed sha256. A key
/// that does not open a file is one finding for the bundle.
pub(super) fn open_sealed(bundle: &mut Bundle, key: Option<&SealKey>) {
    let Some(listing) = bundle.text(seal::SEALED_SUMS) else {
        return;
    };
    for line in listing.split_terminator('\n') {
        match crate::digest::parse_sha256sum_line(line) {
            Some((sha, path)) if seal::sealed_path(path).is_some() => {
                bundle.sealed.insert(path.to_string(), sha.to_string());
            }
            _ => bundle.findings.push((
                seal::SEALED_SUMS.into(),
                format!("malformed line `{}`", shown(line)),
            )),
        }
    }
    let mut refused = Vec::new();
    for (path, sha) in bundle.sealed.clone() {
        let name = seal::sealed_path(&path).expect("checked above");
        let Some(enc) = bundle.files.get(&name) else {
            bundle.findings.push((
                shown(&name),
                "is listed in SHA256SUMS.sealed but missing".into(),
            ));
            continue;
        };
        if bundle.files.contains_key(&path) {
            bundle.findings.push((
                shown(&path),
                "is in the bundle both sealed and in clear".into(),
            ));
            continue;
        }
        let opened = key.and_then(|k| enc.bytes.as_deref().and_then(|b| k.unseal(b)));
        if key.is_some() && opened.is_none() {
            refused.push(name);
        }
        let entry = match opened {
            Some(plain) => Entry {
                mode: enc.mode,
                sha256: hex::encode(Sha256::digest(&plain)),
                bytes: Some(plain),
                locked: false,
            },
            None => Entry {
                mode: enc.mode,
                sha256: sha,
                bytes: None,
                locked: true,
            },
        };
        bundle.files.insert(path, entry);
    }
    if let Some(first) = refused.first() {
        bundle.findings.push((
            shown(first),
            format!(
                "the seal key does not open it{}: it is not this node's key",
                match refused.len() {
                    1 => String::new(),
                    n => format!(" nor {} other sealed files", n - 1),
                }
            ),
        ));
    }
}

pub(super) fn load(path: &Path) -> Result<Bundle> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let location = format!("`{}`", escape(&path.display().to_string()));
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::input(
            location.clone(),
            format!("is not a readable .tar.gz ({})", shown(&e.to_string())),
        )
        .with_hint("the file is truncated or damaged: copy it again from the build host")
    };
    let over = |what: &str, limit: &str| {
        Error::input(
            location.clone(),
            format!("holds {what} over verify's limit of {limit}"),
        )
        .with_hint("no bundle kube-bundle builds comes near it: this archive is not one of them")
    };
    let file =
        fs_err::File::open(path).map_err(|e| Error::input(location.clone(), e.to_string()))?;
    // Bundles may be multi-member gzip: GzDecoder would stop after the first member.
    let mut archive = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
    // Raw entries: the tar crate would read GNU long names and PAX headers whole, at
    // whatever size the archive claims. They are read here, within limits.
    let entries = archive.entries().map_err(|e| unreadable(&e))?.raw(true);
    let mut top: Option<String> = None;
    let mut files = BTreeMap::new();
    let mut findings = Vec::new();
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax_path: Option<Vec<u8>> = None;
    let mut total = 0u64;
    for (count, entry) in entries.enumerate() {
        if count >= ENTRY_LIMIT {
            return Err(over("a number of entries", &ENTRY_LIMIT.to_string()));
        }
        let mut entry = entry.map_err(|e| unreadable(&e))?;
        let kind = entry.header().entry_type();
        let size = entry.header().entry_size().map_err(|e| unreadable(&e))?;
        if kind.is_gnu_longname() || kind.is_gnu_longlink() {
            if size > NAME_LIMIT {
                return Err(over("a member name", &bytes(NAME_LIMIT)));
            }
            let mut text = read_small(&mut entry, size).map_err(|e| unreadable(&e))?;
            while text.last() == Some(&0) {
                text.pop();
            }
            // A long link name belongs to a link, which is a finding on its own.
            if kind.is_gnu_longname() {
                long_name = Some(text);
            }
            continue;
        }
        if kind.is_pax_global_extensions() {
            // Global headers change how every later member reads, and readers disagree on
            // them (the tar crate lists one as an entry, GNU tar applies it): kube-bundle
            // never writes one, and GNU tar and bsdtar repacking a bundle write none.
            findings.push((
                shown(&String::from_utf8_lossy(&entry.path_bytes())),
                "is a PAX global header, which kube-bundle never writes".to_string(),
            ));
            continue;
        }
        if kind.is_pax_local_extensions() {
            if size > PAX_LIMIT {
                return Err(over("a PAX header", &bytes(PAX_LIMIT)));
            }
            let text = read_small(&mut entry, size).map_err(|e| unreadable(&e))?;
            let global = kind.is_pax_global_extensions();
            for record in tar::PaxExtensions::new(&text) {
                let record = record.map_err(|e| unreadable(&e))?;
                let key = record.key().map_err(|e| unreadable(&e))?;
                match key {
                    "path" if !global => {
                        if record.value_bytes().len() as u64 > NAME_LIMIT {
                            return Err(over("a member name", &bytes(NAME_LIMIT)));
                        }
                        pax_path = Some(record.value_bytes().to_vec());
                    }
                    // Times and owners change nothing verify or install.sh relies on.
                    "mtime" | "atime" | "ctime" | "uid" | "gid" | "uname" | "gname" => {}
                    // A size or name record changes how tar reads what follows, and
                    // extended attributes would reach the node: kube-bundle writes none.
                    _ => {
                        return Err(Error::input(
                            location.clone(),
                            format!(
                                "holds a PAX {} record `{}`, which kube-bundle never writes",
                                if global { "global" } else { "extended" },
                                shown(key)
                            ),
                        ))
                    }
                }
            }
            continue;
        }
        let raw_name = match (pax_path.take(), long_name.take()) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => entry.path_bytes().into_owned(),
        };
        let full = String::from_utf8_lossy(&raw_name).into_owned();
        total += full.len() as u64;
        // `./top/x`, `top//x` and `top/./x` unpack to the same place as `top/x`.
        let parts: Vec<&str> = full
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let Some((&first, rest)) = parts.split_first() else {
            if full.starts_with('/') {
                findings.push((shown(&full), "is an absolute path".to_string()));
            }
            continue;
        };
        if full.starts_with('/') || first == ".." || rest.contains(&"..") {
            findings.push((
                shown(&full),
                "leaves the bundle's top folder (an absolute path or `..`)".to_string(),
            ));
            continue;
        }
        match &top {
            None => top = Some(first.to_string()),
            Some(t) if t != first => {
                return Err(Error::input(
                    location.clone(),
                    format!(
                        "holds more than one top folder (`{}` and `{}`)",
                        shown(t),
                        shown(first)
                    ),
                ))
            }
            Some(_) => {}
        }
        let rest = rest.join("/");
        let what = if rest.is_empty() { first } else { &rest };
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            findings.push((
                shown(what),
                format!(
                    "is {}, but a bundle holds only regular files and folders",
                    kind_name(kind)
                ),
            ));
            continue;
        }
        if rest.is_empty() {
            findings.push((shown(first), "is a file in place of the top folder".into()));
            continue;
        }
        let mode = entry.header().mode().map_err(|e| unreadable(&e))?;
        if mode & !0o777 != 0 {
            findings.push((
                shown(&rest),
                format!("has mode {mode:o}, with bits beyond rwx (setuid, setgid, sticky or a file type)"),
            ));
        }
        let mut hasher = Sha256::new();
        let mut kept = (size <= KEEP_LIMIT).then(Vec::new);
        if kept.is_some() {
            total += size;
            if total > TOTAL_LIMIT {
                return Err(over(
                    "files to check (names and files up to 4 MiB, together)",
                    &bytes(TOTAL_LIMIT),
                ));
            }
        }
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buf).map_err(|e| unreadable(&e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&buf[..n]);
            }
        }
        if files.contains_key(&rest) {
            findings.push((
                shown(&rest),
                "appears more than once in the archive; tar keeps the last".into(),
            ));
        }
        files.insert(
            rest,
            Entry {
                mode,
                sha256: hex::encode(hasher.finalize()),
                bytes: kept,
                locked: false,
            },
        );
    }
    if long_name.is_some() || pax_path.is_some() {
        return Err(unreadable(&"it ends with a long name that names no member"));
    }
    let Some(top) = top else {
        return Err(Error::input(location, "is an empty archive"));
    };
    Ok(Bundle {
        name: escape(&name),
        top,
        files,
        findings,
        sealed: BTreeMap::new(),
    })
}

/// Reads the whole of a small entry whose size was checked against a limit.
pub(super) fn read_small(entry: &mut impl Read, size: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(size as usize);
    entry.take(size).read_to_end(&mut data)?;
    Ok(data)
}

pub(super) fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "a symbolic link".into(),
        tar::EntryType::Link => "a hard link".into(),
        tar::EntryType::Char => "a character device".into(),
        tar::EntryType::Block => "a block device".into(),
        tar::EntryType::Fifo => "a FIFO".into(),
        tar::EntryType::GNUSparse => "a sparse file".into(),
        other => format!(
            "an entry of type `{}`",
            escape(&(other.as_byte() as char).to_string())
        ),
    }
}

pub(super) fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}
