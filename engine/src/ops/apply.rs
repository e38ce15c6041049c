//! `flow apply`: a playbook (validated, then applied), or a saved plan (re-checked against the
//! world, then applied exactly), recorded in the run journal.

use super::drift::check_drift;
use super::run_setup::{emitter, interrupt_signal, new_run_id, on_second_signal};
use super::{Global, check, exit, print_diagnostics, resolve_params};
use crate::analyze::Checked;
use crate::context::{Approvals, Interaction};
use crate::diagnostic::Diagnostic;
use crate::event::{Event, Mode, Reporter, RunStatus};
use crate::journal::{JournalReporter, RunRecord};
use crate::param::{ParamInputs, ResolvedParams};
use crate::prompt::TerminalPrompter;
use crate::registry::Registry;
use crate::run::{RunSettings, Runner};
use crate::secrets::Masker;
use std::path::PathBuf;
use std::sync::Arc;

pub struct ApplyOptions {
    /// A playbook, or a plan saved by `flow plan --out`.
    pub playbook: PathBuf,
    pub params: ParamInputs,
    pub approvals: Approvals,
    pub concurrency: usize,
}

/// `flow apply`: a playbook (validated, then applied), or a saved plan (re-checked against the
/// world, then applied exactly).
pub async fn apply(mut options: ApplyOptions, registry: &Registry, global: &Global) -> i32 {
    let saved = match crate::saved_plan::read(&options.playbook) {
        Some(Ok(saved)) => Some(saved),
        Some(Err(message)) => {
            print_diagnostics(&[Diagnostic::error(None, message)]);
            return exit::INVALID;
        }
        None => None,
    };
    if let Some(saved) = &saved {
        options.playbook = PathBuf::from(&saved.playbook);
        options.params.values = saved.params.clone();
    }
    let checked = match check(&options.playbook, registry) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let params = match resolve_params(&checked, &options.params) {
        Ok(p) => p,
        Err(mut diagnostics) => {
            if let Some(saved) = &saved {
                explain_missing_secrets(&mut diagnostics, &saved.secret_params, PLAN_SECRETS);
            }
            print_diagnostics(&diagnostics);
            return exit::INVALID;
        }
    };
    if let Some(saved) = &saved
        && let Err(code) = require_secrets(&checked, &params, &saved.secret_params, PLAN_SECRETS)
    {
        return code;
    }
    if let Err(code) = check_approvals(&checked, &options.approvals) {
        return code;
    }
    let checked = Arc::new(checked);
    if let Some(saved) = &saved
        && let Err(code) = check_drift(saved, &checked, &params, &global.state_dir).await
    {
        return code;
    }
    let run_id = new_run_id();
    // The masker knows the secrets before anything is written, run.json included.
    let masker = Arc::new(Masker::new());
    crate::run::learn_param_secrets(&params, &masker);
    let fingerprints = match step_fingerprints(&checked, &params, &run_id, &global.state_dir) {
        Ok(fingerprints) => fingerprints,
        Err(e) => {
            eprintln!("warning: this run cannot be resumed: {e}");
            Default::default()
        }
    };
    let record = RunRecord {
        run_id: run_id.clone(),
        name: checked.playbook.name.clone(),
        playbook: checked.playbook.file.path.display().to_string(),
        playbook_hash: checked.playbook.hash.clone(),
        params: params.public(),
        secret_params: given_secrets(&params),
        started_at: crate::event::timestamp_now(),
        finished_at: None,
        duration_ms: None,
        status: crate::event::RunStatus::Running,
        exit_code: None,
        error: None,
        user: crate::context::current_user(),
        host: crate::context::current_host(),
        flow_version: env!("CARGO_PKG_VERSION").to_string(),
        rebuilt: None,
        fingerprints,
        resumes: Vec::new(),
        graph: crate::run_graph::graph(&checked, &masker),
    };
    let journal = match JournalReporter::create(&global.state_dir, record) {
        Ok(journal) => journal,
        Err(e) => {
            let message = format!(
                "cannot create the run journal under {}: {e}",
                global.state_dir.display()
            );
            print_diagnostics(&[Diagnostic::error(None, message)
                .with_help("pass a writable `--state-dir` (or FLOW_STATE_DIR)")]);
            return exit::INVALID;
        }
    };
    // Made with the run's folder, so that a resume finds it (or says it is missing) and
    // never makes another one under values derived from the first.
    let run_dir = crate::journal::runs_dir(&global.state_dir).join(&run_id);
    if let Err(message) = crate::run_key::RunKey::load(&run_dir, true) {
        print_diagnostics(&[Diagnostic::error(None, message)]);
        return exit::INVALID;
    }
    let run = ReadyRun {
        checked,
        params,
        run_id,
        journal,
        masker,
        approvals: options.approvals,
        concurrency: options.concurrency,
    };
    run.apply(global, None).await
}

/// The secret params that have a value: a saved plan or a resume must be given them again.
pub(super) fn given_secrets(params: &ResolvedParams) -> Vec<String> {
    params
        .secret
        .iter()
        .filter(|n| params.values.get(*n).is_some_and(|v| !v.is_null()))
        .cloned()
        .collect()
}

/// The fingerprints of the steps, for a later resume (`step_fingerprint`): computed with a
/// masker of their own that knows the params' secrets and those the playbook writes.
pub(super) fn step_fingerprints(
    checked: &Checked,
    params: &ResolvedParams,
    run_id: &str,
    state_dir: &std::path::Path,
) -> std::io::Result<indexmap::IndexMap<String, crate::saved_plan::ReadFingerprint>> {
    let masker = Masker::new();
    crate::run::learn_param_secrets(params, &masker);
    crate::step_fingerprint::fingerprints(checked, params, run_id, &masker, state_dir)
}

/// A run about to be applied: checked, its params resolved, its journal open.
pub(super) struct ReadyRun {
    pub checked: Arc<Checked>,
    pub params: ResolvedParams,
    pub run_id: String,
    pub journal: JournalReporter,
    pub masker: Arc<Masker>,
    pub approvals: Approvals,
    pub concurrency: usize,
}

impl ReadyRun {
    /// Applies the run (a resume of it, with `kept`), reporting to the views and the journal.
    pub async fn apply(self, global: &Global, kept: Option<crate::run::kept::Kept>) -> i32 {
        let settings = RunSettings {
            run_dir: Some(crate::journal::runs_dir(&global.state_dir).join(&self.run_id)),
            run_id: self.run_id,
            mode: Mode::Apply,
            concurrency: self.concurrency.max(1),
            offline: false,
            whole_reads: false,
        };
        let interaction = Interaction::new(TerminalPrompter::detect(), self.approvals);
        let journal_fault = self.journal.fault();
        let journal = Arc::new(self.journal.masking_with(Arc::clone(&self.masker)));
        record_end_on_second_signal(Arc::clone(&journal));
        let emitter = emitter(global, vec![Box::new(SharedJournal(journal))], self.masker);
        let runner = Runner::new(
            self.checked,
            self.params,
            settings,
            emitter,
            Arc::new(interaction),
            interrupt_signal(),
        );
        runner.halt_when_journal_fails(journal_fault);
        if let Some(kept) = kept {
            runner.resume_from(kept);
        }
        let code = runner.apply().await.status.exit_code();
        on_second_signal(None);
        code
    }
}

/// The journal, also reachable from the signal thread.
struct SharedJournal(Arc<JournalReporter>);

impl Reporter for SharedJournal {
    fn event(&self, event: &Event) {
        self.0.event(event);
    }
}

/// A second Ctrl-C exits at once, without the run's own end: record it as interrupted in the
/// journal first, so `flow runs` says so rather than "did not finish".
fn record_end_on_second_signal(journal: Arc<JournalReporter>) {
    let started = std::time::Instant::now();
    on_second_signal(Some(Box::new(move || {
        journal.event(&Event::RunFinished {
            status: RunStatus::Interrupted,
            exit_code: exit::INTERRUPTED,
            duration_ms: started.elapsed().as_millis() as u64,
            outputs: None,
            error: Some(
                "interrupted twice: exited at once, without waiting for undo or `finally`".into(),
            ),
            failed_undos: Vec::new(),
        });
    })));
}

pub(super) fn check_approvals(checked: &Checked, approvals: &Approvals) -> Result<(), i32> {
    for name in &approvals.approve {
        if checked.playbook.step(name).is_none() {
            let d = Diagnostic::error(
                None,
                format!("`--approve {name}`: the playbook has no step `{name}`"),
            );
            let d = match crate::diagnostic::did_you_mean(
                name,
                checked.playbook.steps.iter().map(|s| s.id.as_str()),
            ) {
                Some(hint) => d.with_help(hint),
                None => d,
            };
            print_diagnostics(&[d]);
            return Err(exit::INVALID);
        }
    }
    Ok(())
}

/// How a saved plan, or a run's journal, says that it keeps no secrets.
#[derive(Clone, Copy)]
pub(super) struct SecretSource<'a> {
    /// "the plan does not store it"
    pub not_stored: &'a str,
    /// "had a value for the plan, and plans never store secrets"
    pub had_value: &'a str,
}

const PLAN_SECRETS: SecretSource<'static> = SecretSource {
    not_stored: "the plan does not store it",
    had_value: "had a value for the plan, and plans never store secrets",
};

/// A secret param missing at `apply PLAN.json` (or a resume) is missing because plans (and
/// journals) never store secrets.
pub(super) fn explain_missing_secrets(
    diagnostics: &mut [Diagnostic],
    secret_params: &[String],
    source: SecretSource,
) {
    for d in diagnostics.iter_mut() {
        if let Some(name) = secret_params
            .iter()
            .find(|n| d.message == format!("missing required param `{n}`"))
        {
            d.help = Some(format!(
                "`{name}` is secret, so {}: give it again with `-p {name}=…`{}",
                source.not_stored,
                d.help
                    .as_deref()
                    .and_then(|h| h.split_once(" or set "))
                    .map(|(_, var)| format!(" or set {var}"))
                    .unwrap_or_default()
            ));
        }
    }
}

/// Refuses (exit 2) when a secret param that had a value before has none now.
pub(super) fn require_secrets(
    checked: &Checked,
    params: &ResolvedParams,
    secret_params: &[String],
    source: SecretSource,
) -> Result<(), i32> {
    let missing: Vec<Diagnostic> = secret_params
        .iter()
        .filter(|name| params.values.get(*name).is_none_or(|v| v.is_null()))
        .map(|name| {
            let env = checked
                .playbook
                .params
                .get(name)
                .and_then(|p| p.env.clone())
                .map(|v| format!(" or set {v}"))
                .unwrap_or_default();
            Diagnostic::error(None, format!("secret param `{name}` {}", source.had_value))
                .with_help(format!("give it again: `-p {name}=…`{env}"))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        print_diagnostics(&missing);
        Err(exit::INVALID)
    }
}
