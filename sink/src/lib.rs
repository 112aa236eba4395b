//! `posthog-identity-sidecar`: the identity sidecar of the Amplitude → PostHog migration.
//!
//! Vector sends it identity records (the mapping's, `docs/MAPPING.md` §3.1, routed by
//! `vector.toml`); it stores each device → user pair
//! once in SQLite and emits one `$create_alias` per pair (and `$groupidentify` when a group's
//! properties change) to PostHog, exactly once per pair even across crashes.
//!
//! - [`records`]: the intake record format and its parser.
//! - [`store`]: the SQLite outbox (schema migrations, dedup, conflicts, groups, counters).
//! - [`intake`]: the HTTP server Vector talks to, and `/status`, `/metrics`.
//! - [`posthog`]: the PostHog events of the outbox's entries (sent with the `posthog_client`
//!   crate, which `migrate` shares).
//! - [`sender`]: drains the outbox to PostHog.
//! - [`status`]: Prometheus rendering.

pub mod intake;
pub mod posthog;
pub mod records;
pub mod sender;
pub mod status;
pub mod store;
