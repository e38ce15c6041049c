//! What a run came to, accumulated from its events: the summary table the terminal prints at
//! the end, the GitHub step summary, and `flow show` are all rendered from this.

use crate::duration::format_duration;
use crate::evaluate::display_value;
use crate::event::{Event, Mode, RunStatus, Status};
use crate::plan::PlanCounts;
use crate::printable;
use crate::table::render_rows;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Row {
    pub step: String,
    pub status: Status,
    pub duration_ms: u64,
    /// The skip reason or the error.
    pub detail: Option<String>,
    pub continued: bool,
    /// Kept by a resume from an earlier attempt of the run (it did not run again).
    pub kept: bool,
    /// Warnings the step gave (an `assert` with `severity: warning`).
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub run_id: String,
    pub name: String,
    pub playbook: String,
    pub mode: Option<Mode>,
    pub started_at: String,
    pub rows: Vec<Row>,
    pub plan: PlanCounts,
    pub approvals: Vec<String>,
    pub outputs: Option<Value>,
    pub status: Option<RunStatus>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Set when the run is a resume.
    pub resumed: Option<crate::event::Resumed>,
    /// The undos that failed: what is still applied.
    pub failed_undos: Vec<crate::event::FailedUndo>,
    /// A plan: the steps whose `undo` runs if a step fails, in the order it runs.
    pub rollback: Vec<String>,
    /// Warnings of steps still running, until their row is written.
    pending_warnings: Vec<(String, String)>,
    /// Display names (`name:`) by step id.
    names: std::collections::HashMap<String, String>,
    /// Where each step's row is in `rows`: a run of 10 000 steps must not search them all
    /// for each step that finishes.
    row_of: std::collections::HashMap<String, usize>,
}

impl Summary {
    /// Whether the step has a row (it finished, or was skipped).
    pub fn has_row(&self, step: &str) -> bool {
        self.row_of.contains_key(step)
    }

    /// A step as people should see it: its `name:`, else its id.
    pub fn label(&self, step: &str) -> String {
        self.names
            .get(step)
            .cloned()
            .unwrap_or_else(|| step.to_string())
    }

    /// The event with its step shown by display name, for the human views.
    pub fn relabel(&self, event: &Event) -> Event {
        if self.names.is_empty() {
            return event.clone();
        }
        let mut json = serde_json::to_value(event).unwrap_or(Value::Null);
        if let Some(step) = json.get("step").and_then(Value::as_str).map(str::to_string) {
            json["step"] = Value::String(self.label(&step));
        }
        serde_json::from_value(json).unwrap_or_else(|_| event.clone())
    }

    pub fn observe(&mut self, event: &Event) {
        if let Event::StepStarted {
            step,
            name: Some(name),
            ..
        }
        | Event::PlanStep(crate::kinds::PlanLine {
            step,
            name: Some(name),
            ..
        }) = event
        {
            self.names.insert(step.clone(), name.clone());
        }
        match event {
            Event::RunStarted {
                run_id,
                playbook,
                name,
                mode,
                at,
                resumed,
            } => {
                self.resumed = resumed.clone();
                self.run_id = run_id.clone();
                self.playbook = playbook.clone();
                self.name = name.clone();
                self.mode = Some(*mode);
                self.started_at = at.clone();
            }
            Event::PlanStep(line) => self.plan.add(line.action),
            Event::PlanRollback { steps } => self.rollback = steps.clone(),
            Event::StepFinished {
                step,
                element: None,
                status,
                duration_ms,
                error,
                reason,
                continued,
                kept,
                ..
            } => {
                // A kept step keeps the row it has (from the attempt that ran it, in
                // `flow show`); a resume's own summary gets a row saying it was kept.
                if *kept && self.has_row(step) {
                    return;
                }
                // A step finishes once, except that `undo` rows come later under their own id.
                let (warnings, others): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut self.pending_warnings)
                        .into_iter()
                        .partition(|(s, _)| s == step);
                self.pending_warnings = others;
                let row = Row {
                    step: step.clone(),
                    status: *status,
                    duration_ms: *duration_ms,
                    detail: error.clone().or_else(|| reason.clone()),
                    continued: *continued,
                    kept: *kept,
                    warnings: warnings.into_iter().map(|(_, w)| w).collect(),
                };
                match self.row_of.get(step) {
                    Some(&index) => self.rows[index] = row,
                    None => {
                        self.row_of.insert(step.clone(), self.rows.len());
                        self.rows.push(row);
                    }
                }
            }
            Event::Approval {
                step,
                approved,
                how,
                user,
                host,
                at,
            } => {
                let verdict = if *approved { "approved" } else { "declined" };
                self.approvals.push(format!(
                    "{step} {verdict} via {how} by {user}@{host} at {at}"
                ));
            }
            Event::Warning {
                step: Some(step),
                message,
            } => self.pending_warnings.push((step.clone(), message.clone())),
            Event::RunFinished {
                status,
                duration_ms,
                outputs,
                error,
                failed_undos,
                ..
            } => {
                self.status = Some(*status);
                self.duration_ms = *duration_ms;
                self.outputs = outputs.clone();
                self.error = error.clone();
                self.failed_undos = failed_undos.clone();
            }
            _ => {}
        }
    }

    fn status_text(row: &Row) -> String {
        let status = if row.continued {
            "failed (continued)"
        } else if row.kept {
            match row.status {
                Status::Skipped => "skipped (kept)",
                _ => "succeeded (kept)",
            }
        } else {
            row.status.as_str()
        };
        if row.warnings.is_empty() {
            status.to_string()
        } else {
            format!("{status} (warning)")
        }
    }

    /// The error, skip reason or first warning of a row.
    fn detail(row: &Row) -> String {
        row.detail
            .clone()
            .or_else(|| row.warnings.first().cloned())
            .unwrap_or_default()
    }

    /// The summary table: step, status, duration, and the skip reason or error.
    pub fn table(&self) -> String {
        let mut rows = vec![vec![
            "step".to_string(),
            "status".into(),
            "duration".into(),
            "detail".into(),
        ]];
        for row in &self.rows {
            rows.push(vec![
                printable::line(&self.label(&row.step)).into_owned(),
                Self::status_text(row),
                format_duration(Duration::from_millis(row.duration_ms)),
                printable::line(Self::detail(row).lines().next().unwrap_or("")).into_owned(),
            ]);
        }
        render_rows(&rows, true)
    }

    /// The playbook's `outputs` as name/value rows, if it has any.
    pub fn outputs_table(&self) -> Option<String> {
        let outputs = self.outputs.as_ref()?.as_object()?;
        let rows: Vec<Vec<String>> = outputs
            .iter()
            .map(|(k, v)| {
                vec![
                    printable::line(k).into_owned(),
                    printable::line(&display_value(v)).into_owned(),
                ]
            })
            .collect();
        Some(render_rows(&rows, false))
    }

    /// `Resume 1 of run ID: kept from before: a, b.`, for a resume.
    pub fn resume_line(&self) -> Option<String> {
        let resumed = self.resumed.as_ref()?;
        let kept = if resumed.kept.is_empty() {
            "no step kept from before".to_string()
        } else {
            format!(
                "kept from before: {}",
                resumed
                    .kept
                    .iter()
                    .map(|s| self.label(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let undo_first = if resumed.undo_first.is_empty() {
            String::new()
        } else {
            format!(
                "undos that had failed run again first: {}; ",
                resumed.undo_first.join(", ")
            )
        };
        Some(
            printable::line(&format!(
                "Resume {} of run {}: {undo_first}{kept}.",
                resumed.number, self.run_id
            ))
            .into_owned(),
        )
    }

    /// Each undo that failed, as a sentence: what is still applied, and why.
    pub fn rollback_lines(&self) -> Vec<String> {
        self.failed_undos
            .iter()
            .map(|f| f.sentence(&self.label(&f.step)))
            .collect()
    }

    /// The `Rollback incomplete` section of a summary, when an undo failed.
    pub fn rollback_text(&self) -> Option<String> {
        if self.failed_undos.is_empty() {
            return None;
        }
        let mut out = String::from("\nRollback incomplete\n");
        for line in self.rollback_lines() {
            out.push_str(&format!(
                "  ✘ {}\n",
                printable::lines(&line, printable::CONTINUATION)
            ));
        }
        out.push_str(&format!(
            "  = help: fix what made it fail, then `flow apply --resume {}` runs the failed undo again before anything else\n",
            self.run_id
        ));
        Some(out)
    }

    /// `Rollback: if a step fails, the undos run: c, then b, then a.`, for a plan.
    pub fn rollback_order(&self) -> Option<String> {
        if self.rollback.is_empty() {
            return None;
        }
        let steps: Vec<String> = self.rollback.iter().map(|s| self.label(s)).collect();
        Some(
            printable::line(&format!(
                "Rollback: if a step fails, the undo of each completed step runs, last completed first: {}.",
                steps.join(", then ")
            ))
            .into_owned(),
        )
    }

    /// `Run succeeded in 1.2s.` or `Run failed after 3.4s: why`.
    pub fn closing_line(&self) -> String {
        let took = format_duration(Duration::from_millis(self.duration_ms));
        let status = self
            .status
            .map(RunStatus::as_str)
            .unwrap_or("did not finish");
        match &self.error {
            Some(error) => format!(
                "Run {status} after {took}: {}",
                printable::lines(error, printable::CONTINUATION)
            ),
            None => format!("Run {status} in {took}."),
        }
    }

    /// The end of a run as people read it: table, outputs, what a failed undo left, closing
    /// line.
    pub fn text(&self) -> String {
        let mut out = format!("\nSummary\n{}", self.table());
        if let Some(line) = self.resume_line() {
            out.push_str(&format!("{line}\n"));
        }
        if let Some(outputs) = self.outputs_table() {
            out.push_str(&format!("\nOutputs\n{outputs}"));
        }
        if let Some(rollback) = self.rollback_text() {
            out.push_str(&rollback);
        }
        out.push('\n');
        out.push_str(&self.closing_line());
        out.push('\n');
        out
    }

    /// The summary as GitHub-flavoured Markdown, with a RUN / SKIPPED / FAILED verdict per
    /// step (and the reason of each skip), for `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let status = self
            .status
            .map(RunStatus::as_str)
            .unwrap_or("did not finish");
        let mut out = format!("### flow: {} — {status}\n\n", escape_md(&self.name));
        out.push_str(&format!(
            "Run `{}` of `{}`, {}.\n\n",
            self.run_id,
            escape_md(&self.playbook),
            format_duration(Duration::from_millis(self.duration_ms))
        ));
        if let Some(resumed) = &self.resumed {
            let kept: Vec<String> = resumed
                .kept
                .iter()
                .map(|s| escape_md(&self.label(s)))
                .collect();
            out.push_str(&format!(
                "Resume {} of the run, by {}@{}; {}kept from before: {}.\n\n",
                resumed.number,
                escape_md(&resumed.user),
                escape_md(&resumed.host),
                if resumed.undo_first.is_empty() {
                    String::new()
                } else {
                    format!(
                        "undos that had failed run again first: {}; ",
                        escape_md(&resumed.undo_first.join(", "))
                    )
                },
                if kept.is_empty() {
                    "none".to_string()
                } else {
                    kept.join(", ")
                }
            ));
        }
        out.push_str("| step | verdict | duration | detail |\n|---|---|---|---|\n");
        for row in &self.rows {
            let verdict = match row.status {
                Status::Succeeded | Status::Skipped if row.kept => "KEPT",
                Status::Succeeded if !row.warnings.is_empty() => "RUN (warning)",
                Status::Succeeded => "RUN",
                Status::Skipped => "SKIPPED",
                Status::Failed if row.continued => "FAILED (continued)",
                Status::Failed => "FAILED",
                Status::Declined => "DECLINED",
            };
            out.push_str(&format!(
                "| {} | {verdict} | {} | {} |\n",
                escape_md(&self.label(&row.step)),
                format_duration(Duration::from_millis(row.duration_ms)),
                escape_md(&Self::detail(row))
            ));
        }
        if let Some(outputs) = self
            .outputs
            .as_ref()
            .and_then(Value::as_object)
            .filter(|o| !o.is_empty())
        {
            out.push_str("\n| output | value |\n|---|---|\n");
            for (name, value) in outputs {
                out.push_str(&format!(
                    "| {} | {} |\n",
                    escape_md(name),
                    escape_md(&display_value(value))
                ));
            }
        }
        if !self.failed_undos.is_empty() {
            out.push_str("\n**Rollback incomplete**\n\n");
            for line in self.rollback_lines() {
                out.push_str(&format!("- {}\n", escape_md(&line)));
            }
            out.push_str(&format!(
                "\nFix what made it fail, then `flow apply --resume {}` runs the failed undo again before anything else.\n",
                self.run_id
            ));
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("\n**{}**\n", escape_md(error)));
        }
        out.push('\n');
        out
    }
}

/// Text as Markdown shows it literally, on one table row: its control characters as
/// pictures, its line breaks as `<br>`.
fn escape_md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in printable::block(text).chars() {
        match c {
            '|' | '*' | '`' | '<' | '>' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("<br>"),
            _ => out.push(c),
        }
    }
    out
}
