//! §3.1 Identity records: what a row tells the identity sidecar, beside its events.
//!
//! - `{"kind":"identity","user_id":…,"device_id":…,"timestamp":…}` when the row's user_id and
//!   device_id are both usable (§3) and differ: the device's anonymous events belong to that
//!   user (the sidecar sends one `$create_alias` per device, to its first user);
//! - `{"kind":"groups","groups":{type: key},"group_properties":{type: {key: {…}}},"timestamp":…}`
//!   when the row has groups (§9): each group's latest property set, for `$groupidentify`.
//!   Only the row's own groups whose set is an object appear under `group_properties`, each
//!   entry under Vector's nesting budget (§2, as in `$group_set`);
//! - `{"kind":"person","distinct_id":…,"set":{…},"set_once":{…},"timestamp":…}` when the row
//!   is mapped to an event that carries `$set` or `$set_once` (§8): the person's snapshot at
//!   that time, so the sidecar can end every person with its newest values by event time.
//!
//! All need the row's time (§4). Mapped and skipped rows give records (a person record only a
//! mapped row); a refused row gives
//! none (it goes to the dead letters whole, and a replay after the fix brings both).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::groups::{group_set, posthog_groups};
use crate::identity::usable_id;
use crate::nesting::limit_entries;
use crate::row::{AmplitudeRow, Field};

/// One record for the identity sidecar, in the record format [`IdentityRecord::to_json`]
/// writes and it deserialises from (the VRL program's output, the WebAssembly module's
/// `transform_full` result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum IdentityRecord {
    /// A device → user link.
    #[serde(rename = "identity")]
    Pair {
        user_id: String,
        device_id: String,
        timestamp: String,
    },
    /// The row's groups (type → non-empty key) and their property sets (type → key → set).
    #[serde(rename = "groups")]
    Groups {
        groups: BTreeMap<String, String>,
        #[serde(default)]
        group_properties: Map<String, Value>,
        timestamp: String,
    },
    /// A mapped row's person snapshot: the `$set` and `$set_once` its event carries (§8, after
    /// the nesting rule of §2), for the person its event belongs to (`distinct_id`, §3).
    #[serde(rename = "person")]
    Person {
        distinct_id: String,
        set: Map<String, Value>,
        set_once: Map<String, Value>,
        timestamp: String,
    },
}

impl IdentityRecord {
    /// The record as the sidecar receives it: compact JSON, keys sorted (through a
    /// `serde_json::Value`, whose objects keep their keys sorted).
    pub fn to_json(&self) -> String {
        serde_json::to_value(self)
            .map(|value| value.to_string())
            .unwrap_or_default()
    }
}

/// The person record of a mapped row's event (`$groupidentify` events carry no person
/// properties): `None` when the event has neither `$set` nor `$set_once`.
pub fn person_record(event: &crate::event::PostHogEvent) -> Option<IdentityRecord> {
    let part = |name: &str| {
        event
            .properties
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (set, set_once) = (part("$set"), part("$set_once"));
    if set.is_empty() && set_once.is_empty() {
        return None;
    }
    Some(IdentityRecord::Person {
        distinct_id: event.distinct_id.clone(),
        set,
        set_once,
        timestamp: event.timestamp.clone(),
    })
}

/// The identity records of a row the mapping does not refuse, given its time (§4).
pub fn identity_records(row: &AmplitudeRow, timestamp: &str) -> Vec<IdentityRecord> {
    let mut records = Vec::new();
    let usable = |field| {
        row.string_value(field)
            .as_deref()
            .and_then(usable_id)
            .map(str::to_owned)
    };
    if let (Some(user_id), Some(device_id)) = (usable(Field::UserId), usable(Field::DeviceId))
        && user_id != device_id
    {
        records.push(IdentityRecord::Pair {
            user_id,
            device_id,
            timestamp: timestamp.to_owned(),
        });
    }
    let groups = posthog_groups(row);
    if !groups.is_empty() {
        let mut group_properties = Map::new();
        for (group_type, group_key) in &groups {
            let Some(mut set) = group_set(row, group_type, group_key) else {
                continue;
            };
            limit_entries(&mut set);
            group_properties
                .entry(group_type.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("built as an object")
                .insert(group_key.clone(), Value::Object(set));
        }
        records.push(IdentityRecord::Groups {
            groups,
            group_properties,
            timestamp: timestamp.to_owned(),
        });
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(line: &str) -> Vec<String> {
        let row = AmplitudeRow::parse(line.as_bytes()).expect("row");
        identity_records(&row, "2024-07-06T12:00:00.000Z")
            .iter()
            .map(IdentityRecord::to_json)
            .collect()
    }

    #[test]
    fn rule_3_1_a_pair_needs_two_usable_different_ids() {
        assert_eq!(
            records(r#"{"user_id":" u1 ","device_id":7}"#),
            [
                r#"{"device_id":"7","kind":"identity","timestamp":"2024-07-06T12:00:00.000Z","user_id":"u1"}"#
            ]
        );
        assert!(records(r#"{"user_id":"u1","device_id":"u1 "}"#).is_empty());
        assert!(records(r#"{"user_id":"null","device_id":"d1"}"#).is_empty());
        assert!(records(r#"{"user_id":"u1"}"#).is_empty());
    }

    #[test]
    fn rule_3_1_records_read_back_from_their_json() {
        let row = AmplitudeRow::parse(
            br#"{"user_id":"u1","device_id":"d1","groups":{"company":"acme"},"group_properties":{"company":{"acme":{"plan":"pro","seats":3}}}}"#,
        )
        .expect("row");
        let records = identity_records(&row, "2024-07-06T12:00:00.000Z");
        assert_eq!(records.len(), 2);
        for record in records {
            let read: IdentityRecord = serde_json::from_str(&record.to_json()).expect("reads");
            assert_eq!(read, record);
        }
        let unknown = r#"{"kind":"identity","user_id":"u","device_id":"d","timestamp":"2024-07-06T12:00:00.000Z","extra":1}"#;
        assert!(serde_json::from_str::<IdentityRecord>(unknown).is_err());
    }

    #[test]
    fn rule_3_1_groups_carry_only_the_rows_own_object_sets() {
        assert_eq!(
            records(
                r#"{"groups":{"company":["acme","x"],"team":"t","empty":""},"group_properties":{"company":{"acme":{"plan":"pro"},"other":{"a":1}},"team":{"t":"not an object"}}}"#
            ),
            [
                r#"{"group_properties":{"company":{"acme":{"plan":"pro"}}},"groups":{"company":"acme","team":"t"},"kind":"groups","timestamp":"2024-07-06T12:00:00.000Z"}"#
            ]
        );
    }
}
