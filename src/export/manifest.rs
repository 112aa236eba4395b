//! The export manifest (`<out>/.amplitude-export.json`): what each window became, so that
//! re-running the same command skips finished windows and finishes the rest.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::plan::ExportWindow;
use super::unpack::ExtractedFile;

pub const MANIFEST_FILE: &str = ".amplitude-export.json";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum WindowStatus {
    /// Downloaded and extracted.
    Done {
        files: Vec<ExtractedFile>,
        rows: u64,
        bytes: u64,
    },
    /// The API had no data for it (404).
    Empty,
    /// Too large for one request: its two halves are separate windows.
    Split { halves: [ExportWindow; 2] },
    /// A single hour still too large: needs Amplitude's S3 export.
    TooLarge,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub windows: BTreeMap<String, WindowRecord>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WindowRecord {
    pub window: ExportWindow,
    #[serde(flatten)]
    pub status: WindowStatus,
}

/// A manifest that is not one, named by its path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
struct Unparsable {
    path: PathBuf,
    source: serde_json::Error,
}

impl Manifest {
    pub fn path(out_dir: &Path) -> PathBuf {
        out_dir.join(MANIFEST_FILE)
    }

    pub fn load(out_dir: &Path) -> io::Result<Manifest> {
        match fs::read(Self::path(out_dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| {
                let path = Self::path(out_dir);
                io::Error::new(io::ErrorKind::InvalidData, Unparsable { path, source })
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(error) => Err(error),
        }
    }

    /// Written atomically (flushed, renamed, directory flushed): a crash never leaves half a
    /// manifest.
    pub fn save(&self, out_dir: &Path) -> io::Result<()> {
        crate::fs::write_atomically(
            &Self::path(out_dir),
            &serde_json::to_vec_pretty(self).map_err(io::Error::other)?,
        )
    }

    pub fn status(&self, window: &ExportWindow) -> Option<&WindowStatus> {
        self.windows.get(&window.key()).map(|record| &record.status)
    }

    pub fn record(&mut self, window: ExportWindow, status: WindowStatus) {
        self.windows
            .insert(window.key(), WindowRecord { window, status });
    }
}
