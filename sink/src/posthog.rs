//! The PostHog events the sidecar sends for its outbox entries (`$create_alias`,
//! `$groupidentify`). How they are sent, and what PostHog's answers mean, is the
//! `posthog_client` crate's, shared with `migrate`.

use serde_json::{Value, json};

use crate::store::Outgoing;

/// The PostHog event of an outbox entry.
pub fn event(entry: &Outgoing) -> Value {
    match entry {
        // distinct_id = user, alias = device: the device's anonymous person merges into the
        // user's. The reverse direction breaks on a user's second device.
        Outgoing::Alias {
            device_id,
            user_id,
            timestamp,
            uuid,
        } => json!({
            "event": "$create_alias",
            "distinct_id": user_id,
            "timestamp": timestamp,
            "uuid": uuid,
            "properties": {"alias": device_id, "$geoip_disable": true},
        }),
        Outgoing::Group {
            group_type,
            group_key,
            properties,
            timestamp,
            uuid,
            ..
        } => json!({
            "event": "$groupidentify",
            // posthog-python's group_identify uses the same distinct id.
            "distinct_id": format!("${group_type}_{group_key}"),
            "timestamp": timestamp,
            "uuid": uuid,
            "properties": {"$group_type": group_type, "$group_key": group_key, "$group_set": Value::Object(properties.clone()), "$geoip_disable": true},
        }),
        // Keyed by the person's final distinct id, like its alias: PostHog processes both in
        // order, the merge first.
        Outgoing::Person {
            person,
            properties,
            timestamp,
            uuid,
        } => json!({
            "event": "$set",
            "distinct_id": person,
            "timestamp": timestamp,
            "uuid": uuid,
            "properties": Value::Object(properties.clone()),
        }),
    }
}
