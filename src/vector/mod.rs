//! Everything this program knows about Vector, the other carrier of a migration: the shipped
//! `vector.toml` runs the VRL program in a real Vector, which reads the export with its `file`
//! source and sends to PostHog and to the identity sidecar.
//!
//! - [`prepare`]: export files checked before Vector reads them (a missing final newline,
//!   which Vector never reads, added; rows too long for Vector, which it discards without a
//!   trace, set aside as dead letters).
//! - [`resume`]: crash recovery for the gzip files Vector was in the middle of, from its
//!   [`checkpoints`].
//! - [`report`]: the report of a Vector-carried migration, from the export counted with the
//!   native mapping, Vector's dead letters and the sidecar's database.
//! - `migrate --engine vector` ([`run`]): a supervisor that keeps a workspace of its own
//!   under `<state>/vector/` (`workspace`, the config rendered by `config`), runs the sidecar
//!   in this process (`sidecar`), starts and stops Vector (`process`), watches its
//!   checkpoints against the export as the file source sees it (`file_source`) and its
//!   internal metrics (`metrics`) until the end or a stall (`end`), and counts the summary
//!   (`supervisor`); why it failed is a [`VectorError`] (`error`).
//!
//! `migrate`'s own engine, which needs no Vector, is [`crate::migrate`]; a refused row's
//! record has the one shape of [`crate::dead_letter`], which is Vector's.

pub mod checkpoints;
pub mod config;
mod end;
mod error;
mod file_source;
mod metrics;
pub mod prepare;
mod process;
pub mod report;
pub mod resume;
mod sidecar;
mod supervisor;
mod workspace;

pub use error::VectorError;
pub use process::find_vector;
pub use supervisor::run;

/// The id of the file source in the shipped `vector.toml` (its checkpoints live under
/// `<data_dir>/<id>/`).
pub const SOURCE_ID: &str = "amplitude";
