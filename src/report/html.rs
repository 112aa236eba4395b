//! `report.html`: one self-contained page (inline CSS and SVG; no script, font or link to
//! anything outside it) with the totals, a per-day chart of rows in against events delivered
//! with refused rows marked, the per-day table and the reasons with one example row each.
//!
//! Each bar group of the chart carries its numbers as `data-` attributes, which are
//! `report.json`'s (a test holds them equal).

use std::fmt::Write;

use super::{Report, Tally};

/// `&`, `<`, `>`, `"` and `'` escaped, for text and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2rem; color: #1d1f24; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; }
.meta { color: #5f6470; font-size: 0.85rem; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; margin: 1.2rem 0; }
.card { border: 1px solid #d9dce3; border-radius: 6px; padding: 0.6rem 0.9rem; min-width: 9rem; }
.card .value { font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .label { color: #5f6470; font-size: 0.8rem; }
.ok { color: #1a7f37; } .bad { color: #cf222e; }
table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #e6e8ee; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f4f5f8; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
tr.refused td { background: #fff1f0; }
code { font-size: 0.78rem; word-break: break-all; white-space: pre-wrap; }
.legend span { margin-right: 1.2rem; font-size: 0.85rem; }
.swatch { display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.3rem; vertical-align: -0.1rem; }
";

/// The page: its head, the totals, the per-day chart and table, the reasons, what `verify`
/// found, and the input files with a problem.
pub fn render(report: &Report) -> String {
    let mut page = head(report);
    let adds_up = report.unbalanced_days().is_empty();
    page.push_str(&cards(report, adds_up));
    page.push_str(&balance(report, adds_up));
    page.push_str(&basis(report));
    page.push_str("<h2>Per day (UTC day of the event)</h2>\n");
    page.push_str(&chart(report));
    page.push_str(&day_table(report));
    page.push_str(&reasons(report));
    if let Some(verification) = &report.verify {
        page.push_str(&checked(verification));
    }
    page.push_str(&file_problems(report));
    page.push_str("</body>\n</html>\n");
    page
}

/// From the doctype to the title and the line saying when and from what the page was made.
fn head(report: &Report) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>Amplitude → PostHog migration report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Amplitude → PostHog migration report</h1>\n\
         <p class=\"meta\">Generated {} from the state in <code>{}</code> · schema <code>{}</code></p>\n",
        escape(&report.generated_at),
        escape(&report.state),
        escape(&report.schema)
    )
}

/// `bad` for a count of refusals that is not zero: the card shows it in red.
fn bad_if_any(count: u64) -> &'static str {
    if count > 0 { "bad" } else { "" }
}

/// One card per total.
fn cards(report: &Report, adds_up: bool) -> String {
    let totals = &report.totals;
    let mut cards = String::from("<div class=\"cards\">\n");
    for (label, value, class) in [
        ("rows in the export", totals.rows, ""),
        ("rows mapped", totals.mapped, ""),
        ("rows skipped", totals.skipped_total(), ""),
        (
            "rows refused",
            totals.rejected_total(),
            bad_if_any(totals.rejected_total()),
        ),
        ("events produced", totals.events, ""),
        (
            "events delivered",
            totals.delivered,
            if adds_up { "ok" } else { "" },
        ),
        (
            "events dead-lettered",
            totals.dead_lettered,
            bad_if_any(totals.dead_lettered),
        ),
        ("aliases sent", totals.aliases_sent, ""),
        (
            "aliases refused",
            report.aliases_refused,
            bad_if_any(report.aliases_refused),
        ),
        ("alias conflicts", totals.alias_conflicts, ""),
        ("group updates sent", report.groups_sent, ""),
        (
            "group updates refused",
            report.groups_refused,
            bad_if_any(report.groups_refused),
        ),
        ("person updates sent", report.person_updates_sent, ""),
        (
            "person updates refused",
            report.person_updates_refused,
            bad_if_any(report.person_updates_refused),
        ),
    ] {
        let _ = writeln!(
            cards,
            "<div class=\"card\"><div class=\"value {class}\">{value}</div><div class=\"label\">{label}</div></div>"
        );
    }
    cards.push_str("</div>\n");
    cards
}

/// Whether every day adds up, and what is left: files not done, identity updates pending.
fn balance(report: &Report, adds_up: bool) -> String {
    let mut section = String::new();
    let _ = writeln!(
        section,
        "<p class=\"{}\">{}</p>",
        if adds_up { "ok" } else { "bad" },
        if adds_up && report.is_dry_run() {
            "Every day adds up: each row was mapped, skipped or refused."
        } else if adds_up {
            "Every day adds up: each row was mapped, skipped or refused, and each event was delivered or dead-lettered."
        } else {
            "Some days do not add up yet: the migration has not finished (see the table)."
        }
    );
    let _ = writeln!(
        section,
        "<p class=\"meta\">Input files: {} of {} done{}. Aliases pending: {}; group updates pending: {}; person updates sent: {}, pending: {}{}.</p>",
        report.files.done,
        report.files.total,
        if report.files.problems.is_empty() {
            String::new()
        } else {
            format!("; {} with a problem", report.files.problems.len())
        },
        report.aliases_pending,
        report.groups_pending,
        report.person_updates_sent,
        report.person_updates_pending,
        match report.persons_unreleased {
            0 => String::new(),
            ids => format!(" (not worked out yet for {ids} distinct ids)"),
        }
    );
    section
}

/// What the delivered counts stand for when they are not PostHog's answers: a dry run's
/// (nothing delivered) or a Vector pipeline's (the events produced).
fn basis(report: &Report) -> String {
    let mut section = String::new();
    if report.is_dry_run() {
        section.push_str(
            "<p class=\"meta\" id=\"basis\">A dry run: nothing was sent to PostHog and no state was written, so nothing is delivered. \
             The events produced are what <code>migrate</code> without <code>--dry-run</code> would send.</p>\n",
        );
    }
    if report.delivered_basis == super::PRODUCED {
        section.push_str(
            "<p class=\"meta\" id=\"basis\">Carried by Vector, which records no deliveries: the delivered counts are the events the mapping produced, \
             delivered once Vector has finished (its sinks retry every answer but success). <code>verify</code> checks them against PostHog.</p>\n",
        );
    }
    section
}

/// The input files that could not be read to their end, if any.
fn file_problems(report: &Report) -> String {
    let mut section = String::new();
    if report.files.problems.is_empty() {
        return section;
    }
    section.push_str("<h2>Input files with a problem</h2>\n<table>\n<tr><th class=\"text\">file</th><th class=\"text\">problem</th></tr>\n");
    for problem in &report.files.problems {
        let _ = writeln!(
            section,
            "<tr><td class=\"text\"><code>{}</code></td><td class=\"text\">{}</td></tr>",
            escape(&problem.file),
            escape(&problem.problem)
        );
    }
    section.push_str("</table>\n");
    section
}

/// Chart geometry.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 24.0;

fn chart(report: &Report) -> String {
    let days = &report.days;
    let mut svg = String::new();
    let top = days
        .iter()
        .map(|day| day.counts.rows.max(day.counts.delivered))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot_width = WIDTH - LEFT - 10.0;
    let plot_height = HEIGHT - BOTTOM - 10.0;
    let slot = plot_width / days.len().max(1) as f64;
    let bar = (slot * 0.8).max(0.5);
    let y = |value: u64| 10.0 + plot_height * (1.0 - value as f64 / top);
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"rows in and events delivered per day\">"
    );
    // Axis and the top value.
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#9aa0ab\"/>\n\
         <text x=\"{:.1}\" y=\"16\" font-size=\"11\" text-anchor=\"end\" fill=\"#5f6470\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5f6470\">0</text>",
        HEIGHT - BOTTOM,
        WIDTH - 10.0,
        HEIGHT - BOTTOM,
        LEFT - 6.0,
        top as u64,
        LEFT - 6.0,
        HEIGHT - BOTTOM
    );
    for (index, day) in days.iter().enumerate() {
        let counts = &day.counts;
        let x = LEFT + slot * index as f64 + (slot - bar) / 2.0;
        let rejected = counts.rejected_total();
        let _ = write!(
            svg,
            "<g class=\"day\" data-day=\"{}\" data-rows=\"{}\" data-delivered=\"{}\" data-rejected=\"{}\" data-dead-lettered=\"{}\"><title>{}: {} rows, {} events delivered, {} rows refused, {} events dead-lettered</title>",
            escape(&day.day),
            counts.rows,
            counts.delivered,
            rejected,
            counts.dead_lettered,
            escape(&day.day),
            counts.rows,
            counts.delivered,
            rejected,
            counts.dead_lettered
        );
        let _ = write!(
            svg,
            "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{bar:.2}\" height=\"{:.2}\" fill=\"#c9ced8\"/>",
            y(counts.rows),
            (HEIGHT - BOTTOM) - y(counts.rows)
        );
        let inner = bar * 0.5;
        let _ = write!(
            svg,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{inner:.2}\" height=\"{:.2}\" fill=\"#1d4aff\"/>",
            x + (bar - inner) / 2.0,
            y(counts.delivered),
            (HEIGHT - BOTTOM) - y(counts.delivered)
        );
        if rejected + counts.dead_lettered > 0 {
            // Refusals are few: a red mark above the bar, at least 3 px high.
            let _ = write!(
                svg,
                "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"{bar:.2}\" height=\"3\" fill=\"#cf222e\"/>",
                y(counts.rows) - 4.0
            );
        }
        svg.push_str("</g>\n");
    }
    // First and last day under the axis.
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let _ = writeln!(
            svg,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5f6470\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5f6470\">{}</text>",
            HEIGHT - 6.0,
            escape(&first.day),
            WIDTH - 10.0,
            HEIGHT - 6.0,
            escape(&last.day)
        );
    }
    svg.push_str("</svg>\n");
    svg.push_str(
        "<p class=\"legend\"><span><span class=\"swatch\" style=\"background:#c9ced8\"></span>rows in the export</span>\
         <span><span class=\"swatch\" style=\"background:#1d4aff\"></span>events delivered</span>\
         <span><span class=\"swatch\" style=\"background:#cf222e\"></span>a day with refused rows or events</span></p>\n",
    );
    svg
}

fn cells(counts: &Tally) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        counts.rows,
        counts.mapped,
        counts.skipped_total(),
        counts.rejected_total(),
        counts.events,
        counts.delivered,
        counts.dead_lettered,
        counts.aliases_sent,
        counts.alias_conflicts
    )
}

fn day_table(report: &Report) -> String {
    let mut table = String::from(
        "<table id=\"days\">\n<tr><th class=\"text\">day</th><th>rows</th><th>mapped</th><th>skipped</th><th>refused</th>\
         <th>events</th><th>delivered</th><th>dead-lettered</th><th>aliases sent</th><th>conflicts</th></tr>\n",
    );
    for day in &report.days {
        let refused = day.counts.rejected_total() + day.counts.dead_lettered > 0;
        let _ = writeln!(
            table,
            "<tr{}><td class=\"text\">{}</td>{}</tr>",
            if refused { " class=\"refused\"" } else { "" },
            escape(&day.day),
            cells(&day.counts)
        );
    }
    let _ = writeln!(
        table,
        "<tr><th class=\"text\">total</th>{}</tr>\n</table>",
        cells(&report.totals)
            .replace("<td>", "<th>")
            .replace("</td>", "</th>")
    );
    table
}

fn reasons(report: &Report) -> String {
    let mut section = String::from(
        "<h2>Why rows were skipped or refused</h2>\n<table id=\"reasons\">\n\
         <tr><th class=\"text\">outcome</th><th class=\"text\">reason</th><th>count</th><th class=\"text\">example</th></tr>\n",
    );
    let totals = &report.totals;
    let mut lines: Vec<(&str, &str, u64)> = Vec::new();
    lines.extend(
        totals
            .skipped
            .iter()
            .map(|(reason, count)| ("skipped", reason.as_str(), *count)),
    );
    lines.extend(
        totals
            .rejected
            .iter()
            .map(|(reason, count)| ("rejected", reason.as_str(), *count)),
    );
    if totals.dead_lettered > 0 {
        lines.push(("dead_lettered", "", totals.dead_lettered));
    }
    for (outcome, reason, count) in lines {
        let example = report
            .examples
            .iter()
            .find(|example| example.metric == outcome && example.reason == reason)
            .map_or_else(
                || "—".to_owned(),
                |example| {
                    format!(
                        "{} line {}<br/><code>{}</code>",
                        escape(&example.file),
                        example.line,
                        escape(&example.row)
                    )
                },
            );
        let label = match outcome {
            "dead_lettered" => "event refused by PostHog",
            "rejected" => "row refused by the mapping",
            _ => "row skipped",
        };
        let _ = writeln!(
            section,
            "<tr><td class=\"text\">{label}</td><td class=\"text\">{}</td><td>{count}</td><td class=\"text\">{example}</td></tr>",
            escape(if reason.is_empty() {
                "PostHog's answer is in the dead letter"
            } else {
                reason
            })
        );
    }
    section.push_str("</table>\n");
    section
}

fn checked(verification: &crate::verify::Verification) -> String {
    let mut section = format!(
        "<h2>Checked against PostHog</h2>\n<p class=\"meta\">{} · project {} at <code>{}</code> · {} queries · {} days</p>\n",
        escape(&verification.checked_at),
        verification.project_id,
        escape(&verification.app_host),
        verification.queries,
        verification.days_checked
    );
    if verification.differences.is_empty() {
        let _ = writeln!(
            section,
            "<p class=\"ok\" id=\"verified\">PostHog holds exactly the {} events delivered, day by day.</p>",
            verification.posthog
        );
        return section;
    }
    let _ = writeln!(
        section,
        "<p class=\"bad\">{} day(s) differ: PostHog holds {} migrated events, the migration delivered {}.</p>\n\
         <table id=\"differences\">\n<tr><th class=\"text\">day</th><th>delivered</th><th>in PostHog</th><th>difference</th><th class=\"text\">what can explain it</th></tr>",
        verification.differences.len(),
        verification.posthog,
        verification.delivered
    );
    for difference in &verification.differences {
        let _ = writeln!(
            section,
            "<tr class=\"refused\" data-day=\"{}\"><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{:+}</td><td class=\"text\">{}</td></tr>",
            escape(&difference.day),
            escape(&difference.day),
            difference.delivered,
            difference.posthog,
            difference.posthog as i64 - difference.delivered as i64,
            difference
                .explanations
                .iter()
                .map(|text| escape(text))
                .collect::<Vec<_>>()
                .join("<br/>")
        );
    }
    section.push_str("</table>\n");
    section
}
