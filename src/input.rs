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
/// path order; a zip to its `*.json.gz` members, in the zip's order. `-` is standard input.
pub fn discover(args: &[PathBuf]) -> Result<Vec<InputSource>, InputError> {
    let mut inputs = Vec::new();
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
            crate::fs::walk_files(arg)
                .map_err(|error| InputError::Open {
                    path: error.path.display().to_string(),
                    error: error.source,
                })?
                .into_iter()
                .filter(|path| is_export_file(path) || is_zip(path))
                .collect()
        } else {
            vec![arg.clone()]
        };
        for file in files {
            if is_zip(&file) {
                let members = crate::zip_member::list(&file).map_err(|error| InputError::Open {
                    path: file.display().to_string(),
                    error,
                })?;
                inputs.extend(members.into_iter().map(|member| InputSource::ZipMember {
                    zip: file.clone(),
                    member: member.name,
                }));
            } else {
                inputs.push(InputSource::File(file));
            }
        }
    }
    Ok(inputs)
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

/// A failure to read an input, naming the input and what to do about it.
#[derive(Debug, thiserror::Error)]
/// (The I/O error is part of the message, not a separate source, so it is told once.)
pub enum InputError {
    #[error("cannot open {path}: {error}")]
    Open { path: String, error: io::Error },
    #[error("cannot read {path} after line {line}: {error}")]
    Read {
        path: String,
        line: u64,
        error: io::Error,
    },
}

/// Iterates over the lines of one input, without their `\n`. A last line without a
/// newline is still a line (Vector would not read it; the exporter and generator never
/// write one, see docs/ARCHITECTURE.md).
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
        let mut buffered = BufReader::with_capacity(256 * 1024, raw);
        let is_gzip = buffered
            .fill_buf()
            .map(crate::fs::is_gzip)
            .map_err(|error| InputError::Read {
                path: source.display_name(),
                line: 0,
                error,
            })?;
        let reader: Box<dyn BufRead + Send> = if is_gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        Ok(LineReader {
            source,
            reader,
            line_number: 0,
        })
    }

    pub fn source(&self) -> &InputSource {
        &self.source
    }

    /// Reads the next line into `buffer` (cleared first). Returns its 1-based number, or
    /// `None` at the end of the input.
    pub fn next_line(&mut self, buffer: &mut Vec<u8>) -> Result<Option<u64>, InputError> {
        buffer.clear();
        let read = self
            .reader
            .read_until(b'\n', buffer)
            .map_err(|error| InputError::Read {
                path: self.source.display_name(),
                line: self.line_number,
                error,
            })?;
        if read == 0 {
            return Ok(None);
        }
        if buffer.last() == Some(&b'\n') {
            buffer.pop();
        }
        self.line_number += 1;
        Ok(Some(self.line_number))
    }
}
