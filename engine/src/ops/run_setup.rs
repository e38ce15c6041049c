//! What every run is set up with: its id, its reporters, Ctrl-C, and the runner of a plan.

use super::{Global, OutputFormat, exit};
use crate::analyze::Checked;
use crate::context::{Approvals, Interaction};
use crate::event::{Emitter, Mode, Reporter};
use crate::github::StepSummaryReporter;
use crate::live::LiveReporter;
use crate::output::{JsonReporter, PlainReporter};
use crate::param::ResolvedParams;
use crate::run::{RunSettings, Runner};
use crate::secrets::Masker;
use std::sync::Arc;

/// The reporters of a run: the view (live on a terminal, plain lines, or JSON), plus the
/// GitHub step summary under Actions, plus `extra` (the journal).
pub(crate) fn emitter(
    global: &Global,
    extra: Vec<Box<dyn Reporter>>,
    masker: Arc<Masker>,
) -> Arc<Emitter> {
    use std::io::IsTerminal;
    let view: Box<dyn Reporter> = match global.output {
        OutputFormat::Json => Box::new(JsonReporter),
        OutputFormat::Human if std::io::stdout().is_terminal() => {
            Box::new(LiveReporter::new(global.verbosity))
        }
        OutputFormat::Human => Box::new(PlainReporter::new(global.verbosity)),
    };
    let mut reporters = vec![view];
    reporters.extend(StepSummaryReporter::from_env().map(|r| Box::new(r) as Box<dyn Reporter>));
    reporters.extend(extra);
    Arc::new(Emitter::new(masker, reporters))
}

/// Ctrl-C (SIGINT) and SIGTERM: the first stops the run cleanly (undo and `finally` still
/// run), the second exits at once.
pub(crate) fn interrupt_signal() -> tokio::sync::watch::Receiver<bool> {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        let mut count = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            count += 1;
            if count == 1 {
                eprintln!("\ninterrupted: stopping (press Ctrl-C again to exit at once)");
                let _ = sender.send(true);
            } else {
                crate::children::kill_all();
                std::process::exit(exit::INTERRUPTED);
            }
        }
    });
    receiver
}

/// A run id that sorts by time: `20261123-021758-4f2a`.
pub fn new_run_id() -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{}-{salt:04x}", now.strftime("%Y%m%d-%H%M%S"))
}

pub(crate) fn plan_runner(
    checked: Arc<Checked>,
    params: ResolvedParams,
    offline: bool,
    emitter: Arc<Emitter>,
) -> Arc<Runner> {
    let settings = RunSettings {
        run_id: new_run_id(),
        mode: Mode::Plan,
        concurrency: 1,
        offline,
    };
    let interaction = Interaction::new(Box::new(crate::prompt::NoTerminal), Approvals::default());
    Runner::new(
        checked,
        params,
        settings,
        emitter,
        Arc::new(interaction),
        interrupt_signal(),
    )
}
