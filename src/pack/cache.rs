//! The member cache: gzip members of binaries kept between builds, so a rebuild with
//! unchanged binaries copies members instead of deflating them again. It owns the cache
//! folder's layout, the check of an entry before reuse and the atomic write of a new
//! one; it knows nothing about plans or tarballs and never holds private files.
//!
//! An entry is named after the binary's sha256 and size and the compression settings
//! (level, block size, member framing, kube-bundle's version and a fingerprint of what
//! the deflate library writes), through a keyed hash, and ends with an HMAC-SHA256 tag
//! over its name and bytes. The key is derived from the CA's private key, which never
//! leaves pki/: a writer of the cache folder can delete or damage entries (the next build
//! finds the tag wrong and compresses again) but cannot make one a build accepts.
//! Entries are written to a temporary file and renamed into place, so a concurrent or
//! killed build never leaves a torn entry under an entry's name.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_lc_rs::hmac;

/// First bytes of every entry; a new layout gets a new one.
const MAGIC: &[u8; 16] = b"kube-bundle-mc1\n";
/// Bytes before the member: the magic and the member's length.
const HEAD: u64 = MAGIC.len() as u64 + 8;
/// Bytes after the member: the HMAC-SHA256 tag.
const TAG: u64 = 32;
const SUFFIX: &str = ".member";
const TEMP_PREFIX: &str = ".tmp-";
/// Entries no build used for this long are removed.
const UNUSED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Temporary files older than this were left by a killed build.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The folder a build uses when neither `--cache-dir` nor `--no-cache` is given:
/// `$KUBE_BUNDLE_CACHE`, else `$XDG_CACHE_HOME/kube-bundle`, else
/// `$HOME/.cache/kube-bundle`; none when none of them is set.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("KUBE_BUNDLE_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(Path::new(&dir).join("kube-bundle"));
    }
    var("HOME").map(|home| Path::new(&home).join(".cache/kube-bundle"))
}

/// What looking an entry up found.
pub enum Lookup {
    /// The entry passed its check; its member was copied out.
    Hit { member_len: u64 },
    /// No entry.
    Miss,
    /// An entry that failed its check, and why.
    Damaged { entry: PathBuf, why: String },
}

pub struct MemberCache {
    dir: PathBuf,
    key: hmac::Key,
    settings: String,
}

impl MemberCache {
    /// Opens (making it, 0700) the cache folder `dir`. `secret` is private material the
    /// key is derived from; `settings` names everything besides the binary's bytes that
    /// the member depends on.
    pub fn open(dir: &Path, secret: &[u8], settings: &str) -> io::Result<MemberCache> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let derive = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let key = hmac::sign(&derive, b"kube-bundle member cache key v1");
        Ok(MemberCache {
            dir: dir.to_path_buf(),
            key: hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()),
            settings: settings.to_string(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry of a binary with this sha256 and size.
    pub fn entry(&self, sha256: &str, size: u64) -> PathBuf {
        let name = hmac::sign(
            &self.key,
            format!("{}\0{sha256}\0{size}", self.settings).as_bytes(),
        );
        self.dir
            .join(format!("{}{SUFFIX}", hex::encode(&name.as_ref()[..20])))
    }

    /// Copies the member of the binary with this sha256 and size into `out` when its
    /// entry passes its check. After a `Damaged` answer `out` holds garbage. Only a
    /// failure to write `out` is an error: an entry that cannot be read is damaged.
    pub fn lookup(&self, sha256: &str, size: u64, out: &mut dyn Write) -> io::Result<Lookup> {
        let path = self.entry(sha256, size);
        #[allow(clippy::disallowed_methods)]
        // a missing entry is a miss and any other error a damaged entry
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lookup::Miss),
            Err(e) => {
                return Ok(Lookup::Damaged {
                    entry: path,
                    why: e.to_string(),
                })
            }
        };
        let mut wrote = Ok(());
        let checked = self.check(&path, &file, &mut |bytes| {
            if wrote.is_ok() {
                wrote = out.write_all(bytes);
            }
        });
        wrote?;
        match checked {
            Ok(member_len) => {
                // Used now: pruning goes by the last use.
                let _ = file.set_modified(SystemTime::now());
                Ok(Lookup::Hit { member_len })
            }
            Err(why) => Ok(Lookup::Damaged { entry: path, why }),
        }
    }

    /// Reads the entry `file` at `path`, passing its member's bytes to `sink`, and
    /// returns the member's length, or why the entry is no good.
    fn check(
        &self,
        path: &Path,
        file: &std::fs::File,
        sink: &mut dyn FnMut(&[u8]),
    ) -> std::result::Result<u64, String> {
        let meta = file.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        let mut reader = io::BufReader::with_capacity(1 << 20, file);
        let mut head = [0u8; HEAD as usize];
        if reader.read_exact(&mut head).is_err() || head[..MAGIC.len()] != MAGIC[..] {
            return Err("no entry header".into());
        }
        let member_len = u64::from_le_bytes(head[MAGIC.len()..].try_into().expect("8 bytes"));
        let want = HEAD.saturating_add(member_len).saturating_add(TAG);
        if want != meta.len() {
            return Err(format!(
                "{} bytes, not the {want} its header announces",
                meta.len()
            ));
        }
        let mut mac = self.context(path, &head);
        let mut left = member_len;
        let mut buf = vec![0u8; 1 << 20];
        let mut tag = [0u8; TAG as usize];
        let read = (|| -> io::Result<()> {
            while left > 0 {
                let n = (buf.len() as u64).min(left) as usize;
                reader.read_exact(&mut buf[..n])?;
                mac.update(&buf[..n]);
                sink(&buf[..n]);
                left -= n as u64;
            }
            reader.read_exact(&mut tag)
        })();
        read.map_err(|e| format!("reading it: {e}"))?;
        if !same(mac.sign().as_ref(), &tag) {
            return Err("its tag does not match its bytes".into());
        }
        Ok(member_len)
    }

    /// Stores `member_len` bytes of `member` (read from its start) as the entry of the
    /// binary with this sha256 and size, replacing any entry there.
    pub fn store(
        &self,
        sha256: &str,
        size: u64,
        member: &mut dyn Read,
        member_len: u64,
    ) -> io::Result<()> {
        let path = self.entry(sha256, size);
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.dir)?;
        let mut head = [0u8; HEAD as usize];
        head[..MAGIC.len()].copy_from_slice(MAGIC);
        head[MAGIC.len()..].copy_from_slice(&member_len.to_le_bytes());
        let mut mac = self.context(&path, &head);
        {
            let mut w = io::BufWriter::with_capacity(1 << 20, tmp.as_file());
            w.write_all(&head)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut left = member_len;
            while left > 0 {
                let want = (buf.len() as u64).min(left) as usize;
                member.read_exact(&mut buf[..want])?;
                mac.update(&buf[..want]);
                w.write_all(&buf[..want])?;
                left -= want as u64;
            }
            w.write_all(mac.sign().as_ref())?;
            w.flush()?;
        }
        // No fsync: an entry a crash cut short fails its check and is written again.
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes entries no build used for 30 days and temporary files killed builds
    /// left. Best effort: a file another build removes first is no error.
    pub fn prune(&self) {
        #[allow(clippy::disallowed_methods)] // best effort: pruning fails quietly
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let limit = if name.ends_with(SUFFIX) && !name.starts_with('.') {
                UNUSED_FOR
            } else if name.starts_with(TEMP_PREFIX) {
                STALE_TEMP
            } else {
                continue;
            };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > limit);
            if old {
                #[allow(clippy::disallowed_methods)]
                // best effort: another build may remove it first
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The tag covers the entry's name (so an entry cannot stand in for another), its
    /// header and its member.
    fn context(&self, path: &Path, head: &[u8]) -> hmac::Context {
        let mut mac = hmac::Context::with_key(&self.key);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(head);
        mac
    }
}

/// Compares in time that does not depend on where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    fn cache(dir: &Path) -> MemberCache {
        MemberCache::open(dir, b"secret", "level 6").unwrap()
    }

    /// Whether `c` has no entry for the binary `stored` stores.
    fn misses(c: &MemberCache) -> bool {
        matches!(c.lookup("ab", 7, &mut Vec::new()).unwrap(), Lookup::Miss)
    }

    fn stored(c: &MemberCache, member: &[u8]) -> PathBuf {
        c.store("ab", 7, &mut &member[..], member.len() as u64)
            .unwrap();
        c.entry("ab", 7)
    }

    #[test]
    fn a_stored_member_comes_back_as_it_went_in() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        let member: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        stored(&c, &member);
        let mut out = Vec::new();
        match c.lookup("ab", 7, &mut out).unwrap() {
            Lookup::Hit { member_len } => assert_eq!(member_len, member.len() as u64),
            _ => panic!("not a hit"),
        }
        assert!(out == member);
        // Nothing left beside the entry, and the folder is private.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(matches!(
            c.lookup("ab", 8, &mut Vec::new()).unwrap(),
            Lookup::Miss
        ));
    }

    #[test]
    fn other_settings_or_another_key_find_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        stored(&c, b"member");
        assert!(!misses(&c));
        let other = MemberCache::open(dir.path(), b"secret", "level 9").unwrap();
        assert!(misses(&other));
        let other = MemberCache::open(dir.path(), b"other", "level 6").unwrap();
        assert!(misses(&other));
    }

    #[test]
    fn a_damaged_truncated_or_moved_entry_fails_its_check() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        let member = vec![7u8; 5000];
        let path = stored(&c, &member);
        let good = std::fs::read(&path).unwrap();
        let damaged = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            match c.lookup("ab", 7, &mut Vec::new()).unwrap() {
                Lookup::Damaged { why, .. } => why,
                _ => panic!("accepted"),
            }
        };
        let mut flipped = good.clone();
        flipped[HEAD as usize + 100] ^= 1;
        assert!(damaged(&flipped).contains("tag"));
        assert!(damaged(&good[..good.len() - 1]).contains("announces"));
        assert!(damaged(&good[..10]).contains("header"));
        assert!(damaged(b"").contains("header"));
        // A valid entry of another binary, renamed to this one's name.
        c.store("cd", 7, &mut &member[..], member.len() as u64)
            .unwrap();
        std::fs::rename(c.entry("cd", 7), &path).unwrap();
        assert!(matches!(
            c.lookup("ab", 7, &mut Vec::new()).unwrap(),
            Lookup::Damaged { .. }
        ));
    }

    #[test]
    fn pruning_removes_only_old_entries_and_stale_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path());
        let path = stored(&c, b"member");
        let old = dir.path().join("old.member");
        let tmp = dir.path().join(".tmp-killed");
        let other = dir.path().join("notes.txt");
        for p in [&old, &tmp, &other] {
            std::fs::write(p, "x").unwrap();
            let f = std::fs::File::options().write(true).open(p).unwrap();
            f.set_modified(SystemTime::now() - UNUSED_FOR - Duration::from_secs(60))
                .unwrap();
        }
        c.prune();
        assert!(path.exists() && other.exists());
        assert!(!old.exists() && !tmp.exists());
    }
}
