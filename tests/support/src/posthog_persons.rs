//! PostHog's person rules, applied to the events capture stored, in the order it stored them:
//! what a project's persons end as (docs/POSTHOG_AND_AMPLITUDE.md, "Persons"). Test-support
//! code only.
//!
//! - Each event belongs to the person of its `distinct_id` (created on first sight).
//! - Ingestion lifts a fixed list of event properties into `$set` (unless `$set` has the key)
//!   and their `$initial_*` forms into `$set_once` (plugin-server `personInitialAndUTMProperties`,
//!   list `eventToPersonProperties`).
//! - `$set_once` sets keys the person lacks, then `$set` overwrites: in ingestion order, not by
//!   event time.
//! - `$create_alias` (distinct id U, `alias` D): an unknown id joins the other's person; two
//!   persons merge into U's unless D's person is already identified (PostHog refuses to merge
//!   two identified persons); the merged person keeps U's values over D's. U's person is then
//!   identified.
//! - `$groupidentify` does not touch persons.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// The event properties PostHog lifts into person properties (plugin-server
/// `src/utils/db/eventToPersonProperties.ts`).
pub const LIFTED: [&str; 33] = [
    "$app_build",
    "$app_name",
    "$app_namespace",
    "$app_version",
    "$browser",
    "$browser_version",
    "$device_type",
    "$current_url",
    "$pathname",
    "$os",
    "$os_version",
    "$referring_domain",
    "$referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_name",
    "utm_term",
    "gclid",
    "gad_source",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "twclid",
    "li_fat_id",
    "mc_cid",
    "igshid",
    "ttclid",
    "rdt_cid",
];

#[derive(Debug, Default, Clone)]
struct Person {
    properties: Map<String, Value>,
    identified: bool,
}

/// A project's persons.
#[derive(Debug, Default, Clone)]
pub struct Persons {
    /// distinct id → person number.
    ids: HashMap<String, usize>,
    /// Person number → the person (`None` once merged away).
    persons: Vec<Option<Person>>,
}

impl Persons {
    /// A person created before the migration (a live SDK's identify): `distinct_id` with
    /// `properties`.
    pub fn seed(&mut self, distinct_id: &str, properties: Map<String, Value>) {
        let person = self.person_of(distinct_id);
        let slot = self.persons[person].as_mut().expect("live person");
        slot.properties.extend(properties);
        slot.identified = true;
    }

    /// Applies one stored event.
    pub fn ingest(&mut self, event: &Value) {
        let name = event["event"].as_str().unwrap_or_default();
        let Some(distinct_id) = event["distinct_id"].as_str() else {
            return;
        };
        if name == "$groupidentify" {
            return;
        }
        let properties = event["properties"].as_object().cloned().unwrap_or_default();
        if name == "$create_alias" {
            if let Some(alias) = properties.get("alias").and_then(Value::as_str) {
                self.alias(distinct_id, alias);
            }
            return;
        }
        let person = self.person_of(distinct_id);
        let mut set = properties
            .get("$set")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut set_once = properties
            .get("$set_once")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for key in LIFTED {
            if let Some(value) = properties.get(key) {
                set.entry(key).or_insert_with(|| value.clone());
                set_once
                    .entry(format!("$initial_{}", key.trim_start_matches('$')))
                    .or_insert_with(|| value.clone());
            }
        }
        let slot = self.persons[person].as_mut().expect("live person");
        for (key, value) in set_once {
            slot.properties.entry(key).or_insert(value);
        }
        slot.properties.extend(set);
    }

    /// The properties of the person `distinct_id` belongs to, if it has one.
    pub fn properties(&self, distinct_id: &str) -> Option<&Map<String, Value>> {
        let person = *self.ids.get(distinct_id)?;
        self.persons[person]
            .as_ref()
            .map(|person| &person.properties)
    }

    /// Whether two distinct ids belong to one person.
    pub fn same_person(&self, one: &str, other: &str) -> bool {
        matches!((self.ids.get(one), self.ids.get(other)), (Some(a), Some(b)) if a == b)
    }

    fn person_of(&mut self, distinct_id: &str) -> usize {
        if let Some(person) = self.ids.get(distinct_id) {
            return *person;
        }
        self.persons.push(Some(Person::default()));
        let person = self.persons.len() - 1;
        self.ids.insert(distinct_id.to_owned(), person);
        person
    }

    fn alias(&mut self, user: &str, device: &str) {
        match (self.ids.get(user).copied(), self.ids.get(device).copied()) {
            (None, None) => {
                let person = self.person_of(user);
                self.ids.insert(device.to_owned(), person);
            }
            (Some(person), None) => {
                self.ids.insert(device.to_owned(), person);
            }
            (None, Some(person)) => {
                self.ids.insert(user.to_owned(), person);
            }
            (Some(into), Some(other)) if into != other => {
                if self.persons[other].as_ref().is_some_and(|p| p.identified) {
                    return;
                }
                let merged = self.persons[other].take().expect("live person");
                for person in self.ids.values_mut() {
                    if *person == other {
                        *person = into;
                    }
                }
                let slot = self.persons[into].as_mut().expect("live person");
                for (key, value) in merged.properties {
                    slot.properties.entry(key).or_insert(value);
                }
            }
            _ => {}
        }
        let person = self.ids[user];
        self.persons[person]
            .as_mut()
            .expect("live person")
            .identified = true;
    }
}
