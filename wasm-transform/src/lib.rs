//! The Amplitude → PostHog mapping (`MAPPING.md`) as a pure function of one input line: no
//! I/O, no clock, no randomness. The same crate is the native form (an `rlib`) and, built for
//! `wasm32-unknown-unknown`, the WebAssembly module (see `README.md` for its ABI).
//!
//! One module per rule of the contract:
//! [`row`] §1 input, [`identity`] §3, [`time`] and [`uuid`] §4, [`properties`] §5/§5.1/§5.3
//! renames/§5.4, [`platform`] §5.2, [`autocapture`] §5.3, [`session`] §6, [`event_name`] §7,
//! [`person`] §8, [`groups`] §9, [`event`] the output and its size limit, [`mapping`] the
//! order in which the rules apply.

pub mod autocapture;
pub mod contract;
pub mod event;
pub mod event_name;
pub mod groups;
pub mod identity;
pub mod mapping;
pub mod outcome;
pub mod person;
pub mod platform;
pub mod properties;
pub mod row;
pub mod session;
pub mod time;
pub mod uuid;

#[cfg(target_arch = "wasm32")]
mod abi;

pub use event::PostHogEvent;
pub use mapping::{map_line, map_row};
pub use outcome::{MappingOutcome, RejectReason, SkipReason};
pub use row::AmplitudeRow;

/// Version of the WebAssembly ABI (`abi_version()` export); bumped on any incompatible change.
pub const ABI_VERSION: u32 = 1;
