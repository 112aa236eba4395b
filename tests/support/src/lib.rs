//! Test doubles shared by the root package's and the sidecar's tests: real HTTP servers on
//! 127.0.0.1 that implement PostHog's capture contract and Amplitude's Export API as
//! documented in `docs/POSTHOG_AND_AMPLITUDE.md`, and the processes under test (Vector, the
//! identity sidecar). Test-support code only: nothing in the
//! product depends on this crate.

pub mod amplitude_export;
pub mod fast_capture;
pub mod loopback;
pub mod posthog_capture;
pub mod posthog_persons;
pub mod posthog_query;
pub mod process;
