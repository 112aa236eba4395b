//! One dead-letter shape for every writer: `map --rejects` writes Vector's record (plus the
//! line number), and the README's replay recipe (`jq -r '.message'`) gives back the rows.

use std::process::Command;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_amplitude-posthog"))
}

const ROWS: &str = concat!(
    "{\"event_type\":\"Signed Up\",\"user_id\":\"u1\",\"event_time\":\"2024-07-06 12:34:56\"}\n",
    "not json at all\n",
    "{\"event_type\":\"Clicked\",\"event_time\":\"2024-07-06 12:34:56\"}\n",
    "{\"event_type\":\"Clicked\",\"user_id\":\"u2\",\"event_time\":\"yesterday\"}\n",
    "{\"event_type\":\"Quote \\\"inside\\\"\",\"device_id\":\"d\",\"event_time\":\"bad\"}\n",
);

/// `jq -r '.message'` over dead-letter files: the README's replay recipe, run for real.
pub fn replay_with_jq(files: &[&std::path::Path]) -> String {
    let output = Command::new("jq")
        .arg("-r")
        .arg(".message")
        .args(files)
        .output()
        .expect("jq is installed (.ci/run installs it)");
    assert!(output.status.success(), "jq failed: {output:?}");
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn map_rejects_have_vectors_shape_and_replay_with_the_readme_recipe() {
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("rows.json");
    std::fs::write(&input, ROWS).expect("write");
    let rejects = dir.path().join("rejects.jsonl");
    let output = cli()
        .arg("map")
        .arg(&input)
        .arg("--rejects")
        .arg(&rejects)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");

    let file = input.display().to_string();
    let expected: Vec<String> = [
        (2, "not json at all", "invalid_json"),
        (
            3,
            r#"{"event_type":"Clicked","event_time":"2024-07-06 12:34:56"}"#,
            "no_identity",
        ),
        (
            4,
            r#"{"event_type":"Clicked","user_id":"u2","event_time":"yesterday"}"#,
            "bad_timestamp",
        ),
        (
            5,
            r#"{"event_type":"Quote \"inside\"","device_id":"d","event_time":"bad"}"#,
            "bad_timestamp",
        ),
    ]
    .into_iter()
    .map(|(line, row, reason)| {
        serde_json::json!({
            "file": file,
            "line": line,
            "message": row,
            "metadata": {"dropped": {
                "component_id": "map",
                "component_kind": "transform",
                "component_type": "amplitude-posthog",
                "message": reason,
                "reason": "error",
            }},
        })
        .to_string()
    })
    .collect();
    let written = std::fs::read_to_string(&rejects).expect("rejects written");
    assert_eq!(written.lines().collect::<Vec<_>>(), expected);

    // The recipe gives back exactly the refused rows, and mapping them again refuses them
    // for the same reasons.
    let replayed = replay_with_jq(&[&rejects]);
    let refused: Vec<&str> = ROWS.lines().skip(1).collect();
    assert_eq!(replayed.lines().collect::<Vec<_>>(), refused);
    let replay_file = dir.path().join("replayed.json");
    std::fs::write(&replay_file, &replayed).expect("write");
    let again = cli()
        .arg("map")
        .arg(&replay_file)
        .args(["--format", "results"])
        .output()
        .expect("runs");
    assert_eq!(
        String::from_utf8(again.stdout)
            .expect("utf-8")
            .lines()
            .collect::<Vec<_>>(),
        [
            r#"{"rejected":"invalid_json"}"#,
            r#"{"rejected":"no_identity"}"#,
            r#"{"rejected":"bad_timestamp"}"#,
            r#"{"rejected":"bad_timestamp"}"#
        ]
    );
}
