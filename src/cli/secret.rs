//! Keys read from a file or an environment variable: trimmed, checked, never printed.

use std::path::Path;

use anyhow::{Context, bail};

/// The key in `file`, else in the environment variable `variable`; `what` names it in errors
/// (`"PostHog project API key"`), `option` is the command-line option giving the file.
pub fn read_key(
    file: Option<&Path>,
    variable: &str,
    what: &str,
    option: &str,
) -> anyhow::Result<String> {
    let key = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the {what} file {}", path.display()))?,
        None => std::env::var(variable)
            .map_err(|_| anyhow::anyhow!("no {what}: give {option} FILE or set {variable}"))?,
    };
    let key = key.trim().to_owned();
    if key.is_empty() || key.contains(char::is_whitespace) || !key.is_ascii() {
        bail!("the {what} is empty or malformed (one line of printable ASCII expected)");
    }
    Ok(key)
}
