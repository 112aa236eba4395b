//! Persons by event time (`docs/IDENTITY_DECISIONS.md`, "Persons").
//!
//! PostHog applies `$set` and `$set_once` in the order it ingests events, not by their time.
//! The store keeps, per distinct id and per key, the newest `$set` value and the oldest
//! `$set_once` value by event time — what PostHog would hold had it ingested every row in
//! event-time order — and at the end of a migration sends one update per person that puts
//! exactly those values in place. This module is the rule (pure); `store` keeps the values.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

use amplitude_posthog_transform::uuid_v5;

/// Whether the PostHog project already receives live events for these persons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProjectMode {
    /// Nothing but the migration writes persons: the final update sets every value.
    #[default]
    Empty,
    /// A live SDK already sets persons (`--live-project`): the final update fills only what
    /// live data lacks (`$set_once`), except the `$initial_*` keys, where history holds the
    /// real first touch (`$set`).
    Live,
}

/// `$set` or `$set_once`: which value of a key wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The newest by event time (ties: the greater JSON text, so arrival order never decides).
    Set,
    /// The oldest by event time (ties: the smaller JSON text).
    SetOnce,
}

impl Operation {
    /// Whether `(timestamp, value)` replaces the kept `(kept_timestamp, kept_value)`.
    pub fn replaces(self, candidate: (&str, &str), kept: (&str, &str)) -> bool {
        let order = candidate.cmp(&kept);
        match self {
            Operation::Set => order == Ordering::Greater,
            Operation::SetOnce => order == Ordering::Less,
        }
    }
}

/// One person's values by event time: key → (timestamp, JSON text of the value). The store
/// keeps one per distinct id, as JSON ([`PersonFold::to_json`]).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonFold {
    set: BTreeMap<String, (String, String)>,
    set_once: BTreeMap<String, (String, String)>,
    /// The newest event time seen for the person.
    newest: String,
}

impl PersonFold {
    /// Adds one key's value as of `timestamp`; whether it changed what is kept.
    pub fn add(&mut self, operation: Operation, key: &str, timestamp: &str, value: &str) -> bool {
        let keys = match operation {
            Operation::Set => &mut self.set,
            Operation::SetOnce => &mut self.set_once,
        };
        let changed = match keys.get_mut(key) {
            Some(kept) => {
                let newer = operation.replaces((timestamp, value), (&kept.0, &kept.1));
                if newer {
                    *kept = (timestamp.to_owned(), value.to_owned());
                }
                newer
            }
            None => {
                keys.insert(key.to_owned(), (timestamp.to_owned(), value.to_owned()));
                true
            }
        };
        self.saw(timestamp) || changed
    }

    /// Records an event time of the person; whether it is its newest so far.
    pub fn saw(&mut self, timestamp: &str) -> bool {
        let newer = timestamp > self.newest.as_str();
        if newer {
            self.newest = timestamp.to_owned();
        }
        newer
    }

    /// Folds `other` (the same person's values from other rows) in; whether anything changed.
    pub fn merge(&mut self, other: &PersonFold) -> bool {
        let mut changed = self.saw(&other.newest);
        for (operation, key, at, value) in other.entries() {
            changed |= self.add(operation, key, at, value);
        }
        changed
    }

    /// The fold as the store keeps it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A fold the store kept (an unreadable one reads as empty: it can only have been written
    /// by [`PersonFold::to_json`]).
    pub fn from_json(text: &str) -> PersonFold {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// Adds one row's snapshot.
    pub fn add_snapshot(
        &mut self,
        set: &Map<String, Value>,
        set_once: &Map<String, Value>,
        timestamp: &str,
    ) {
        for (operation, keys) in [(Operation::Set, set), (Operation::SetOnce, set_once)] {
            for (key, value) in keys {
                self.add(operation, key, timestamp, &value.to_string());
            }
        }
        self.saw(timestamp);
    }

    /// Every kept value: (operation, key, timestamp, value JSON text).
    pub fn entries(&self) -> impl Iterator<Item = (Operation, &str, &str, &str)> {
        let set = self
            .set
            .iter()
            .map(|(key, (at, value))| (Operation::Set, key.as_str(), at.as_str(), value.as_str()));
        let set_once = self.set_once.iter().map(|(key, (at, value))| {
            (
                Operation::SetOnce,
                key.as_str(),
                at.as_str(),
                value.as_str(),
            )
        });
        set.chain(set_once)
    }

    pub fn newest(&self) -> &str {
        &self.newest
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.set_once.is_empty()
    }

    /// The person's properties as time-ordered ingestion leaves them: a key ever `$set` holds
    /// its newest `$set` value (a `$set_once` never overwrites it); any other key its oldest
    /// `$set_once` value.
    pub fn final_properties(&self) -> Map<String, Value> {
        let mut properties = Map::new();
        for (key, (_, value)) in self.set_once.iter().chain(self.set.iter()) {
            properties.insert(key.clone(), parse(value));
        }
        properties
    }

    /// The properties of the person's final update event in `mode`.
    pub fn update_properties(&self, mode: ProjectMode) -> Map<String, Value> {
        let mut set = Map::new();
        let mut set_once = Map::new();
        for (key, value) in self.final_properties() {
            if mode == ProjectMode::Empty || key.starts_with("$initial_") {
                set.insert(key, value);
            } else {
                set_once.insert(key, value);
            }
        }
        let mut properties = Map::new();
        if !set.is_empty() {
            properties.insert("$set".into(), Value::Object(set));
        }
        if !set_once.is_empty() {
            properties.insert("$set_once".into(), Value::Object(set_once));
        }
        properties.insert("$amplitude_person_update".into(), Value::Bool(true));
        properties.insert("$geoip_disable".into(), Value::Bool(true));
        properties
    }
}

/// The final update's uuid: UUIDv5 (the mapping's namespace) of the person and a SHA-1 of its
/// properties, so a resend collapses and a changed update is a new event.
pub fn update_uuid(person: &str, properties: &Map<String, Value>) -> String {
    let text = serde_json::to_string(properties).unwrap_or_default();
    let hash = hex::encode(Sha1::digest(text.as_bytes()));
    uuid_v5(format!("amplitude-person:{}:{person}:{hash}", person.len()).as_bytes())
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    fn fold(rows: &[(&str, Value, Value)]) -> PersonFold {
        let mut fold = PersonFold::default();
        for (at, set, set_once) in rows {
            fold.add_snapshot(&object(set.clone()), &object(set_once.clone()), at);
        }
        fold
    }

    #[test]
    fn newest_set_and_oldest_set_once_win_whatever_the_arrival_order() {
        let rows = [
            (
                "2024-03-01T00:00:00.000Z",
                json!({"plan": "pro", "os": "iOS"}),
                json!({"$initial_utm_source": "ads"}),
            ),
            (
                "2024-01-01T00:00:00.000Z",
                json!({"plan": "free", "email": "a@x"}),
                json!({"$initial_utm_source": "google"}),
            ),
            (
                "2024-02-01T00:00:00.000Z",
                json!({"plan": "team"}),
                json!({}),
            ),
        ];
        let expected =
            json!({"plan": "pro", "os": "iOS", "email": "a@x", "$initial_utm_source": "google"});
        let mut orders = vec![rows.to_vec()];
        orders.push(rows.iter().rev().cloned().collect());
        orders.push(vec![rows[1].clone(), rows[0].clone(), rows[2].clone()]);
        for order in orders {
            let fold = fold(&order);
            assert_eq!(Value::Object(fold.final_properties()), expected);
            assert_eq!(fold.newest(), "2024-03-01T00:00:00.000Z");
        }
    }

    #[test]
    fn a_key_ever_set_keeps_its_set_value() {
        let fold = fold(&[
            ("2024-01-02T00:00:00.000Z", json!({"k": 1}), json!({})),
            ("2024-01-01T00:00:00.000Z", json!({}), json!({"k": 0})),
        ]);
        assert_eq!(fold.final_properties()["k"], json!(1));
    }

    #[test]
    fn ties_are_decided_by_the_value_not_the_arrival() {
        let at = "2024-01-01T00:00:00.000Z";
        let one = fold(&[
            (at, json!({"k": "a"}), json!({"o": "a"})),
            (at, json!({"k": "b"}), json!({"o": "b"})),
        ]);
        let other = fold(&[
            (at, json!({"k": "b"}), json!({"o": "b"})),
            (at, json!({"k": "a"}), json!({"o": "a"})),
        ]);
        assert_eq!(one, other);
        assert_eq!(
            Value::Object(one.final_properties()),
            json!({"k": "b", "o": "a"})
        );
    }

    #[test]
    fn the_live_mode_fills_in_and_keeps_the_first_touch() {
        let fold = fold(&[(
            "2024-01-01T00:00:00.000Z",
            json!({"plan": "pro"}),
            json!({"$initial_referrer": "x", "first_plan": "free"}),
        )]);
        assert_eq!(
            Value::Object(fold.update_properties(ProjectMode::Empty)),
            json!({"$set": {"plan": "pro", "$initial_referrer": "x", "first_plan": "free"}, "$amplitude_person_update": true, "$geoip_disable": true})
        );
        assert_eq!(
            Value::Object(fold.update_properties(ProjectMode::Live)),
            json!({"$set": {"$initial_referrer": "x"}, "$set_once": {"plan": "pro", "first_plan": "free"}, "$amplitude_person_update": true, "$geoip_disable": true})
        );
    }

    #[test]
    fn the_uuid_follows_the_person_and_its_properties() {
        let properties = object(json!({"$set": {"plan": "pro"}}));
        let other = object(json!({"$set": {"plan": "free"}}));
        assert_eq!(
            update_uuid("u1", &properties),
            update_uuid("u1", &properties)
        );
        assert_ne!(update_uuid("u1", &properties), update_uuid("u1", &other));
        assert_ne!(
            update_uuid("u1", &properties),
            update_uuid("u2", &properties)
        );
    }
}
