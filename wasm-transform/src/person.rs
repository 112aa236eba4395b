//! §8 Person properties: `$set` and `$set_once` from Amplitude's `user_properties`.

use serde_json::{Map, Value};

use crate::contract::USER_PROPERTY_OPERATORS;

/// `$set` and `$set_once` under construction.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PersonProperties {
    pub set: Map<String, Value>,
    pub set_once: Map<String, Value>,
}

/// The properties PostHog derives from an event that also go to `$set` (§8 step 4).
pub const DERIVED_PERSON_PROPERTIES: [&str; 12] = [
    "$os",
    "$browser",
    "$browser_version",
    "$device_type",
    "$current_url",
    "$pathname",
    "$referrer",
    "$referring_domain",
    "$geoip_country_name",
    "$geoip_subdivision_1_name",
    "$geoip_city_name",
    "$app_version",
];

const INITIAL: &str = "initial_";

impl PersonProperties {
    /// Steps 1–3: plain entries, then the `$set` operator, then `$setOnce`; later steps win.
    pub fn from_user_properties(user_properties: Map<String, Value>) -> PersonProperties {
        let mut person = PersonProperties::default();
        let mut set_operator = None;
        let mut set_once_operator = None;
        for (key, value) in user_properties {
            match key.as_str() {
                "$set" => set_operator = Some(value),
                "$setOnce" => set_once_operator = Some(value),
                operator if USER_PROPERTY_OPERATORS.contains(&operator) => {}
                _ => person.route(key, value),
            }
        }
        if let Some(Value::Object(entries)) = set_operator {
            for (key, value) in entries {
                person.route(key, value);
            }
        }
        if let Some(Value::Object(entries)) = set_once_operator {
            for (key, value) in entries {
                let key = if key.starts_with(INITIAL) {
                    format!("${key}")
                } else {
                    key
                };
                person.set_once.insert(key, value);
            }
        }
        person
    }

    /// `initial_<x>` goes to `$set_once` as `$initial_<x>`, anything else to `$set`.
    fn route(&mut self, key: String, value: Value) {
        if key.starts_with(INITIAL) {
            self.set_once.insert(format!("${key}"), value);
        } else {
            self.set.insert(key, value);
        }
    }

    /// Step 4: the event's derived properties, as they ended up in its properties.
    pub fn add_derived(&mut self, properties: &Map<String, Value>) {
        for key in DERIVED_PERSON_PROPERTIES {
            if let Some(value) = properties.get(key).filter(|value| !value.is_null()) {
                self.set.insert(key.to_owned(), value.clone());
            }
        }
    }

    /// `EMPTY` means null and nulls are omitted (§2, §8); empty objects are omitted.
    pub fn into_properties(self, properties: &mut Map<String, Value>) {
        for (name, mut entries) in [("$set", self.set), ("$set_once", self.set_once)] {
            entries.retain(|_, value| !value.is_null() && value.as_str() != Some("EMPTY"));
            if !entries.is_empty() {
                properties.insert(name.to_owned(), Value::Object(entries));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn person(user_properties: Value) -> Map<String, Value> {
        let mut properties = Map::new();
        let Value::Object(user_properties) = user_properties else {
            panic!("object")
        };
        PersonProperties::from_user_properties(user_properties).into_properties(&mut properties);
        properties
    }

    #[test]
    fn rule_8_routes_initial_keys_and_drops_empty_values() {
        let properties = person(
            json!({"plan": "free", "initial_utm_source": "google", "initial_gclid": "EMPTY", "$add": {"x": 1}}),
        );
        assert_eq!(
            Value::Object(properties),
            json!({"$set": {"plan": "free"}, "$set_once": {"$initial_utm_source": "google"}})
        );
    }

    #[test]
    fn rule_8_operators_override_in_order() {
        let properties = person(
            json!({"plan": "free", "$set": {"plan": "pro"}, "initial_x": "a", "$setOnce": {"initial_x": "b", "$initial_x": "c"}}),
        );
        // $setOnce keys apply in byte order: "$initial_x" then "initial_x", which wins.
        assert_eq!(
            Value::Object(properties),
            json!({"$set": {"plan": "pro"}, "$set_once": {"$initial_x": "b"}})
        );
    }
}
