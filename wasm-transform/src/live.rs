//! §8, live mode: in a project that already receives live events, migrated events carry no
//! person properties (their `$set` and `$set_once` are removed after the mapping); the row's
//! person record (§3.1) keeps them, so the final update per person fills in what live data
//! lacks. Every host applies this one step after whichever form of the mapping it runs.

use serde_json::Value;

/// The event (compact JSON, keys sorted) without `properties.$set` and
/// `properties.$set_once`; an event without them comes back as it was.
pub fn without_person_properties(event: String) -> String {
    if !event.contains("\"$set") {
        return event;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(&event) else {
        return event;
    };
    let Some(properties) = value.get_mut("properties").and_then(Value::as_object_mut) else {
        return event;
    };
    let set = properties.remove("$set");
    let set_once = properties.remove("$set_once");
    if set.is_none() && set_once.is_none() {
        return event;
    }
    serde_json::to_string(&value).unwrap_or(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_8_live_mode_removes_only_the_person_properties() {
        let event = r#"{"distinct_id":"u1","event":"e","properties":{"$set":{"plan":"pro"},"$set_once":{"$initial_referrer":"x"},"note":"$set"},"timestamp":"2024-07-06T12:00:00.000Z","uuid":"u"}"#;
        assert_eq!(
            without_person_properties(event.to_owned()),
            r#"{"distinct_id":"u1","event":"e","properties":{"note":"$set"},"timestamp":"2024-07-06T12:00:00.000Z","uuid":"u"}"#
        );
        let plain = r#"{"distinct_id":"u1","event":"e","properties":{"note":"$set"}}"#;
        assert_eq!(without_person_properties(plain.to_owned()), plain);
    }
}
