//! Amplitude → PostHog migration: the mapping in its forms and the tools that operate a migration.
//!
//! - [`vrl_engine`]: the shipped VRL program run through the `vrl` crate, as Vector runs it.
//! - [`wasm_engine`]: the same mapping compiled to WebAssembly, run by wasmtime.
//! - [`dead_letter`]: the one shape of a refused row's record, shared with Vector.
//! - [`engine`]: every form of the mapping behind one interface.
//! - [`map_run`]: the `map` operation (inputs → events, dead letters, summary).
//! - [`map_count`]: the export counted with the native mapping, by day and outcome.
//! - [`migrate`]: the whole migration in one process: state, delivery, progress, summary.
//! - [`zip_member`]: the members of an Export API zip, read in place.
//! - [`export_file`]: one export file decompressed, counted, its last newline checked.
//! - [`export`]: the Export API downloader and the zip unpacker.
//! - [`export_order`]: the order an export is read in (Amplitude's names by date, hour, partition).
//! - [`fs`]: crash-safe writes, gzip detection, directory walks (one home each).
//! - [`generator`]: realistic, deterministic Amplitude exports.
//! - [`vector`]: everything about Vector: `migrate --engine vector`'s supervisor, the report of
//!   a Vector-carried migration, `prepare` and `resume` for its file source.

pub mod counts;
pub mod dead_letter;
pub mod engine;
pub mod export;
pub mod export_file;
pub mod export_order;
pub mod fs;
pub mod generator;
pub mod input;
pub mod map_count;
pub mod map_run;
pub mod migrate;
pub mod report;
pub mod summary;
pub mod vector;
pub mod verify;
pub mod vrl_engine;
pub mod wasm_engine;
pub mod zip_member;

pub use amplitude_posthog_transform::outcome;
pub use amplitude_posthog_transform::{MappingOutcome, RejectReason, SkipReason};
