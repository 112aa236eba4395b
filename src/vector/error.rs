//! Why `migrate --engine vector` failed: one variant per failure, each keeping the error that
//! caused it (the message names it too, as the embedded engine's do).

use std::io;
use std::path::PathBuf;

use super::prepare::PrepareError;
use super::resume::ResumeError;
use crate::fs::WalkError;
use crate::migrate::MigrateError;
use crate::report::ReportError;

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// What the steps shared with the embedded engine fail with: the state's lock, its files,
    /// the identity store.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// An input Vector's file source cannot read (a zip, neither a directory nor an export
    /// file): told for the user, no error underneath.
    #[error("{0}")]
    Input(String),
    /// Vector exited while the migration ran: told for the user with where its log is.
    #[error("{0}")]
    StoppedByItself(String),
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot prepare the export: {0}")]
    Prepare(#[source] PrepareError),
    #[error("resume failed: {0}")]
    Resume(#[source] ResumeError),
    /// A step of this process's own setup (the runtime, a loopback port for the metrics).
    #[error("{what}: {source}")]
    Setup {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The in-process sidecar's intake cannot listen on loopback.
    #[error("the identity sidecar cannot listen on loopback: {0}")]
    SidecarListen(#[source] io::Error),
    #[error("cannot start {}: {source}", path.display())]
    Start {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl From<WalkError> for VectorError {
    fn from(error: WalkError) -> Self {
        VectorError::Unreadable {
            path: error.path,
            source: error.source,
        }
    }
}
