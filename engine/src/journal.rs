//! The run journal: `<state-dir>/runs/<run id>/` (mode 0700) holding `run.json` (what ran,
//! with which params, how it ended) and `events.jsonl` (the event stream, appended and flushed
//! as it happens). It is the single record of a run: `flow runs`, `flow show` and
//! `flow apply --resume` read it (a resume appends to it), and a run that crashed half way
//! leaves a journal that still reads.
//!
//! A run never goes on without its record: once an event cannot be written (a full disk), the
//! journal says so on stderr, takes no further line, and the runner starts no further step
//! (see [`JournalFault`]).

use crate::event::{Event, Reporter};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub name: String,
    pub playbook: String,
    pub playbook_hash: String,
    /// Params with secret values removed.
    pub params: IndexMap<String, Value>,
    /// Names of the secret params (their values are never written).
    #[serde(default)]
    pub secret_params: Vec<String>,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// `running` until the run ends, then how it ended.
    pub status: crate::event::RunStatus,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub error: Option<String>,
    pub user: String,
    pub host: String,
    pub flow_version: String,
    /// Set when `run.json` could not be read and this record was rebuilt from `events.jsonl`:
    /// why `run.json` could not be read. Params, user and host are then unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<String>,
    /// What each main step was when the run (or its last resume) started — its definition,
    /// `defaults` merged, its dependencies and the params it reads — fingerprinted like a
    /// saved plan's reads (secrets masked in the preview, keyed when they hold one): a resume
    /// refuses to keep a step whose fingerprint changed.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub fingerprints: IndexMap<String, crate::saved_plan::ReadFingerprint>,
    /// Each `flow apply --resume` of the run: when and by whom.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumes: Vec<ResumeRecord>,
    /// The playbook's step graph as this run (or its last resume) ran it: `flow serve`
    /// draws it. Journals from before it was recorded have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub graph: Vec<crate::run_graph::GraphStep>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResumeRecord {
    pub at: String,
    pub user: String,
    pub host: String,
    /// The steps it kept from before.
    pub kept: Vec<String>,
}

impl RunRecord {
    /// Takes the end of the run from its `run_finished` event; false for any other event.
    fn end_with(&mut self, event: &Event) -> bool {
        let Event::RunFinished {
            status,
            exit_code,
            duration_ms,
            error,
            ..
        } = event
        else {
            return false;
        };
        self.status = *status;
        self.exit_code = Some(*exit_code);
        self.duration_ms = Some(*duration_ms);
        self.error = error.clone();
        true
    }
}

pub fn runs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("runs")
}

/// Set once the journal could not take an event: from then on no step of the run starts
/// (a step runs only with a record of it).
#[derive(Debug, Default)]
pub struct JournalFault(OnceLock<String>);

impl JournalFault {
    /// Why the journal cannot be written, once it cannot.
    pub fn message(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Writes every event of a run to its journal as it happens.
pub struct JournalReporter {
    dir: PathBuf,
    /// Held while this flow writes the run: no second flow resumes it meanwhile.
    _lock: Option<crate::run_lock::RunLock>,
    events: Mutex<File>,
    record: Mutex<RunRecord>,
    fault: Arc<JournalFault>,
    /// Output recorded per step, so one chatty command cannot fill the disk with the journal.
    output: Mutex<std::collections::HashMap<String, OutputBudget>>,
    /// The run's masker: secrets learned while the run went (a `secrets.get` value) are
    /// masked in `run.json`'s step previews too when the end is recorded.
    masker: Option<Arc<crate::secrets::Masker>>,
}

/// The journal keeps at most this much of a step's output lines; the rest is counted, and
/// said in one line when the step finishes (its outputs keep the last MiB anyway).
pub const STEP_OUTPUT_JOURNAL_BYTES: u64 = 4 << 20;

#[derive(Default)]
struct OutputBudget {
    recorded: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl JournalReporter {
    /// Creates the run's folder (0700) with `run.json` and an empty `events.jsonl`.
    pub fn create(state_dir: &Path, record: RunRecord) -> std::io::Result<Self> {
        let runs = runs_dir(state_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&runs)?;
        let dir = runs.join(&record.run_id);
        // Not recursive: two runs must never share a folder.
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        // A folder nobody else knows yet: the lock cannot be held; a filesystem without
        // `flock` leaves the run unlocked rather than unrecorded.
        let lock = crate::run_lock::RunLock::acquire(&dir).ok();
        Self::open(dir, record, lock)
    }

    /// Goes on writing the journal of an existing run (a resume), under its lock: `run.json`
    /// is replaced by `record`, events are appended after the earlier ones.
    pub fn reopen(
        state_dir: &Path,
        record: RunRecord,
        lock: crate::run_lock::RunLock,
    ) -> std::io::Result<Self> {
        let dir = runs_dir(state_dir).join(&record.run_id);
        Self::open(dir, record, Some(lock))
    }

    fn open(
        dir: PathBuf,
        record: RunRecord,
        lock: Option<crate::run_lock::RunLock>,
    ) -> std::io::Result<Self> {
        write_record(&dir, &record)?;
        let events = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join("events.jsonl"))?;
        // A killed flow may have left half a line at the end: the next event starts a line
        // of its own.
        if ends_inside_a_line(&dir.join("events.jsonl")) {
            (&events).write_all(b"\n")?;
        }
        Ok(Self {
            dir,
            _lock: lock,
            events: Mutex::new(events),
            record: Mutex::new(record),
            fault: Arc::default(),
            output: Mutex::default(),
            masker: None,
        })
    }

    /// Masks `run.json` with what `masker` knows when the end of the run is recorded.
    pub fn masking_with(mut self, masker: Arc<crate::secrets::Masker>) -> Self {
        self.masker = Some(masker);
        self
    }

    /// Set when an event could not be written; the runner checks it before starting a step.
    pub fn fault(&self) -> Arc<JournalFault> {
        Arc::clone(&self.fault)
    }

    /// Records the first write failure and says it on stderr at once: the journal cannot take
    /// the message, the terminal can.
    fn failed(&self, error: &std::io::Error) {
        let message = format!(
            "cannot write the run journal {}: {error}",
            self.dir.join("events.jsonl").display()
        );
        if self.fault.0.set(message.clone()).is_ok() {
            eprintln!("error: {message}: no further step starts");
        }
    }
}

/// Whether the file's last byte is not a newline (read alone: a journal may be large).
fn ends_inside_a_line(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok((mut file, meta)) = crate::regular_file::open(path) else {
        return false;
    };
    let mut last = [0u8; 1];
    meta.len() > 0
        && file.seek(SeekFrom::End(-1)).is_ok()
        && file.read_exact(&mut last).is_ok()
        && last[0] != b'\n'
}

fn write_record(dir: &Path, record: &RunRecord) -> std::io::Result<()> {
    let temp = dir.join(".run.json.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(
        serde_json::to_string_pretty(record)
            .map_err(std::io::Error::other)?
            .as_bytes(),
    )?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(temp, dir.join("run.json"))
}

impl JournalReporter {
    /// Whether this event goes into the journal: a step's output lines do until the step's
    /// budget is spent. A finished step first gets a line saying what was left out.
    fn admit(&self, event: &Event) -> Option<Event> {
        let mut budgets = self.output.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::StepOutput { step, line, .. } => {
                let budget = budgets.entry(step.clone()).or_default();
                let size = line.len() as u64 + 1;
                if budget.recorded + size > STEP_OUTPUT_JOURNAL_BYTES {
                    budget.dropped_lines += 1;
                    budget.dropped_bytes += size;
                    return None;
                }
                budget.recorded += size;
                None
            }
            Event::StepFinished { step, element, .. } => {
                let budget = budgets.remove(step)?;
                (budget.dropped_lines > 0).then(|| Event::StepOutput {
                    step: step.clone(),
                    element: *element,
                    stream: "flow".into(),
                    line: format!(
                        "[flow: {} more lines ({} bytes) of output were not recorded in the journal, which keeps {} MiB per step]",
                        budget.dropped_lines,
                        budget.dropped_bytes,
                        STEP_OUTPUT_JOURNAL_BYTES >> 20
                    ),
                })
            }
            _ => None,
        }
    }

    fn over_budget(&self, event: &Event) -> bool {
        let Event::StepOutput { step, .. } = event else {
            return false;
        };
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(step)
            .is_some_and(|b| b.dropped_lines > 0)
    }

    fn write(&self, event: &Event) {
        // After a failed write the file may end in half a line: nothing more is appended to it.
        if self.fault.message().is_none()
            && let Ok(line) = serde_json::to_string(event)
        {
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            // One write per line, so a crash leaves whole lines (at most the last one cut).
            let written = events
                .write_all(format!("{line}\n").as_bytes())
                .and_then(|()| events.flush());
            drop(events);
            if let Err(error) = written {
                self.failed(&error);
            }
        }
    }
}

impl Reporter for JournalReporter {
    fn event(&self, event: &Event) {
        // Progress is for the operator watching: what a step found is in its outputs.
        if let Event::StepOutput { stream, .. } = event
            && stream == crate::context::PROGRESS_STREAM
        {
            return;
        }
        let note = self.admit(event);
        if let Some(note) = &note {
            self.write(note);
        }
        if self.over_budget(event) {
            return;
        }
        self.write(event);
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        if record.end_with(event) {
            record.finished_at = Some(crate::event::timestamp_now());
            if let Some(masker) = &self.masker {
                for fingerprint in record.fingerprints.values_mut() {
                    for line in &mut fingerprint.preview {
                        *line = masker.mask(line);
                    }
                }
            }
            if let Err(e) = write_record(&self.dir, &record) {
                eprintln!(
                    "warning: could not record the end of the run in {}: {e}",
                    self.dir.display()
                );
            }
            let _ = self
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .sync_all();
        }
    }
}

/// Every run in the state dir, newest first. A run whose `run.json` cannot be read (or does
/// not parse) is rebuilt from its `events.jsonl`, marked `rebuilt`; a folder with neither is
/// skipped.
pub fn list_runs(state_dir: &Path) -> Vec<RunRecord> {
    let Ok(entries) = std::fs::read_dir(runs_dir(state_dir)) else {
        return Vec::new();
    };
    let mut runs: Vec<RunRecord> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| read_record(&entry.path()))
        .collect();
    let time = |r: &RunRecord| r.started_at.parse::<jiff::Timestamp>().ok();
    runs.sort_by(|a, b| time(b).cmp(&time(a)).then(b.run_id.cmp(&a.run_id)));
    runs
}

/// The record of the run in `dir`: its `run.json`, or else what its events tell.
fn read_record(dir: &Path) -> Option<RunRecord> {
    let why = match crate::regular_file::read_text(
        &dir.join("run.json"),
        crate::regular_file::INPUT_TEXT_LIMIT,
    ) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(record) => return Some(record),
            Err(e) => format!("run.json does not parse: {e}"),
        },
        Err(e) => format!("run.json cannot be read: {e}"),
    };
    rebuild_record(dir, why)
}

/// A record rebuilt from `events.jsonl`: its `run_started` event, and how the run ended if a
/// `run_finished` event says so. What only `run.json` holds (params, user, host, the
/// playbook's hash) stays empty.
fn rebuild_record(dir: &Path, why: String) -> Option<RunRecord> {
    let mut started = None;
    let mut ends: Vec<Event> = Vec::new();
    crate::journal_read::read_events(&dir.join("events.jsonl"), |event| match event {
        Event::RunStarted {
            run_id,
            playbook,
            name,
            at,
            ..
        } if started.is_none() => started = Some((run_id, name, playbook, at)),
        Event::RunFinished { .. } if started.is_some() => ends.push(event),
        _ => {}
    })
    .ok()?;
    let (run_id, name, playbook, started_at) = started?;
    let mut record = RunRecord {
        run_id,
        name,
        playbook,
        playbook_hash: String::new(),
        params: IndexMap::new(),
        secret_params: Vec::new(),
        started_at,
        finished_at: None,
        duration_ms: None,
        status: crate::event::RunStatus::Running,
        exit_code: None,
        error: None,
        user: String::new(),
        host: String::new(),
        flow_version: String::new(),
        rebuilt: Some(why),
        fingerprints: IndexMap::new(),
        resumes: Vec::new(),
        graph: Vec::new(),
    };
    for event in ends {
        if record.end_with(&event)
            && let Some(duration_ms) = record.duration_ms
        {
            record.finished_at = record
                .started_at
                .parse::<jiff::Timestamp>()
                .ok()
                .and_then(|t| {
                    t.checked_add(jiff::SignedDuration::from_millis(duration_ms as i64))
                        .ok()
                })
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        }
    }
    Some(record)
}

/// The record of run `id` (a unique prefix works). An empty id is refused: it would be a
/// prefix of every run's.
pub fn find_run(state_dir: &Path, id: &str) -> Result<RunRecord, String> {
    if id.trim().is_empty() {
        return Err(
            "the run id is empty: give a run id, or a unique prefix of one; `flow runs` lists them"
                .into(),
        );
    }
    let runs = list_runs(state_dir);
    let matching: Vec<&RunRecord> = match runs.iter().find(|r| r.run_id == id) {
        Some(exact) => vec![exact],
        None => runs.iter().filter(|r| r.run_id.starts_with(id)).collect(),
    };
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] if runs.is_empty() => Err(format!(
            "no runs recorded in {}",
            runs_dir(state_dir).display()
        )),
        [] => Err(format!(
            "no run `{id}` in {}; `flow runs` lists them",
            runs_dir(state_dir).display()
        )),
        many => {
            let ids: Vec<&str> = many.iter().map(|r| r.run_id.as_str()).collect();
            Err(format!("`{id}` matches several runs: {}", ids.join(", ")))
        }
    }
}

/// The `events.jsonl` of a run.
pub fn events_path(state_dir: &Path, record: &RunRecord) -> PathBuf {
    runs_dir(state_dir)
        .join(&record.run_id)
        .join("events.jsonl")
}

/// One run's record and every event it could read, in memory: for small journals (tests);
/// `flow show` and `--resume` read the events one at a time with
/// [`crate::journal_read::read_events`].
pub fn load_run(state_dir: &Path, id: &str) -> Result<(RunRecord, Vec<Event>), String> {
    let record = find_run(state_dir, id)?;
    let mut events = Vec::new();
    let _ = crate::journal_read::read_events(&events_path(state_dir, &record), |event| {
        events.push(event)
    });
    Ok((record, events))
}
