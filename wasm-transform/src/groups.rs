//! §9 Groups: `$groups` from Amplitude's `groups`, and the `$groupidentify` events of a
//! `$groupidentify` row.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::row::{AmplitudeRow, Field, string_value};

/// `{group_type: key}`: an array gives its first element, a scalar itself; the string value is
/// used; entries without a value or with an empty one are left out. Sorted by group type.
pub fn posthog_groups(row: &AmplitudeRow) -> BTreeMap<String, String> {
    let Some(groups) = row.object(Field::Groups) else {
        return BTreeMap::new();
    };
    groups
        .iter()
        .filter_map(|(group_type, value)| {
            let first = match value {
                Value::Array(items) => items.first()?,
                scalar => scalar,
            };
            let key = string_value(first)?;
            (!key.is_empty()).then(|| (group_type.clone(), key.into_owned()))
        })
        .collect()
}

/// `group_properties[type][key]` when it is an object.
pub fn group_set(
    row: &AmplitudeRow,
    group_type: &str,
    group_key: &str,
) -> Option<Map<String, Value>> {
    row.object(Field::GroupProperties)
        .and_then(|by_type| by_type.get(group_type))
        .and_then(Value::as_object)
        .and_then(|by_key| by_key.get(group_key))
        .and_then(Value::as_object)
        .cloned()
}

/// `$groups` as a property value.
pub fn groups_value(groups: &BTreeMap<String, String>) -> Value {
    Value::Object(
        groups
            .iter()
            .map(|(group_type, key)| (group_type.clone(), Value::String(key.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_9_first_array_element_scalars_and_integers() {
        let row = AmplitudeRow::parse(
            br#"{"groups":{"a":["x","y"],"b":"s","c":7,"d":[],"e":"","f":null,"g":{"k":1}}}"#,
        )
        .expect("row");
        let groups = posthog_groups(&row);
        assert_eq!(
            groups.into_iter().collect::<Vec<_>>(),
            vec![
                ("a".into(), "x".into()),
                ("b".into(), "s".into()),
                ("c".into(), "7".into())
            ]
        );
    }
}
