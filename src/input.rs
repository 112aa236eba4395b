//! Reads Amplitude export lines from files (plain, gzip, multi-member gzip) or stdin.
//!
//! Gzip is detected by its magic bytes, as Vector's `file` source does, so a `.json.gz` and a
//! `.json` are read alike whatever their names say. Lines are raw bytes: invalid UTF-8 is the
//! mapping's business (`invalid_json`), not the reader's.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

/// Where a line came from, for error messages and dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    Stdin,
    File(PathBuf),
    /// A member of a zip (Amplitude's Export API layout), read without extracting it.
    ZipMember {
        zip: PathBuf,
        member: String,
    },
}

impl InputSource {
    /// `-` means standard input.
    pub fn from_arg(arg: &Path) -> Self {
        if arg == Path::new("-") {
            InputSource::Stdin
        } else {
            InputSource::File(arg.to_path_buf())
        }
    }

    pub fn display_name(&self) -> String {
        match self {
            InputSource::Stdin => "<stdin>".to_owned(),
            InputSource::File(path) => path.display().to_string(),
            InputSource::ZipMember { zip, member } => format!("{}!{member}", zip.display()),
        }
    }
}

/// The export inputs `args` name, in order: a file as given; a directory expanded to the
/// export files under it (`*.json.gz`, `*.json`, and the `*.json.gz` members of `*.zip`), in
/// export order; a zip to its `*.json.gz` members, in export order too (see
/// [`crate::export_order`]). `-` is standard input.
pub fn discover(args: &[PathBuf]) -> Result<Vec<InputSource>, InputError> {
    let (inputs, mut unreadable) = discover_reporting(args)?;
    match unreadable.is_empty() {
        true => Ok(inputs),
        false => Err(unreadable.remove(0)),
    }
}

/// [`discover`], but an entry under a directory that cannot be read (a dangling link, a link
/// loop) is returned beside the inputs, for the caller to report, instead of ending it all.
pub fn discover_reporting(
    args: &[PathBuf],
) -> Result<(Vec<InputSource>, Vec<InputError>), InputError> {
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    for arg in args {
        if arg == Path::new("-") {
            inputs.push(InputSource::Stdin);
            continue;
        }
        let metadata = std::fs::metadata(arg).map_err(|error| InputError::Open {
            path: arg.display().to_string(),
            error,
        })?;
        let files = if metadata.is_dir() {
            let open_error = |error: crate::fs::WalkError| InputError::Open {
                path: error.path.display().to_string(),
                error: error.source,
            };
            let (files, unreadable) = crate::fs::walk_files_reporting(arg).map_err(open_error)?;
            problems.extend(unreadable.into_iter().map(open_error));
            files
                .into_iter()
                .filter(|path| is_export_file(path) || is_zip(path))
                .collect()
        } else {
            vec![arg.clone()]
        };
        for file in files {
            if is_zip(&file) {
                let mut members =
                    crate::zip_member::list(&file).map_err(|error| InputError::Open {
                        path: file.display().to_string(),
                        error,
                    })?;
                members.sort_by(|a, b| crate::export_order::compare_names(&a.name, &b.name));
                inputs.extend(members.into_iter().map(|member| InputSource::ZipMember {
                    zip: file.clone(),
                    member: member.name,
                }));
            } else {
                inputs.push(InputSource::File(file));
            }
        }
    }
    Ok((inputs, problems))
}

/// Amplitude's `*.json.gz` files, and plain `*.json` files.
fn is_export_file(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".json.gz")
        || path
            .extension()
            .is_some_and(|extension| extension == "json")
}

fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("zip"))
}

/// A failure to read an input, naming the input and what to do about it. The I/O error is
/// both in the message and the source (the command line tells it once).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open {path}: {error}")]
    Open {
        path: String,
        #[source]
        error: io::Error,
    },
    #[error("cannot read {path} after line {line}: {error}")]
    Read {
        path: String,
        line: u64,
        #[source]
        error: io::Error,
    },
}

/// The longest row read whole: four times PostHog's 900 000-byte event limit. A longer line
/// can never become an event PostHog takes (docs/MAPPING_DECISIONS.md), so it is refused as
/// `event_too_large` while it is read — never held whole: memory stays flat whatever the input.
pub const MAX_LINE_BYTES: usize = 4 * 900_000;

/// How much of an over-long line is kept, for its dead letter (which says it was cut).
pub const OVERSIZED_KEPT_BYTES: usize = 64 * 1024;

/// One line read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Its 1-based number in the input (after decompression).
    pub number: u64,
    /// For a line longer than [`MAX_LINE_BYTES`]: its whole length in bytes. The buffer then
    /// holds only its first [`OVERSIZED_KEPT_BYTES`].
    pub oversized: Option<u64>,
}

/// Iterates over the lines of one input, without their `\n`. A last line without a
/// newline is still a line (Vector would not read it; the exporter and generator never
/// write one, see docs/ARCHITECTURE.md). Blank lines (nothing but whitespace) are not rows:
/// they are passed over, and still counted in the line numbers.
pub struct LineReader {
    source: InputSource,
    reader: Box<dyn BufRead + Send>,
    line_number: u64,
}

impl LineReader {
    pub fn open(source: InputSource) -> Result<Self, InputError> {
        let raw: Box<dyn Read + Send> = match &source {
            InputSource::Stdin => Box::new(io::stdin()),
            InputSource::File(path) => {
                Box::new(File::open(path).map_err(|error| InputError::Open {
                    path: path.display().to_string(),
                    error,
                })?)
            }
            InputSource::ZipMember { zip, member } => crate::zip_member::open(zip, member)
                .map_err(|error| InputError::Open {
                    path: source.display_name(),
                    error,
                })?,
        };
        Self::from_read(source, raw)
    }

    /// Reads lines from `raw` (plain or gzip, told by its first bytes), named `source`.
    pub fn from_read(source: InputSource, raw: Box<dyn Read + Send>) -> Result<Self, InputError> {
        let read_error = |error| InputError::Read {
            path: source.display_name(),
            line: 0,
            error,
        };
        let mut buffered = BufReader::with_capacity(256 * 1024, raw);
        let is_gzip = buffered
            .fill_buf()
            .map(crate::fs::is_gzip)
            .map_err(read_error)?;
        let mut reader: Box<dyn BufRead + Send> = if is_gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        let head = reader.fill_buf().map_err(read_error)?;
        if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
            return Err(read_error(io::Error::new(
                io::ErrorKind::InvalidData,
                "it is UTF-16 text; Amplitude exports are UTF-8 JSON lines (convert it: iconv -f UTF-16 -t UTF-8)",
            )));
        }
        Ok(LineReader {
            source,
            reader,
            line_number: 0,
        })
    }

    pub fn source(&self) -> &InputSource {
        &self.source
    }

    /// Reads the next row into `buffer` (cleared first), passing over blank lines. `None` at
    /// the end of the input.
    pub fn next_line(&mut self, buffer: &mut Vec<u8>) -> Result<Option<Line>, InputError> {
        loop {
            let Some(line) = self.read_line(buffer)? else {
                return Ok(None);
            };
            if line.oversized.is_some() || !buffer.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line));
            }
        }
    }

    /// Reads one line, keeping at most [`MAX_LINE_BYTES`] of it (a longer one: its first
    /// [`OVERSIZED_KEPT_BYTES`], the rest read and dropped).
    fn read_line(&mut self, buffer: &mut Vec<u8>) -> Result<Option<Line>, InputError> {
        buffer.clear();
        let mut length: u64 = 0;
        let mut oversized = false;
        let mut ended = false;
        while !ended {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(InputError::Read {
                        path: self.source.display_name(),
                        line: self.line_number,
                        error,
                    });
                }
            };
            if available.is_empty() {
                break;
            }
            let (part, used) = match memchr::memchr(b'\n', available) {
                Some(at) => {
                    ended = true;
                    (&available[..at], at + 1)
                }
                None => (available, available.len()),
            };
            length += part.len() as u64;
            if !oversized && buffer.len() + part.len() > MAX_LINE_BYTES {
                oversized = true;
                let room = OVERSIZED_KEPT_BYTES.saturating_sub(buffer.len());
                buffer.extend_from_slice(&part[..room.min(part.len())]);
                buffer.truncate(OVERSIZED_KEPT_BYTES);
            } else if !oversized {
                buffer.extend_from_slice(part);
            }
            self.reader.consume(used);
        }
        if !ended && length == 0 {
            return Ok(None);
        }
        self.line_number += 1;
        Ok(Some(Line {
            number: self.line_number,
            oversized: oversized.then_some(length),
        }))
    }
}
