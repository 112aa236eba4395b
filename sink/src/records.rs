//! Intake records, as the mapping emits them (`docs/MAPPING.md` §3.1) and Vector's http sink
//! delivers them
//! (a JSON array, or one JSON object per line):
//!
//! - `{"kind":"identity","user_id":"…","device_id":"…","timestamp":"2024-07-06T12:34:56.789Z"}`
//! - `{"kind":"groups","groups":{"company":"acme"},"group_properties":{"company":{"acme":{…}}},"timestamp":"…"}`
//! - `{"kind":"person","distinct_id":"…","set":{…},"set_once":{…},"timestamp":"…"}`

use amplitude_posthog_transform::IdentityRecord;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One device → user link seen on a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPair {
    pub user_id: String,
    pub device_id: String,
    /// RFC 3339 UTC with milliseconds; sorts as text.
    pub timestamp: String,
}

/// One group's property set as of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    pub group_type: String,
    pub group_key: String,
    pub properties: Map<String, Value>,
    pub timestamp: String,
}

/// One person's `$set` / `$set_once` snapshot as of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonSnapshot {
    pub distinct_id: String,
    pub set: Map<String, Value>,
    pub set_once: Map<String, Value>,
    pub timestamp: String,
}

/// A parsed batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecordBatch {
    pub pairs: Vec<IdentityPair>,
    pub groups: Vec<GroupSnapshot>,
    pub persons: Vec<PersonSnapshot>,
    /// Well-formed records whose ids PostHog would refuse or that link an id to itself.
    pub ignored: u64,
    pub records: u64,
}

/// Why a batch is refused, naming the record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index}: {reason}")]
pub struct RecordError {
    /// 0-based position of the bad record in the batch.
    pub index: usize,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Record {
    Identity {
        user_id: String,
        device_id: String,
        timestamp: String,
    },
    Groups {
        groups: Map<String, Value>,
        #[serde(default)]
        group_properties: Map<String, Value>,
        timestamp: String,
    },
    Person {
        distinct_id: String,
        #[serde(default)]
        set: Map<String, Value>,
        #[serde(default)]
        set_once: Map<String, Value>,
        timestamp: String,
    },
}

/// Parses a body: a JSON array of records, or newline-delimited records.
pub fn parse_batch(body: &[u8]) -> Result<RecordBatch, RecordError> {
    let text = std::str::from_utf8(body).map_err(|error| RecordError {
        index: 0,
        reason: format!("the body is not UTF-8: {error}"),
    })?;
    let trimmed = text.trim_start();
    let values: Vec<Value> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).map_err(|error| RecordError {
            index: 0,
            reason: format!("the body is not a JSON array: {error}"),
        })?
    } else {
        trimmed
            .lines()
            .filter(|line| !line.trim().is_empty())
            .enumerate()
            .map(|(index, line)| {
                serde_json::from_str(line).map_err(|error| RecordError {
                    index,
                    reason: format!("invalid JSON: {error}"),
                })
            })
            .collect::<Result<_, _>>()?
    };
    let mut batch = RecordBatch {
        records: values.len() as u64,
        ..RecordBatch::default()
    };
    for (index, value) in values.into_iter().enumerate() {
        let record: Record = serde_json::from_value(value).map_err(|error| RecordError {
            index,
            reason: error.to_string(),
        })?;
        match record {
            Record::Identity {
                user_id,
                device_id,
                timestamp,
            } => {
                check_timestamp(index, &timestamp)?;
                batch.add_pair(&user_id, &device_id, timestamp);
            }
            Record::Groups {
                groups,
                group_properties,
                timestamp,
            } => {
                check_timestamp(index, &timestamp)?;
                for (group_type, key) in groups {
                    let Some(group_key) = key
                        .as_str()
                        .filter(|key| !key.is_empty())
                        .map(str::to_owned)
                    else {
                        return Err(RecordError {
                            index,
                            reason: format!("group {group_type:?} needs a non-empty string key"),
                        });
                    };
                    batch.add_group(group_type, group_key, &group_properties, &timestamp);
                }
            }
            Record::Person {
                distinct_id,
                set,
                set_once,
                timestamp,
            } => {
                check_timestamp(index, &timestamp)?;
                batch.add_person(distinct_id, set, set_once, timestamp);
            }
        }
    }
    Ok(batch)
}

impl RecordBatch {
    /// The batch of records the mapping produced in this process, taken as they are (no JSON
    /// between the mapping and the store), under the rules [`parse_batch`] applies.
    pub fn from_records(records: Vec<IdentityRecord>) -> RecordBatch {
        let mut batch = RecordBatch {
            records: records.len() as u64,
            ..RecordBatch::default()
        };
        for record in records {
            match record {
                IdentityRecord::Pair {
                    user_id,
                    device_id,
                    timestamp,
                } => batch.add_pair(&user_id, &device_id, timestamp),
                IdentityRecord::Groups {
                    groups,
                    group_properties,
                    timestamp,
                } => {
                    for (group_type, group_key) in groups {
                        batch.add_group(group_type, group_key, &group_properties, &timestamp);
                    }
                }
                IdentityRecord::Person {
                    distinct_id,
                    set,
                    set_once,
                    timestamp,
                } => batch.add_person(distinct_id, set, set_once, timestamp),
            }
        }
        batch
    }

    /// A device → user link when both ids are usable and differ; else an ignored record.
    fn add_pair(&mut self, user_id: &str, device_id: &str, timestamp: String) {
        let usable = |id: &str| amplitude_posthog_transform::usable_id(id).map(str::to_owned);
        match (usable(user_id), usable(device_id)) {
            (Some(user_id), Some(device_id)) if user_id != device_id => {
                self.pairs.push(IdentityPair {
                    user_id,
                    device_id,
                    timestamp,
                })
            }
            _ => self.ignored += 1,
        }
    }

    /// A person's snapshot when its distinct id is usable (the mapping's always is); else an
    /// ignored record.
    fn add_person(
        &mut self,
        distinct_id: String,
        set: Map<String, Value>,
        set_once: Map<String, Value>,
        timestamp: String,
    ) {
        match amplitude_posthog_transform::usable_id(&distinct_id) {
            Some(usable) if usable == distinct_id => self.persons.push(PersonSnapshot {
                distinct_id,
                set,
                set_once,
                timestamp,
            }),
            _ => self.ignored += 1,
        }
    }

    /// One group's snapshot: its property set when the record has one, else `{}`.
    fn add_group(
        &mut self,
        group_type: String,
        group_key: String,
        group_properties: &Map<String, Value>,
        timestamp: &str,
    ) {
        let properties = group_properties
            .get(&group_type)
            .and_then(|by_key| by_key.get(&group_key))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        self.groups.push(GroupSnapshot {
            group_type,
            group_key,
            properties,
            timestamp: timestamp.to_owned(),
        });
    }
}

/// The mapping's timestamp form: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn check_timestamp(index: usize, timestamp: &str) -> Result<(), RecordError> {
    let bytes = timestamp.as_bytes();
    let shape = bytes.len() == 24
        && bytes.iter().enumerate().all(|(at, byte)| match at {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'.',
            23 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        });
    if shape {
        Ok(())
    } else {
        Err(RecordError {
            index,
            reason: format!("timestamp {timestamp:?} is not YYYY-MM-DDTHH:MM:SS.mmmZ"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arrays_and_ndjson_alike() {
        let record = r#"{"kind":"identity","user_id":"u1","device_id":"d1","timestamp":"2024-07-06T12:34:56.789Z"}"#;
        let array = parse_batch(format!("[{record},{record}]").as_bytes()).expect("array");
        let ndjson = parse_batch(format!("{record}\n{record}\n").as_bytes()).expect("ndjson");
        assert_eq!(array, ndjson);
        assert_eq!(array.pairs.len(), 2);
    }

    #[test]
    fn names_the_bad_record() {
        let body = r#"[{"kind":"identity","user_id":"u1","device_id":"d1","timestamp":"2024-07-06T12:34:56.789Z"},{"kind":"identity","user_id":5,"device_id":"d1","timestamp":"2024-07-06T12:34:56.789Z"}]"#;
        let error = parse_batch(body.as_bytes()).expect_err("refused");
        assert_eq!(error.index, 1);
        assert!(
            error.reason.contains("user_id") || error.reason.contains("string"),
            "{error}"
        );
    }

    #[test]
    fn the_mappings_own_records_make_the_batch_their_json_makes() {
        let row = br#"{"event_type":"e","user_id":"u1","device_id":"d1","event_time":"2024-07-06 12:34:56.789","groups":{"company":"acme","team":["t1"]},"group_properties":{"company":{"acme":{"plan":"pro"}}}}"#;
        let records = amplitude_posthog_transform::map_line_with_identities(row).identities;
        let json: Vec<String> = records.iter().map(IdentityRecord::to_json).collect();
        let parsed = parse_batch(format!("[{}]", json.join(",")).as_bytes()).expect("parsed");
        let typed = RecordBatch::from_records(records);
        assert_eq!(typed, parsed);
        assert_eq!(
            (
                typed.records,
                typed.pairs.len(),
                typed.groups.len(),
                typed.persons.len()
            ),
            (2, 1, 2, 0)
        );
    }

    #[test]
    fn refused_or_self_links_are_ignored_not_errors() {
        let body = r#"[{"kind":"identity","user_id":"undefined","device_id":"d1","timestamp":"2024-07-06T12:34:56.789Z"},{"kind":"identity","user_id":"x","device_id":" x ","timestamp":"2024-07-06T12:34:56.789Z"}]"#;
        let batch = parse_batch(body.as_bytes()).expect("parsed");
        assert_eq!((batch.pairs.len(), batch.ignored), (0, 2));
    }
}
