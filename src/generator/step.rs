//! What one step of a simulated session emits: the session's count moves on, and the device
//! logs a user in (`$identify`), marks the session's start or end, or emits its next event
//! (installing the app on its first). The row is built from it by [`super::rows`].

use rand::Rng;
use serde_json::{Value, json};

use super::Intent;
use super::events::choose_event;
use super::population::{Device, Session};
use super::text::pick;
use crate::outcome::SkipReason;

/// The event a session step emits, before it becomes a row.
pub(super) struct StepEvent {
    pub event_type: String,
    pub properties: Value,
    /// A user logs in on the device with this `$identify`.
    pub login: bool,
    pub intent: Intent,
}

/// Counts one more event in the session: whether it is the session's first and its last.
pub(super) fn count_step(session: &mut Session) -> (bool, bool) {
    let first = session.emitted == 0;
    session.emitted += 1;
    session.event_counter += 1;
    let last = session.emitted == session.planned;
    (first, last)
}

/// The step's event: a login (`$identify`), a session marker, or the device's next event.
pub(super) fn step_event(
    rng: &mut impl Rng,
    device: &mut Device,
    session: &Session,
    first: bool,
    last: bool,
) -> StepEvent {
    let can_log_in = device.current_user.is_none() && device.next_owner < device.owners.len();
    if can_log_in && !first && rng.random_bool(0.15) {
        let user = device.owners[device.next_owner];
        device.next_owner += 1;
        device.current_user = Some(user);
        StepEvent {
            event_type: "$identify".to_owned(),
            properties: json!({}),
            login: true,
            intent: Intent::Map,
        }
    } else if session.with_markers && first {
        session_marker(
            rng,
            &[
                "session_start",
                "session_start",
                "[Amplitude] Start Session",
            ],
        )
    } else if session.with_markers && last {
        session_marker(
            rng,
            &["session_end", "session_end", "[Amplitude] End Session"],
        )
    } else {
        let (event_type, properties) =
            choose_event(rng, device.source, !device.installed, session.event_counter);
        device.installed = true;
        StepEvent {
            event_type,
            properties,
            login: false,
            intent: Intent::Map,
        }
    }
}

/// A session start or end marker, one of `names`: the mapping skips it.
fn session_marker(rng: &mut impl Rng, names: &[&str]) -> StepEvent {
    StepEvent {
        event_type: pick(rng, names).to_owned(),
        properties: json!({}),
        login: false,
        intent: Intent::Skip(SkipReason::SessionMarker),
    }
}
