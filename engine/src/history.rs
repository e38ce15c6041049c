//! `flow runs` and `flow show RUN`: the journal read back for people.

use crate::duration::format_duration;
use crate::event::Event;
use crate::event::RunStatus;
use crate::journal::{RunRecord, list_runs, load_run, runs_dir};
use crate::printable;
use crate::summary::Summary;
use crate::table::render_rows;
use std::path::Path;
use std::time::Duration;

fn took(record: &RunRecord) -> String {
    record
        .duration_ms
        .map(|ms| format_duration(Duration::from_millis(ms)))
        .unwrap_or_else(|| "-".into())
}

fn status(record: &RunRecord) -> String {
    match record.status {
        RunStatus::Running => "did not finish".into(),
        other => other.as_str().to_string(),
    }
}

/// Marks a record rebuilt from `events.jsonl` (its `run.json` could not be read).
const REBUILT: &str = "(rebuilt from events.jsonl)";

/// `flow runs`: every recorded run, newest first.
pub fn runs_page(state_dir: &Path) -> String {
    let runs = list_runs(state_dir);
    if runs.is_empty() {
        return format!(
            "No runs recorded in {} yet: `flow apply` records each run there.\n",
            runs_dir(state_dir).display()
        );
    }
    let mut rows = vec![vec![
        "run".to_string(),
        "playbook".into(),
        "started".into(),
        "duration".into(),
        "status".into(),
    ]];
    for run in &runs {
        rows.push(vec![
            run.run_id.clone(),
            printable::line(&crate::source::display_path(Path::new(&run.playbook))).into_owned(),
            run.started_at.clone(),
            took(run),
            match run.rebuilt {
                Some(_) => format!("{} {REBUILT}", status(run)),
                None => status(run),
            },
        ]);
    }
    render_rows(&rows, true)
}

/// `flow show RUN`: one run's record, steps, approvals and outputs.
pub fn show_page(state_dir: &Path, id: &str) -> Result<String, String> {
    let (record, events) = load_run(state_dir, id)?;
    let mut summary = Summary::default();
    let mut started: Vec<String> = Vec::new();
    for event in &events {
        summary.observe(event);
        match event {
            Event::StepStarted {
                step,
                element: None,
                ..
            } if !started.contains(step) => started.push(step.clone()),
            _ => {}
        }
    }
    let unfinished: Vec<&String> = started
        .iter()
        .filter(|s| !summary.rows.iter().any(|r| &r.step == *s))
        .collect();
    let params: Vec<String> = record
        .params
        .iter()
        .map(|(k, v)| {
            printable::line(&format!("{k}={}", crate::evaluate::display_value(v))).into_owned()
        })
        .chain(record.secret_params.iter().map(|k| format!("{k}=***")))
        .collect();
    let exit = record
        .exit_code
        .map(|c| format!(" (exit {c})"))
        .unwrap_or_default();
    let finished = record
        .finished_at
        .clone()
        .unwrap_or_else(|| "no end recorded (still running, or it crashed)".into());
    let unknown = || "(unknown: not in events.jsonl)".to_string();
    let mut header = vec![
        vec![
            "playbook".to_string(),
            if record.playbook_hash.is_empty() {
                printable::line(&crate::source::display_path(Path::new(&record.playbook)))
                    .into_owned()
            } else {
                format!(
                    "{} (sha256 {})",
                    printable::line(&crate::source::display_path(Path::new(&record.playbook))),
                    &record.playbook_hash[..12.min(record.playbook_hash.len())]
                )
            },
        ],
        vec!["started".into(), record.started_at.clone()],
        vec!["finished".into(), finished],
        vec!["duration".into(), took(&record)],
        vec!["status".into(), format!("{}{exit}", status(&record))],
        vec![
            "by".into(),
            if record.rebuilt.is_some() {
                unknown()
            } else {
                format!("{}@{}", record.user, record.host)
            },
        ],
        vec![
            "params".into(),
            if record.rebuilt.is_some() {
                unknown()
            } else if params.is_empty() {
                "(none)".into()
            } else {
                params.join(", ")
            },
        ],
    ];
    if let Some(why) = &record.rebuilt {
        header.insert(
            0,
            vec!["record".into(), format!("rebuilt from events.jsonl: {why}")],
        );
    }
    let mut out = format!(
        "Run {} — {}\n{}",
        record.run_id,
        printable::line(&record.name),
        render_rows(&header, false)
    );
    out.push_str(&format!("\nSteps\n{}", summary.table()));
    if !unfinished.is_empty() {
        let names: Vec<&str> = unfinished.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!(
            "  started, no end recorded: {}\n",
            names.join(", ")
        ));
    }
    if !summary.approvals.is_empty() {
        out.push_str("\nApprovals\n");
        for approval in &summary.approvals {
            out.push_str(&format!("  {}\n", printable::line(approval)));
        }
    }
    if let Some(outputs) = summary.outputs_table() {
        out.push_str(&format!("\nOutputs\n{outputs}"));
    }
    if let Some(error) = &record.error {
        out.push_str(&format!(
            "\nError: {}\n",
            printable::lines(error, printable::CONTINUATION)
        ));
    }
    Ok(out)
}

/// `flow --output json runs`: the run records, newest first.
pub fn runs_json(state_dir: &Path) -> serde_json::Value {
    serde_json::to_value(list_runs(state_dir)).unwrap_or_default()
}

/// `flow --output json show RUN`: the record and every event of the run.
pub fn show_json(state_dir: &Path, id: &str) -> Result<serde_json::Value, String> {
    let (record, events) = load_run(state_dir, id)?;
    Ok(serde_json::json!({ "run": record, "events": events }))
}
