//! Persons as PostHog ends with them (issue 22): what the capture stand-in stored, replayed
//! through PostHog's person rules (`posthog_persons`), against what the export says by event
//! time. The export: users whose `plan` changes over 60 days, a first-touch referrer that
//! differs row by row (so the oldest must win), anonymous rows before a user logs in, devices
//! handed on from one user to another whose first user's rows were uploaded weeks late, and
//! one row in twelve uploaded five days late.

use std::collections::{BTreeMap, BTreeSet};

use amplitude_posthog_test_support::posthog_capture::{PostHogCapture, StoredEvent};
use amplitude_posthog_test_support::posthog_persons::Persons;
use chrono::{Days, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value, json};

use crate::migrate::{KEY, Setup, read_all, stderr};
use crate::migrate_order::{killed_when, write_gzip};

const PLANS: [&str; 4] = ["free", "starter", "team", "enterprise"];

/// One row of the export, as the test knows it.
#[derive(Debug, Clone)]
struct Row {
    time: NaiveDateTime,
    user: Option<String>,
    device: String,
    plan: Option<&'static str>,
    referrer: String,
    /// The day of the file it is uploaded in.
    uploaded: NaiveDate,
}

/// What the export says by event time.
struct Truth {
    /// Per user: (newest plan, email, oldest `$initial_referrer` of its person).
    persons: BTreeMap<String, (String, String, String)>,
    /// Per device: the user of its earliest identified row.
    devices: BTreeMap<String, String>,
}

/// A tiny deterministic generator (xorshift), so the export depends on the seed only.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")
}

/// `users` users over 60 days, about `rows_per_user` rows each.
fn rows(users: usize, rows_per_user: u64, seed: u64) -> Vec<Row> {
    let mut dice = Dice(seed.max(1) * 0x9E37_79B9_7F4A_7C15);
    let mut rows = Vec::new();
    for user in 0..users {
        let name = format!("user-{user}");
        let period = 5 + (user as u64 % 11);
        let own = format!("dev-{user}");
        let anonymous_before = user % 3 == 0;
        let count = rows_per_user / 2 + dice.next(rows_per_user);
        for index in 0..count {
            let day = dice.next(60);
            let time = start().and_hms_milli_opt(0, 0, 0, 0).expect("time")
                + chrono::Duration::days(day as i64)
                + chrono::Duration::milliseconds(dice.next(86_400_000) as i64);
            let plan = PLANS[((day / period) as usize + user) % PLANS.len()];
            let late = dice.next(12) == 0;
            let uploaded = time.date() + Days::new(if late { 5 } else { 0 });
            // A user whose first rows were anonymous: rows before day 10 carry no user id.
            let identified = !(anonymous_before && day < 10 && index % 2 == 0);
            rows.push(Row {
                time,
                user: identified.then(|| name.clone()),
                device: own.clone(),
                plan: identified.then_some(plan),
                referrer: format!("ref-{user}-{}", time.format("%m%d%H%M%S%3f")),
                uploaded,
            });
        }
        // A device handed on: user k used it on days 20–29 (uploaded on day 50, an offline
        // device synced late), user k + users/2 from day 30 on (uploaded as it happened).
        if user < users / 4 {
            let device = format!("shared-{user}");
            for (owner, first_day, uploaded_on) in
                [(user, 20, Some(50)), (user + users / 2, 30, None)]
            {
                for _ in 0..3 {
                    let day = first_day + dice.next(10);
                    let time = start().and_hms_milli_opt(0, 0, 0, 0).expect("time")
                        + chrono::Duration::days(day as i64)
                        + chrono::Duration::milliseconds(dice.next(86_400_000) as i64);
                    let period = 5 + (owner as u64 % 11);
                    rows.push(Row {
                        time,
                        user: Some(format!("user-{owner}")),
                        device: device.clone(),
                        plan: Some(PLANS[((day / period) as usize + owner) % PLANS.len()]),
                        referrer: format!("ref-{owner}-{}", time.format("%m%d%H%M%S%3f")),
                        uploaded: uploaded_on.map_or(time.date(), |day| start() + Days::new(day)),
                    });
                }
            }
        }
    }
    rows
}

fn amplitude_line(row: &Row, number: usize) -> Vec<u8> {
    let mut user_properties = Map::new();
    if let Some(plan) = row.plan {
        user_properties.insert("plan".into(), json!(plan));
    }
    if let Some(user) = &row.user {
        user_properties.insert("email".into(), json!(format!("{user}@example.com")));
    }
    user_properties.insert("initial_referrer".into(), json!(row.referrer));
    let mut line = json!({
        "event_type": "Page Viewed",
        "device_id": row.device,
        "event_time": row.time.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        "$insert_id": format!("insert-{number}"),
        "user_properties": user_properties,
        "event_properties": {"page": "/pricing"},
    });
    if let Some(user) = &row.user {
        line["user_id"] = json!(user);
    }
    serde_json::to_vec(&line).expect("JSON")
}

/// The export on disk (hourly files named as Amplitude names them, late rows in the files of
/// the hour they were uploaded), a key, and what the rows say by event time.
fn export(users: usize, rows_per_user: u64, seed: u64) -> (Setup, Truth) {
    let rows = rows(users, rows_per_user, seed);
    let dir = tempfile::tempdir().expect("tmp");
    let export = dir.path().join("export");
    std::fs::create_dir_all(&export).expect("export dir");
    let mut files: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (number, row) in rows.iter().enumerate() {
        let name = format!(
            "4242_{}_{}#{}.json.gz",
            row.uploaded,
            row.time.format("%-H"),
            if row.uploaded == row.time.date() {
                0
            } else {
                90
            }
        );
        files
            .entry(name)
            .or_default()
            .push(amplitude_line(row, number));
    }
    for (name, lines) in files {
        write_gzip(&export.join(name), &lines);
    }
    std::fs::write(dir.path().join("key"), format!("{KEY}\n")).expect("key");
    let lines = read_all(&export);
    (Setup { dir, lines }, truth(&rows))
}

/// Each device's earliest user, and each user's person by event time: its own rows and the
/// anonymous rows of the devices it is the earliest user of.
fn truth(rows: &[Row]) -> Truth {
    let mut devices: BTreeMap<String, (NaiveDateTime, String)> = BTreeMap::new();
    for row in rows {
        if let Some(user) = &row.user {
            let entry = devices
                .entry(row.device.clone())
                .or_insert((row.time, user.clone()));
            if (row.time, user) < (entry.0, &entry.1) {
                *entry = (row.time, user.clone());
            }
        }
    }
    let devices: BTreeMap<String, String> = devices
        .into_iter()
        .map(|(device, (_, user))| (device, user))
        .collect();
    let mut by_person: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let person = match &row.user {
            Some(user) => user.clone(),
            None => devices[&row.device].clone(),
        };
        by_person.entry(person).or_default().push(row);
    }
    let persons = by_person
        .into_iter()
        .map(|(person, mut rows)| {
            rows.sort_by_key(|row| row.time);
            let plan = rows.iter().rev().find_map(|row| row.plan).expect("a plan");
            let referrer = rows[0].referrer.clone();
            let email = format!("{person}@example.com");
            (person, (plan.to_owned(), email, referrer))
        })
        .collect();
    Truth { persons, devices }
}

/// PostHog's persons after every stored event, in the order capture stored them, on top of
/// `live` persons (distinct id → properties) that existed before the migration.
fn replay(stored: &[StoredEvent], live: &BTreeMap<String, Map<String, Value>>) -> Persons {
    let mut persons = Persons::default();
    for (id, properties) in live {
        persons.seed(id, properties.clone());
    }
    let mut ordered: Vec<&StoredEvent> = stored.iter().collect();
    ordered.sort_by_key(|event| event.request);
    for event in ordered {
        persons.ingest(&event.event);
    }
    persons
}

fn is_person_update(event: &Value) -> bool {
    event["properties"]["$amplitude_person_update"] == true
}

/// The persons whose `plan`, `email` or `$initial_referrer` differ from `expected`.
fn wrong_persons(
    persons: &Persons,
    expected: &BTreeMap<String, (String, String, String)>,
) -> Vec<String> {
    expected
        .iter()
        .filter(|(user, (plan, email, referrer))| {
            let properties = persons.properties(user).cloned().unwrap_or_default();
            properties.get("plan") != Some(&json!(plan))
                || properties.get("email") != Some(&json!(email))
                || properties.get("$initial_referrer") != Some(&json!(referrer))
        })
        .map(|(user, values)| {
            format!(
                "{user}: expected {values:?}, PostHog has {:?}",
                persons.properties(user)
            )
        })
        .collect()
}

/// Devices whose alias is missing or goes to another user than their earliest.
fn misaliased(stored: &[StoredEvent], devices: &BTreeMap<String, String>) -> Vec<String> {
    let mut aliases: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for event in stored.iter().map(|stored| &stored.event) {
        if event["event"] == "$create_alias" {
            aliases
                .entry(event["properties"]["alias"].as_str().expect("alias"))
                .or_default()
                .insert(event["distinct_id"].as_str().expect("user"));
        }
    }
    devices
        .iter()
        .filter(|(device, user)| {
            aliases.get(device.as_str()) != Some(&BTreeSet::from([user.as_str()]))
        })
        .map(|(device, user)| {
            format!(
                "{device}: earliest user {user}, aliased to {:?}",
                aliases.get(device.as_str())
            )
        })
        .collect()
}

#[test]
fn every_person_ends_with_its_newest_values_and_every_device_with_its_earliest_user() {
    let (setup, truth) = export(240, 24, 11);
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(
        &capture.url(),
        &["--concurrency", "4", "--batch-size", "200"],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let stored = capture.stored();

    // Without the final updates, ingestion order decides (what the issue measured).
    let without: Vec<StoredEvent> = stored
        .iter()
        .filter(|event| !is_person_update(&event.event))
        .cloned()
        .collect();
    let stale = wrong_persons(&replay(&without, &BTreeMap::new()), &truth.persons);
    let persons = replay(&stored, &BTreeMap::new());
    let wrong = wrong_persons(&persons, &truth.persons);
    eprintln!(
        "{} persons, {} devices: {} stale without the final updates, {} with them",
        truth.persons.len(),
        truth.devices.len(),
        stale.len(),
        wrong.len()
    );
    assert!(
        !stale.is_empty(),
        "the export must make ingestion order matter"
    );
    assert!(
        wrong.is_empty(),
        "{} persons wrong: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let misaliased = misaliased(&stored, &truth.devices);
    assert!(misaliased.is_empty(), "{misaliased:#?}");
    for (device, user) in &truth.devices {
        assert!(
            persons.same_person(device, user),
            "{device} is not in {user}'s person"
        );
    }

    // One update per person, after every event and alias; the counts say so.
    let updates: Vec<&StoredEvent> = stored
        .iter()
        .filter(|event| is_person_update(&event.event))
        .collect();
    assert_eq!(updates.len(), truth.persons.len());
    let last_other = stored
        .iter()
        .filter(|event| !is_person_update(&event.event))
        .map(|event| event.request)
        .max()
        .expect("events");
    assert!(updates.iter().all(|update| update.request > last_other));
    assert!(
        text.contains(&format!(
            "person updates (each person's values by event time) sent {}, refused 0, pending 0",
            truth.persons.len()
        )),
        "{text}"
    );
}

#[test]
fn with_live_project_live_values_survive_and_history_fills_only_what_is_missing() {
    let (setup, truth) = export(120, 20, 12);
    let capture = PostHogCapture::start(KEY);
    let output = setup.migrate(&capture.url(), &["--live-project", "--batch-size", "200"]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let stored = capture.stored();
    for event in stored
        .iter()
        .filter(|event| !is_person_update(&event.event))
    {
        let properties = &event.event["properties"];
        assert!(
            properties.get("$set").is_none() && properties.get("$set_once").is_none(),
            "{}",
            event.event
        );
    }
    // Every other user had identified with PostHog's SDK before the backfill.
    let live: BTreeMap<String, Map<String, Value>> = truth
        .persons
        .keys()
        .enumerate()
        .filter(|(index, _)| index % 2 == 0)
        .map(|(_, user)| {
            let properties = json!({"plan": "live-plan", "email": "live@example.com", "$initial_referrer": "live-referrer"});
            (user.clone(), properties.as_object().cloned().expect("object"))
        })
        .collect();
    let persons = replay(&stored, &live);
    let mut wrong = Vec::new();
    for (user, (plan, email, referrer)) in &truth.persons {
        let properties = persons.properties(user).cloned().unwrap_or_default();
        let (plan, email) = match live.contains_key(user) {
            true => ("live-plan".to_owned(), "live@example.com".to_owned()),
            false => (plan.clone(), email.clone()),
        };
        // History holds the real first touch, live or not.
        if properties.get("plan") != Some(&json!(plan))
            || properties.get("email") != Some(&json!(email))
            || properties.get("$initial_referrer") != Some(&json!(referrer))
        {
            wrong.push(format!("{user}: {properties:?}"));
        }
    }
    eprintln!(
        "{} persons ({} live): {} wrong",
        truth.persons.len(),
        live.len(),
        wrong.len()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(misaliased(&stored, &truth.devices).is_empty());
}

#[test]
fn a_kill_while_the_person_updates_go_then_the_same_command_sends_each_once_more_at_most() {
    let (setup, truth) = export(100, 10, 13);
    let capture = PostHogCapture::start(KEY);
    let extra = ["--batch-size", "10", "--rate", "200"];
    let updates_sent = |stored: &[StoredEvent]| {
        stored
            .iter()
            .filter(|event| is_person_update(&event.event))
            .count()
    };
    killed_when(&setup, &capture, &extra, |stored| updates_sent(stored) > 0);
    let sent_before_kill = updates_sent(&capture.stored());
    assert!(
        sent_before_kill < truth.persons.len(),
        "the kill came after the final phase"
    );
    let output = setup.migrate(&capture.url(), &extra);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let stored = capture.stored();
    let mut uuids: BTreeMap<&str, usize> = BTreeMap::new();
    let mut people: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for event in stored
        .iter()
        .map(|stored| &stored.event)
        .filter(|event| is_person_update(event))
    {
        let uuid = event["uuid"].as_str().expect("uuid");
        *uuids.entry(uuid).or_default() += 1;
        people
            .entry(event["distinct_id"].as_str().expect("id"))
            .or_default()
            .insert(uuid);
    }
    let twice = uuids.values().filter(|count| **count > 1).count();
    eprintln!(
        "killed with {sent_before_kill} of {} person updates sent: {twice} sent twice",
        truth.persons.len()
    );
    assert!(uuids.values().all(|count| *count <= 2), "{uuids:?}");
    assert_eq!(people.len(), truth.persons.len());
    assert!(
        people.values().all(|uuids| uuids.len() == 1),
        "one update (one uuid) per person"
    );
    let wrong = wrong_persons(&replay(&stored, &BTreeMap::new()), &truth.persons);
    assert!(wrong.is_empty(), "{wrong:#?}");
}
