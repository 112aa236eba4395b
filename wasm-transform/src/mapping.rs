//! The mapping of one row (MAPPING.md), rule by rule, in the contract's order of checks.

use serde_json::{Map, Value};

use crate::autocapture::{autocapture_type, elements_chain};
use crate::contract::SESSION_MARKERS;
use crate::event::{PostHogEvent, is_too_large};
use crate::event_name::posthog_event_name;
use crate::groups::{group_set, groups_value, posthog_groups};
use crate::identity::distinct_id;
use crate::identity_records::{IdentityRecord, identity_records};
use crate::nesting::limit_nesting;
use crate::outcome::{MappingOutcome, RejectReason, SkipReason};
use crate::person::PersonProperties;
use crate::platform::add_platform_properties;
use crate::properties::{add_row_properties, clean_custom_properties};
use crate::row::{AmplitudeRow, Field, RowError};
use crate::session::{is_real_session, posthog_session_id};
use crate::time::event_timestamp;
use crate::uuid::{group_identify_uuid, row_uuid};

/// Maps one input line (an Amplitude export row, without its newline).
pub fn map_line(line: &[u8]) -> MappingOutcome {
    match AmplitudeRow::parse(line) {
        Ok(row) => map_row(row),
        Err(error) => map_parse_error(error),
    }
}

/// A row's outcome and what it tells the identity sidecar (§3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRow {
    pub outcome: MappingOutcome,
    /// Empty for a refused row.
    pub identities: Vec<IdentityRecord>,
}

/// Maps one input line and derives its identity records, parsing the line once.
pub fn map_line_with_identities(line: &[u8]) -> MappedRow {
    let row = match AmplitudeRow::parse(line) {
        Ok(row) => row,
        Err(error) => {
            return MappedRow {
                outcome: map_parse_error(error),
                identities: Vec::new(),
            };
        }
    };
    let mut identities = event_timestamp(&row)
        .map(|timestamp| identity_records(&row, &timestamp))
        .unwrap_or_default();
    let outcome = map_row(row);
    if matches!(outcome, MappingOutcome::Rejected(_)) {
        identities.clear();
    }
    MappedRow {
        outcome,
        identities,
    }
}

fn map_parse_error(error: RowError) -> MappingOutcome {
    match error {
        RowError::InvalidJson => MappingOutcome::Rejected(RejectReason::InvalidJson),
        RowError::NotAnObject => MappingOutcome::Rejected(RejectReason::NotAnObject),
    }
}

/// Maps one parsed row.
pub fn map_row(mut row: AmplitudeRow) -> MappingOutcome {
    let Some(event_type) = row
        .str(Field::EventType)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
    else {
        return MappingOutcome::Rejected(RejectReason::MissingEventType);
    };
    if SESSION_MARKERS.contains(&event_type.as_str()) {
        return MappingOutcome::Skipped(SkipReason::SessionMarker);
    }
    let Some(distinct_id) = distinct_id(&row) else {
        return MappingOutcome::Rejected(RejectReason::NoIdentity);
    };
    let Some(timestamp) = event_timestamp(&row) else {
        return MappingOutcome::Rejected(RejectReason::BadTimestamp);
    };
    let uuid = row_uuid(&row, &event_type);
    let groups = posthog_groups(&row);

    let events = if event_type == "$groupidentify" {
        if groups.is_empty() {
            return MappingOutcome::Skipped(SkipReason::GroupidentifyWithoutGroups);
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

    let mut serialised = Vec::with_capacity(events.len());
    for mut event in events {
        // §2: Vector drops events nested beyond its budget; deeper levels become JSON text.
        limit_nesting(&mut event.properties);
        let json = event.to_json();
        if is_too_large(&json) {
            return MappingOutcome::Rejected(RejectReason::EventTooLarge);
        }
        serialised.push(json);
    }
    MappingOutcome::Events(serialised)
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
