//! Test support shared by the integration tests (fixtures, generated corpora).
#![allow(dead_code)]

pub mod amplitude_export;
pub mod corpus;
pub mod fixtures;
pub mod forms;
pub mod loopback;
pub mod posthog_capture;
pub mod vector_tests;
