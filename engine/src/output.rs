//! Reporters that turn the event stream into what the operator reads: plain timestamped lines
//! with a summary at the end, or one JSON object per event.

use crate::duration::format_duration;
use crate::evaluate::display_value;
use crate::event::{Event, Mode, Reporter, Status};
use crate::step_type::Action;
use crate::table::render_rows;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// One JSON object per event on stdout, for pipelines.
pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Plain lines for people: one per event, then the summary and the outputs.
pub struct HumanReporter {
    verbosity: Verbosity,
    state: Mutex<HumanState>,
}

#[derive(Default)]
struct HumanState {
    mode: Option<Mode>,
    rows: Vec<(String, Status, Option<String>, Duration, bool)>,
    plan: Vec<Action>,
}

impl HumanReporter {
    pub fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            state: Mutex::new(HumanState::default()),
        }
    }

    fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    fn stamped(&self, text: &str) {
        if self.verbosity > Verbosity::Quiet {
            let now = jiff::Zoned::now();
            self.line(&format!("{} {text}", now.strftime("%H:%M:%S")));
        }
    }
}

fn element_suffix(element: Option<usize>) -> String {
    element.map(|e| format!("[{e}]")).unwrap_or_default()
}

impl Reporter for HumanReporter {
    fn event(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::RunStarted {
                run_id, name, mode, ..
            } => {
                state.mode = Some(*mode);
                match mode {
                    Mode::Plan => self.line(&format!("Plan: {name}\n")),
                    Mode::Apply => self.stamped(&format!("▶ apply {name} (run {run_id})")),
                }
            }
            Event::PlanStep {
                step,
                type_name,
                finally,
                action,
                summary,
                details,
                condition,
                reason,
            } => {
                state.plan.push(*action);
                let mut text = format!(
                    "  {} {step}  ({type_name}{})  {summary}",
                    action.symbol(),
                    if *finally { ", finally" } else { "" }
                );
                if let Some(reason) = reason {
                    text.push_str(&format!(" ({reason})"));
                }
                if let Some(condition) = condition {
                    text.push_str(&format!("  [only if: {condition}]"));
                }
                self.line(&text);
                for detail in details {
                    self.line(&format!("        {detail}"));
                }
            }
            Event::StepStarted {
                step,
                type_name,
                element,
                attempt,
                ..
            } => {
                if state.mode == Some(Mode::Apply) {
                    let again = if *attempt > 1 {
                        format!(" attempt {attempt}")
                    } else {
                        String::new()
                    };
                    self.stamped(&format!(
                        "▶ {step}{} ({type_name}){again}",
                        element_suffix(*element)
                    ));
                }
            }
            Event::StepOutput {
                step,
                element,
                line,
                stream,
            } => {
                if state.mode == Some(Mode::Apply)
                    && (stream == "log" || self.verbosity >= Verbosity::Verbose)
                {
                    self.stamped(&format!("│ {step}{}: {line}", element_suffix(*element)));
                }
            }
            Event::StepRetrying {
                step,
                element,
                attempt,
                error,
                delay_ms,
            } => {
                self.stamped(&format!(
                    "↻ {step}{} attempt {attempt} failed: {error}; retrying in {}",
                    element_suffix(*element),
                    format_duration(Duration::from_millis(*delay_ms))
                ));
            }
            Event::StepFinished {
                step,
                element,
                status,
                duration_ms,
                error,
                reason,
                continued,
                ..
            } => {
                if state.mode != Some(Mode::Apply) {
                    return;
                }
                let duration = Duration::from_millis(*duration_ms);
                let (mark, detail) = match status {
                    Status::Succeeded => ("✔", String::new()),
                    Status::Failed => ("✘", format!(": {}", error.as_deref().unwrap_or("failed"))),
                    Status::Skipped => (
                        "⊘",
                        format!(" skipped ({})", reason.as_deref().unwrap_or("skipped")),
                    ),
                    Status::Declined => ("✘", " declined".to_string()),
                };
                let continued_note = if *continued {
                    " (continue_on_error)"
                } else {
                    ""
                };
                self.stamped(&format!(
                    "{mark} {step}{} {}{detail}{continued_note}",
                    element_suffix(*element),
                    format_duration(duration)
                ));
                if element.is_none() {
                    let why = error.clone().or_else(|| reason.clone());
                    state
                        .rows
                        .push((step.clone(), *status, why, duration, *continued));
                }
            }
            Event::Approval {
                step,
                approved,
                how,
                user,
                host,
                ..
            } => {
                let verdict = if *approved { "approved" } else { "declined" };
                self.stamped(&format!(
                    "{} {step} {verdict} ({how}, by {user}@{host})",
                    if *approved { "✔" } else { "✘" }
                ));
            }
            Event::Warning { step, message } => {
                let who = step
                    .as_ref()
                    .map(|s| format!("step `{s}`: "))
                    .unwrap_or_default();
                eprintln!("warning: {who}{message}");
            }
            Event::RunFinished {
                status,
                duration_ms,
                outputs,
                error,
                ..
            } => {
                if state.mode == Some(Mode::Plan) {
                    let mut counts = crate::plan::PlanCounts::default();
                    state.plan.iter().for_each(|action| counts.add(*action));
                    self.line(&format!("\nPlan: {counts}."));
                    if let Some(error) = error {
                        self.line(&format!("Plan failed: {error}"));
                    }
                    return;
                }
                let mut rows = vec![vec![
                    "step".to_string(),
                    "status".to_string(),
                    "duration".to_string(),
                    "detail".to_string(),
                ]];
                for (step, status, why, duration, continued) in &state.rows {
                    let status = if *continued {
                        "failed (continued)".to_string()
                    } else {
                        status.as_str().to_string()
                    };
                    rows.push(vec![
                        step.clone(),
                        status,
                        format_duration(*duration),
                        why.clone().unwrap_or_default(),
                    ]);
                }
                self.line("");
                self.line(&format!("Summary\n{}", render_rows(&rows, true)));
                if let Some(outputs) = outputs.as_ref().and_then(|o| o.as_object()) {
                    self.line("Outputs");
                    let rows: Vec<Vec<String>> = outputs
                        .iter()
                        .map(|(k, v)| vec![k.clone(), display_value(v)])
                        .collect();
                    self.line(&render_rows(&rows, false));
                }
                let took = format_duration(Duration::from_millis(*duration_ms));
                match error {
                    Some(error) => {
                        self.line(&format!("Run {} after {took}: {error}", status.as_str()))
                    }
                    None => self.line(&format!("Run {} in {took}.", status.as_str())),
                }
            }
        }
    }
}
