//! Amplitude → PostHog migration: the mapping in its forms and the tools that operate a migration.

pub mod outcome;
pub mod vrl_engine;

pub use outcome::{MappingOutcome, RejectReason, SkipReason};
