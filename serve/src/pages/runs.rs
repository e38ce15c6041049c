//! `/`: every recorded run, newest first — the web form of `flow runs`.

use crate::html::{badge, escape, page, segment, time};
use crate::model::{RunSummary, took};
use std::path::Path;

pub fn render(state_dir: &Path, runs: &[RunSummary]) -> String {
    if runs.is_empty() {
        return page(
            "Runs",
            &format!(
                "<h1>Runs</h1><p class=\"muted\">No runs recorded in {} yet: \
<code>flow apply</code> records each run there.</p>",
                escape(
                    &flow_engine::journal::runs_dir(state_dir)
                        .display()
                        .to_string()
                )
            ),
            false,
        );
    }
    let mut rows = String::new();
    for run in runs {
        let duration = match (run.duration_ms, run.live) {
            (Some(ms), _) => took(ms),
            (None, true) => "running".into(),
            (None, false) => "-".into(),
        };
        rows.push_str(&format!(
            "<tr class=\"run\" data-status=\"{status}\"><td class=\"mono\"><a href=\"/runs/{link}\">{id}</a></td>\
<td>{name}<div class=\"muted opt\">{playbook}</div>{rebuilt}</td>\
<td>{badge}</td><td class=\"num\">{started}</td><td class=\"num\">{duration}</td>\
<td class=\"opt\">{by}</td><td class=\"num opt\">{exit}</td><td class=\"opt\">{resumable}</td></tr>",
            status = escape(&run.status),
            link = segment(&run.run_id),
            id = escape(&run.run_id),
            name = escape(&run.name),
            playbook = escape(&run.playbook),
            badge = badge(&run.status, &run.status_text),
            started = time(&run.started_at),
            by = escape(run.by.as_deref().unwrap_or("-")),
            exit = run
                .exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            resumable = if run.resumable { "yes" } else { "-" },
            rebuilt = if run.rebuilt.is_some() {
                "<div class=\"muted\">(rebuilt from events.jsonl)</div>"
            } else {
                ""
            },
        ));
    }
    page(
        "Runs",
        &format!(
            "<h1>Runs <span class=\"muted\">({count}, newest first)</span></h1>\
<div class=\"scroll\"><table class=\"runs cards\"><thead><tr><th>run</th><th>playbook</th><th>status</th>\
<th>started</th><th>duration</th><th class=\"opt\">by</th><th class=\"opt\">exit</th>\
<th class=\"opt\">resumable</th></tr></thead><tbody>{rows}</tbody></table></div>{reload}",
            count = runs.len(),
            // While a run goes, the list follows it (a run's own page updates live).
            reload = if runs.iter().any(|r| r.live) {
                "<script>setTimeout(function () { location.reload(); }, 3000);</script>"
            } else {
                ""
            }
        ),
        false,
    )
}
