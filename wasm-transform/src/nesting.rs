//! §2 Vector's nesting budget: no emitted event may nest so deep that Vector 0.58 refuses to
//! carry it. Vector encodes every event it buffers or hands between components as protobuf
//! and drops (`intentional=false`) any event whose nesting costs more than 96 frames, an
//! object level costing 3 and an array level 2 (`lib/vector-core/src/event/ser.rs` in
//! vectordotdev/vector). Counting every level as an object, that is 32 levels; the event
//! object is level 1, `properties` level 2, a property value level 3, an entry of `$set`,
//! `$set_once` or `$group_set` level 4.
//!
//! The rule keeps events at most 31 levels deep: a property value nested more than
//! [`PROPERTY_VALUE_DEPTH`] levels, or an entry of `$set`, `$set_once` or `$group_set`
//! nested more than [`PERSON_OR_GROUP_ENTRY_DEPTH`], is replaced whole by its compact,
//! key-sorted JSON text (a string). Whole values, not their deep parts: nothing of the value
//! is re-read, so every number in it stays exactly as mapped.

use serde_json::{Map, Value};

/// Most levels of objects and arrays a property value (level 3 of the event) may have.
pub const PROPERTY_VALUE_DEPTH: usize = 29;
/// Most levels of an entry of `$set`, `$set_once` or `$group_set` (level 4 of the event).
pub const PERSON_OR_GROUP_ENTRY_DEPTH: usize = 28;
/// The property values whose entries sit one level deeper.
const NESTED_MAPS: [&str; 3] = ["$set", "$set_once", "$group_set"];

/// Levels of objects and arrays in a value: 0 for a scalar, 1 for `{}` or `[1]`, …
pub fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Applies the rule to an event's properties.
pub fn limit_nesting(properties: &mut Map<String, Value>) {
    for (key, value) in properties.iter_mut() {
        match value {
            Value::Object(entries) if NESTED_MAPS.contains(&key.as_str()) => limit_entries(entries),
            _ => as_text_if_deeper(value, PROPERTY_VALUE_DEPTH),
        }
    }
}

/// Applies the rule to the entries of a `$set`, `$set_once` or `$group_set` map.
pub fn limit_entries(entries: &mut Map<String, Value>) {
    entries
        .values_mut()
        .for_each(|entry| as_text_if_deeper(entry, PERSON_OR_GROUP_ENTRY_DEPTH));
}

fn as_text_if_deeper(value: &mut Value, most: usize) {
    if depth(value) > most {
        *value = Value::String(serde_json::to_string(value).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!("leaf"), |inner, level| {
            if level % 2 == 0 {
                json!({ "b": inner, "a": 1.5 })
            } else {
                json!([inner])
            }
        })
    }

    #[test]
    fn rule_2_depth_counts_objects_and_arrays() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!({})), 1);
        assert_eq!(depth(&json!([[], {"a": [1]}])), 3);
        assert_eq!(depth(&nested(7)), 7);
    }

    #[test]
    fn rule_2_values_within_the_budget_are_unchanged_and_deeper_ones_become_text() {
        let mut properties = Map::new();
        properties.insert("kept".into(), nested(PROPERTY_VALUE_DEPTH));
        properties.insert("cut".into(), nested(PROPERTY_VALUE_DEPTH + 1));
        properties.insert(
            "$set".into(),
            json!({
                "kept": nested(PERSON_OR_GROUP_ENTRY_DEPTH),
                "cut": nested(PERSON_OR_GROUP_ENTRY_DEPTH + 1),
            }),
        );
        let original = properties.clone();
        limit_nesting(&mut properties);
        assert_eq!(properties["kept"], original["kept"]);
        assert_eq!(
            properties["cut"],
            Value::String(serde_json::to_string(&original["cut"]).unwrap())
        );
        assert_eq!(properties["$set"]["kept"], original["$set"]["kept"]);
        assert!(properties["$set"]["cut"].as_str().unwrap().starts_with('{'));
    }
}
