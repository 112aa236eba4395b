//! Builds one export row for the next step of a simulated session.
//!
//! [`next_row`] only composes: each part of the row has its own function, called in the
//! order the row's fields are written. Every random draw of a part happens inside it, in
//! field order, so the same seed gives the same bytes; keep that order when changing a part.
//! The step's event comes from [`super::step`]; the time fields from [`super::times`], the
//! device's from [`super::device_fields`]; the ids, properties and fixed fields are here.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::device_fields::{set_location, set_platform_fields};
use super::events::{group_identify, user_properties};
use super::population::{Device, Population, Session, Source, User};
use super::row::{RowObject, sometimes_text};
use super::step::{StepEvent, count_step, step_event};
use super::text::pick;
use super::times::{event_delay, set_times};
use super::{GeneratedRow, Intent, text};
use crate::outcome::SkipReason;

pub fn next_row(
    rng: &mut impl Rng,
    population: &mut Population,
    session: &mut Session,
    upload_time: DateTime<Utc>,
    project_id: u64,
) -> GeneratedRow {
    let event_time = upload_time - event_delay(rng);
    let (first, last) = count_step(session);
    let event = step_event(
        rng,
        &mut population.devices[session.device],
        session,
        first,
        last,
    );

    let device = &population.devices[session.device];
    let user = device.current_user.map(|index| &population.users[index]);
    let mut row = RowObject::new();
    set_row_ids(
        rng,
        &mut row,
        device,
        &event.event_type,
        session,
        project_id,
    );
    set_user_and_device_ids(rng, &mut row, device, user);
    set_event_and_session_ids(rng, &mut row, &event.event_type, session, upload_time);
    set_times(rng, &mut row, event_time, upload_time);
    set_platform_fields(rng, &mut row, device);
    set_location(rng, &mut row, device);
    set_paying(rng, &mut row);
    let login = event.login;
    let intent = set_properties(rng, &mut row, event, user);
    set_fixed_fields(&mut row, login);
    vary_field_order(rng, &mut row);
    GeneratedRow {
        line: row.to_line(),
        upload_time,
        intent,
    }
}

/// `$insert_id`, `$schema`, `amplitude_id` and `app`, with the quirks real exports have.
fn set_row_ids(
    rng: &mut impl Rng,
    row: &mut RowObject,
    device: &Device,
    event_type: &str,
    session: &Session,
    project_id: u64,
) {
    row.set(
        "$insert_id",
        insert_id(rng, device.source, event_type, session.event_counter),
    );
    row.set(
        "$schema",
        if rng.random_bool(0.3) {
            json!(12)
        } else {
            Value::Null
        },
    );
    row.set(
        "amplitude_id",
        if rng.random_bool(0.01) {
            json!(format!(" {} ", device.amplitude_id))
        } else {
            json!(device.amplitude_id)
        },
    );
    row.set("app", sometimes_text(rng, 0.005, project_id));
}

/// `user_id` (null while anonymous; sometimes refused, too long or numeric) and `device_id`
/// (sometimes absent on HTTP-API rows of a known user, sometimes refused).
fn set_user_and_device_ids(
    rng: &mut impl Rng,
    row: &mut RowObject,
    device: &Device,
    user: Option<&User>,
) {
    let user_id: Value = match user {
        None => Value::Null,
        Some(_) if rng.random_bool(0.01) => json!(pick(rng, text::REFUSED_IDS)),
        Some(_) if rng.random_bool(0.001) => json!("x".repeat(201)),
        Some(user) if user.numeric => json!(user.id.parse::<i64>().unwrap_or(0)),
        Some(user) => json!(user.id),
    };
    let device_id: Value =
        if device.source == Source::HttpApi && user.is_some() && rng.random_bool(0.5) {
            Value::Null
        } else if rng.random_bool(0.003) {
            json!(pick(rng, text::REFUSED_IDS))
        } else {
            json!(device.id)
        };
    row.set("user_id", user_id);
    row.set("device_id", device_id);
}

/// `uuid`, `event_type`, `event_id` and `session_id`.
fn set_event_and_session_ids(
    rng: &mut impl Rng,
    row: &mut RowObject,
    event_type: &str,
    session: &Session,
    upload_time: DateTime<Utc>,
) {
    row.set("uuid", row_uuid(rng, upload_time));
    row.set("event_type", event_type);
    row.set("event_id", sometimes_text(rng, 0.01, session.event_counter));
    row.set("session_id", sometimes_text(rng, 0.005, session.session_id));
}

/// `paying` in any of the types exports hold it in, and `is_attribution_event`.
fn set_paying(rng: &mut impl Rng, row: &mut RowObject) {
    row.set(
        "paying",
        match rng.random_range(0..20) {
            0 => json!(true),
            1 => json!("true"),
            2 => json!(1),
            3 => json!("0"),
            4 => json!(false),
            5 => json!("maybe"),
            _ => Value::Null,
        },
    );
    row.set("is_attribution_event", false);
}

/// `event_properties`, `user_properties`, `groups` and `group_properties`; the row's intent
/// (a `$groupidentify` without groups is skipped).
fn set_properties(
    rng: &mut impl Rng,
    row: &mut RowObject,
    event: StepEvent,
    user: Option<&User>,
) -> Intent {
    let company = user
        .and_then(|user| user.company)
        .map(|company| text::COMPANIES[company]);
    if event.event_type == "$groupidentify" {
        let (groups_value, group_properties, empty) = group_identify(rng, company);
        row.set("groups", groups_value);
        row.set("group_properties", group_properties);
        row.set("event_properties", json!({}));
        row.set("user_properties", json!({}));
        if empty {
            return Intent::Skip(SkipReason::GroupidentifyWithoutGroups);
        }
        return event.intent;
    }
    row.set(
        "event_properties",
        if rng.random_bool(0.003) {
            json!("x")
        } else {
            event.properties
        },
    );
    row.set(
        "user_properties",
        user_properties(
            rng,
            user.map(|user| (user.plan, user.utm_source, user.email.as_str())),
            event.login,
        ),
    );
    set_user_groups(rng, row, company);
    event.intent
}

/// An ordinary event's `groups` and `group_properties`: the user's company, if any.
fn set_user_groups(rng: &mut impl Rng, row: &mut RowObject, company: Option<&str>) {
    match company {
        Some(company) if rng.random_bool(0.1) => row.set("groups", json!({ "company": company })),
        Some(company) => {
            row.set("groups", json!({ "company": [company] }));
            row.set(
                "group_properties",
                json!({ "company": { company: { "plan": "enterprise", "seats": 40 } } }),
            );
        }
        None => {
            row.set("groups", json!({}));
            row.set("group_properties", json!({}));
        }
    }
}

/// The fields every row has in the same form: `data` (which records a login), `data_type`,
/// and the attribution and plan fields exports carry empty.
fn set_fixed_fields(row: &mut RowObject, login: bool) {
    row.set("data", json!({"path": "/2/httpapi", "user_properties_updated": login, "group_first_event": {}, "group_ids": {}}));
    row.set("data_type", "event");
    row.set("sample_rate", Value::Null);
    row.set("adid", Value::Null);
    row.set("idfa", Value::Null);
    row.set("amplitude_attribution_ids", Value::Null);
    row.set("plan", json!({}));
    row.set("partner_id", Value::Null);
}

/// One row in ten reversed, one in ten rotated: exporters write keys in more than one order.
fn vary_field_order(rng: &mut impl Rng, row: &mut RowObject) {
    match rng.random_range(0..10) {
        0 => row.reverse(),
        1 => row.rotate(rng.random_range(1..40)),
        _ => {}
    }
}

fn insert_id(rng: &mut impl Rng, source: Source, event_type: &str, counter: i64) -> Value {
    match source {
        _ if rng.random_bool(0.05) => Value::Null,
        Source::Segment => json!(format!("ajs-next-{:x}", rng.random::<u64>())),
        Source::HttpApi => json!(format!("{event_type}:{counter}")),
        _ => json!(format!(
            "{:x}-{:x}",
            rng.random::<u32>(),
            rng.random::<u64>()
        )),
    }
}

fn row_uuid(rng: &mut impl Rng, upload_time: DateTime<Utc>) -> Value {
    let bytes: [u8; 16] = rng.random();
    let hex = hex::encode(bytes);
    match rng.random_range(0..100) {
        // Missing or malformed: the mapping derives a UUIDv5.
        0..=2 => Value::Null,
        3 => json!(&hex[0..32]),
        // v1-style ids of old data.
        4..=8 => {
            let ticks = (upload_time.timestamp_millis() as u64).wrapping_mul(10_000);
            json!(format!(
                "{:08x}-{:04x}-11ea-{}-{}",
                ticks & 0xffff_ffff,
                (ticks >> 32) & 0xffff,
                &hex[16..20],
                &hex[20..32]
            ))
        }
        9..=10 => json!(
            format!(
                "{}-{}-4{}-a{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[13..16],
                &hex[17..20],
                &hex[20..32]
            )
            .to_uppercase()
        ),
        _ => json!(format!(
            "{}-{}-4{}-9{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )),
    }
}
