//! §3 Identity: which id becomes `distinct_id`.

use crate::contract::{MAX_ID_CHARS, REFUSED_IDS};
use crate::row::{AmplitudeRow, Field};

/// The usable form of an id (§3): its string value trimmed, when non-empty, at most 200
/// characters and not one PostHog refuses to merge.
pub fn usable_id(string_value: &str) -> Option<&str> {
    let trimmed = string_value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_ID_CHARS || is_refused(trimmed) {
        return None;
    }
    Some(trimmed)
}

/// Compared lower-cased, bare or wrapped in single or double quotes.
fn is_refused(id: &str) -> bool {
    let lowered = id.to_lowercase();
    let unquoted = ['\'', '"']
        .iter()
        .find_map(|quote| {
            lowered
                .strip_prefix(*quote)
                .and_then(|rest| rest.strip_suffix(*quote))
        })
        .unwrap_or(&lowered);
    REFUSED_IDS.contains(&unquoted) || REFUSED_IDS.contains(&lowered.as_str())
}

/// `distinct_id` (§3): usable user_id, else usable device_id, else `amplitude:<amplitude_id>`.
pub fn distinct_id(row: &AmplitudeRow) -> Option<String> {
    for field in [Field::UserId, Field::DeviceId] {
        if let Some(id) = row.string_value(field).as_deref().and_then(usable_id) {
            return Some(id.to_owned());
        }
    }
    row.string_value(Field::AmplitudeId)
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .map(|id| format!("amplitude:{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_3_refused_ids_compare_case_insensitively_and_in_quotes() {
        for refused in [
            "NULL",
            "'none'",
            "\"Anonymous\"",
            "[object Object]",
            " 0 ",
            "(none)",
        ] {
            assert_eq!(usable_id(refused), None, "{refused}");
        }
        // A quote on one side only is not a quoted refused id.
        assert_eq!(usable_id("'null"), Some("'null"));
        assert_eq!(usable_id(" user-1 "), Some("user-1"));
    }

    #[test]
    fn rule_3_ids_longer_than_200_characters_are_not_usable() {
        assert!(usable_id(&"é".repeat(200)).is_some());
        assert!(usable_id(&"é".repeat(201)).is_none());
    }
}
