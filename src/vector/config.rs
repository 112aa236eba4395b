//! The config `migrate --engine vector` gives Vector: the repository's `vector.toml` with this
//! command's paths, host, limits and the sidecar's address, plus Vector's internal metrics
//! exported on loopback for the supervisor. The key is never in it (Vector's `directory`
//! secret backend reads it from the workspace).

use std::path::PathBuf;

use super::SOURCE_ID;
use super::file_source::Root;
use super::workspace::Workspace;
use posthog_client::rate::Rate;

use crate::migrate::MigrateOptions;

/// The configuration this command supervises: the repository's `vector.toml`.
const SHIPPED_CONFIG: &str = include_str!("../../vector.toml");

/// The first lines of the written config.
const HEADER: &str = "# Written by `amplitude-posthog migrate --engine vector` from the shipped vector.toml\n# (paths, host, key location and limits of that command). Rewritten on every run.\n";

/// The shipped config for a run over `roots` in `workspace`, with the sidecar at `sidecar` and
/// the metrics exporter at `metrics` (both `host:port` on loopback).
pub(super) fn render(
    workspace: &Workspace,
    roots: &[Root],
    options: &MigrateOptions,
    sidecar: &str,
    metrics: &str,
) -> String {
    let mut config: toml::Table =
        toml::from_str(SHIPPED_CONFIG).expect("the shipped vector.toml is valid TOML");
    let path = |path: PathBuf| toml::Value::String(path.display().to_string());
    config.insert("data_dir".into(), path(workspace.data()));
    config["secret"]["posthog"]["path"] = path(workspace.secrets());
    config["sources"][SOURCE_ID]["include"] = toml::Value::Array(
        roots
            .iter()
            .flat_map(|root| {
                root.patterns
                    .iter()
                    .map(|pattern| path(root.dir.join(pattern)))
            })
            .collect(),
    );
    config["transforms"]["events"]["file"] = path(workspace.program());
    let posthog = config["sinks"]["posthog"]
        .as_table_mut()
        .expect("a posthog sink");
    posthog["uri"] = format!("{}/batch/", options.host.trim_end_matches('/')).into();
    posthog["batch"]["max_bytes"] = (options.batch_bytes as i64).into();
    posthog["request"]["concurrency"] = (options.concurrency as i64).into();
    let share = events_sink_rate(options.rate, options.batch_events);
    posthog["batch"]["max_events"] = (share.max_events as i64).into();
    match share.requests_per_second {
        Some(requests) => {
            posthog["request"]["rate_limit_num"] = i64::from(requests).into();
            posthog["request"]["rate_limit_duration_secs"] = 1.into();
        }
        None => {
            // Vector's own default: no limit.
            posthog["request"]
                .as_table_mut()
                .expect("request settings")
                .remove("rate_limit_num");
        }
    }
    config["sinks"]["identity_sidecar"]["uri"] = format!("http://{sidecar}/records").into();
    config["sinks"]["dead_letters"]["path"] =
        path(workspace.dead_letters().join("amplitude-%Y-%m-%d.jsonl"));
    // The supervisor's view of Vector: its internal metrics, on loopback only.
    let table = |text: &str| -> toml::Table { toml::from_str(text).expect("a TOML table") };
    config["sources"].as_table_mut().expect("sources").insert(
        "migrate_metrics".into(),
        table("type = \"internal_metrics\"\nscrape_interval_secs = 1").into(),
    );
    let mut exporter = table("type = \"prometheus_exporter\"\ninputs = [\"migrate_metrics\"]");
    exporter.insert("address".into(), metrics.into());
    config["sinks"]
        .as_table_mut()
        .expect("sinks")
        .insert("migrate_metrics_exporter".into(), exporter.into());
    let text = toml::to_string(&config).expect("a TOML table serialises");
    format!("{HEADER}{text}")
}

/// What Vector's `posthog` sink may send: full requests of `max_events` at most, and
/// `requests_per_second` of them (`None`: no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsSinkRate {
    pub max_events: usize,
    pub requests_per_second: Option<u32>,
}

/// The identity sidecar's part of a total rate (see [`posthog_client::rate::identity_share`]).
pub fn identity_rate(total: Rate) -> Rate {
    Rate(total.0.map(posthog_client::rate::identity_share))
}

/// Vector's `posthog` sink's part of a total `rate` (the rest of [`identity_rate`]). Vector
/// limits requests, not events (`request.rate_limit_num` per `rate_limit_duration_secs`, in
/// src/sinks/util/service.rs of vectordotdev/vector; its `throttle` transform would *drop*
/// events), so the events' part is met by requests of at most `max_events` (at most
/// `batch_events`), as many a second as fit.
pub fn events_sink_rate(rate: Rate, batch_events: usize) -> EventsSinkRate {
    let Rate(Some(total)) = rate else {
        return EventsSinkRate {
            max_events: batch_events,
            requests_per_second: None,
        };
    };
    let events = (total - posthog_client::rate::identity_share(total)).max(1) as usize;
    let requests = events.div_ceil(batch_events.max(1));
    EventsSinkRate {
        max_events: (events / requests).max(1),
        requests_per_second: Some(requests as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_gets_this_commands_paths_host_and_limits_and_no_key() {
        let workspace = Workspace::at(PathBuf::from("/state/vector"));
        let roots = [Root {
            dir: PathBuf::from("/export"),
            patterns: vec!["**/*.json.gz".into()],
        }];
        let mut options = MigrateOptions::new(vec![], "https://us.i.posthog.com/", "phc_secret");
        options.rate = Rate(Some(5_000));
        let text = render(&workspace, &roots, &options, "127.0.0.1:1", "127.0.0.1:2");
        assert!(text.starts_with(HEADER));
        assert!(!text.contains("phc_secret"));
        let config: toml::Table = toml::from_str(&text).expect("TOML");
        assert_eq!(config["data_dir"].as_str(), Some("/state/vector/data"));
        assert_eq!(
            config["sources"][SOURCE_ID]["include"][0].as_str(),
            Some("/export/**/*.json.gz")
        );
        let posthog = &config["sinks"]["posthog"];
        assert_eq!(
            posthog["uri"].as_str(),
            Some("https://us.i.posthog.com/batch/")
        );
        // 5 000 events/s in total: 1 250 for the sidecar, 3 750 in 4 requests of 937 a second.
        assert_eq!(posthog["request"]["rate_limit_num"].as_integer(), Some(4));
        assert_eq!(posthog["batch"]["max_events"].as_integer(), Some(937));
        options.rate = Rate(None);
        let text = render(&workspace, &roots, &options, "127.0.0.1:1", "127.0.0.1:2");
        let config: toml::Table = toml::from_str(&text).expect("TOML");
        assert!(
            config["sinks"]["posthog"]["request"]
                .get("rate_limit_num")
                .is_none()
        );
        assert_eq!(
            config["sinks"]["identity_sidecar"]["uri"].as_str(),
            Some("http://127.0.0.1:1/records")
        );
        assert_eq!(
            config["sinks"]["migrate_metrics_exporter"]["address"].as_str(),
            Some("127.0.0.1:2")
        );
    }

    #[test]
    fn a_total_rate_is_shared_between_vectors_sink_and_the_sidecar() {
        let default = events_sink_rate(Rate(Some(2000)), 1000);
        assert_eq!(
            default,
            EventsSinkRate {
                max_events: 750,
                requests_per_second: Some(2)
            }
        );
        assert_eq!(identity_rate(Rate(Some(2000))), Rate(Some(500)));
        for total in [1, 3, 100, 999, 2000, 2001, 7777, 50_000] {
            for batch in [1, 100, 1000] {
                let share = events_sink_rate(Rate(Some(total)), batch);
                let events = share.max_events as u32 * share.requests_per_second.unwrap();
                let identities = identity_rate(Rate(Some(total))).0.unwrap();
                assert!(share.max_events <= batch, "{total} {batch}");
                assert!(
                    events + identities <= total.max(2),
                    "{total} {batch}: {events} + {identities}"
                );
                assert!(
                    events + identities >= (total * 9 / 10).saturating_sub(batch as u32),
                    "{total} {batch}"
                );
            }
        }
        assert_eq!(events_sink_rate(Rate(None), 1000).requests_per_second, None);
    }
}
