//! Generated rows mapped to PostHog events, for tests that need realistic events.

use amplitude_posthog::MappingOutcome;
use amplitude_posthog::generator::{Generator, GeneratorConfig};

/// The events of `config`'s rows, through the native mapping.
pub fn mapped_events(config: GeneratorConfig) -> Vec<String> {
    Generator::new(config)
        .filter_map(
            |row| match amplitude_posthog_transform::map_line(&row.line) {
                MappingOutcome::Events(events) => Some(events),
                _ => None,
            },
        )
        .flatten()
        .collect()
}
