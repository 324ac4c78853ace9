//! Gzip members for large shared files. A file every bundle carries (the binary) is
//! compressed once per build into one standalone gzip member holding the file's bytes and
//! their tar padding; each tarball then closes its own member before that entry's data,
//! copies the shared member, and opens a new one. gzip, GNU and busybox tar and Python's
//! tarfile read concatenated members as one stream, so each tarball stays a standard
//! `.tar.gz`.
//!
//! The member is deflated in fixed-size blocks on several threads: each block is an
//! independent raw deflate stream ended by a sync flush (the last one by a final block),
//! so the blocks concatenate into one valid deflate stream whose bytes do not depend on
//! the thread count. Memory is bounded by a few blocks, whatever the file's size. This
//! module knows nothing about plans or bundles.

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest, Sha256};

use crate::parallel;

/// Bytes per independent deflate block. Large enough that restarting the dictionary
/// costs well under 0.1 % in size, small enough that a batch of them stays a few MiB.
pub const BLOCK: usize = 1 << 20;

/// Blocks read per batch and per thread: enough to keep every thread busy between reads.
const BLOCKS_PER_THREAD: usize = 2;

/// gzip header without name or time, OS Unix, as `gzip -n` and the tarball's own
/// members write it; XFL says "fastest" at level 1 and "best" at level 9.
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        1 => 4,
        9 => 2,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]
}

/// What compressing a shared file found out about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compressed {
    /// Length of the source data, padding excluded.
    pub size: u64,
    /// sha256 of the source data, padding excluded.
    pub sha256: String,
    /// Length of the gzip member written.
    pub member_len: u64,
}

/// Reads exactly `size` bytes from `src`, appends `pad` zero bytes and writes the result
/// to `out` as one gzip member at `level`, deflating on `threads` threads. `progress` gets
/// the number of source bytes done so far after every batch.
pub fn compress(
    src: &mut dyn Read,
    size: u64,
    pad: usize,
    out: &mut dyn Write,
    level: u32,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Compressed> {
    let total = size + pad as u64;
    let blocks = total.div_ceil(BLOCK as u64);
    let threads = threads.max(1);
    let batch_blocks = threads * BLOCKS_PER_THREAD;
    let mut sha = Sha256::new();
    let mut crc = Crc::new();
    let mut written = 0u64;
    let mut buf = Vec::with_capacity(batch_blocks * BLOCK);
    let mut read_so_far = 0u64;
    let mut block_no = 0u64;

    out.write_all(&header(level))?;
    written += 10;
    while block_no < blocks {
        // Fill one batch: source bytes first, then the zero padding.
        buf.clear();
        let want = ((blocks - block_no) as usize).min(batch_blocks) * BLOCK;
        let want = (want as u64).min(total - block_no * BLOCK as u64) as usize;
        let from_src = ((size - read_so_far) as usize).min(want);
        buf.resize(from_src, 0);
        src.read_exact(&mut buf[..from_src]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(e.kind(), "the file shrank while it was being read")
            } else {
                e
            }
        })?;
        sha.update(&buf);
        read_so_far += from_src as u64;
        buf.resize(want, 0);
        crc.update(&buf);

        let chunks: Vec<&[u8]> = buf.chunks(BLOCK).collect();
        let last_batch = block_no + chunks.len() as u64 == blocks;
        let deflated = deflate_parallel(&chunks, last_batch, level, threads);
        for d in &deflated {
            out.write_all(d)?;
            written += d.len() as u64;
        }
        block_no += chunks.len() as u64;
        progress(read_so_far);
    }
    if total == 0 {
        // No block was read: the member still needs its final (empty) deflate block.
        let d = deflate_block(&[], true, level);
        out.write_all(&d)?;
        written += d.len() as u64;
    }
    let mut probe = [0u8; 1];
    if src.read(&mut probe)? != 0 {
        return Err(io::Error::other("the file grew while it was being read"));
    }
    out.write_all(&crc.sum().to_le_bytes())?;
    // ISIZE is the length modulo 2^32 (RFC 1952).
    out.write_all(&(total as u32).to_le_bytes())?;
    written += 8;
    Ok(Compressed {
        size,
        sha256: hex::encode(sha.finalize()),
        member_len: written,
    })
}

/// Deflates each chunk on its own; the last chunk of the last batch gets the final block.
fn deflate_parallel(
    chunks: &[&[u8]],
    last_batch: bool,
    level: u32,
    threads: usize,
) -> Vec<Vec<u8>> {
    parallel::map(chunks, threads, |i, chunk| {
        deflate_block(chunk, last_batch && i == chunks.len() - 1, level)
    })
}

/// One independent raw deflate stream for `data`: ended by a sync flush (an empty stored
/// block, so the next stream starts on a byte boundary), or by a final block when `last`.
pub fn deflate_block(data: &[u8], last: bool, level: u32) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let done_in = c.total_in() as usize;
        let status = c
            .compress_vec(&data[done_in..], &mut out, flush)
            .expect("deflate of in-memory data cannot fail");
        let all_in = c.total_in() as usize == data.len();
        // A flush is complete once the compressor returns with output room to spare.
        let finished = if last {
            status == Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if finished {
            return out;
        }
        out.reserve(out.capacity().max(64 << 10));
    }
}

/// A [`Read`] over part of a file through positioned reads, so several threads can copy
/// the same member at once without sharing a file offset.
pub struct ReadAt<'a> {
    file: &'a std::fs::File,
    pos: u64,
    end: u64,
}

impl<'a> ReadAt<'a> {
    pub fn new(file: &'a std::fs::File, len: u64) -> Self {
        ReadAt {
            file,
            pos: 0,
            end: len,
        }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let room = ((self.end - self.pos) as usize).min(buf.len());
        if room == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..room], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the compressed member is shorter than written",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test's I/O error panics; nobody reads it
mod tests {
    use super::*;
    use flate2::read::{GzDecoder, MultiGzDecoder};

    /// Binary-like data: runs of structure with noise, compressible about 3:1 as
    /// executables are.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x9e37_79b9;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 < 4 {
                    (i / 64) as u8
                } else {
                    (x & 0x0f) as u8
                }
            })
            .collect()
    }

    fn member(data: &[u8], pad: usize, threads: usize) -> (Vec<u8>, Compressed) {
        let mut out = Vec::new();
        let c = compress(
            &mut &data[..],
            data.len() as u64,
            pad,
            &mut out,
            6,
            threads,
            &mut |_| {},
        )
        .unwrap();
        (out, c)
    }

    #[test]
    fn a_member_decodes_to_the_data_and_its_padding() {
        for len in [0, 1, 511, 512, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 123] {
            let data = sample(len);
            let pad = (512 - len % 512) % 512;
            let (bytes, c) = member(&data, pad, 2);
            assert_eq!(c.member_len, bytes.len() as u64, "len {len}");
            assert_eq!(c.size, len as u64);
            assert_eq!(c.sha256, hex::encode(Sha256::digest(&data)));
            // One member: a single-member decoder reads all of it.
            let mut plain = Vec::new();
            GzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .unwrap_or_else(|e| panic!("len {len}: {e}"));
            let mut want = data.clone();
            want.resize(len + pad, 0);
            assert!(plain == want, "len {len}: decoded bytes differ");
        }
    }

    #[test]
    fn the_bytes_do_not_depend_on_the_thread_count() {
        let data = sample(7 * BLOCK + 4000);
        let one = member(&data, 96, 1).0;
        for threads in [2, 3, 8] {
            assert!(member(&data, 96, threads).0 == one, "{threads} threads");
        }
    }

    #[test]
    fn members_concatenate_into_one_stream() {
        let a = member(b"first ", 0, 2).0;
        let b = member(&sample(BLOCK + 9), 0, 2).0;
        let c = member(b" last", 0, 2).0;
        let all = [a, b, c].concat();
        let mut plain = Vec::new();
        MultiGzDecoder::new(&all[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(
            plain,
            [&b"first "[..], &sample(BLOCK + 9), b" last"].concat()
        );
    }

    #[test]
    fn the_header_carries_no_time_or_name() {
        let (bytes, _) = member(b"x", 0, 1);
        assert_eq!(bytes[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        let len = bytes.len();
        assert_eq!(bytes[len - 4..], 1u32.to_le_bytes(), "ISIZE");
    }

    #[test]
    fn a_file_that_is_shorter_than_announced_is_an_error() {
        let data = sample(100);
        let mut out = Vec::new();
        let err = compress(&mut &data[..], 200, 0, &mut out, 6, 2, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
        let err = compress(&mut &data[..], 50, 0, &mut out, 6, 2, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("grew"), "{err}");
    }

    #[test]
    fn read_at_reads_exactly_the_member() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"0123456789").unwrap();
        let mut got = String::new();
        ReadAt::new(&f, 4).read_to_string(&mut got).unwrap();
        assert_eq!(got, "0123");
        let mut short = ReadAt::new(&f, 20);
        assert!(short.read_to_end(&mut Vec::new()).is_err());
    }
}
