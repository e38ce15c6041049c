//! `/runs/<id>`: one run — the web form of `flow show`, with the graph coloured by status.
//! The part that changes while the run goes (`?part=live`) is rendered on its own, so the
//! page's script can fetch it again on each journal event.

use super::json_block;
use crate::html::{badge, escape, mark, page, segment, time};
use crate::model::{RunDetail, StepView, took};

/// Characters of a step's outputs shown in the table (its page shows more).
const OUTPUTS_SHOWN: usize = 1500;

pub fn render(run: &RunDetail, now: &str) -> String {
    let summary = &run.summary;
    let live_note = if summary.live {
        "<span id=\"live-note\" class=\"live-note\">live</span>"
    } else {
        ""
    };
    let body = format!(
        "<p class=\"muted\"><a href=\"/\">← runs</a></p>\
<h1>{name} <span class=\"muted mono\">{id}</span> {live_note}</h1>\
<div id=\"live\" data-run=\"/runs/{link}\" data-now=\"{now}\" data-live=\"{live}\">{part}</div>",
        name = escape(&summary.name),
        id = escape(&summary.run_id),
        link = segment(&summary.run_id),
        now = escape(now),
        live = summary.live,
        part = live_part(run),
    );
    page(&format!("{} {}", summary.name, summary.run_id), &body, true)
}

/// Everything of the run that a journal event can change.
pub fn live_part(run: &RunDetail) -> String {
    let mut out = String::new();
    out.push_str(&facts(run));
    out.push_str(&rollback(run));
    out.push_str(&format!(
        "<h2>Graph</h2><div class=\"graph\">{}</div>",
        crate::svg_graph::render(&run.summary.run_id, &run.steps)
    ));
    if !run.graph_recorded {
        out.push_str(
            "<p class=\"muted\">This run's journal predates the recorded graph: steps are \
shown as the events name them, without their dependencies.</p>",
        );
    }
    if run.events_cut {
        out.push_str(&format!(
            "<p class=\"error\">This run's events.jsonl is longer than {} MiB: the page shows \
what its beginning says.</p>",
            crate::model::EVENTS_READ_LIMIT >> 20
        ));
    }
    if !run.events_damage.is_empty() {
        out.push_str(
            "<p class=\"error\">Lines of this run's events.jsonl could not be read; the page \
shows the others:</p><ul class=\"error\">",
        );
        for line in &run.events_damage {
            out.push_str(&format!("<li>{}</li>", crate::html::escape(line)));
        }
        out.push_str("</ul>");
    }
    out.push_str(&steps_table(run));
    if !run.approvals.is_empty() {
        out.push_str("<h2>Approvals</h2><ul class=\"approvals\">");
        for a in &run.approvals {
            let (status, verdict) = if a.approved {
                ("succeeded", "approved")
            } else {
                ("declined", "declined")
            };
            out.push_str(&format!(
                "<li>{} <b>{}</b> {verdict} via {} by {} at {}</li>",
                badge(status, verdict),
                escape(&a.step),
                escape(&a.how),
                escape(&a.by),
                time(&a.at)
            ));
        }
        out.push_str("</ul>");
    }
    if !run.warnings.is_empty() {
        out.push_str("<h2>Warnings</h2><ul>");
        for w in &run.warnings {
            out.push_str(&format!("<li>{}</li>", escape(w)));
        }
        out.push_str("</ul>");
    }
    if let Some(outputs) = run.outputs.as_ref().and_then(|o| o.as_object())
        && !outputs.is_empty()
    {
        out.push_str("<h2>Outputs</h2><div class=\"scroll\"><table class=\"outputs\"><tbody>");
        for (name, value) in outputs {
            out.push_str(&format!(
                "<tr><th>{}</th><td><pre class=\"outputs\">{}</pre></td></tr>",
                escape(name),
                escape(&flow_engine::evaluate::display_value(value))
            ));
        }
        out.push_str("</tbody></table></div>");
    }
    if let Some(error) = &run.error {
        out.push_str(&format!(
            "<h2>Error</h2><pre class=\"error\">{}</pre>",
            escape(error)
        ));
    }
    if let Some(line) = &run.closing_line {
        out.push_str(&format!(
            "<h2>Summary</h2><p class=\"closing\">{}</p>",
            escape(line)
        ));
    }
    out
}

/// What a failed undo left applied, above everything else: it needs a person first.
fn rollback(run: &RunDetail) -> String {
    if run.rollback.is_empty() {
        return String::new();
    }
    let mut out = String::from("<section class=\"rollback\"><h2>⚠ Rollback incomplete</h2><ul>");
    for line in &run.rollback {
        out.push_str(&format!("<li>{}</li>", escape(line)));
    }
    out.push_str(&format!(
        "</ul><p>Fix what made it fail, then <code>flow apply --resume {}</code> runs the \
failed undo again before anything else.</p></section>",
        escape(&run.summary.run_id)
    ));
    out
}

fn facts(run: &RunDetail) -> String {
    let s = &run.summary;
    let mut rows: Vec<(&str, String)> = vec![
        ("status", badge(&s.status, &s.status_text)),
        ("playbook", format!("<code>{}</code>", escape(&s.playbook))),
        ("started", time(&s.started_at)),
    ];
    if let Some(at) = &s.finished_at {
        rows.push(("finished", time(at)));
    }
    rows.push((
        "duration",
        match (s.duration_ms, s.live) {
            (Some(ms), _) => took(ms),
            (None, true) => format!(
                "<span class=\"elapsed\" data-since=\"{}\">running</span>",
                escape(&s.started_at)
            ),
            (None, false) => "no end recorded (it crashed or was killed)".into(),
        },
    ));
    rows.push(("by", escape(s.by.as_deref().unwrap_or("(not recorded)"))));
    if let Some(code) = s.exit_code {
        rows.push(("exit code", code.to_string()));
    }
    rows.push((
        "resumable",
        if s.resumable {
            format!(
                "yes: <code>flow apply --resume {}</code>",
                escape(&s.run_id)
            )
        } else {
            "no".into()
        },
    ));
    if let Some(why) = &s.rebuilt {
        rows.push((
            "record",
            format!("rebuilt from events.jsonl: {}", escape(why)),
        ));
    }
    let params = if run.params.is_empty() {
        "(none)".to_string()
    } else {
        run.params
            .iter()
            .map(|(k, v)| {
                format!(
                    "<code>{}={}</code>",
                    escape(k),
                    escape(&flow_engine::evaluate::display_value(v))
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    rows.push(("params", params));
    for resume in &run.resumes {
        rows.push(("resumed", escape(resume)));
    }
    let mut out = String::from("<dl class=\"facts\">");
    for (k, v) in rows {
        out.push_str(&format!("<dt>{k}</dt><dd>{v}</dd>"));
    }
    out.push_str("</dl>");
    out
}

fn steps_table(run: &RunDetail) -> String {
    let mut out = String::from(
        "<h2>Steps</h2><div class=\"scroll\"><table class=\"steps cards\"><thead><tr><th></th>\
<th>step</th><th class=\"opt\">type</th><th>status</th><th>duration</th>\
<th class=\"opt\">attempts</th><th>detail</th><th class=\"opt\">outputs</th></tr></thead><tbody>",
    );
    for step in &run.steps {
        out.push_str(&step_row(&run.summary.run_id, step));
    }
    out.push_str("</tbody></table></div>");
    out
}

fn step_row(run_id: &str, step: &StepView) -> String {
    let link = format!("/runs/{}/steps/{}", segment(run_id), segment(&step.id));
    let id_note = if step.name.is_some() {
        format!(" <span class=\"muted mono\">{}</span>", escape(&step.id))
    } else {
        String::new()
    };
    let duration = match (step.duration_ms, step.status.as_str(), &step.started_at) {
        (Some(ms), _, _) => took(ms),
        (None, "running", Some(since)) => format!(
            "<span class=\"elapsed\" data-since=\"{}\">…</span>",
            escape(since)
        ),
        _ => "-".into(),
    };
    let mut status = step.status.clone();
    if step.kept {
        status.push_str(" (kept)");
    }
    if step.continued {
        status.push_str(" (continued)");
    }
    let mut detail = Vec::new();
    if let Some(error) = &step.error {
        detail.push(format!("<pre class=\"error\">{}</pre>", escape(error)));
    }
    if let Some(reason) = &step.reason {
        detail.push(format!("<span class=\"reason\">{}</span>", escape(reason)));
    }
    for retry in &step.retries {
        detail.push(format!("<div class=\"muted\">{}</div>", escape(retry)));
    }
    if step.elements > 0 {
        detail.push(format!(
            "<div class=\"muted\">{} elements, {} failed</div>",
            step.elements, step.elements_failed
        ));
    }
    if step.output_lines > 0 {
        detail.push(format!(
            "<a href=\"{link}\">{} of output</a>",
            match step.output_lines {
                1 => "1 line".to_string(),
                n => format!("{n} lines"),
            }
        ));
    }
    let outputs = match &step.outputs {
        Some(value) if value.as_object().is_none_or(|o| !o.is_empty()) => format!(
            "<pre class=\"outputs\">{}</pre>{}",
            json_block(value, OUTPUTS_SHOWN),
            if step.outputs_masked {
                "<div class=\"muted\">secrets masked</div>"
            } else {
                ""
            }
        ),
        _ => String::new(),
    };
    format!(
        "<tr class=\"step\" data-status=\"{st}\" data-step=\"{id}\"><td><span class=\"mark st-{st}\">{mark}</span></td>\
<td><a href=\"{link}\">{label}</a>{id_note}{finally}</td><td class=\"opt mono\">{kind}</td>\
<td class=\"status st-{st}\">{status}</td><td class=\"num\">{duration}</td>\
<td class=\"num opt\">{attempts}</td><td class=\"wide\">{detail}</td><td class=\"opt\">{outputs}</td></tr>",
        st = escape(&step.status),
        id = escape(&step.id),
        mark = mark(&step.status),
        label = escape(step.label()),
        finally = if step.finally {
            " <span class=\"muted\">(finally)</span>"
        } else {
            ""
        },
        kind = escape(&step.type_name),
        status = escape(&status),
        attempts = if step.attempts > 0 {
            step.attempts.to_string()
        } else {
            "-".into()
        },
        detail = detail.join(""),
    )
}
