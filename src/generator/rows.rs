//! Builds one export row for the next step of a simulated session.
//!
//! [`next_row`] only composes: each part of the row has its own function, called in the
//! order the row's fields are written. Every random draw of a part happens inside it, in
//! field order, so the same seed gives the same bytes; keep that order when changing a part.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use super::population::{Device, Population, Session, Source, User};
use super::row::RowObject;
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

fn pick<'a>(rng: &mut impl Rng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or_default()
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

fn user_properties(
    rng: &mut impl Rng,
    user: Option<(&str, Option<&str>, &str)>,
    login: bool,
) -> Value {
    let Some((plan, utm_source, email)) = user else {
        return match rng.random_range(0..4) {
            0 => Value::Null,
            1 => json!({}),
            _ => {
                json!({"initial_utm_source": utm_or_empty(rng), "initial_referring_domain": "EMPTY", "initial_gclid": "EMPTY"})
            }
        };
    };
    let utm = utm_source.map_or(json!("EMPTY"), |source| json!(source));
    if login {
        // An identify call: operator objects, as Amplitude's identify API records them.
        return json!({
            "$set": {"plan": plan, "email": email, "initial_utm_campaign": "EMPTY"},
            "$setOnce": {"initial_utm_source": utm, "first_seen_plan": plan},
            "$add": {"logins": 1},
            "$unset": {"trial_banner": "-"},
        });
    }
    match rng.random_range(0..10) {
        0 => {
            json!({"plan": plan, "$set": {"plan": plan, "last_seen_page": "/pricing"}, "$append": {"features": "export"}})
        }
        1 => json!([plan]),
        _ => json!({
            "plan": plan,
            "email": email,
            "initial_utm_source": utm,
            "initial_gclid": "EMPTY",
            "initial_referrer": "EMPTY",
            "cohorts": ["beta", "power-users"],
            "settings": {"theme": "dark", "notifications": {"email": true}},
            "nickname": if rng.random_bool(0.1) { json!("Zoë 🌟") } else { Value::Null },
        }),
    }
}

fn utm_or_empty(rng: &mut impl Rng) -> Value {
    if rng.random_bool(0.5) {
        json!("EMPTY")
    } else {
        json!(pick(rng, text::UTM_SOURCES))
    }
}

fn group_identify(rng: &mut impl Rng, company: Option<&str>) -> (Value, Value, bool) {
    let company = company.unwrap_or_else(|| pick(rng, text::COMPANIES));
    match rng.random_range(0..10) {
        0 => (json!({}), json!({}), true),
        1 => (json!({"company": []}), json!({}), true),
        2 => (
            json!({"company": company, "team": ["core"]}),
            json!({"company": {company: {"plan": "pro"}}, "team": {"core": {"size": 12}}}),
            false,
        ),
        _ => (
            json!({"company": [company]}),
            json!({"company": {company: {"plan": "enterprise", "seats": rng.random_range(5..500), "industry": "Software", "address": {"city": "Berlin"}}}}),
            false,
        ),
    }
}

fn page_properties(rng: &mut impl Rng) -> serde_json::Map<String, Value> {
    let (path, title) = *text::PAGES.choose(rng).unwrap_or(&text::PAGES[0]);
    let domain = pick(rng, text::DOMAINS);
    let url = format!("https://{domain}{path}");
    let mut props = serde_json::Map::new();
    props.insert("[Amplitude] Page Domain".into(), json!(domain));
    props.insert("[Amplitude] Page Path".into(), json!(path));
    props.insert("[Amplitude] Page Title".into(), json!(title));
    props.insert("[Amplitude] Page URL".into(), json!(url));
    if rng.random_bool(0.4) {
        let source = pick(rng, text::UTM_SOURCES);
        let campaign = pick(rng, text::UTM_CAMPAIGNS);
        props.insert(
            "[Amplitude] Page Location".into(),
            json!(format!("{url}?utm_source={source}&utm_campaign={campaign}")),
        );
        props.insert("utm_source".into(), json!(source));
        props.insert("utm_campaign".into(), json!(campaign));
        if rng.random_bool(0.3) {
            props.insert(
                "gclid".into(),
                json!(format!("Cj0K{:x}", rng.random::<u32>())),
            );
        }
    } else if rng.random_bool(0.5) {
        props.insert("[Amplitude] Page Location".into(), json!(url));
    }
    if rng.random_bool(0.5) {
        let (referrer, domain) = *text::REFERRERS.choose(rng).unwrap_or(&text::REFERRERS[0]);
        props.insert("referrer".into(), json!(referrer));
        props.insert("referring_domain".into(), json!(domain));
    }
    props.insert(
        "[Amplitude] Page Counter".into(),
        json!(rng.random_range(1..20)),
    );
    props.insert(
        "[Amplitude] Page View ID".into(),
        json!(format!("{:x}", rng.random::<u64>())),
    );
    props.insert(
        "[Amplitude] Viewport Height".into(),
        json!(rng.random_range(600..1400)),
    );
    props.insert(
        "[Amplitude] Viewport Width".into(),
        json!(rng.random_range(360..2560)),
    );
    props
}

fn element_properties(rng: &mut impl Rng, props: &mut serde_json::Map<String, Value>) {
    let (tag, class, id, text, href) = *text::ELEMENTS.choose(rng).unwrap_or(&text::ELEMENTS[0]);
    let mut set = |key: &str, value: &str| {
        if !value.is_empty() {
            props.insert(key.into(), json!(value));
        }
    };
    set("[Amplitude] Element Tag", tag);
    set("[Amplitude] Element Class", class);
    set("[Amplitude] Element ID", id);
    set("[Amplitude] Element Text", text);
    set("[Amplitude] Element Href", href);
    props.insert(
        "[Amplitude] Element Position Left".into(),
        json!(rng.random_range(0..1200)),
    );
    props.insert(
        "[Amplitude] Element Position Top".into(),
        json!(rng.random_range(0..4000)),
    );
    props.insert(
        "[Amplitude] Element Hierarchy".into(),
        json!([{"tag": "body"}, {"tag": "div", "classes": ["container"]}]),
    );
    if rng.random_bool(0.01) {
        // A very long text: the chain keeps its first 400 characters.
        props.insert(
            "[Amplitude] Element Text".into(),
            json!("Lorem ipsum “dolor” sit amet ".repeat(30)),
        );
    }
}

fn revenue_properties(rng: &mut impl Rng, props: &mut serde_json::Map<String, Value>) {
    let (product, price) = *text::PRODUCTS.choose(rng).unwrap_or(&text::PRODUCTS[0]);
    let quantity = rng.random_range(1..4);
    props.insert("$productId".into(), json!(product));
    props.insert("$price".into(), json!(price));
    props.insert("$quantity".into(), json!(quantity));
    props.insert("$revenue".into(), json!(price * f64::from(quantity)));
    props.insert(
        "$revenueType".into(),
        json!(pick(rng, &["purchase", "subscription", "refund"])),
    );
    if rng.random_bool(0.5) {
        props.insert("$currency".into(), json!(pick(rng, &["USD", "EUR", "JPY"])));
    }
    props.insert("cart".into(), json!({"items": [{"sku": product, "qty": quantity, "price": price}], "coupon": Value::Null}));
}

/// Picks the next event of a session and its `event_properties`.
fn choose_event(
    rng: &mut impl Rng,
    source: Source,
    first_launch: bool,
    counter: i64,
) -> (String, Value) {
    let mut props = serde_json::Map::new();
    let name = match source {
        Source::Web => web_event(rng, &mut props),
        Source::Ios | Source::Android => mobile_event(rng, first_launch, &mut props),
        Source::HttpApi => http_api_event(rng, counter, &mut props),
        Source::Segment => segment_event(rng, &mut props),
    };
    (name, Value::Object(props))
}

/// A web SDK event: page views, autocapture, revenue, searches, features.
fn web_event(rng: &mut impl Rng, props: &mut serde_json::Map<String, Value>) -> String {
    match rng.random_range(0..100) {
        0..=34 => {
            *props = page_properties(rng);
            "[Amplitude] Page Viewed".into()
        }
        35..=54 => {
            *props = page_properties(rng);
            element_properties(rng, props);
            "[Amplitude] Element Clicked".into()
        }
        55..=59 => {
            element_properties(rng, props);
            "[Amplitude] Element Changed".into()
        }
        60..=62 => {
            props.insert("[Amplitude] Form ID".into(), json!("signup-form"));
            props.insert("[Amplitude] Form Destination".into(), json!("/api/signup"));
            if rng.random_bool(0.3) {
                element_properties(rng, props);
            }
            "[Amplitude] Form Submitted".into()
        }
        63 => {
            element_properties(rng, props);
            "[Amplitude] Rage Click".into()
        }
        64 => {
            element_properties(rng, props);
            "[Amplitude] Dead Click".into()
        }
        65..=66 => "[Amplitude] Form Started".into(),
        67 => {
            props.insert("[Amplitude] File Name".into(), json!("report-2024.pdf"));
            "[Amplitude] File Downloaded".into()
        }
        68..=69 => {
            props.insert(
                "[Amplitude] LCP".into(),
                json!({"value": rng.random_range(500.0..4000.0), "rating": "good"}),
            );
            "[Amplitude] Web Vitals".into()
        }
        70..=72 => {
            revenue_properties(rng, props);
            "Purchase".into()
        }
        73..=77 => {
            props.insert("query".into(), json!(pick(rng, text::SEARCH_TERMS)));
            props.insert("results".into(), json!(rng.random_range(0..50)));
            "Searched".into()
        }
        78..=82 => {
            props.insert("product".into(), json!({"id": pick(rng, &["sku-1", "sku-2"]), "tags": ["new", "sale"], "price": 12.5}));
            "Added To Cart".into()
        }
        83 => "Signed Up".into(),
        84 => {
            props.insert("$set".into(), json!({"sneaky": true}));
            props.insert("token".into(), json!("phc_should_not_pass"));
            props.insert("distinct_id".into(), json!("spoofed"));
            props.insert("$session_id".into(), json!("spoofed"));
            "Feature Used".into()
        }
        85..=86 => "$groupidentify".into(),
        87 => "Übersicht geöffnet 📊".into(),
        _ => {
            props.insert(
                "feature".into(),
                json!(pick(rng, &["export", "dashboards", "alerts"])),
            );
            props.insert("duration_ms".into(), json!(rng.random_range(10..10_000)));
            props.insert("ratio".into(), json!(0.25));
            props.insert("flags".into(), json!([true, false, Value::Null]));
            "Feature Used".into()
        }
    }
}

/// An iOS or Android SDK event; the first on a device is its install.
fn mobile_event(
    rng: &mut impl Rng,
    first_launch: bool,
    props: &mut serde_json::Map<String, Value>,
) -> String {
    match rng.random_range(0..100) {
        _ if first_launch => "[Amplitude] Application Installed".into(),
        0..=11 => "[Amplitude] Application Opened".into(),
        12..=51 => {
            props.insert(
                "[Amplitude] Screen Name".into(),
                json!(pick(rng, text::SCREENS)),
            );
            "[Amplitude] Screen Viewed".into()
        }
        52..=57 => "[Amplitude] Application Backgrounded".into(),
        58 => {
            props.insert("[Amplitude] Version".into(), json!("3.1.4"));
            props.insert("[Amplitude] Previous Version".into(), json!("3.0.0"));
            "[Amplitude] Application Updated".into()
        }
        59..=60 => {
            props.insert("[Amplitude] Link URL".into(), json!("myapp://promo/spring"));
            "[Amplitude] Deep Link Opened".into()
        }
        61..=64 => {
            revenue_properties(rng, props);
            "revenue_amount".into()
        }
        65..=66 => "$groupidentify".into(),
        _ => {
            props.insert("screen".into(), json!(pick(rng, text::SCREENS)));
            props.insert("items".into(), json!(rng.random_range(0..10)));
            "Item Viewed".into()
        }
    }
}

/// An event sent through Amplitude's HTTP API by a backend.
fn http_api_event(
    rng: &mut impl Rng,
    counter: i64,
    props: &mut serde_json::Map<String, Value>,
) -> String {
    match rng.random_range(0..10) {
        0..=3 => {
            props.insert("Total Price".into(), json!(6396.0));
            props.insert("Drop Id".into(), json!(counter % 7));
            props.insert("Drop Type".into(), json!("Sale"));
            "Property Drop Purchased".into()
        }
        4..=5 => {
            revenue_properties(rng, props);
            "Invoice Paid".into()
        }
        6 => "$groupidentify".into(),
        _ => {
            props.insert("plan".into(), json!(pick(rng, text::PLANS)));
            "Subscription Renewed".into()
        }
    }
}

/// An event forwarded by Segment.
fn segment_event(rng: &mut impl Rng, props: &mut serde_json::Map<String, Value>) -> String {
    match rng.random_range(0..10) {
        0..=3 => {
            *props = page_properties(rng);
            "[Amplitude] Page Viewed".into()
        }
        4..=6 => {
            props.insert("product_id".into(), json!("sku-2"));
            props.insert("name".into(), json!("Pro plan"));
            "Product Viewed".into()
        }
        _ => {
            revenue_properties(rng, props);
            "Order Completed".into()
        }
    }
}
