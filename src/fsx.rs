//! Writing files and folders the same way everywhere: folders no wider than 0755 (0700
//! where they hold keys) whatever the umask, and files through a temporary file renamed
//! into place, so an interrupted run never leaves half a file.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `dir` if it is missing and narrows it to 0700: it holds keys.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        create_dirs(dir)?;
    }
    restrict_dir(dir)
}

/// Creates `dir` and its missing parents no wider than 0755, whatever the umask (a umask
/// of 000 would make them world-writable, and a folder holding pki/ or dist/ replaceable
/// by any local user). A narrower umask narrows them further.
pub fn create_dirs(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| Error::from(e).doing("creating", dir))
}

pub fn restrict_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes through a temporary file in the same folder and renames it into place, so a
/// crash never leaves half a key.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let tmp: PathBuf = path.with_extension(format!("tmp-{}", std::process::id()));
    // Only one build at a time holds pki/ and the output folder, so a temporary file of
    // this name is a leftover of a killed process that had the same id.
    if tmp.exists() {
        fs_err::remove_file(&tmp)?;
    }
    let written = (|| -> Result<()> {
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs_err::rename(&tmp, path)?;
        Ok(())
    })();
    if written.is_err() {
        // A half-written key is no use to anyone; a full disk must not keep it.
        let _ = fs_err::remove_file(&tmp);
    }
    written
}

pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes, 0o600)
}

pub fn write_public(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, bytes, 0o644)
}
