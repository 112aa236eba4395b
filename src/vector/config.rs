//! The config `migrate --engine vector` gives Vector: the repository's `vector.toml` with this
//! command's paths, host, limits and the sidecar's address, plus Vector's internal metrics
//! exported on loopback for the supervisor. The key is never in it (Vector's `directory`
//! secret backend reads it from the workspace).

use std::path::PathBuf;

use super::SOURCE_ID;
use super::file_source::Root;
use super::workspace::Workspace;
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
    posthog["batch"]["max_events"] = (options.batch_events as i64).into();
    posthog["batch"]["max_bytes"] = (options.batch_bytes as i64).into();
    posthog["request"]["concurrency"] = (options.concurrency as i64).into();
    // --rate is in events per second; Vector limits requests: full batches at that rate.
    let requests_per_second = options.rate.map_or(1_000, |rate| {
        (u64::from(rate) / options.batch_events.max(1) as u64).max(1)
    });
    posthog["request"]["rate_limit_num"] = (requests_per_second as i64).into();
    posthog["request"]["rate_limit_duration_secs"] = 1.into();
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
        options.rate = Some(5_000);
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
        assert_eq!(posthog["request"]["rate_limit_num"].as_integer(), Some(5));
        assert_eq!(
            config["sinks"]["identity_sidecar"]["uri"].as_str(),
            Some("http://127.0.0.1:1/records")
        );
        assert_eq!(
            config["sinks"]["migrate_metrics_exporter"]["address"].as_str(),
            Some("127.0.0.1:2")
        );
    }
}
