//! Helpers of the root package's tests that need the package itself: golden fixtures,
//! generated corpora, the three forms side by side, Vector unit tests, real-Vector runs. The HTTP stand-ins
//! live in the `amplitude-posthog-test-support` crate (`tests/support/`), shared with `sink/`.

pub mod corpus;
pub mod fixtures;
pub mod forms;
pub mod vector;
pub mod vector_tests;
