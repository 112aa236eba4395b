//! `posthog-identity-sidecar`: the identity sidecar of the Amplitude → PostHog migration.
//!
//! Vector sends it identity records (the mapping's, `docs/MAPPING.md` §3.1, routed by
//! `vector.toml`); it stores each device → user pair once in SQLite, and each person's values
//! by event time; once every record is in (a release: `flush`, or the end of `migrate`) it
//! emits one `$create_alias` per device (to its earliest user) and one `$set` per person, and
//! `$groupidentify` whenever a group's properties change — each once, even across crashes.
//!
//! - [`records`]: the intake record format and its parser.
//! - [`persons`]: the rule of persons by event time and their final update.
//! - [`store`]: the SQLite outbox (schema migrations, dedup, conflicts, groups, counters).
//! - [`intake`]: the HTTP server Vector talks to, and `/status`, `/metrics`.
//! - [`posthog`]: the PostHog events of the outbox's entries (sent with the `posthog_client`
//!   crate, which `migrate` shares).
//! - [`sender`]: drains the outbox to PostHog.
//! - [`status`]: Prometheus rendering.

pub mod intake;
pub mod persons;
pub mod posthog;
pub mod records;
pub mod sender;
pub mod status;
pub mod store;
