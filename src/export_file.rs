//! One export file as Vector's `file` source will read it: decompressed to its end (every gzip
//! member), its rows counted, and whether its last line ends with a newline — Vector never
//! reads a last line without one, so that row would be lost silently. A missing newline is
//! added as a gzip member of its own holding `\n` (Vector reads multi-member gzip), which
//! leaves every original byte in place.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

/// What decompressing a gzip export file to its end found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzipFacts {
    /// Bytes after decompression (Vector's checkpoint positions count these).
    pub decompressed_bytes: u64,
    /// Lines, a last line without a newline included.
    pub rows: u64,
    /// Whether the content is empty or ends with `\n`.
    pub ends_with_newline: bool,
}

/// Decompresses every member of the gzip stream in `file` (from its start) and counts.
pub fn scan(file: &mut (impl Read + Seek)) -> io::Result<GzipFacts> {
    file.rewind()?;
    let mut decoder = MultiGzDecoder::new(BufReader::new(file));
    let mut buffer = vec![0u8; 256 * 1024];
    let (mut bytes, mut newlines, mut last) = (0u64, 0u64, None);
    loop {
        let read = decoder.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        bytes += read as u64;
        newlines += count_newlines(&buffer[..read]);
        last = Some(buffer[read - 1]);
    }
    let ends_with_newline = last.is_none_or(|byte| byte == b'\n');
    Ok(GzipFacts {
        decompressed_bytes: bytes,
        rows: newlines + u64::from(!ends_with_newline),
        ends_with_newline,
    })
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|byte| **byte == b'\n').count() as u64
}

/// A complete gzip member whose content is one `\n`.
pub fn newline_member() -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(b"\n")?;
    encoder.finish()
}

/// Appends a `\n` member to the gzip file at `path` and flushes it to disk.
pub fn append_newline_member(path: &Path) -> io::Result<()> {
    let member = newline_member()?;
    let mut file = OpenOptions::new().append(true).open(path)?;
    file.write_all(&member)?;
    file.sync_all()
}

/// Scans the gzip file at `path`.
pub fn scan_path(path: &Path) -> io::Result<GzipFacts> {
    scan(&mut File::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(members: &[&[u8]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for member in members {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(member).expect("write");
            bytes.extend(encoder.finish().expect("gzip"));
        }
        bytes
    }

    #[test]
    fn counts_every_member_and_an_unterminated_last_line() {
        let facts = scan(&mut io::Cursor::new(gzip(&[b"a\nb\n", b"c"]))).expect("gzip");
        assert_eq!(
            facts,
            GzipFacts {
                decompressed_bytes: 5,
                rows: 3,
                ends_with_newline: false
            }
        );
        let facts = scan(&mut io::Cursor::new(gzip(&[b"a\n", b""]))).expect("gzip");
        assert_eq!((facts.rows, facts.ends_with_newline), (1, true));
        let empty = scan(&mut io::Cursor::new(gzip(&[b""]))).expect("gzip");
        assert_eq!((empty.rows, empty.ends_with_newline), (0, true));
    }

    #[test]
    fn a_newline_member_completes_the_last_line_and_keeps_the_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.json.gz");
        let original = gzip(&[b"{\"a\":1}\n{\"b\":2}"]);
        std::fs::write(&path, &original).expect("write");
        append_newline_member(&path).expect("append");
        let bytes = std::fs::read(&path).expect("read");
        assert!(bytes.starts_with(&original));
        let facts = scan_path(&path).expect("gzip");
        assert_eq!((facts.rows, facts.ends_with_newline), (2, true));
        let mut text = String::new();
        MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .expect("decompresses");
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n");
    }

    #[test]
    fn a_truncated_file_is_an_error() {
        let bytes = gzip(&[b"a\nb\n"]);
        assert!(scan(&mut io::Cursor::new(&bytes[..bytes.len() - 4])).is_err());
    }
}
