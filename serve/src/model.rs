//! What the pages and the JSON API show of a run, built from its journal alone (`run.json`
//! and `events.jsonl`, already masked): the HTML and JSON views render the same values.

use flow_engine::event::{Event, RunStatus, Status};
use flow_engine::journal::{RunRecord, list_runs, runs_dir};
use flow_engine::run_graph::GraphStep;
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A run as the runs list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub name: String,
    pub playbook: String,
    /// As `run.json` spells it: `running`, `succeeded`, `failed`, `needs_approval`,
    /// `rollback_incomplete`…
    pub status: String,
    /// As `flow runs` says it: `did not finish` for a killed run, `(resumed 1×)`…
    pub status_text: String,
    /// A flow is writing this run now.
    pub live: bool,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
    /// `user@host`, when `run.json` recorded it.
    pub by: Option<String>,
    pub exit_code: Option<i32>,
    pub resumable: bool,
    /// Why the record was rebuilt from `events.jsonl` (its `run.json` could not be read).
    pub rebuilt: Option<String>,
}

/// One run with everything the journal says about it.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Params as the journal holds them: secret ones only by name, shown as `***`.
    pub params: serde_json::Map<String, Value>,
    pub steps: Vec<StepView>,
    pub approvals: Vec<ApprovalView>,
    pub warnings: Vec<String>,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    /// The closing line the terminal prints: `Run failed after 1.2s: …`.
    pub closing_line: Option<String>,
    /// Each `undo` that failed in the run's last attempt: what is still applied, and why.
    pub failed_undos: Vec<flow_engine::event::FailedUndo>,
    /// The same, as sentences: `` `x` (secrets.put) is still applied: its undo … failed: … ``.
    pub rollback: Vec<String>,
    pub resumes: Vec<String>,
    /// The step graph was recorded (else the steps are only those the events name, unlinked).
    pub graph_recorded: bool,
    /// `events.jsonl` was longer than a page reads: what is shown is its beginning.
    pub events_cut: bool,
    /// Lines of `events.jsonl` that could not be read: the page shows the others.
    pub events_damage: Vec<String>,
}

/// A step's state in the run: the graph's step, and the last word of the events on it.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_name: String,
    pub needs: Vec<String>,
    pub finally: bool,
    /// `pending`, `running`, `unfinished` (started, no end recorded and no flow on it), or a
    /// finished status: `succeeded`, `failed`, `skipped`, `declined`.
    pub status: String,
    /// When the current (or last) attempt started.
    pub started_at: Option<String>,
    pub duration_ms: Option<u64>,
    pub attempts: u32,
    pub outputs: Option<Value>,
    pub outputs_masked: bool,
    pub error: Option<String>,
    /// Why it was skipped.
    pub reason: Option<String>,
    pub continued: bool,
    pub kept: bool,
    /// `for_each` elements finished, and how many of them failed.
    pub elements: usize,
    pub elements_failed: usize,
    /// Lines of output the journal holds for it.
    pub output_lines: usize,
    /// Retries so far: `attempt 2 failed: …`.
    pub retries: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApprovalView {
    pub step: String,
    pub approved: bool,
    pub how: String,
    pub by: String,
    pub at: String,
}

/// One line a step printed.
#[derive(Debug, Clone, Serialize)]
pub struct OutputLine {
    pub element: Option<usize>,
    pub stream: String,
    pub line: String,
}

/// The journal reads at most this much of `events.jsonl` for a page: a run with more (many
/// chatty steps) shows its beginning and says so.
pub const EVENTS_READ_LIMIT: u64 = 16 << 20;

/// Why a run cannot be shown: unknown, ambiguous, or its folder name is not a run id.
#[derive(Debug, Clone)]
pub struct NotFound(pub String);

/// Every run, newest first.
pub fn runs(state_dir: &Path) -> Vec<RunSummary> {
    list_runs(state_dir)
        .iter()
        .map(|record| summary(record, state_dir))
        .collect()
}

fn summary(record: &RunRecord, state_dir: &Path) -> RunSummary {
    let live = record.status == RunStatus::Running
        && flow_engine::run_lock::in_use(&runs_dir(state_dir).join(&record.run_id));
    RunSummary {
        run_id: record.run_id.clone(),
        name: record.name.clone(),
        playbook: record.playbook.clone(),
        status: if record.status == RunStatus::Running && !live {
            "unfinished".into()
        } else {
            record.status.key().into()
        },
        status_text: flow_engine::history::status(record, state_dir),
        live,
        started_at: record.started_at.clone(),
        finished_at: record.finished_at.clone(),
        duration_ms: record.duration_ms,
        by: (record.rebuilt.is_none() && !record.user.is_empty())
            .then(|| format!("{}@{}", record.user, record.host)),
        exit_code: record.exit_code,
        resumable: flow_engine::history::resumable(record, state_dir),
        rebuilt: record.rebuilt.clone(),
    }
}

/// A run id as flow makes them (`20261123-021758-4f2a`): letters, digits, `-`, `_`, `.`,
/// never `..` — a `run.json` claiming another id names no folder outside the runs.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && !id.contains("..")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The run `id` names (a unique prefix works).
pub fn find(state_dir: &Path, id: &str) -> Result<RunRecord, NotFound> {
    if !plain_id(id) {
        return Err(NotFound(format!("`{id}` is not a run id")));
    }
    // The usual case, an exact id, without reading every run's record.
    let record_path = runs_dir(state_dir).join(id).join("run.json");
    if regular_file(&record_path)
        && let Ok(text) = std::fs::read_to_string(&record_path)
        && let Ok(record) = serde_json::from_str::<RunRecord>(&text)
        && record.run_id == id
    {
        return Ok(record);
    }
    let runs = list_runs(state_dir);
    let exact = runs.iter().find(|r| r.run_id == id);
    let matching: Vec<&RunRecord> = match exact {
        Some(one) => vec![one],
        None => runs.iter().filter(|r| r.run_id.starts_with(id)).collect(),
    };
    match matching.as_slice() {
        [one] if plain_id(&one.run_id) => Ok((*one).clone()),
        [] | [_] => Err(NotFound(format!(
            "no run `{id}` in {}",
            runs_dir(state_dir).display()
        ))),
        many => Err(NotFound(format!(
            "`{id}` matches {} runs: {}",
            many.len(),
            many.iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Whether a path is a plain file: a FIFO or a device in a damaged state dir would block a
/// read for ever.
pub fn regular_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

pub fn events_path(state_dir: &Path, record: &RunRecord) -> PathBuf {
    runs_dir(state_dir)
        .join(&record.run_id)
        .join("events.jsonl")
}

/// How much of a run's `events.jsonl` a page could read.
#[derive(Debug, Clone, Default)]
pub struct JournalRead {
    /// The file is longer than [`EVENTS_READ_LIMIT`]: what is shown is its beginning.
    pub cut: bool,
    /// Lines that could not be read (as `flow show` says them): a page shows the rest.
    pub damage: Vec<String>,
}

/// The run's events, read up to [`EVENTS_READ_LIMIT`] as `flow show` reads a journal (line
/// by line, lossily), and what could not be read of it.
pub fn events(state_dir: &Path, record: &RunRecord) -> (Vec<Event>, JournalRead) {
    let path = events_path(state_dir, record);
    let mut events = Vec::new();
    let Ok((file, meta)) = flow_engine::regular_file::open(&path) else {
        return (events, JournalRead::default());
    };
    let cut = meta.len() > EVENTS_READ_LIMIT;
    let reader = std::io::BufReader::new(file.take(EVENTS_READ_LIMIT));
    let mut damage =
        flow_engine::journal_read::read_events_from(reader, |e| events.push(e)).unwrap_or_default();
    // The line the limit cut is not damage.
    if cut {
        damage.cut.pop();
    }
    (
        events,
        JournalRead {
            cut,
            damage: damage.lines(),
        },
    )
}

/// The steps of the run: the recorded graph in its order, else the steps as the events name
/// them; then any the graph lacks (an `undo`, a step of an earlier playbook version).
fn graph_of(record: &RunRecord, events: &[Event]) -> Vec<GraphStep> {
    let mut graph = record.graph.clone();
    if graph.is_empty() {
        graph = record
            .fingerprints
            .keys()
            .map(|id| bare_step(id, ""))
            .collect();
    }
    for event in events {
        if let Event::StepStarted {
            step, type_name, ..
        } = event
            && !graph.iter().any(|g| &g.id == step)
        {
            graph.push(bare_step(step, type_name));
        }
        if let Event::StepFinished { step, .. } = event
            && !graph.iter().any(|g| &g.id == step)
        {
            graph.push(bare_step(step, ""));
        }
    }
    graph
}

fn bare_step(id: &str, type_name: &str) -> GraphStep {
    GraphStep {
        id: id.to_string(),
        name: None,
        type_name: type_name.to_string(),
        needs: Vec::new(),
        finally: false,
    }
}

fn pending(step: GraphStep) -> StepView {
    StepView {
        id: step.id,
        name: step.name,
        type_name: step.type_name,
        needs: step.needs,
        finally: step.finally,
        status: "pending".into(),
        started_at: None,
        duration_ms: None,
        attempts: 0,
        outputs: None,
        outputs_masked: false,
        error: None,
        reason: None,
        continued: false,
        kept: false,
        elements: 0,
        elements_failed: 0,
        output_lines: 0,
        retries: Vec::new(),
    }
}

/// The run with every step's state, from its record and events.
pub fn detail(
    state_dir: &Path,
    record: &RunRecord,
    events: &[Event],
    journal: &JournalRead,
) -> RunDetail {
    let summary = summary(record, state_dir);
    let mut steps: Vec<StepView> = graph_of(record, events).into_iter().map(pending).collect();
    let mut approvals = Vec::new();
    let mut warnings = Vec::new();
    let mut closing = flow_engine::summary::Summary::default();
    for event in events {
        closing.observe(event);
        replay(event, &mut steps, &mut approvals, &mut warnings);
    }
    if !summary.live {
        // No flow is on the run: a step it started and did not end never will.
        for step in steps.iter_mut().filter(|s| s.status == "running") {
            step.status = "unfinished".into();
        }
    }
    let params = record
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(
            record
                .secret_params
                .iter()
                .map(|k| (k.clone(), Value::String("***".into()))),
        )
        .collect();
    let resumes = record
        .resumes
        .iter()
        .enumerate()
        .map(|(n, r)| {
            format!(
                "resume {} at {} by {}@{} (kept: {})",
                n + 1,
                r.at,
                r.user,
                r.host,
                if r.kept.is_empty() {
                    "none".to_string()
                } else {
                    r.kept.join(", ")
                }
            )
        })
        .collect();
    RunDetail {
        summary,
        params,
        steps,
        approvals,
        warnings,
        outputs: closing.outputs.clone(),
        error: record.error.clone().or(closing.error.clone()),
        closing_line: closing.status.map(|_| closing.closing_line()),
        failed_undos: closing.failed_undos.clone(),
        rollback: closing.rollback_lines(),
        resumes,
        graph_recorded: !record.graph.is_empty(),
        events_cut: journal.cut,
        events_damage: journal.damage.clone(),
    }
}

/// Applies one event to the steps it is about.
fn replay(
    event: &Event,
    steps: &mut [StepView],
    approvals: &mut Vec<ApprovalView>,
    warnings: &mut Vec<String>,
) {
    let find = |steps: &mut [StepView], id: &str| -> Option<usize> {
        steps.iter().position(|s| s.id == id)
    };
    match event {
        // A resume starts over every step that did not finish; a kept one is re-reported.
        Event::StepStarted {
            step,
            name,
            type_name,
            element: None,
            attempt,
            at,
        } => {
            if let Some(i) = find(steps, step) {
                let view = &mut steps[i];
                view.status = "running".into();
                view.started_at = Some(at.clone());
                view.attempts = *attempt;
                view.duration_ms = None;
                view.error = None;
                view.reason = None;
                if view.name.is_none() {
                    view.name = name.clone();
                }
                if view.type_name.is_empty() {
                    view.type_name = type_name.clone();
                }
            }
        }
        Event::StepOutput { step, .. } => {
            if let Some(i) = find(steps, step) {
                steps[i].output_lines += 1;
            }
        }
        Event::StepRetrying {
            step,
            element: None,
            attempt,
            error,
            ..
        } => {
            if let Some(i) = find(steps, step) {
                steps[i]
                    .retries
                    .push(format!("attempt {attempt} failed: {error}"));
            }
        }
        Event::StepFinished {
            step,
            element: Some(_),
            status,
            ..
        } => {
            if let Some(i) = find(steps, step) {
                steps[i].elements += 1;
                if *status == Status::Failed {
                    steps[i].elements_failed += 1;
                }
            }
        }
        Event::StepFinished {
            step,
            element: None,
            status,
            duration_ms,
            attempts,
            outputs,
            error,
            reason,
            continued,
            kept,
            outputs_masked,
            ..
        } => {
            if let Some(i) = find(steps, step) {
                let view = &mut steps[i];
                // A kept step's re-report keeps the attempt that ran it.
                if *kept && view.status != "pending" {
                    view.kept = true;
                    return;
                }
                view.status = status.as_str().into();
                view.duration_ms = Some(*duration_ms);
                view.attempts = *attempts;
                view.outputs = outputs.clone();
                view.outputs_masked = *outputs_masked;
                view.error = error.clone();
                view.reason = reason.clone();
                view.continued = *continued;
                view.kept = *kept;
            }
        }
        Event::Approval {
            step,
            approved,
            how,
            user,
            host,
            at,
        } => approvals.push(ApprovalView {
            step: step.clone(),
            approved: *approved,
            how: how.clone(),
            by: format!("{user}@{host}"),
            at: at.clone(),
        }),
        Event::Warning { step, message } => warnings.push(match step {
            Some(step) => format!("{step}: {message}"),
            None => message.clone(),
        }),
        _ => {}
    }
}

/// What `step` printed, at most `limit` lines; and how many more there were.
pub fn output_of(events: &[Event], step: &str, limit: usize) -> (Vec<OutputLine>, usize) {
    let mut lines = Vec::new();
    let mut more = 0;
    for event in events {
        if let Event::StepOutput {
            step: s,
            element,
            stream,
            line,
        } = event
            && s == step
        {
            if lines.len() < limit {
                lines.push(OutputLine {
                    element: *element,
                    stream: stream.clone(),
                    line: line.clone(),
                });
            } else {
                more += 1;
            }
        }
    }
    (lines, more)
}

/// `1.2s`, as the terminal says durations.
pub fn took(ms: u64) -> String {
    flow_engine::duration::format_duration(std::time::Duration::from_millis(ms))
}

impl StepView {
    /// Its `name:`, else its id.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

#[cfg(test)]
pub(crate) fn pending_step(id: &str) -> StepView {
    pending(bare_step(id, ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(graph: Value) -> RunRecord {
        serde_json::from_value(json!({
            "run_id": "20261202-000000-abcd", "name": "t", "playbook": "t.yaml",
            "playbook_hash": "", "params": {}, "started_at": "2026-12-02T00:00:00.000Z",
            "status": "running", "user": "u", "host": "h", "flow_version": "0",
            "graph": graph,
        }))
        .expect("a record")
    }

    fn event(value: Value) -> Event {
        serde_json::from_value(value).expect("an event")
    }

    #[test]
    fn a_run_no_flow_holds_has_its_started_steps_unfinished_and_the_rest_pending() {
        let record = record(json!([
            { "id": "a", "type": "exec" },
            { "id": "b", "type": "exec", "needs": ["a"] },
            { "id": "c", "type": "exec", "needs": ["b"] },
        ]));
        let events = vec![
            event(
                json!({ "event": "step_started", "step": "a", "type": "exec", "attempt": 1, "at": "x" }),
            ),
            event(
                json!({ "event": "step_finished", "step": "a", "status": "succeeded", "duration_ms": 5, "attempts": 1 }),
            ),
            event(
                json!({ "event": "step_started", "step": "b", "type": "exec", "attempt": 1, "at": "y" }),
            ),
            event(json!({ "event": "step_output", "step": "b", "stream": "stdout", "line": "hi" })),
        ];
        let detail = detail(
            Path::new("/nonexistent"),
            &record,
            &events,
            &JournalRead::default(),
        );
        let statuses: Vec<(&str, &str)> = detail
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            [("a", "succeeded"), ("b", "unfinished"), ("c", "pending")]
        );
        assert_eq!(detail.steps[1].output_lines, 1);
        assert_eq!(detail.summary.status, "unfinished");
    }

    #[test]
    fn a_kept_step_keeps_the_attempt_that_ran_it_and_unknown_steps_are_added() {
        let record = record(json!([{ "id": "a", "type": "exec" }]));
        let events = vec![
            event(
                json!({ "event": "step_finished", "step": "a", "status": "succeeded", "duration_ms": 7, "attempts": 2 }),
            ),
            event(
                json!({ "event": "step_finished", "step": "a", "status": "succeeded", "duration_ms": 0, "attempts": 0, "kept": true }),
            ),
            event(
                json!({ "event": "step_finished", "step": "a.undo", "status": "succeeded", "duration_ms": 1, "attempts": 1 }),
            ),
        ];
        let detail = detail(
            Path::new("/nonexistent"),
            &record,
            &events,
            &JournalRead::default(),
        );
        assert_eq!(detail.steps[0].duration_ms, Some(7));
        assert_eq!(detail.steps[0].attempts, 2);
        assert!(detail.steps[0].kept);
        assert_eq!(detail.steps[1].id, "a.undo");
    }

    #[test]
    fn only_plain_run_ids_are_looked_up() {
        for id in ["..", "../x", "a/b", "", "%2e", "a\0"] {
            assert!(!plain_id(id), "{id:?}");
        }
        assert!(plain_id("20261202-000000-abcd"));
        assert!(find(Path::new("/nonexistent"), "../../etc").is_err());
    }
}
