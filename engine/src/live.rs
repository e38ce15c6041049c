//! The live terminal view: a spinner with elapsed time per running step, finished steps
//! printed above with ✔ ✘ ⊘ and their durations, out of the way while a question is asked.

use crate::event::{Event, Mode, Reporter};
use crate::output::{Verbosity, apply_line, event_line, plan_end, plan_lines, warning_text};
use crate::printable;
use crate::summary::Summary;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct LiveReporter {
    verbosity: Verbosity,
    view: MultiProgress,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    summary: Summary,
    /// The spinner of each running step (and element).
    running: HashMap<(String, Option<usize>), ProgressBar>,
    /// While a question is on the terminal, lines wait here.
    prompting: bool,
    held: Vec<String>,
}

impl LiveReporter {
    pub fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            view: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            state: Mutex::default(),
        }
    }

    fn print(&self, state: &mut LiveState, line: &str) {
        if state.prompting {
            state.held.push(line.to_string());
        } else if self.view.println(line).is_err() {
            println!("{line}");
        }
    }

    fn spinner(&self, label: String) -> ProgressBar {
        // The prefix holds the step's progress line, when it reports one.
        let style = ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim} {prefix}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_strings(&["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", "·"]);
        let bar = self.view.add(ProgressBar::new_spinner());
        bar.set_style(style);
        bar.set_message(label);
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }
}

impl Reporter for LiveReporter {
    fn event(&self, event: &Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.summary.observe(event);
        let mode = state.summary.mode;
        match event {
            Event::RunStarted {
                name,
                run_id,
                mode,
                resumed,
                ..
            } => match mode {
                Mode::Plan => self.print(&mut state, &format!("Plan: {}\n", printable::line(name))),
                Mode::Apply => self.print(
                    &mut state,
                    &format!("▶ {}", apply_line(name, run_id, resumed.as_ref())),
                ),
            },
            Event::PlanStep(line) => {
                if mode == Some(Mode::Plan)
                    && let Some(bar) = state.running.remove(&(line.step.clone(), None))
                {
                    bar.finish_and_clear();
                    self.view.remove(&bar);
                }
                plan_lines(event)
                    .into_iter()
                    .flatten()
                    .for_each(|l| self.print(&mut state, &l))
            }
            Event::StepStarted {
                step,
                type_name,
                element,
                attempt,
                ..
            } if mode == Some(Mode::Apply) => {
                let key = (step.clone(), *element);
                let shown = printable::line(&state.summary.label(step)).into_owned();
                if let Some(bar) = state.running.get(&key) {
                    bar.set_message(format!("{shown} ({type_name}) attempt {attempt}"));
                } else if self.verbosity > Verbosity::Quiet {
                    let label = format!(
                        "{shown}{} ({type_name})",
                        element.map(|e| format!("[{e}]")).unwrap_or_default()
                    );
                    let bar = self.spinner(label);
                    state.running.insert(key, bar);
                }
            }
            Event::StepFinished { step, element, .. } if mode == Some(Mode::Apply) => {
                if let Some(bar) = state.running.remove(&(step.clone(), *element)) {
                    bar.finish_and_clear();
                    self.view.remove(&bar);
                }
                if self.verbosity > Verbosity::Quiet
                    && let Some(line) = event_line(&state.summary.relabel(event), self.verbosity)
                {
                    self.print(&mut state, &line);
                }
            }
            Event::StepOutput {
                step,
                element,
                stream,
                line,
            } if stream == crate::context::PROGRESS_STREAM => {
                if self.verbosity == Verbosity::Quiet {
                    return;
                }
                let key = (step.clone(), *element);
                if !state.running.contains_key(&key) && mode == Some(Mode::Plan) {
                    // A read that takes long while planning: a spinner until its plan line.
                    let label = printable::line(&state.summary.label(step)).into_owned();
                    let bar = self.spinner(label);
                    state.running.insert(key.clone(), bar);
                }
                if let Some(bar) = state.running.get(&key) {
                    bar.set_prefix(printable::line(line).into_owned());
                }
            }
            Event::PromptStarted { .. } => {
                let _ = self.view.clear();
                self.view.set_draw_target(ProgressDrawTarget::hidden());
                state.prompting = true;
            }
            Event::PromptFinished { .. } => {
                self.view.set_draw_target(ProgressDrawTarget::stdout());
                state.prompting = false;
                for line in std::mem::take(&mut state.held) {
                    self.print(&mut state, &line);
                }
            }
            Event::Warning { step, message } => {
                let text = warning_text(step, message);
                self.view.suspend(|| eprintln!("{text}"));
            }
            Event::RunFinished { .. } => {
                for (_, bar) in state.running.drain() {
                    bar.finish_and_clear();
                }
                let _ = self.view.clear();
                let text = if mode == Some(Mode::Plan) {
                    plan_end(&state.summary)
                } else {
                    state.summary.text()
                };
                self.view.suspend(|| println!("{text}"));
            }
            Event::StepStarted { .. } => {}
            _ if mode == Some(Mode::Apply) && self.verbosity > Verbosity::Quiet => {
                if let Some(line) = event_line(&state.summary.relabel(event), self.verbosity) {
                    self.print(&mut state, &line);
                }
            }
            _ => {}
        }
    }
}
