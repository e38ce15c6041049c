//! `flow runs` and `flow show RUN`: the journal read back for people.

use crate::duration::format_duration;
use crate::event::Event;
use crate::event::RunStatus;
use crate::journal::{RunRecord, events_path, find_run, list_runs, runs_dir};
use crate::journal_read::{Damage, read_events};
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

/// How a run ended, as `flow runs` says it: `did not finish` for a run no flow holds any
/// more, `(resumed 2×)` after resumes.
pub fn status(record: &RunRecord, state_dir: &Path) -> String {
    let status = match record.status {
        RunStatus::Running if crate::run_lock::in_use(&run_dir(state_dir, record)) => {
            "running".into()
        }
        RunStatus::Running => "did not finish".into(),
        other => other.as_str().to_string(),
    };
    match record.resumes.len() {
        0 => status,
        n => format!("{status} (resumed {n}×)"),
    }
}

fn run_dir(state_dir: &Path, record: &RunRecord) -> std::path::PathBuf {
    runs_dir(state_dir).join(&record.run_id)
}

/// Whether `flow apply --resume` can go on with the run: it did not succeed, no flow holds it
/// now, and its `run.json` has what a resume compares the playbook with.
pub fn resumable(record: &RunRecord, state_dir: &Path) -> bool {
    let unfinished = match record.status {
        RunStatus::Succeeded => false,
        RunStatus::Running => !crate::run_lock::in_use(&run_dir(state_dir, record)),
        RunStatus::Failed
        | RunStatus::Declined
        | RunStatus::NeedsApproval
        | RunStatus::Interrupted
        | RunStatus::RollbackIncomplete => true,
    };
    unfinished && record.rebuilt.is_none() && !record.fingerprints.is_empty()
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
        "resumable".into(),
    ]];
    for run in &runs {
        rows.push(vec![
            run.run_id.clone(),
            printable::line(&crate::source::display_path(Path::new(&run.playbook))).into_owned(),
            run.started_at.clone(),
            took(run),
            match run.rebuilt {
                Some(_) => format!("{} {REBUILT}", status(run, state_dir)),
                None => status(run, state_dir),
            },
            if resumable(run, state_dir) {
                "yes".into()
            } else {
                "-".into()
            },
        ]);
    }
    render_rows(&rows, true)
}

/// `flow show RUN`: one run's record, steps, approvals and outputs. The journal is read one
/// event at a time; what could not be read of it is said, after what could.
pub fn show_page(state_dir: &Path, id: &str) -> Result<String, String> {
    let record = find_run(state_dir, id)?;
    let mut summary = Summary::default();
    let mut started: indexmap::IndexSet<String> = indexmap::IndexSet::new();
    let mut attempts = Attempts::default();
    let read = read_events(&events_path(state_dir, &record), |event| {
        summary.observe(&event);
        attempts.observe(&event);
        match &event {
            Event::StepStarted {
                step,
                element: None,
                ..
            } if !started.contains(step) => {
                started.insert(step.clone());
            }
            _ => {}
        }
    });
    let unfinished: Vec<&String> = started.iter().filter(|s| !summary.has_row(s)).collect();
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
        vec![
            "status".into(),
            format!("{}{exit}", status(&record, state_dir)),
        ],
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
    for (number, resume) in record.resumes.iter().enumerate() {
        let kept = if resume.kept.is_empty() {
            "none".to_string()
        } else {
            resume.kept.join(", ")
        };
        header.push(vec![
            format!("resume {}", number + 1),
            printable::line(&format!(
                "{} by {}@{} (kept: {kept})",
                resume.at, resume.user, resume.host
            ))
            .into_owned(),
        ]);
    }
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
    if let Some(damage) = damage_note(state_dir, &record, &read) {
        out.push_str(&damage);
    }
    out.push_str(&format!("\nSteps\n{}", summary.table()));
    if let Some(attempts) = attempts.table() {
        out.push_str(&format!("\nAttempts, run then resumes\n{attempts}"));
    }
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
    if let Some(rollback) = summary.rollback_text() {
        out.push_str(&rollback);
    }
    if let Some(error) = &record.error {
        out.push_str(&format!(
            "\nError: {}\n",
            printable::lines(error, printable::CONTINUATION)
        ));
    }
    Ok(out)
}

/// What `flow show` says of a journal it could not read whole: the events shown are those
/// it could read.
fn damage_note(
    state_dir: &Path,
    record: &RunRecord,
    read: &Result<Damage, crate::regular_file::ReadError>,
) -> Option<String> {
    let path = events_path(state_dir, record);
    let shown = printable::line(&path.display().to_string()).into_owned();
    match read {
        Err(e) => Some(format!(
            "\nJournal\n  {shown} cannot be read ({e}): no steps to show\n"
        )),
        Ok(damage) if damage.is_empty() => None,
        Ok(damage) => {
            let verdict = match damage.blocks_resume() {
                Some(_) => "damaged; shown below is what could be read",
                None => "a line was cut short (the run crashed); shown below is the rest",
            };
            let mut note = format!("\nJournal\n  {shown} is {verdict}:\n");
            for line in damage.lines().iter().take(20) {
                note.push_str(&format!("  - {}\n", printable::line(line)));
            }
            if damage.lines().len() > 20 {
                note.push_str(&format!("  … {} more\n", damage.lines().len() - 20));
            }
            Some(note)
        }
    }
}

/// For a run that was resumed: what each step came to in the run and in each resume —
/// `failed ×2` (two attempts), `kept` (from before), `no end recorded` (flow was killed).
#[derive(Default)]
struct Attempts {
    parts: usize,
    cells: Vec<(String, Vec<String>)>,
}

impl Attempts {
    fn cell(&mut self, step: &str, text: String) {
        let part = self.parts.max(1) - 1;
        let index = match self.cells.iter().position(|(s, _)| s == step) {
            Some(index) => index,
            None => {
                self.cells.push((step.to_string(), Vec::new()));
                self.cells.len() - 1
            }
        };
        let row = &mut self.cells[index].1;
        row.resize(row.len().max(part + 1), String::new());
        row[part] = text;
    }

    fn observe(&mut self, event: &Event) {
        match event {
            Event::RunStarted { .. } => self.parts += 1,
            Event::StepStarted {
                step,
                element: None,
                ..
            } => self.cell(step, "no end recorded".into()),
            Event::StepFinished {
                step,
                element: None,
                status,
                attempts,
                kept,
                ..
            } => {
                let text = match (*kept, attempts) {
                    (true, _) => "kept".to_string(),
                    (false, n) if *n > 1 => format!("{} ×{n}", status.as_str()),
                    (false, _) => status.as_str().to_string(),
                };
                self.cell(step, text);
            }
            _ => {}
        }
    }

    fn table(&self) -> Option<String> {
        if self.parts < 2 {
            return None;
        }
        let mut rows = vec![
            std::iter::once("step".to_string())
                .chain(std::iter::once("run".to_string()))
                .chain((1..self.parts).map(|n| format!("resume {n}")))
                .collect::<Vec<_>>(),
        ];
        for (step, row) in &self.cells {
            let mut line = vec![printable::line(step).into_owned()];
            line.extend((0..self.parts).map(|p| match row.get(p) {
                Some(text) if !text.is_empty() => text.clone(),
                _ => "-".into(),
            }));
            rows.push(line);
        }
        Some(render_rows(&rows, true))
    }
}

/// `flow --output json runs`: the run records, newest first, each with `resumable`.
pub fn runs_json(state_dir: &Path) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = list_runs(state_dir)
        .iter()
        .map(|run| {
            let mut value = serde_json::to_value(run).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert(
                    "resumable".into(),
                    serde_json::Value::Bool(resumable(run, state_dir)),
                );
            }
            value
        })
        .collect();
    serde_json::Value::Array(runs)
}

/// `flow --output json show RUN`: the record and every event of the run, written to `out` as
/// they are read (pretty JSON: `{"run": …, "events": […], "journal": …}`); `journal` says
/// what could not be read (`null` when all could).
pub fn show_json(state_dir: &Path, id: &str, out: impl std::io::Write) -> Result<(), String> {
    let record = find_run(state_dir, id)?;
    let events = JournalEvents {
        path: events_path(state_dir, &record),
        damage: std::cell::RefCell::new(None),
    };
    let shown = ShowJson {
        run: &record,
        events: &events,
        journal: JournalState(&events),
    };
    serde_json::to_writer_pretty(out, &shown).map_err(|e| format!("cannot write the run: {e}"))
}

#[derive(serde::Serialize)]
struct ShowJson<'a> {
    run: &'a RunRecord,
    events: &'a JournalEvents,
    journal: JournalState<'a>,
}

/// The events of a journal, serialized as they are read; what could not be read is kept for
/// [`JournalState`], serialized after them.
struct JournalEvents {
    path: std::path::PathBuf,
    damage: std::cell::RefCell<Option<Result<Damage, String>>>,
}

impl serde::Serialize for JournalEvents {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(None)?;
        let mut failed = None;
        let read = read_events(&self.path, |event| {
            if failed.is_none()
                && let Err(e) = seq.serialize_element(&event)
            {
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        *self.damage.borrow_mut() = Some(read.map_err(|e| e.to_string()));
        seq.end()
    }
}

struct JournalState<'a>(&'a JournalEvents);

impl serde::Serialize for JournalState<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &*self.0.damage.borrow() {
            Some(Ok(damage)) if damage.is_empty() => serializer.serialize_none(),
            Some(Ok(damage)) => serde_json::json!({
                "damaged": damage.blocks_resume().is_some(),
                "problems": damage.lines(),
            })
            .serialize(serializer),
            Some(Err(e)) => serde_json::json!({ "unreadable": e }).serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}
