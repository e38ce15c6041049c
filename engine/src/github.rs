//! GitHub Actions: the run's summary appended to `$GITHUB_STEP_SUMMARY` as Markdown, with a
//! RUN / SKIPPED (and why) verdict per step.

use crate::event::{Event, Mode, Reporter};
use crate::summary::Summary;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct StepSummaryReporter {
    path: PathBuf,
    summary: Mutex<Summary>,
}

impl StepSummaryReporter {
    /// A reporter when `GITHUB_STEP_SUMMARY` names a file.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty())?;
        Some(Self {
            path: PathBuf::from(path),
            summary: Mutex::default(),
        })
    }
}

impl Reporter for StepSummaryReporter {
    fn event(&self, event: &Event) {
        let mut summary = self.summary.lock().unwrap_or_else(|e| e.into_inner());
        summary.observe(event);
        if matches!(event, Event::RunFinished { .. }) && summary.mode == Some(Mode::Apply) {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .and_then(|mut file| file.write_all(summary.markdown().as_bytes()));
            if let Err(e) = written {
                eprintln!(
                    "warning: could not append the summary to {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}
