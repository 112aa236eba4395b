//! §5 Custom properties, §5.3/§5.4 renames and §5.1 properties always added.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::contract::{COUNTRIES_TSV, DROPPED_PROPERTY_KEYS};
use crate::row::{AmplitudeRow, Field};

/// Renames inside `event_properties` (§5.3 web, §5.4 revenue), in the order they apply.
/// `$current_url` is the one rename with a fallback, handled on its own.
const RENAMES: [(&str, &str); 15] = [
    ("[Amplitude] Page Domain", "$host"),
    ("[Amplitude] Page Path", "$pathname"),
    ("[Amplitude] Page Title", "title"),
    ("[Amplitude] Viewport Height", "$viewport_height"),
    ("[Amplitude] Viewport Width", "$viewport_width"),
    ("[Amplitude] Screen Name", "$screen_name"),
    ("[Amplitude] Element Text", "$el_text"),
    ("referrer", "$referrer"),
    ("referring_domain", "$referring_domain"),
    ("$revenue", "revenue"),
    ("$price", "price"),
    ("$quantity", "quantity"),
    ("$productId", "product_id"),
    ("$revenueType", "revenue_type"),
    ("$currency", "currency"),
];

/// Row fields copied raw into properties when present (§5.1), in the order they are added.
const RAW_FIELDS: [(Field, &str); 12] = [
    (Field::EventId, "$amplitude_event_id"),
    (Field::InsertId, "$insert_id"),
    (Field::Library, "$amplitude_library"),
    (Field::App, "$amplitude_project_id"),
    (Field::IpAddress, "$ip"),
    (Field::Country, "$geoip_country_name"),
    (Field::Region, "$geoip_subdivision_1_name"),
    (Field::City, "$geoip_city_name"),
    (Field::Dma, "$amplitude_dma"),
    (Field::Language, "$amplitude_language"),
    (Field::VersionName, "$app_version"),
    (Field::StartVersion, "$amplitude_start_version"),
];

/// Drops the keys PostHog would act on and applies the renames. A renamed key is removed; a
/// null source value removes the key and adds nothing.
pub fn clean_custom_properties(properties: &mut Map<String, Value>) {
    for key in DROPPED_PROPERTY_KEYS {
        properties.remove(key);
    }
    // `[Amplitude] Page Location` (full URL with query), else `[Amplitude] Page URL`.
    let location = properties
        .remove("[Amplitude] Page Location")
        .filter(|value| !value.is_null());
    let url = properties
        .remove("[Amplitude] Page URL")
        .filter(|value| !value.is_null());
    if let Some(current_url) = location.or(url) {
        properties.insert("$current_url".to_owned(), current_url);
    }
    for (from, to) in RENAMES {
        if let Some(value) = properties.remove(from).filter(|value| !value.is_null()) {
            properties.insert(to.to_owned(), value);
        }
    }
}

/// §5.1 properties that come from row fields (the ids are added with the person properties).
pub fn add_row_properties(row: &AmplitudeRow, properties: &mut Map<String, Value>) {
    for (field, property) in RAW_FIELDS {
        if let Some(value) = row.present(field) {
            properties.insert(property.to_owned(), value.clone());
        }
    }
    for (field, property) in [
        (Field::LocationLat, "$geoip_latitude"),
        (Field::LocationLng, "$geoip_longitude"),
    ] {
        if let Some(number @ Value::Number(_)) = row.present(field) {
            properties.insert(property.to_owned(), number.clone());
        }
    }
    if let Some(paying) = paying(row.present(Field::Paying)) {
        properties.insert("$amplitude_paying".to_owned(), Value::Bool(paying));
    }
    if let Some(code) = row
        .str(Field::Country)
        .and_then(|name| country_code(name.trim()))
    {
        properties.insert("$geoip_country_code".to_owned(), Value::from(code));
    }
}

/// `true`, `"true"`, `1`, `"1"` → true; `false`, `"false"`, `0`, `"0"` → false; else absent.
fn paying(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text == "true" || text == "1" => Some(true),
        Value::String(text) if text == "false" || text == "0" => Some(false),
        Value::Number(number) if number.as_i64() == Some(1) => Some(true),
        Value::Number(number) if number.as_i64() == Some(0) => Some(false),
        _ => None,
    }
}

/// ISO 3166-1 alpha-2 code of an Amplitude country name (exact match on the trimmed name).
pub fn country_code(name: &str) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            COUNTRIES_TSV
                .lines()
                .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
                .filter_map(|line| line.split_once('\t'))
                .collect()
        })
        .get(name)
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_5_1_country_codes_match_exactly() {
        assert_eq!(country_code("Germany"), Some("DE"));
        assert_eq!(country_code("Côte d'Ivoire"), Some("CI"));
        assert_eq!(country_code("germany"), None);
        assert_eq!(country_code(""), None);
    }

    #[test]
    fn rule_5_1_paying_spellings() {
        use serde_json::json;
        for (given, expected) in [
            (json!(true), Some(true)),
            (json!("1"), Some(true)),
            (json!(0), Some(false)),
            (json!("false"), Some(false)),
            (json!(1.0), None),
            (json!("yes"), None),
        ] {
            assert_eq!(paying(Some(&given)), expected, "{given}");
        }
    }
}
