//! The Amplitude → PostHog mapping (`docs/MAPPING.md`) as a pure function of one input line:
//! no I/O, no clock, no randomness. The same crate is the native form (an `rlib`) and, built
//! for `wasm32-unknown-unknown`, the WebAssembly module (see `README.md` for its ABI).
//!
//! One private module per rule of the contract:
//! `row` §1 input, `identity` §3, `time` and `uuid` §4, `properties` §5/§5.1/§5.3
//! renames/§5.4, `platform` §5.2, `autocapture` §5.3, `session` §6, `event_name` §7,
//! `person` §8, `groups` §9, `identity_records` §3.1 (what the identity sidecar learns from a
//! row), `event` the output and its size limit, `nesting` Vector's nesting budget, `mapping`
//! the order in which the rules apply.
//!
//! The public API is small on purpose: [`map_line`] / [`map_row`] and their [`outcome`],
//! [`map_line_with_identities`] (a [`MappedRow`]: the outcome, the row's
//! [`IdentityRecord`]s and its day), and the few rules other components must apply exactly as
//! the mapping does — [`usable_id`] (the identity sidecar keeps only ids the mapping would
//! keep), [`uuid_v5`] (the contract's deterministic ids), [`event_timestamp`] and [`utc_day`]
//! (a row's time and its day), [`without_person_properties`] (the live mode of §8, a step
//! after the mapping), and [`REFUSED_IDS`].

mod autocapture;
mod contract;
mod event;
mod event_name;
mod groups;
mod identity;
mod identity_records;
mod live;
mod mapping;
mod nesting;
pub mod outcome;
mod person;
mod platform;
mod properties;
mod row;
mod session;
mod time;
mod uuid;

#[cfg(target_arch = "wasm32")]
mod abi;

pub use contract::REFUSED_IDS;
pub use event::PostHogEvent;
pub use identity::usable_id;
pub use identity_records::IdentityRecord;
pub use live::without_person_properties;
pub use mapping::{MappedRow, map_line, map_line_with_identities, map_row};
pub use outcome::{MappingOutcome, RejectReason, SkipReason};
pub use row::AmplitudeRow;
pub use time::{event_timestamp, utc_day};
pub use uuid::uuid_v5;

/// Version of the WebAssembly ABI (`abi_version()` export); bumped on any change to the
/// exports or their results. 2 added `transform_full` (README.md, "ABI"); 3 added the person
/// record to its identity records.
pub const ABI_VERSION: u32 = 3;
