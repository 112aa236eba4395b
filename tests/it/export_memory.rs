//! Downloading a zip of several hundred MB keeps the exporter's memory flat: the response is
//! streamed to disk and members are extracted and checked as streams. The exporter's peak
//! resident set size is read from `/proc/<pid>/status` (VmHWM) while it runs.

use std::io::Write;
use std::process::Command;

use amplitude_posthog_test_support::amplitude_export::AmplitudeExport;
use chrono::TimeZone;

#[test]
fn peak_memory_stays_bounded_while_exporting_a_300_mb_zip() {
    let uploaded = chrono::Utc
        .with_ymd_and_hms(2024, 3, 5, 10, 15, 0)
        .single()
        .expect("time");
    let row =
        br#"{"event_type":"x","user_id":"u","event_time":"2024-03-05 10:00:00.000000"}"#.to_vec();
    let server = AmplitudeExport::start("key", "secret", 187_520, vec![(row, uploaded)]);
    // One member of ~300 MB: gzip without compression, so the zip really is that large.
    let line = format!(
        "{{\"event_type\":\"big\",\"user_id\":\"u\",\"event_time\":\"2024-03-05 10:00:00\",\"pad\":\"{}\"}}\n",
        "p".repeat(900)
    );
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    for _ in 0..(300_000_000 / line.len()) {
        gzip.write_all(line.as_bytes()).expect("gzip");
    }
    server.add_member(
        "187520/187520_2024-03-05_10#999.json.gz",
        gzip.finish().expect("gzip"),
    );

    let dir = tempfile::tempdir().expect("tmp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
        .args([
            "export",
            "--start",
            "2024-03-05T00",
            "--end",
            "2024-03-05T23",
            "--api-url",
            &server.url(),
            "--out",
        ])
        .arg(dir.path())
        .env("AMPLITUDE_API_KEY", "key")
        .env("AMPLITUDE_SECRET_KEY", "secret")
        .spawn()
        .expect("runs");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0_u64;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            let high_water = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kb = peak_kb.max(high_water.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(status.success());
    let written = std::fs::metadata(dir.path().join("187520/187520_2024-03-05_10#999.json.gz"))
        .expect("extracted")
        .len();
    assert!(
        written > 290_000_000,
        "the big member was extracted whole ({written} bytes)"
    );

    let peak_mb = peak_kb as f64 / 1024.0;
    assert!(peak_mb > 1.0, "the exporter's memory was observed");
    eprintln!(
        "exporter peak RSS while exporting a {:.0} MB zip: {peak_mb:.1} MB",
        written as f64 / 1e6
    );
    assert!(
        peak_mb < 100.0,
        "peak RSS {peak_mb:.1} MB: the download is not streamed"
    );
}
