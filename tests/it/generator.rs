//! The corpus generator: deterministic, laid out like Amplitude's exports, realistic, and
//! every row maps to exactly the outcome the generator intended.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use amplitude_posthog::generator::{
    ExportLayout, Generator, GeneratorConfig, Intent, write_export,
};
use amplitude_posthog::vrl_engine::VrlProgram;
use amplitude_posthog::{MappingOutcome, RejectReason};
use flate2::read::MultiGzDecoder;

fn config(rows: u64, seed: u64, broken_share: f64) -> GeneratorConfig {
    GeneratorConfig {
        rows,
        seed,
        broken_share,
        days: 3,
        ..GeneratorConfig::default()
    }
}

fn export(
    dir: &Path,
    zip: Option<&Path>,
    config: GeneratorConfig,
) -> Vec<amplitude_posthog::generator::WrittenFile> {
    let layout = ExportLayout {
        out_dir: Some(dir.to_path_buf()),
        zip: zip.map(Path::to_path_buf),
        project_id: config.project_id,
        seed: config.seed,
    };
    write_export(&layout, Generator::new(config)).expect("export written")
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for project in std::fs::read_dir(dir).expect("dir") {
        let project = project.expect("entry").path();
        if !project.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&project).expect("project dir") {
            let path = file.expect("entry").path();
            let name = path
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .into_owned();
            files.insert(name, std::fs::read(&path).expect("readable"));
        }
    }
    files
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[test]
fn the_same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let (a, b, c) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    export(
        a.path(),
        Some(&a.path().join("export.zip")),
        config(5_000, 42, 0.01),
    );
    export(
        b.path(),
        Some(&b.path().join("export.zip")),
        config(5_000, 42, 0.01),
    );
    export(c.path(), None, config(5_000, 43, 0.01));
    let tree_a = read_tree(a.path());
    assert!(!tree_a.is_empty());
    assert_eq!(tree_a, read_tree(b.path()));
    assert_eq!(
        std::fs::read(a.path().join("export.zip")).ok(),
        std::fs::read(b.path().join("export.zip")).ok()
    );
    assert_ne!(tree_a, read_tree(c.path()));
}

#[test]
fn files_follow_amplitudes_layout_and_end_with_a_newline() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = config(20_000, 7, 0.0);
    let project = config.project_id;
    let written = export(dir.path(), Some(&dir.path().join("export.zip")), config);
    let prefix = format!("{project}/{project}_");
    let name_pattern = regex_lite(&prefix);
    let mut rows = 0;
    let mut multi_member = 0;
    let mut hours_with_several_partitions = BTreeMap::<String, usize>::new();
    for file in &written {
        assert!(
            name_pattern(&file.member),
            "bad member name {}",
            file.member
        );
        let bytes = std::fs::read(dir.path().join(&file.member)).expect("file exists");
        let text = gunzip(&bytes);
        assert_eq!(
            text.last(),
            Some(&b'\n'),
            "{} must end with a newline",
            file.member
        );
        let lines = text
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
            .count() as u64;
        assert_eq!(lines, file.rows);
        rows += lines;
        // A second gzip member holding "\n" follows a member that lacked the final newline.
        if count_gzip_members(&bytes) > 1 {
            multi_member += 1;
        }
        let hour = file
            .member
            .rsplit_once('#')
            .expect("partition")
            .0
            .to_owned();
        *hours_with_several_partitions.entry(hour).or_default() += 1;
        // Rows are filed by the hour of their server_upload_time.
        let (date, hour) = file
            .member
            .rsplit_once('#')
            .expect("#")
            .0
            .rsplit_once('_')
            .expect("hour");
        let date = date.rsplit_once('_').expect("date").1;
        for line in text
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
        {
            let row: serde_json::Value = serde_json::from_slice(line).expect("valid rows");
            let uploaded = row["server_upload_time"].as_str().expect("upload time");
            assert!(uploaded.starts_with(date), "{uploaded} in {}", file.member);
            assert_eq!(
                uploaded[11..13].parse::<u32>().ok(),
                hour.parse::<u32>().ok(),
                "{uploaded} in {}",
                file.member
            );
        }
    }
    assert_eq!(rows, 20_000);
    assert!(
        multi_member > 0 && multi_member < written.len(),
        "some but not all files are multi-member"
    );
    assert!(
        hours_with_several_partitions
            .values()
            .any(|count| *count > 1),
        "some hours have several partitions"
    );
    assert!(
        written.iter().any(|file| file.member.contains("_9#")),
        "hours are not zero-padded"
    );

    // The Export API zip holds the same members, byte for byte.
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(dir.path().join("export.zip")).expect("zip"))
            .expect("valid zip");
    assert_eq!(zip.len(), written.len());
    for file in &written {
        let mut member = zip.by_name(&file.member).expect("member present");
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).expect("readable");
        assert_eq!(
            bytes,
            std::fs::read(dir.path().join(&file.member)).expect("file")
        );
    }
}

/// `<project>/<project>_<YYYY-MM-DD>_<H>#<N>.json.gz`, H without zero padding.
fn regex_lite(prefix: &str) -> impl Fn(&str) -> bool + '_ {
    move |name: &str| {
        let Some(rest) = name.strip_prefix(prefix) else {
            return false;
        };
        let Some(rest) = rest.strip_suffix(".json.gz") else {
            return false;
        };
        let Some((date_hour, partition)) = rest.split_once('#') else {
            return false;
        };
        let Some((date, hour)) = date_hour.rsplit_once('_') else {
            return false;
        };
        let date_ok = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
        let hour_ok = !hour.is_empty()
            && hour.len() <= 2
            && !(hour.len() == 2 && hour.starts_with('0'))
            && hour.parse::<u32>().is_ok_and(|h| h < 24);
        date_ok && hour_ok && partition.parse::<u32>().is_ok()
    }
}

fn count_gzip_members(bytes: &[u8]) -> usize {
    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    let mut members = 0;
    loop {
        let mut sink = Vec::new();
        if decoder.read_to_end(&mut sink).is_err() {
            break;
        }
        members += 1;
        let rest = decoder.into_inner();
        if rest.is_empty() {
            break;
        }
        decoder = flate2::bufread::GzDecoder::new(rest);
    }
    members
}

#[test]
fn every_generated_row_maps_to_the_outcome_the_generator_intended() {
    let program = VrlProgram::mapping().expect("compiles");
    let mut mapper = program.mapper();
    let mut by_intent = BTreeMap::<String, u64>::new();
    for row in Generator::new(config(20_000, 3, 0.01)) {
        let outcome = mapper.map_line(&row.line);
        let matches = match (&row.intent, &outcome) {
            (Intent::Map, MappingOutcome::Events(events)) => !events.is_empty(),
            (Intent::Skip(expected), MappingOutcome::Skipped(got)) => expected == got,
            (Intent::Reject(expected), MappingOutcome::Rejected(got)) => expected == got,
            _ => false,
        };
        assert!(
            matches,
            "intended {:?}, got {:?} for {}",
            row.intent,
            outcome,
            String::from_utf8_lossy(&row.line)
                .chars()
                .take(2000)
                .collect::<String>()
        );
        *by_intent.entry(format!("{:?}", row.intent)).or_default() += 1;
    }
    // The broken share really produces every kind of broken row.
    for reason in RejectReason::CONTRACT {
        assert!(
            by_intent.contains_key(&format!("{:?}", Intent::Reject(reason.clone()))),
            "no {reason} rows in {by_intent:?}"
        );
    }
}

#[test]
fn the_corpus_models_what_real_exports_contain() {
    let rows: Vec<String> = Generator::new(config(20_000, 5, 0.0))
        .map(|row| String::from_utf8(row.line).expect("utf-8"))
        .collect();
    let count = |needle: &str| rows.iter().filter(|row| row.contains(needle)).count();
    let features = [
        ("web SDK rows", "\"library\":\"amplitude-ts/"),
        ("legacy web SDK rows", "\"library\":\"amplitude-js/"),
        ("iOS rows", "\"platform\":\"iOS\""),
        ("Android rows", "\"platform\":\"Android\""),
        ("HTTP API rows", "\"library\":\"http/2.0\""),
        ("Segment rows", "\"library\":\"segment\""),
        ("page views", "[Amplitude] Page Viewed"),
        ("clicks", "[Amplitude] Element Clicked"),
        ("form submits", "[Amplitude] Form Submitted"),
        ("screen views", "[Amplitude] Screen Viewed"),
        ("identify rows", "\"event_type\":\"$identify\""),
        ("group identify rows", "\"event_type\":\"$groupidentify\""),
        ("session markers", "\"event_type\":\"session_start\""),
        ("revenue", "\"$revenue\""),
        ("EMPTY attribution", "\"EMPTY\""),
        ("operator keys", "\"$setOnce\""),
        ("unicode", "東京"),
        ("nested properties", "\"cart\":{"),
        ("T-separated times", "T"),
        ("offset times", "+02:00\""),
        ("times without fraction", ":00\",\""),
        ("integer user ids", "\"user_id\":1"),
        ("refused ids", "\"user_id\":\"undefined\""),
        ("old Android device ids", "R\",\""),
        ("v1-style uuids", "-11ea-"),
        ("scalar groups", "\"groups\":{\"company\":\""),
        ("string session ids", "\"session_id\":\"1"),
        ("sessionless rows", "\"session_id\":-1"),
    ];
    for (feature, needle) in features {
        assert!(count(needle) > 0, "no {feature} ({needle}) in 20 000 rows");
    }
    let average = rows.iter().map(String::len).sum::<usize>() / rows.len();
    assert!(
        (700..=2_500).contains(&average),
        "rows average {average} bytes"
    );
}
