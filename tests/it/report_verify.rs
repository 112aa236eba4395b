//! The report after a real `migrate` (report.json equals the state's counts, report.html is one
//! self-contained page whose chart holds report.json's numbers) and `verify` against the query
//! API stand-in, which counts the events the capture stand-in stored: no difference, then
//! exactly the day whose events were hidden; a refused key and rate limits. The report of a
//! Vector-carried migration counts the export as a dry run does.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use amplitude_posthog::generator::{ExportLayout, Generator, GeneratorConfig};
use amplitude_posthog_test_support::posthog_capture::PostHogCapture;
use amplitude_posthog_test_support::posthog_query::{PostHogQuery, QueryFault};
use serde_json::Value;

use crate::migrate::{KEY, Setup, stderr, summary};

const PERSONAL_KEY: &str = "phx_personal_test_key_0123456789";
const PROJECT: u64 = 4242;

fn verify(setup: &Setup, host: &str, extra: &[&str]) -> Output {
    std::fs::write(setup.path("personal"), format!("{PERSONAL_KEY}\n")).expect("key");
    Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .arg("verify")
        .arg("--state")
        .arg(setup.path("state"))
        .args([
            "--posthog-app-host",
            host,
            "--project-id",
            &PROJECT.to_string(),
        ])
        .arg("--personal-api-key-file")
        .arg(setup.path("personal"))
        .args(["--initial-backoff-ms", "20"])
        .args(extra)
        .output()
        .expect("verify runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A query API over what the capture stand-in holds now.
fn query_api(capture: &Arc<PostHogCapture>) -> PostHogQuery {
    let capture = capture.clone();
    PostHogQuery::start(
        PERSONAL_KEY,
        PROJECT,
        Arc::new(move || {
            capture
                .stored()
                .into_iter()
                .map(|stored| stored.event)
                .collect()
        }),
    )
}

fn report_json(setup: &Setup) -> Value {
    serde_json::from_slice(&std::fs::read(setup.path("state/report.json")).expect("report.json"))
        .expect("JSON")
}

#[test]
fn the_report_holds_the_states_counts_and_verify_finds_exactly_the_days_that_differ() {
    // Upload times over 50 days from 2024-01-01: events on two or three calendar months.
    let setup = Setup::generated_over(6_000, 51, 0.01, 50);
    let capture = Arc::new(PostHogCapture::start(KEY));
    let output = setup.migrate(&capture.url(), &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("report: "), "{text}");

    // report.json: the summary's numbers, and days that add up to them.
    let report = report_json(&setup);
    assert_eq!(report["schema"], "amplitude-posthog/report/1");
    let totals = &report["totals"];
    let number = |value: &Value| value.as_u64().expect("a count");
    let sum = |value: &Value| -> u64 {
        value
            .as_object()
            .expect("reasons")
            .values()
            .map(number)
            .sum()
    };
    let (rows, events) = summary(&text);
    assert_eq!(
        rows,
        vec![
            number(&totals["rows"]),
            number(&totals["mapped"]),
            sum(&totals["skipped"]),
            sum(&totals["rejected"])
        ]
    );
    assert_eq!(
        events,
        vec![
            number(&totals["events"]),
            number(&totals["delivered"]),
            number(&totals["dead_lettered"])
        ]
    );
    let days = report["days"].as_array().expect("days");
    for field in ["rows", "mapped", "events", "delivered", "aliases_sent"] {
        let by_day: u64 = days.iter().map(|day| number(&day[field])).sum();
        assert_eq!(by_day, number(&totals[field]), "{field}");
    }
    assert!(number(&totals["aliases_sent"]) > 0);
    // Every reason has an example row.
    let examples = report["examples"].as_array().expect("examples");
    for (outcome, reasons) in [
        ("skipped", &totals["skipped"]),
        ("rejected", &totals["rejected"]),
    ] {
        for reason in reasons.as_object().expect("reasons").keys() {
            assert!(
                examples
                    .iter()
                    .any(|example| example["metric"] == outcome && example["reason"] == *reason),
                "no example for {outcome} {reason}"
            );
        }
    }
    // The same numbers from `report` itself.
    let again = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args(["report", "--state"])
        .arg(setup.path("state"))
        .output()
        .expect("report runs");
    assert_eq!(again.status.code(), Some(0));
    assert!(
        stdout(&again).contains("every day adds up"),
        "{}",
        stdout(&again)
    );

    // report.html: well-formed, nothing outside it, the chart holds report.json's numbers.
    let html = std::fs::read_to_string(setup.path("state/report.html")).expect("html");
    assert_self_contained(&html);
    let chart = chart_values(&html);
    let expected: Vec<(String, u64, u64, u64)> = days
        .iter()
        .map(|day| {
            (
                day["day"].as_str().expect("day").to_owned(),
                number(&day["rows"]),
                number(&day["delivered"]),
                sum(&day["rejected"]),
            )
        })
        .collect();
    assert_eq!(chart, expected);

    // verify: PostHog holds exactly what was delivered, asked once per month.
    let query = query_api(&capture);
    let output = verify(&setup, &query.url(), &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("no differences"),
        "{}",
        stdout(&output)
    );
    let months: BTreeSet<&str> = days
        .iter()
        .filter_map(|day| day["day"].as_str()?.get(..7))
        .filter(|month| month.starts_with('2'))
        .collect();
    assert!(months.len() >= 2, "{months:?}");
    assert_eq!(query.queries().len(), months.len(), "one query per month");
    assert!(
        report_json(&setup)["verify"]["differences"]
            .as_array()
            .expect("verify")
            .is_empty()
    );

    // PostHog loses seven events of one day: verify names that day and those counts only.
    let stored = capture.stored();
    let day = days
        .iter()
        .filter(|day| number(&day["delivered"]) > 20)
        .nth(3)
        .expect("a busy day")["day"]
        .as_str()
        .expect("day")
        .to_owned();
    let delivered = number(
        &days
            .iter()
            .find(|entry| entry["day"] == day.as_str())
            .expect("day")["delivered"],
    );
    let lost: Vec<String> = stored
        .iter()
        .filter(|event| {
            event.event["timestamp"]
                .as_str()
                .is_some_and(|time| time.starts_with(&day))
                && !event.event["properties"]["$amplitude_device_id"].is_null()
        })
        .filter_map(|event| event.uuid.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .take(7)
        .collect();
    assert_eq!(lost.len(), 7);
    query.hide(lost);
    let output = verify(&setup, &query.url(), &[]);
    let said = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    let differing: Vec<&str> = said
        .lines()
        .filter(|line| line.starts_with(char::is_numeric))
        .collect();
    assert_eq!(
        differing,
        [format!(
            "{day}: delivered {delivered}, PostHog {} (-7)",
            delivered - 7
        )
        .as_str()],
        "{said}"
    );
    assert!(
        said.contains("tell PostHog support the day and both counts"),
        "{said}"
    );
    let verification = &report_json(&setup)["verify"];
    assert_eq!(verification["differences"][0]["day"], day.as_str());
    assert_eq!(
        number(&verification["differences"][0]["posthog"]),
        delivered - 7
    );
    let html = std::fs::read_to_string(setup.path("state/report.html")).expect("html");
    assert_self_contained(&html);
    assert!(html.contains(&format!("data-day=\"{day}\"><td class=\"text\">{day}</td><td>{delivered}</td><td>{}</td><td>-7</td>", delivered - 7)));
}

/// The report of a Vector-carried migration counts the export as a dry run of `migrate` does:
/// the same per-day counts, files and problems, over generated files, a zip read in place, a
/// row too long to hold, blank lines, an empty file, a UTF-16 file, a gzip damaged part way,
/// a dangling link and a last line without its newline.
#[test]
fn the_vector_report_counts_the_export_as_a_dry_run_does() {
    use std::io::Write;

    let setup = Setup::generated(2_000, 53, 0.03);
    let export = setup.path("export");
    let write_export = |config: GeneratorConfig, zip: PathBuf| {
        let layout = ExportLayout {
            out_dir: None,
            zip: Some(zip),
            project_id: config.project_id,
            seed: config.seed,
        };
        amplitude_posthog::generator::write_export(&layout, Generator::new(config))
            .expect("zip written");
    };
    write_export(
        GeneratorConfig {
            rows: 500,
            seed: 54,
            broken_share: 0.05,
            ..GeneratorConfig::default()
        },
        export.join("more.zip"),
    );
    let row = |line: &[u8]| -> Vec<u8> { [line, b"\n"].concat() };
    let mut odd = row(&setup.lines[0]);
    odd.extend_from_slice(b"\n   \n");
    odd.extend(row(&vec![
        b'x';
        amplitude_posthog::input::MAX_LINE_BYTES + 10
    ]));
    odd.extend_from_slice(&setup.lines[1]);
    std::fs::write(export.join("odd.json"), odd).expect("written");
    std::fs::write(export.join("empty.json"), b"").expect("written");
    std::fs::write(export.join("utf16.json"), [0xFF, 0xFE, b'{', 0, b'}', 0]).expect("written");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in setup.lines.iter().take(300) {
        gzip.write_all(&row(line)).expect("gzip");
    }
    let gzip = gzip.finish().expect("gzip");
    std::fs::write(export.join("damaged.json.gz"), &gzip[..gzip.len() / 2]).expect("written");
    std::os::unix::fs::symlink(setup.path("nowhere"), export.join("dangling.json.gz"))
        .expect("link");

    let (summary, counts) =
        amplitude_posthog::vector::report::count_export(std::slice::from_ref(&export))
            .expect("counted");
    let mut options =
        amplitude_posthog::migrate::MigrateOptions::new(vec![export], "http://127.0.0.1", "");
    options.dry_run = true;
    let dry_run = amplitude_posthog::migrate::run(&options).expect("dry run");
    assert_eq!(summary, dry_run.summary);
    assert_eq!(counts, dry_run.dry_run.expect("a dry run").counts);
    // The dangling link, and the two files that break once read (a damaged gzip, UTF-16):
    // named by both counts, not left out in silence.
    assert!(
        summary.files > 0 && summary.problems.len() == 3,
        "{summary}"
    );
    assert!(summary.totals.rows > setup.lines.len() as u64, "{summary}");
}

#[test]
fn verify_names_a_refused_key_and_waits_out_rate_limits() {
    let setup = Setup::generated_over(800, 52, 0.0, 5);
    let capture = Arc::new(PostHogCapture::start(KEY));
    let output = setup.migrate(&capture.url(), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Another key: refused, said in one line, the key never printed.
    let wrong = PostHogQuery::start("phx_another_key", PROJECT, Arc::new(Vec::new));
    let output = verify(&setup, &wrong.url(), &[]);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert_eq!(
        said.trim(),
        format!(
            "amplitude-posthog: PostHog answered 401 to the personal API key: give a personal API key (not the project key) with the query:read scope for project {PROJECT}, and the app host (https://us.posthog.com, https://eu.posthog.com or yours, not the i.posthog.com capture host)"
        )
    );
    assert!(!said.contains(PERSONAL_KEY) && !stdout(&output).contains(PERSONAL_KEY));
    // Rate limited and a 502, then answered: verify waits and succeeds.
    let query = query_api(&capture);
    query.inject([
        QueryFault::RateLimited {
            retry_after_seconds: 1,
        },
        QueryFault::Status(502),
    ]);
    let output = verify(&setup, &query.url(), &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(stdout(&output).contains("no differences"));
}

/// Parses as XML (the page is written as well-formed XHTML-compatible HTML) and refers to
/// nothing outside itself.
fn assert_self_contained(html: &str) {
    let document = parse(html);
    assert_eq!(document.root_element().tag_name().name(), "html");
    for node in document.descendants().filter(roxmltree::Node::is_element) {
        let name = node.tag_name().name();
        assert!(
            ![
                "script", "link", "img", "iframe", "object", "embed", "image", "use"
            ]
            .contains(&name),
            "report.html has a <{name}>"
        );
        for attribute in node.attributes() {
            assert!(
                !["src", "href", "srcset"].contains(&attribute.name())
                    && !attribute.value().contains("://")
                    && !attribute.value().contains("url("),
                "report.html refers outside: {}={:?}",
                attribute.name(),
                attribute.value()
            );
        }
        if name == "style" {
            let css = node.text().unwrap_or_default();
            assert!(!css.contains("url(") && !css.contains("@import"), "{css}");
        }
    }
}

/// The page as XML (it is written as well-formed, XHTML-compatible HTML).
fn parse(html: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        },
    )
    .unwrap_or_else(|error| panic!("report.html does not parse: {error}"))
}

/// (day, rows, delivered, rejected) of every bar group of the chart.
fn chart_values(html: &str) -> Vec<(String, u64, u64, u64)> {
    let document = parse(html);
    let attribute = |node: &roxmltree::Node, name: &str| -> u64 {
        node.attribute(name).expect(name).parse().expect("a number")
    };
    document
        .descendants()
        .filter(|node| node.tag_name().name() == "g" && node.attribute("class") == Some("day"))
        .map(|node| {
            (
                node.attribute("data-day").expect("day").to_owned(),
                attribute(&node, "data-rows"),
                attribute(&node, "data-delivered"),
                attribute(&node, "data-rejected"),
            )
        })
        .collect::<Vec<_>>()
}
