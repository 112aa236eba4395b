//! PostHog's `/batch/` endpoint as every part of this project talks to it — `migrate`'s event
//! senders and the identity sidecar's sender alike:
//!
//! - [`answer`]: the one place that decides what an answer means ([`Delivery`]);
//! - [`client`]: the request (`historical_migration: true`, gzip) and its answer;
//! - [`deliver`]: a batch sent until PostHog took or refused each event (retry, split,
//!   bisect, stop);
//! - [`refusals`]: whether PostHog refusing whole requests is bad data or a bad setup;
//! - [`rate`]: events per second at most.
//!
//! PostHog's side of the contract is written down in `docs/POSTHOG_AND_AMPLITUDE.md`.

pub mod answer;
pub mod client;
pub mod deliver;
pub mod rate;
pub mod refusals;

pub use answer::Delivery;
pub use client::Client;
pub use deliver::{Refused, Undelivered, deliver};
