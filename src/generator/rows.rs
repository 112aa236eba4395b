//! Builds one export row for the next step of a simulated session.
//!
//! [`next_row`] only composes: each part of the row has its own function, called in the
//! order the row's fields are written. Every random draw of a part happens inside it, in
//! field order, so the same seed gives the same bytes; keep that order when changing a part.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::events::{choose_event, group_identify, user_properties};
use super::population::{Device, Population, Session, Source, User};
use super::row::RowObject;
use super::text::pick;
use super::{GeneratedRow, Intent, text};
use crate::outcome::SkipReason;

/// Amplitude's export time format: UTC, no zone, six fraction digits.
const EXPORT_TIME: &str = "%Y-%m-%d %H:%M:%S%.6f";

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

/// The event a session step emits, before it becomes a row.
struct StepEvent {
    event_type: String,
    properties: Value,
    /// A user logs in on the device with this `$identify`.
    login: bool,
    intent: Intent,
}

/// Counts one more event in the session: whether it is the session's first and its last.
fn count_step(session: &mut Session) -> (bool, bool) {
    let first = session.emitted == 0;
    session.emitted += 1;
    session.event_counter += 1;
    let last = session.emitted == session.planned;
    (first, last)
}

/// The step's event: a login (`$identify`), a session marker, or the device's next event.
fn step_event(
    rng: &mut impl Rng,
    device: &mut Device,
    session: &Session,
    first: bool,
    last: bool,
) -> StepEvent {
    let can_log_in = device.current_user.is_none() && device.next_owner < device.owners.len();
    if can_log_in && !first && rng.random_bool(0.15) {
        let user = device.owners[device.next_owner];
        device.next_owner += 1;
        device.current_user = Some(user);
        StepEvent {
            event_type: "$identify".to_owned(),
            properties: json!({}),
            login: true,
            intent: Intent::Map,
        }
    } else if session.with_markers && first {
        session_marker(
            rng,
            &[
                "session_start",
                "session_start",
                "[Amplitude] Start Session",
            ],
        )
    } else if session.with_markers && last {
        session_marker(
            rng,
            &["session_end", "session_end", "[Amplitude] End Session"],
        )
    } else {
        let (event_type, properties) =
            choose_event(rng, device.source, !device.installed, session.event_counter);
        device.installed = true;
        StepEvent {
            event_type,
            properties,
            login: false,
            intent: Intent::Map,
        }
    }
}

/// A session start or end marker, one of `names`: the mapping skips it.
fn session_marker(rng: &mut impl Rng, names: &[&str]) -> StepEvent {
    StepEvent {
        event_type: pick(rng, names).to_owned(),
        properties: json!({}),
        login: false,
        intent: Intent::Skip(SkipReason::SessionMarker),
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
    row.set(
        "app",
        if rng.random_bool(0.005) {
            json!(project_id.to_string())
        } else {
            json!(project_id)
        },
    );
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
    row.set(
        "event_id",
        if rng.random_bool(0.01) {
            json!(session.event_counter.to_string())
        } else {
            json!(session.event_counter)
        },
    );
    row.set(
        "session_id",
        if rng.random_bool(0.005) {
            json!(session.session_id.to_string())
        } else {
            json!(session.session_id)
        },
    );
}

/// Time fields: the main one in one of the variants exports contain, then the upload times.
fn set_times(
    rng: &mut impl Rng,
    row: &mut RowObject,
    event_time: DateTime<Utc>,
    upload_time: DateTime<Utc>,
) {
    let (event_time_value, client_time_value) = time_variants(rng, event_time);
    row.set("event_time", event_time_value);
    row.set("client_event_time", client_time_value);
    row.set(
        "client_upload_time",
        format_time(upload_time - Duration::milliseconds(rng.random_range(50..900))),
    );
    row.set(
        "server_received_time",
        format_time(upload_time - Duration::milliseconds(rng.random_range(1..50))),
    );
    row.set("server_upload_time", format_time(upload_time));
    row.set(
        "processed_time",
        format_time(upload_time + Duration::seconds(rng.random_range(1..30))),
    );
}

/// Platform and device fields, reused per platform the way Amplitude does.
fn set_platform_fields(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    match device.source {
        Source::Web | Source::Segment => set_browser_fields(rng, row, device),
        Source::Ios | Source::Android => set_mobile_fields(rng, row, device),
        Source::HttpApi => {
            row.set("platform", Value::Null);
            row.set("library", "http/2.0");
            row.set("os_name", Value::Null);
            row.set("os_version", Value::Null);
        }
    }
}

/// A browser's fields, from Amplitude's web SDK or through Segment: `os_*` hold the browser.
fn set_browser_fields(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    row.set(
        "platform",
        if device.source == Source::Web {
            json!("Web")
        } else {
            Value::Null
        },
    );
    row.set(
        "library",
        if device.source == Source::Web {
            json!(pick(
                rng,
                &[
                    "amplitude-ts/2.11.0",
                    "amplitude-js/8.21.9",
                    "amplitude-ts/2.7.4"
                ]
            ))
        } else {
            json!("segment")
        },
    );
    row.set("os_name", device.browser.0);
    row.set(
        "os_version",
        if rng.random_bool(0.02) {
            json!(126)
        } else {
            json!(device.browser.1)
        },
    );
    row.set("device_family", device.family);
    row.set(
        "device_type",
        if rng.random_bool(0.5) {
            json!(device.family)
        } else {
            Value::Null
        },
    );
    row.set("device_model", Value::Null);
}

/// An iOS or Android device's fields, with its app versions.
fn set_mobile_fields(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    let ios = device.source == Source::Ios;
    row.set("platform", if ios { "iOS" } else { "Android" });
    row.set(
        "library",
        if ios {
            "amplitude-swift/1.4.0"
        } else {
            "amplitude-android/2.9.2"
        },
    );
    row.set("os_name", if ios { "ios" } else { "android" });
    row.set("os_version", device.os_version);
    row.set("device_family", device.family);
    row.set("device_type", device.model);
    row.set("device_model", device.model);
    row.set(
        "device_manufacturer",
        if rng.random_bool(0.2) {
            Value::Null
        } else {
            json!(device.manufacturer)
        },
    );
    row.set("device_brand", device.manufacturer);
    row.set("device_carrier", device.carrier);
    row.set("version_name", device.app_version);
    row.set("start_version", device.start_version);
}

/// Geography, as Amplitude resolved it, and the device's IP address.
fn set_location(rng: &mut impl Rng, row: &mut RowObject, device: &Device) {
    let place = &text::PLACES[device.place];
    row.set(
        "country",
        if rng.random_bool(0.05) {
            Value::Null
        } else {
            json!(place.country)
        },
    );
    row.set("region", place.region);
    row.set("city", place.city);
    row.set("dma", place.dma.map_or(Value::Null, |dma| json!(dma)));
    row.set("language", place.language);
    let (lat, lng) = match rng.random_range(0..10) {
        0..=5 => (Value::Null, Value::Null),
        6..=8 => (json!(place.lat), json!(place.lng)),
        _ => (json!(place.lat.round() as i64), json!("n/a")),
    };
    row.set("location_lat", lat);
    row.set("location_lng", lng);
    row.set(
        "ip_address",
        if rng.random_bool(0.1) {
            Value::Null
        } else {
            json!(device.ip)
        },
    );
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

fn event_delay(rng: &mut impl Rng) -> Duration {
    match rng.random_range(0..100) {
        0..=89 => Duration::milliseconds(rng.random_range(200..60_000)),
        90..=98 => Duration::milliseconds(rng.random_range(60_000..3_600_000)),
        // Offline mobile devices upload days later.
        _ => Duration::milliseconds(rng.random_range(3_600_000..259_200_000)),
    }
}

pub fn format_time(time: DateTime<Utc>) -> String {
    time.format(EXPORT_TIME).to_string()
}

/// `event_time` and `client_event_time` in the variants real exports contain.
fn time_variants(rng: &mut impl Rng, time: DateTime<Utc>) -> (Value, Value) {
    let standard = format_time(time);
    let event_time = match rng.random_range(0..100) {
        0..=84 => json!(standard),
        85..=88 => json!(time.format("%Y-%m-%d %H:%M:%S").to_string()),
        89..=91 => json!(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        92..=93 => {
            let offset = FixedOffset::east_opt(2 * 3600).expect("valid offset");
            json!(
                time.with_timezone(&offset)
                    .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                    .to_string()
            )
        }
        94..=95 => json!(time.format("%Y-%m-%d %H:%M:%S%.9f").to_string()),
        96..=97 => Value::Null,
        // Garbage in event_time: the client time is used instead.
        _ => json!(pick(
            rng,
            &[
                "2024-02-30 10:00:00.000000",
                "yesterday",
                "2024-07-06 24:00:00"
            ]
        )),
    };
    (event_time, json!(standard))
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
