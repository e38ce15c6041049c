//! `/runs/<id>/steps/<step>`: one step of a run — its state and the lines it printed, as
//! the journal kept them (at most 4 MiB a step; this page shows the first lines of those).

use super::json_block;
use crate::html::{badge, escape, page, segment, time};
use crate::model::{OutputLine, RunDetail, StepView, took};

/// Lines shown on the page; the journal may hold more.
pub const LINES_SHOWN: usize = 20_000;
const OUTPUTS_SHOWN: usize = 200_000;

pub fn render(run: &RunDetail, step: &StepView, lines: &[OutputLine], more: usize) -> String {
    let run_link = format!("/runs/{}", segment(&run.summary.run_id));
    let mut facts: Vec<(&str, String)> = vec![
        ("status", badge(&step.status, &step.status)),
        ("type", format!("<code>{}</code>", escape(&step.type_name))),
    ];
    if !step.needs.is_empty() {
        facts.push((
            "needs",
            step.needs
                .iter()
                .map(|n| {
                    format!(
                        "<a href=\"{run_link}/steps/{}\">{}</a>",
                        segment(n),
                        escape(n)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(at) = &step.started_at {
        facts.push(("started", time(at)));
    }
    if let Some(ms) = step.duration_ms {
        facts.push(("duration", took(ms)));
    }
    if step.attempts > 0 {
        facts.push(("attempts", step.attempts.to_string()));
    }
    if let Some(error) = &step.error {
        facts.push((
            "error",
            format!("<pre class=\"error\">{}</pre>", escape(error)),
        ));
    }
    if let Some(reason) = &step.reason {
        facts.push(("skipped", escape(reason)));
    }
    for retry in &step.retries {
        facts.push(("retry", escape(retry)));
    }
    let mut body = format!(
        "<p class=\"muted\"><a href=\"{run_link}\">← run {}</a></p><h1>{} <span class=\"muted mono\">{}</span></h1>\
<dl class=\"facts\">{}</dl>",
        escape(&run.summary.run_id),
        escape(step.label()),
        escape(&step.id),
        facts
            .iter()
            .map(|(k, v)| format!("<dt>{k}</dt><dd>{v}</dd>"))
            .collect::<String>()
    );
    if let Some(outputs) = &step.outputs {
        body.push_str(&format!(
            "<h2>Outputs</h2><pre class=\"step-outputs\">{}</pre>",
            json_block(outputs, OUTPUTS_SHOWN)
        ));
    }
    body.push_str("<h2>Output</h2>");
    if lines.is_empty() {
        body.push_str("<p class=\"muted\">The journal holds no output of this step.</p>");
    } else {
        body.push_str("<div class=\"out\">");
        for line in lines {
            let element = line
                .element
                .map(|e| format!("<span class=\"el\">[{e}] </span>"))
                .unwrap_or_default();
            body.push_str(&format!(
                "<div class=\"{}\">{element}{}</div>",
                escape(&line.stream),
                escape(&line.line)
            ));
        }
        body.push_str("</div>");
        if more > 0 {
            body.push_str(&format!(
                "<p class=\"muted\">{more} more lines are in the journal, not shown here.</p>"
            ));
        }
    }
    page(
        &format!("{} · {}", step.label(), run.summary.run_id),
        &body,
        false,
    )
}
