//! The mapping of one row (MAPPING.md), rule by rule, in the contract's order of checks.

use serde_json::{Map, Value};

use crate::autocapture::{autocapture_type, elements_chain};
use crate::contract::SESSION_MARKERS;
use crate::event::{PostHogEvent, is_too_large};
use crate::event_name::posthog_event_name;
use crate::groups::{group_set, groups_value, posthog_groups};
use crate::identity::distinct_id;
use crate::identity_records::{IdentityRecord, identity_records, person_record};
use crate::nesting::limit_nesting;
use crate::outcome::{MappingOutcome, RejectReason, SkipReason};
use crate::person::PersonProperties;
use crate::platform::add_platform_properties;
use crate::properties::{add_row_properties, clean_custom_properties};
use crate::row::{AmplitudeRow, Field, RowError};
use crate::session::{is_real_session, posthog_session_id};
use crate::time::{event_timestamp, utc_day};
use crate::uuid::{group_identify_uuid, row_uuid};

/// Maps one input line (an Amplitude export row, without its newline).
pub fn map_line(line: &[u8]) -> MappingOutcome {
    match AmplitudeRow::parse(line) {
        Ok(row) => map_row(row),
        Err(error) => MappingOutcome::Rejected(parse_error_reason(error)),
    }
}

/// A row's outcome, what it tells the identity sidecar (§3.1) and the day it belongs to:
/// everything the stages after the mapping need, worked out once.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRow {
    pub outcome: MappingOutcome,
    /// Empty for a refused row.
    pub identities: Vec<IdentityRecord>,
    /// The UTC day (`YYYY-MM-DD`) of the row's time (§4), the very time its events and
    /// identity records carry, whatever the outcome; `None` when no time could be read (a
    /// line that is not a JSON object, a row without a valid time field).
    pub day: Option<String>,
}

impl MappedRow {
    /// A row refused before any time could be read from it.
    pub fn refused(reason: RejectReason) -> MappedRow {
        MappedRow {
            outcome: MappingOutcome::Rejected(reason),
            identities: Vec::new(),
            day: None,
        }
    }

    /// The result object of the WebAssembly ABI's `transform_full` (see README.md): the
    /// outcome's result object with the identity records (in the sidecar's record format)
    /// and the day added, `{"events":[…],"identities":[…],"day":"2024-07-06"}`.
    pub fn to_result_json(&self) -> String {
        let mut out = self.outcome.to_result_json();
        out.pop(); // the outcome object's closing brace
        out.push_str(",\"identities\":[");
        for (index, record) in self.identities.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            out.push_str(&record.to_json());
        }
        out.push_str("],\"day\":");
        match &self.day {
            Some(day) => out.push_str(&Value::from(day.as_str()).to_string()),
            None => out.push_str("null"),
        }
        out.push('}');
        out
    }
}

/// Maps one input line and derives its identity records and day, parsing the line once and
/// reading its time once.
pub fn map_line_with_identities(line: &[u8]) -> MappedRow {
    let row = match AmplitudeRow::parse(line) {
        Ok(row) => row,
        Err(error) => return MappedRow::refused(parse_error_reason(error)),
    };
    let timestamp = event_timestamp(&row);
    let day = timestamp.as_deref().and_then(utc_day).map(str::to_owned);
    let mut identities = timestamp
        .as_deref()
        .map(|time| identity_records(&row, time))
        .unwrap_or_default();
    let (outcome, person) = map_row_at(row, timestamp, true);
    if matches!(outcome, MappingOutcome::Rejected(_)) {
        identities.clear();
    }
    identities.extend(person);
    MappedRow {
        outcome,
        identities,
        day,
    }
}

fn parse_error_reason(error: RowError) -> RejectReason {
    match error {
        RowError::InvalidJson => RejectReason::InvalidJson,
        RowError::NotAnObject => RejectReason::NotAnObject,
    }
}

/// Maps one parsed row.
pub fn map_row(row: AmplitudeRow) -> MappingOutcome {
    let timestamp = event_timestamp(&row);
    map_row_at(row, timestamp, false).0
}

/// Maps one parsed row whose time (§4) was read already: `timestamp` is
/// `event_timestamp(&row)`. With the outcome comes, when `with_person`, the person record
/// (§3.1) of a mapped row whose event carries person properties.
fn map_row_at(
    row: AmplitudeRow,
    timestamp: Option<String>,
    with_person: bool,
) -> (MappingOutcome, Option<IdentityRecord>) {
    match mapped_events(row, timestamp) {
        Ok(events) => {
            let mut serialised = Vec::with_capacity(events.len());
            let mut person = None;
            for mut event in events {
                // §2: Vector drops events nested beyond its budget; deeper levels become JSON
                // text.
                limit_nesting(&mut event.properties);
                let json = event.to_json();
                if is_too_large(&json) {
                    return (MappingOutcome::Rejected(RejectReason::EventTooLarge), None);
                }
                if with_person && person.is_none() {
                    person = person_record(&event);
                }
                serialised.push(json);
            }
            (MappingOutcome::Events(serialised), person)
        }
        Err(outcome) => (outcome, None),
    }
}

/// The events of a row before the nesting rule and the size check, or the row's outcome
/// when it gives none.
fn mapped_events(
    mut row: AmplitudeRow,
    timestamp: Option<String>,
) -> Result<Vec<PostHogEvent>, MappingOutcome> {
    let Some(event_type) = row
        .str(Field::EventType)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
    else {
        return Err(MappingOutcome::Rejected(RejectReason::MissingEventType));
    };
    if SESSION_MARKERS.contains(&event_type.as_str()) {
        return Err(MappingOutcome::Skipped(SkipReason::SessionMarker));
    }
    let Some(distinct_id) = distinct_id(&row) else {
        return Err(MappingOutcome::Rejected(RejectReason::NoIdentity));
    };
    let Some(timestamp) = timestamp else {
        return Err(MappingOutcome::Rejected(RejectReason::BadTimestamp));
    };
    let uuid = row_uuid(&row, &event_type);
    let groups = posthog_groups(&row);

    let events = if event_type == "$groupidentify" {
        if groups.is_empty() {
            return Err(MappingOutcome::Skipped(
                SkipReason::GroupidentifyWithoutGroups,
            ));
        }
        groups
            .iter()
            .map(|(group_type, group_key)| {
                let mut properties = Map::new();
                properties.insert("$group_type".to_owned(), Value::from(group_type.as_str()));
                properties.insert("$group_key".to_owned(), Value::from(group_key.as_str()));
                properties.insert(
                    "$group_set".to_owned(),
                    // `$group_set`: the group's property set, or `{}`.
                    Value::Object(group_set(&row, group_type, group_key).unwrap_or_default()),
                );
                properties.insert(
                    "$amplitude_event_type".to_owned(),
                    Value::from(event_type.as_str()),
                );
                properties.insert("$geoip_disable".to_owned(), Value::Bool(true));
                PostHogEvent {
                    distinct_id: distinct_id.clone(),
                    event: "$groupidentify".to_owned(),
                    properties,
                    timestamp: timestamp.clone(),
                    uuid: group_identify_uuid(&uuid, group_type),
                }
            })
            .collect()
    } else {
        let mut person =
            PersonProperties::from_user_properties(row.take_object(Field::UserProperties));
        let (event, mut properties) = if event_type == "$identify" {
            // §8: an $identify row is a `$set` event with person properties and ids only.
            let mut properties = Map::new();
            properties.insert(
                "$amplitude_event_type".to_owned(),
                Value::from(event_type.as_str()),
            );
            ("$set".to_owned(), properties)
        } else {
            let properties = event_properties(&mut row, &event_type, &groups);
            person.add_derived(&properties);
            (posthog_event_name(&event_type).to_owned(), properties)
        };
        add_ids(&row, &mut properties);
        person.into_properties(&mut properties);
        vec![PostHogEvent {
            distinct_id,
            event,
            properties,
            timestamp,
            uuid,
        }]
    };

    Ok(events)
}

/// §5–§7, §9: the properties of an ordinary event, built from its custom properties.
fn event_properties(
    row: &mut AmplitudeRow,
    event_type: &str,
    groups: &std::collections::BTreeMap<String, String>,
) -> Map<String, Value> {
    let mut properties = row.take_object(Field::EventProperties);
    // The chain reads the element properties before the renames move them.
    let autocapture =
        autocapture_type(event_type).map(|kind| (kind, elements_chain(event_type, &properties)));
    clean_custom_properties(&mut properties);
    add_row_properties(row, &mut properties);
    add_platform_properties(row, &mut properties);
    if let Some(session_id) = row
        .integer(Field::SessionId)
        .filter(|session| is_real_session(*session))
    {
        let device = row.string_value(Field::DeviceId).unwrap_or_default();
        properties.insert("$amplitude_session_id".to_owned(), Value::from(session_id));
        properties.insert(
            "$session_id".to_owned(),
            Value::from(posthog_session_id(&device, session_id)),
        );
    }
    if !groups.is_empty() {
        properties.insert("$groups".to_owned(), groups_value(groups));
    }
    if posthog_event_name(event_type) != event_type {
        properties.insert("$amplitude_event_type".to_owned(), Value::from(event_type));
    }
    if let Some((kind, chain)) = autocapture {
        properties.insert("$event_type".to_owned(), Value::from(kind));
        properties.insert("$elements_chain".to_owned(), Value::from(chain));
    }
    // §2: nulls are omitted at the top level (nested values pass through).
    properties.retain(|_, value| !value.is_null());
    properties
}

/// The raw ids every mapped row records (§5.1; §8 for `$identify`), and `$geoip_disable`:
/// geo comes from Amplitude, PostHog must not re-derive it from `$ip`.
fn add_ids(row: &AmplitudeRow, properties: &mut Map<String, Value>) {
    if let Some(user_id) = row.present(Field::UserId) {
        properties.insert("$amplitude_user_id".to_owned(), user_id.clone());
    }
    if let Some(device_id) = row.present(Field::DeviceId) {
        properties.insert("$device_id".to_owned(), device_id.clone());
        properties.insert("$amplitude_device_id".to_owned(), device_id.clone());
    }
    if let Some(amplitude_id) = row.present(Field::AmplitudeId) {
        properties.insert("$amplitude_id".to_owned(), amplitude_id.clone());
    }
    properties.insert("$geoip_disable".to_owned(), Value::Bool(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(line: &str) -> MappedRow {
        map_line_with_identities(line.as_bytes())
    }

    #[test]
    fn rule_4_a_mapped_rows_day_is_the_utc_day_of_its_events_time() {
        let row =
            mapped(r#"{"event_type":"e","user_id":"u","event_time":"2024-12-31 20:30:00-05:30"}"#);
        let MappingOutcome::Events(events) = &row.outcome else {
            panic!("not mapped: {row:?}")
        };
        assert!(events[0].contains(r#""timestamp":"2025-01-01T02:00:00.000Z""#));
        assert_eq!(row.day.as_deref(), Some("2025-01-01"));
    }

    #[test]
    fn rule_4_skipped_and_refused_rows_have_the_day_of_their_own_time() {
        for (line, outcome) in [
            (
                r#"{"event_type":"session_start","user_id":"u","event_time":"2024-07-06 23:59:59.999"}"#,
                MappingOutcome::Skipped(SkipReason::SessionMarker),
            ),
            (
                r#"{"user_id":"u","event_time":"bad","client_event_time":"2024-07-06T12:00:00Z"}"#,
                MappingOutcome::Rejected(RejectReason::MissingEventType),
            ),
            (
                r#"{"event_type":"e","user_id":"null","event_time":"2024-07-06 12:00:00"}"#,
                MappingOutcome::Rejected(RejectReason::NoIdentity),
            ),
        ] {
            let row = mapped(line);
            assert_eq!(row.outcome, outcome, "{line}");
            assert_eq!(row.day.as_deref(), Some("2024-07-06"), "{line}");
        }
    }

    #[test]
    fn rule_4_a_row_without_a_readable_time_has_no_day() {
        for (line, reason) in [
            (
                r#"{"event_type":"e","user_id":"u","event_time":"2024-02-30 10:00:00"}"#,
                RejectReason::BadTimestamp,
            ),
            (r#"{"event_type":"e""#, RejectReason::InvalidJson),
            (r#"["2024-07-06 12:00:00"]"#, RejectReason::NotAnObject),
        ] {
            let row = mapped(line);
            assert_eq!(row.outcome, MappingOutcome::Rejected(reason), "{line}");
            assert_eq!(row.day, None, "{line}");
        }
    }

    #[test]
    fn the_full_result_object_adds_identities_and_day_to_the_outcomes() {
        let row = mapped(
            r#"{"event_type":"session_start","user_id":"u1","device_id":"d1","event_time":"2024-07-06 12:00:00"}"#,
        );
        assert_eq!(
            row.to_result_json(),
            r#"{"skipped":"session_marker","identities":[{"device_id":"d1","kind":"identity","timestamp":"2024-07-06T12:00:00.000Z","user_id":"u1"}],"day":"2024-07-06"}"#
        );
        assert_eq!(
            mapped("{").to_result_json(),
            r#"{"rejected":"invalid_json","identities":[],"day":null}"#
        );
    }
}
