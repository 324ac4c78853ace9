//! SHA-256 in one place: of bytes and files, as the registry's `sha256:` digests, and the
//! `SHA256SUMS` format (`sha256sum -c`'s) that bundles, `dist/` and sealed listings use,
//! written and read by one pair of functions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::Result;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `sha256:<hex>`, the OCI digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Lowercase hex SHA-256 and size of the file at `path`, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
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

/// `sha256sum -c` format, sorted by path.
pub fn sha256sums(sums: &BTreeMap<String, String>) -> String {
    sums.iter()
        .map(|(path, sha)| format!("{sha}  {path}\n"))
        .collect()
}

/// One line as [`sha256sums`] writes it: `<64 lowercase hex>  <name>` (no `*` binary-mode
/// marker, no CR, no NUL), as (sha256, name); none for anything else.
pub fn parse_sha256sum_line(line: &str) -> Option<(&str, &str)> {
    match line.split_once("  ") {
        Some((sha, name))
            if sha.len() == 64
                && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                && !name.is_empty()
                && !name.contains(['\r', '\0']) =>
        {
            Some((sha, name))
        }
        _ => None,
    }
}

/// Reads what [`sha256sums`] writes, every line as [`parse_sha256sum_line`] takes it (no
/// blank line). Returns (sha256, name) pairs in order, or the number and text of the first
/// line that is not one.
pub fn parse_sha256sums(text: &str) -> std::result::Result<Vec<(&str, &str)>, (usize, &str)> {
    // Not `lines()`, which would take a CRLF line for a plain one.
    text.split_terminator('\n')
        .enumerate()
        .map(|(i, line)| parse_sha256sum_line(line).ok_or((i + 1, line)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;

    #[test]
    fn sha256sums_read_back_only_as_written() {
        let a = "a".repeat(64);
        let text = format!("{a}  x.tar.gz\n{a}  ca.pem\n");
        assert_eq!(
            parse_sha256sums(&text).unwrap(),
            vec![(a.as_str(), "x.tar.gz"), (a.as_str(), "ca.pem")]
        );
        for (bad, line) in [
            (format!("{a}  x\n{a} *y\n"), 2),
            (format!("{a}  x\n\n"), 2),
            (format!("{}  x\n", "A".repeat(64)), 1),
            (format!("{}  x\n", "a".repeat(63)), 1),
            (format!("{a}  x\r\n"), 1),
            (format!("{a}  \n"), 1),
            ("# comment\n".to_string(), 1),
        ] {
            assert_eq!(parse_sha256sums(&bad).unwrap_err().0, line, "{bad:?}");
        }
    }

    #[test]
    fn sha256sums_is_sorted_sha256sum_format() {
        let sums = BTreeMap::from([
            ("b".to_string(), "22".to_string()),
            ("a".to_string(), "11".to_string()),
        ]);
        assert_eq!(sha256sums(&sums), "11  a\n22  b\n");
    }

    #[test]
    fn a_file_hashes_as_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes = vec![7u8; (1 << 20) + 3];
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            (sha256_hex(&bytes), bytes.len() as u64)
        );
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
