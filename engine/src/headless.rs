//! A run with nothing around it — no terminal, no reporters, no journal, no signals, default
//! params — for benchmarks (what is measured is the engine, not the views) and in-process
//! tests that look at a server while the run's resources are still alive.

use crate::analyze::Checked;
use crate::context::{Approvals, Interaction};
use crate::diagnostic::Diagnostic;
use crate::event::{Emitter, Mode};
use crate::param::ParamInputs;
use crate::registry::Registry;
use crate::run::{RunSettings, Runner};
use crate::secrets::Masker;
use crate::source::SourceFile;
use std::sync::Arc;

/// Loads and checks a playbook given as text.
pub fn checked(name: &str, text: &str, registry: &Registry) -> Result<Checked, Vec<Diagnostic>> {
    let (playbook, warnings) = crate::load::load_source(SourceFile::new(name, text), registry)?;
    crate::analyze::analyze(playbook, warnings)
}

/// A runner for `checked` with its params' defaults, up to 8 steps at once, never interrupted.
pub fn runner(checked: Checked, mode: Mode) -> Result<Arc<Runner>, Vec<Diagnostic>> {
    let params = crate::param::resolve(
        &checked.playbook.params,
        &ParamInputs::default(),
        &|_| None,
        std::path::Path::new("."),
    )
    .map_err(|d| d.items)?;
    let settings = RunSettings {
        run_id: "headless".into(),
        mode,
        concurrency: 8,
        offline: false,
        whole_reads: false,
        run_dir: None,
    };
    let interaction = Interaction::new(Box::new(crate::prompt::NoTerminal), Approvals::default());
    let emitter = Arc::new(Emitter::new(Arc::new(Masker::new()), Vec::new()));
    // Never interrupted: the sender is leaked so the channel stays open.
    let (sender, interrupt) = tokio::sync::watch::channel(false);
    std::mem::forget(sender);
    Ok(Runner::new(
        Arc::new(checked),
        params,
        settings,
        emitter,
        Arc::new(interaction),
        interrupt,
    ))
}
