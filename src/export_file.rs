//! One export file as Vector's `file` source will read it: decompressed to its end (every gzip
//! member), its rows counted, whether its last line ends with a newline — Vector never reads a
//! last line without one, so that row would be lost silently — and its lines too long for
//! Vector, which Vector discards without a trace (docs/ARCHITECTURE.md, "Read in Vector's
//! source"). A missing newline is added as a gzip member of its own holding `\n` (Vector reads
//! multi-member gzip), which leaves every original byte in place.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::input::{MAX_LINE_BYTES, OVERSIZED_KEPT_BYTES};

/// What reading an export file to its end found (after decompression).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFacts {
    /// Bytes after decompression (Vector's checkpoint positions count these).
    pub decompressed_bytes: u64,
    /// Lines, a last line without a newline included.
    pub rows: u64,
    /// Whether the content is empty or ends with `\n`.
    pub ends_with_newline: bool,
    /// The length of the last line when it has no newline (0 otherwise).
    pub unterminated_bytes: u64,
    /// Lines longer than [`MAX_LINE_BYTES`], which Vector's file source discards (its
    /// `max_line_bytes` is the same limit), a last line without a newline included.
    pub too_long: u64,
    /// Where Vector's checkpoint of this file stands once every line Vector reads from it is
    /// delivered: the end of its last line that ends with a newline and is not too long (0 if
    /// none). Vector checkpoints the end of each line it delivered, and a line it discards
    /// delivers nothing, so a file whose last lines are too long never has a checkpoint at
    /// its end.
    pub checkpoint_end: u64,
}

impl FileFacts {
    /// The facts once a `\n` is appended to a file whose last line has none.
    pub fn with_final_newline(self) -> FileFacts {
        if self.ends_with_newline {
            return self;
        }
        let decompressed_bytes = self.decompressed_bytes + 1;
        FileFacts {
            decompressed_bytes,
            ends_with_newline: true,
            unterminated_bytes: 0,
            checkpoint_end: if self.unterminated_bytes > MAX_LINE_BYTES as u64 {
                self.checkpoint_end
            } else {
                decompressed_bytes
            },
            ..self
        }
    }
}

/// A line too long for Vector, met while scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLongRow<'a> {
    /// Its 1-based line number (after decompression).
    pub line: u64,
    /// Its whole length in bytes, without the newline.
    pub row_bytes: u64,
    /// Its first [`OVERSIZED_KEPT_BYTES`], as the embedded engine keeps them.
    pub start: &'a [u8],
}

/// Decompresses every member of the gzip stream in `file` (from its start) and counts.
pub fn scan(file: &mut (impl Read + Seek)) -> io::Result<FileFacts> {
    file.rewind()?;
    scan_lines(MultiGzDecoder::new(BufReader::new(file)), None)
}

/// Reads `content` (already decompressed) to its end and counts its lines; each line too
/// long for Vector is handed to `on_too_long`, if given.
pub fn scan_lines(
    mut content: impl Read,
    on_too_long: Option<&mut dyn FnMut(TooLongRow)>,
) -> io::Result<FileFacts> {
    let mut lines = LineScan::new(on_too_long);
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = match content.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        lines.feed(&buffer[..read]);
    }
    Ok(lines.finish())
}

/// The file at `path` read as Vector's file source reads it — gzip (every member) when it
/// starts with gzip's magic bytes, whatever its name, else as it is — and counted; each line
/// too long for Vector is handed to `on_too_long`, if given.
pub fn scan_as_vector_reads(
    path: &Path,
    on_too_long: Option<&mut dyn FnMut(TooLongRow)>,
) -> io::Result<FileFacts> {
    let file = BufReader::new(File::open(path)?);
    if crate::fs::is_gzip_file(path)? {
        scan_lines(MultiGzDecoder::new(file), on_too_long)
    } else {
        scan_lines(file, on_too_long)
    }
}

/// The line being read and what the lines before it came to.
struct LineScan<'a> {
    /// Offset where the current line starts.
    line_start: u64,
    /// Bytes of the current line so far, without its newline.
    line_bytes: u64,
    /// Its first [`OVERSIZED_KEPT_BYTES`] (only when someone wants the too-long rows).
    kept: Vec<u8>,
    lines: u64,
    too_long: u64,
    checkpoint_end: u64,
    on_too_long: Option<&'a mut dyn FnMut(TooLongRow)>,
}

impl<'a> LineScan<'a> {
    fn new(on_too_long: Option<&'a mut dyn FnMut(TooLongRow)>) -> LineScan<'a> {
        LineScan {
            line_start: 0,
            line_bytes: 0,
            kept: Vec::new(),
            lines: 0,
            too_long: 0,
            checkpoint_end: 0,
            on_too_long,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(at) = memchr::memchr(b'\n', bytes) {
            self.extend(&bytes[..at]);
            self.end_line(true);
            bytes = &bytes[at + 1..];
        }
        self.extend(bytes);
    }

    fn extend(&mut self, part: &[u8]) {
        self.line_bytes += part.len() as u64;
        if self.on_too_long.is_some() && self.kept.len() < OVERSIZED_KEPT_BYTES {
            let room = OVERSIZED_KEPT_BYTES - self.kept.len();
            self.kept.extend_from_slice(&part[..room.min(part.len())]);
        }
    }

    /// Ends the current line: with its newline, or as the last line without one.
    fn end_line(&mut self, newline: bool) {
        self.lines += 1;
        let end = self.line_start + self.line_bytes + u64::from(newline);
        // Vector's rule (`read_until_with_max_size`): a line whose bytes, newline excluded,
        // exceed `max_line_bytes` is discarded whole; so is the embedded reader's.
        if self.line_bytes > MAX_LINE_BYTES as u64 {
            self.too_long += 1;
            if let Some(on_too_long) = self.on_too_long.as_mut() {
                on_too_long(TooLongRow {
                    line: self.lines,
                    row_bytes: self.line_bytes,
                    start: &self.kept,
                });
            }
        } else if newline {
            self.checkpoint_end = end;
        }
        self.line_start = end;
        self.line_bytes = 0;
        self.kept.clear();
    }

    fn finish(mut self) -> FileFacts {
        let unterminated_bytes = self.line_bytes;
        if unterminated_bytes > 0 {
            self.end_line(false);
        }
        FileFacts {
            decompressed_bytes: self.line_start,
            rows: self.lines,
            ends_with_newline: unterminated_bytes == 0,
            unterminated_bytes,
            too_long: self.too_long,
            checkpoint_end: self.checkpoint_end,
        }
    }
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

/// Appends the missing final `\n` to the file at `path` as Vector reads it: a `\n` member
/// to a gzip file, a `\n` byte to a plain one; flushed to disk.
pub fn append_final_newline(path: &Path) -> io::Result<()> {
    if crate::fs::is_gzip_file(path)? {
        return append_newline_member(path);
    }
    let mut file = OpenOptions::new().append(true).open(path)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Scans the gzip file at `path`.
pub fn scan_path(path: &Path) -> io::Result<FileFacts> {
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
            FileFacts {
                decompressed_bytes: 5,
                rows: 3,
                ends_with_newline: false,
                unterminated_bytes: 1,
                too_long: 0,
                checkpoint_end: 4,
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

    /// A row of `bytes` bytes: `{"event_type":"x","blob":"aaa…"}`.
    fn row(bytes: usize) -> Vec<u8> {
        let mut row = br#"{"event_type":"x","blob":""#.to_vec();
        row.resize(bytes - 2, b'a');
        row.extend_from_slice(br#""}"#);
        row
    }

    /// Scans `content`, with every too-long row's (line, length, kept bytes).
    fn too_long_rows(content: &[u8]) -> (FileFacts, Vec<(u64, u64, usize)>) {
        let mut seen = Vec::new();
        let facts = scan_lines(
            content,
            Some(&mut |row: TooLongRow| {
                assert!(row.start.starts_with(br#"{"event_type":"x""#));
                seen.push((row.line, row.row_bytes, row.start.len()));
            }),
        )
        .expect("scans");
        (facts, seen)
    }

    #[test]
    fn a_row_longer_than_vectors_limit_is_handed_over_with_its_line_and_start() {
        let longest = row(MAX_LINE_BYTES);
        let too_long = row(MAX_LINE_BYTES + 1);
        let content = [&b"{}"[..], &too_long, &longest, b""].join(&b'\n');
        let (facts, seen) = too_long_rows(&content);
        assert_eq!(seen, [(2, MAX_LINE_BYTES as u64 + 1, OVERSIZED_KEPT_BYTES)]);
        assert_eq!(facts.too_long, 1);
        assert_eq!(facts.rows, 3);
        // The last line is read, so the checkpoint reaches the file's end.
        assert_eq!(facts.checkpoint_end, content.len() as u64);
        assert_eq!(facts.decompressed_bytes, content.len() as u64);
    }

    #[test]
    fn a_file_ending_in_rows_too_long_for_vector_is_checkpointed_before_them() {
        let content = [&b"{}"[..], &row(9_000_000), &row(MAX_LINE_BYTES + 1), b""].join(&b'\n');
        let (facts, seen) = too_long_rows(&content);
        assert_eq!(seen.iter().map(|row| row.0).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(facts.checkpoint_end, 3, "the end of `{{}}\\n`");
        assert_eq!(facts.decompressed_bytes, content.len() as u64);

        // One row, too long: no line of it is ever checkpointed.
        let single = [row(9_000_000), Vec::new()].join(&b'\n');
        let (facts, seen) = too_long_rows(&single);
        assert_eq!(seen, [(1, 9_000_000, OVERSIZED_KEPT_BYTES)]);
        assert_eq!((facts.rows, facts.checkpoint_end), (1, 0));
    }

    #[test]
    fn an_unterminated_last_line_counts_once_its_newline_is_added() {
        let (facts, seen) = too_long_rows(b"{}\n{\"event_type\":\"x\"}");
        assert!(seen.is_empty());
        assert_eq!((facts.unterminated_bytes, facts.checkpoint_end), (18, 3));
        let completed = facts.with_final_newline();
        assert_eq!(
            (completed.decompressed_bytes, completed.checkpoint_end),
            (22, 22)
        );
        assert!(completed.ends_with_newline);

        // Too long and without a newline: handed over, and never checkpointed.
        let content = [&b"{}"[..], &row(MAX_LINE_BYTES + 5)].join(&b'\n');
        let (facts, seen) = too_long_rows(&content);
        assert_eq!(seen, [(2, MAX_LINE_BYTES as u64 + 5, OVERSIZED_KEPT_BYTES)]);
        assert_eq!(facts.with_final_newline().checkpoint_end, 3);
    }

    #[test]
    fn a_plain_file_gets_a_newline_byte_and_a_gzip_file_a_member() {
        let dir = tempfile::tempdir().expect("tmp");
        let plain = dir.path().join("a.json");
        std::fs::write(&plain, b"{}").expect("write");
        append_final_newline(&plain).expect("append");
        assert_eq!(std::fs::read(&plain).expect("read"), b"{}\n");
        let facts = scan_as_vector_reads(&plain, None).expect("scans");
        assert_eq!((facts.rows, facts.checkpoint_end), (1, 3));

        let gzipped = dir.path().join("b.json");
        std::fs::write(&gzipped, gzip(&[b"{}"])).expect("write");
        append_final_newline(&gzipped).expect("append");
        let facts = scan_as_vector_reads(&gzipped, None).expect("scans");
        assert_eq!((facts.decompressed_bytes, facts.checkpoint_end), (3, 3));
    }
}
