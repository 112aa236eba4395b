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
        }
    }
}

/// A failure to read an input, naming the input and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open {path}: {source}")]
    Open { path: String, source: io::Error },
    #[error("cannot read {path} after line {line}: {source}")]
    Read {
        path: String,
        line: u64,
        source: io::Error,
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
                    source: error,
                })?)
            }
        };
        let mut buffered = BufReader::with_capacity(256 * 1024, raw);
        let is_gzip = buffered
            .fill_buf()
            .map(crate::fs::is_gzip)
            .map_err(|error| InputError::Read {
                path: source.display_name(),
                line: 0,
                source: error,
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
                source: error,
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
