//! Reporters for people and pipelines: plain timestamped lines (no terminal), and one JSON
//! object per event. The live terminal view is in `live.rs`.

use crate::duration::format_duration;
use crate::event::{Event, Mode, Reporter, Status};
use crate::printable;
use crate::summary::Summary;
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

/// The line an event makes in a human view, if any (without timestamp). Shared by the plain
/// and the live view so that both say the same thing. What steps and params wrote in it is
/// shown with its control characters as pictures, and a multi-line error continues on lines
/// that start with `│` (`printable`).
pub fn event_line(event: &Event, verbosity: Verbosity) -> Option<String> {
    let line = event_text(event, verbosity)?;
    Some(printable::lines(&line, printable::CONTINUATION).into_owned())
}

fn event_text(event: &Event, verbosity: Verbosity) -> Option<String> {
    let element = |e: &Option<usize>| e.map(|e| format!("[{e}]")).unwrap_or_default();
    Some(match event {
        Event::StepStarted {
            step,
            type_name,
            element: e,
            attempt,
            ..
        } => {
            let again = if *attempt > 1 {
                format!(" attempt {attempt}")
            } else {
                String::new()
            };
            format!("▶ {step}{} ({type_name}){again}", element(e))
        }
        Event::StepOutput {
            step,
            element: e,
            line,
            stream,
            ..
        } if stream == "log" || verbosity >= Verbosity::Verbose => {
            format!("│ {step}{}: {}", element(e), printable::line(line))
        }
        Event::StepRetrying {
            step,
            element: e,
            attempt,
            error,
            delay_ms,
        } => format!(
            "↻ {step}{} attempt {attempt} failed: {error}; retrying in {}",
            element(e),
            format_duration(Duration::from_millis(*delay_ms))
        ),
        Event::StepFinished {
            step,
            element: e,
            status,
            duration_ms,
            error,
            reason,
            continued,
            kept,
            ..
        } => {
            if *kept {
                let what = match status {
                    Status::Skipped => "skipped",
                    _ => "succeeded",
                };
                return Some(format!("✔ {step}{} kept ({what} before)", element(e)));
            }
            let (mark, detail) = match status {
                Status::Succeeded => ("✔", String::new()),
                Status::Failed => ("✘", format!(": {}", error.as_deref().unwrap_or("failed"))),
                Status::Skipped => (
                    "⊘",
                    format!(" skipped ({})", reason.as_deref().unwrap_or("skipped")),
                ),
                Status::Declined => (
                    "✘",
                    format!(" declined: {}", error.as_deref().unwrap_or("declined")),
                ),
            };
            let continued = if *continued {
                " (continue_on_error)"
            } else {
                ""
            };
            format!(
                "{mark} {step}{} {}{detail}{continued}",
                element(e),
                format_duration(Duration::from_millis(*duration_ms))
            )
        }
        Event::Approval {
            step,
            approved,
            how,
            user,
            host,
            ..
        } => {
            let (mark, verdict) = if *approved {
                ("✔", "approved")
            } else {
                ("✘", "declined")
            };
            format!("{mark} {step} {verdict} ({how}, by {user}@{host})")
        }
        _ => return None,
    })
}

/// The plan's lines: `  ~ step  (type)  summary` and details under it.
pub fn plan_lines(event: &Event) -> Option<Vec<String>> {
    let Event::PlanStep(crate::kinds::PlanLine {
        step,
        name,
        type_name,
        finally,
        action,
        summary,
        details,
        condition,
        reason,
        undo,
    }) = event
    else {
        return None;
    };
    let summary = match action {
        crate::kinds::Action::Failed => format!("error: {summary}"),
        _ => summary.clone(),
    };
    let step = match name {
        Some(name) => format!("{name} [{step}]"),
        None => step.clone(),
    };
    let mut line = format!(
        "  {} {step}  ({type_name}{})  {summary}",
        action.symbol(),
        if *finally { ", finally" } else { "" }
    );
    if let Some(reason) = reason {
        line.push_str(&format!(" ({reason})"));
    }
    if let Some(condition) = condition {
        line.push_str(&format!("  [only if: {condition}]"));
    }
    // What a failure later would reverse, under the step: an approver sees the rollback.
    let undo = undo.iter().flat_map(|undo| {
        std::iter::once(format!(
            "        undo if a later step fails: {} {}  ({})",
            undo.action.symbol(),
            printable::line(&undo.summary),
            undo.type_name
        ))
        .chain(
            undo.details
                .iter()
                .map(|d| format!("            {}", printable::line(d))),
        )
    });
    Some(
        std::iter::once(printable::line(&line).into_owned())
            .chain(
                details
                    .iter()
                    .map(|d| format!("        {}", printable::line(d))),
            )
            .chain(undo)
            .collect(),
    )
}

/// `apply NAME (run ID)`, or `resume NAME (run ID, resume 1)`.
pub(crate) fn apply_line(
    name: &str,
    run_id: &str,
    resumed: Option<&crate::event::Resumed>,
) -> String {
    match resumed {
        None => format!("apply {} (run {run_id})", printable::line(name)),
        Some(resumed) => format!(
            "resume {} (run {run_id}, resume {})",
            printable::line(name),
            resumed.number
        ),
    }
}

/// `warning: step `x`: message`, as the human views print it on stderr.
pub(crate) fn warning_text(step: &Option<String>, message: &str) -> String {
    let who = step
        .as_ref()
        .map(|s| format!("step `{s}`: "))
        .unwrap_or_default();
    printable::lines(&format!("warning: {who}{message}"), printable::CONTINUATION).into_owned()
}

/// Plain lines for people when stdout is not a terminal: one per event with a timestamp, no
/// control codes; then the summary and the outputs.
pub struct PlainReporter {
    verbosity: Verbosity,
    summary: Mutex<Summary>,
}

impl PlainReporter {
    pub fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            summary: Mutex::new(Summary::default()),
        }
    }
}

pub(crate) fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

pub(crate) fn clock() -> String {
    jiff::Zoned::now().strftime("%H:%M:%S").to_string()
}

/// What the end of a plan prints.
pub(crate) fn plan_end(summary: &Summary) -> String {
    let mut out = String::new();
    if let Some(rollback) = summary.rollback_order() {
        out.push_str(&format!("\n{rollback}"));
    }
    out.push_str(&format!("\nPlan: {}.", summary.plan));
    if let Some(error) = &summary.error {
        out.push_str(&format!(
            "\nPlan failed: {}",
            printable::lines(error, printable::CONTINUATION)
        ));
    }
    out
}

impl Reporter for PlainReporter {
    fn event(&self, event: &Event) {
        let mut summary = self.summary.lock().unwrap_or_else(|e| e.into_inner());
        summary.observe(event);
        match event {
            Event::RunStarted {
                name,
                run_id,
                mode,
                resumed,
                ..
            } => match mode {
                Mode::Plan => print_out(&format!("Plan: {}\n", printable::line(name))),
                Mode::Apply if self.verbosity > Verbosity::Quiet => print_out(&format!(
                    "{} ▶ {}",
                    clock(),
                    apply_line(name, run_id, resumed.as_ref())
                )),
                Mode::Apply => {}
            },
            Event::PlanStep(_) => plan_lines(event)
                .into_iter()
                .flatten()
                .for_each(|l| print_out(&l)),
            Event::Warning { step, message } => eprintln!("{}", warning_text(step, message)),
            Event::RunFinished { .. } if summary.mode == Some(Mode::Plan) => {
                print_out(&plan_end(&summary))
            }
            Event::RunFinished { .. } => print_out(&summary.text()),
            _ if summary.mode == Some(Mode::Apply) && self.verbosity > Verbosity::Quiet => {
                if let Some(line) = event_line(&summary.relabel(event), self.verbosity) {
                    print_out(&format!("{} {line}", clock()));
                }
            }
            _ => {}
        }
    }
}
