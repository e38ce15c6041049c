//! The operations behind the CLI commands, as library functions: the CLI parses arguments,
//! builds these options and prints nothing itself.

use crate::analyze::Checked;
use crate::context::{Approvals, Interaction};
use crate::diagnostic::Diagnostic;
use crate::event::{Emitter, Mode, Reporter};
use crate::github::StepSummaryReporter;
use crate::journal::{JournalReporter, RunRecord};
use crate::live::LiveReporter;
use crate::output::{JsonReporter, PlainReporter, Verbosity};
use crate::param::{ParamInputs, ResolvedParams};
use crate::prompt::TerminalPrompter;
use crate::registry::Registry;
use crate::run::{RunSettings, Runner};
use crate::saved_plan::{Drift, SavedPlan, compare_params, compare_reads, fingerprint};
use crate::secrets::Masker;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Exit codes of DESIGN §1.
pub mod exit {
    pub const OK: i32 = 0;
    pub const STEP_FAILED: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const APPROVAL: i32 = 3;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Global {
    pub output: OutputFormat,
    pub verbosity: Verbosity,
    pub state_dir: PathBuf,
}

/// Whether `--output json` is on: diagnostics then also go to stdout as JSON events, so that a
/// pipeline reading stdout learns why nothing ran. The process has one output mode.
static JSON_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once by the CLI for `--output json`.
pub fn use_json_output() {
    JSON_OUTPUT.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn json_output() -> bool {
    JSON_OUTPUT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints diagnostics on stderr, errors first; under GitHub Actions also as annotations; with
/// `--output json` also as `{"event":"diagnostic",…}` lines on stdout.
pub fn print_diagnostics(diagnostics: &[Diagnostic]) {
    let github = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| !d.is_error());
    for diagnostic in sorted {
        eprint!("{}", diagnostic.render());
        if github {
            eprintln!("{}", diagnostic.github_annotation());
        }
        if json_output() {
            println!("{}", diagnostic.to_json());
        }
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 1 {
        eprintln!("error: {errors} problems found");
    }
}

/// Loads and checks a playbook, printing what is wrong.
pub fn check(path: &Path, registry: &Registry) -> Result<Checked, i32> {
    match crate::check_file(path, registry) {
        Ok(checked) => {
            print_diagnostics(&checked.warnings);
            Ok(checked)
        }
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            Err(exit::INVALID)
        }
    }
}

/// `flow validate`.
pub fn validate(path: &Path, registry: &Registry, global: &Global) -> i32 {
    match check(path, registry) {
        Ok(checked) => {
            if global.verbosity > Verbosity::Quiet {
                let playbook = &checked.playbook;
                let finally = playbook.finally_steps().count();
                let finally = if finally > 0 {
                    format!(" + {finally} finally")
                } else {
                    String::new()
                };
                if json_output() {
                    let event = serde_json::json!({ "event": "validated", "playbook": playbook.file.display_path(), "steps": checked.main_count(), "params": playbook.params.len() });
                    println!("{event}");
                    return exit::OK;
                }
                println!(
                    "✔ {} is valid: {} step{}{finally}, {} param{}",
                    playbook.file.display_path(),
                    checked.main_count(),
                    if checked.main_count() == 1 { "" } else { "s" },
                    playbook.params.len(),
                    if playbook.params.len() == 1 { "" } else { "s" },
                );
            }
            exit::OK
        }
        Err(code) => code,
    }
}

fn resolve_params(
    checked: &Checked,
    inputs: &ParamInputs,
) -> Result<ResolvedParams, Vec<Diagnostic>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    crate::param::resolve(
        &checked.playbook.params,
        inputs,
        &|name| std::env::var(name).ok(),
        &cwd,
    )
    .map_err(|d| d.items)
}

/// The reporters of a run: the view (live on a terminal, plain lines, or JSON), plus the
/// GitHub step summary under Actions, plus `extra` (the journal).
fn emitter(global: &Global, extra: Vec<Box<dyn Reporter>>, masker: Arc<Masker>) -> Arc<Emitter> {
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
fn interrupt_signal() -> tokio::sync::watch::Receiver<bool> {
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

pub struct PlanOptions {
    pub playbook: PathBuf,
    pub params: ParamInputs,
    pub offline: bool,
    /// Save the plan here, for `flow apply PLAN.json`.
    pub out: Option<PathBuf>,
}

/// Loads and checks the playbook and resolves its params: everything before a run.
fn prepare(
    path: &Path,
    inputs: &ParamInputs,
    registry: &Registry,
) -> Result<(Checked, ResolvedParams), i32> {
    let checked = check(path, registry)?;
    let params = resolve_params(&checked, inputs).map_err(|diagnostics| {
        print_diagnostics(&diagnostics);
        exit::INVALID
    })?;
    Ok((checked, params))
}

fn plan_runner(
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

/// `flow plan`.
pub async fn plan(options: PlanOptions, registry: &Registry, global: &Global) -> i32 {
    let (checked, params) = match prepare(&options.playbook, &options.params, registry) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let runner = plan_runner(
        Arc::new(checked),
        params,
        options.offline,
        emitter(global, Vec::new(), Arc::new(Masker::new())),
    );
    let plan = runner.plan().await;
    let code = plan.status.exit_code();
    match &options.out {
        Some(out) if code == exit::OK => match save_plan(&runner, &plan, options.offline, out) {
            Ok(()) => {
                if global.output == OutputFormat::Human {
                    eprintln!(
                        "Saved the plan to {}: apply it with `flow apply {}`.",
                        out.display(),
                        out.display()
                    );
                }
                code
            }
            Err(e) => {
                print_diagnostics(&[Diagnostic::error(
                    None,
                    format!("cannot save the plan to {}: {e}", out.display()),
                )]);
                exit::INVALID
            }
        },
        _ => code,
    }
}

fn save_plan(
    runner: &Runner,
    plan: &crate::plan::Plan,
    offline: bool,
    out: &Path,
) -> std::io::Result<()> {
    let masker = &runner.emitter.masker;
    let playbook = &runner.checked.playbook;
    let plan_id = runner.settings.run_id.clone();
    let saved = SavedPlan {
        flow_plan: crate::saved_plan::FORMAT,
        created_at: crate::event::timestamp_now(),
        reads: plan
            .reads
            .iter()
            .map(|(step, outputs)| {
                (
                    step.clone(),
                    fingerprint(&plan_id, outputs, &runner.emitter.masker),
                )
            })
            .collect(),
        plan_id,
        playbook: playbook.file.path.display().to_string(),
        playbook_hash: playbook.hash.clone(),
        // Masked: a password written in the playbook must not land in the plan file.
        playbook_text: runner.emitter.masker.mask(&playbook.file.text),
        params: runner.params.public(),
        // The secrets that had a value: apply must be given them again.
        secret_params: runner
            .params
            .secret
            .iter()
            .filter(|n| runner.params.values.get(*n).is_some_and(|v| !v.is_null()))
            .cloned()
            .collect(),
        offline,
        lines: serde_json::to_value(&plan.lines)
            .map(|lines| masker.mask_json(&lines))
            .and_then(serde_json::from_value)
            .unwrap_or_default(),
    };
    let text = serde_json::to_string_pretty(&saved).map_err(std::io::Error::other)?;
    std::fs::write(out, format!("{text}\n"))
}

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
                explain_missing_secrets(&mut diagnostics, saved);
            }
            print_diagnostics(&diagnostics);
            return exit::INVALID;
        }
    };
    if let Some(saved) = &saved {
        let missing: Vec<Diagnostic> = saved
            .secret_params
            .iter()
            .filter(|name| params.values.get(*name).is_none_or(|v| v.is_null()))
            .map(|name| {
                let env = checked.playbook.params.get(name).and_then(|p| p.env.clone()).map(|v| format!(" or set {v}")).unwrap_or_default();
                Diagnostic::error(None, format!("secret param `{name}` had a value for the plan, and plans never store secrets"))
                    .with_help(format!("give it again: `-p {name}=…`{env}"))
            })
            .collect();
        if !missing.is_empty() {
            print_diagnostics(&missing);
            return exit::INVALID;
        }
    }
    if let Err(code) = check_approvals(&checked, &options.approvals) {
        return code;
    }
    let checked = Arc::new(checked);
    if let Some(saved) = &saved
        && let Err(code) = check_drift(saved, &checked, &params).await
    {
        return code;
    }
    let run_id = new_run_id();
    // The masker knows the secrets before anything is written, run.json included.
    let masker = Arc::new(Masker::new());
    crate::run::learn_param_secrets(&params, &masker);
    let record = RunRecord {
        run_id: run_id.clone(),
        name: checked.playbook.name.clone(),
        playbook: checked.playbook.file.path.display().to_string(),
        playbook_hash: checked.playbook.hash.clone(),
        params: params.public(),
        secret_params: params
            .secret
            .iter()
            .filter(|n| params.values.get(*n).is_some_and(|v| !v.is_null()))
            .cloned()
            .collect(),
        started_at: crate::event::timestamp_now(),
        finished_at: None,
        duration_ms: None,
        status: crate::event::RunStatus::Running,
        exit_code: None,
        error: None,
        user: crate::context::current_user(),
        host: crate::context::current_host(),
        flow_version: env!("CARGO_PKG_VERSION").to_string(),
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
    let settings = RunSettings {
        run_id,
        mode: Mode::Apply,
        concurrency: options.concurrency.max(1),
        offline: false,
    };
    let interaction = Interaction::new(TerminalPrompter::detect(), options.approvals);
    let emitter = emitter(global, vec![Box::new(journal)], masker);
    let runner = Runner::new(
        checked,
        params,
        settings,
        emitter,
        Arc::new(interaction),
        interrupt_signal(),
    );
    runner.apply().await.status.exit_code()
}

fn check_approvals(checked: &Checked, approvals: &Approvals) -> Result<(), i32> {
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

/// A secret param missing at `apply PLAN.json` is missing because plans never store secrets.
fn explain_missing_secrets(diagnostics: &mut [Diagnostic], saved: &SavedPlan) {
    for d in diagnostics.iter_mut() {
        if let Some(name) = saved
            .secret_params
            .iter()
            .find(|n| d.message == format!("missing required param `{n}`"))
        {
            d.help = Some(format!(
                "`{name}` is secret, so the plan does not store it: give it again with `-p {name}=…`{}",
                d.help
                    .as_deref()
                    .and_then(|h| h.split_once(" or set "))
                    .map(|(_, var)| format!(" or set {var}"))
                    .unwrap_or_default()
            ));
        }
    }
}

/// Refuses (exit 2) when the playbook, the params or what the reads return moved since the
/// plan was saved; prints what moved.
async fn check_drift(
    saved: &SavedPlan,
    checked: &Arc<Checked>,
    params: &ResolvedParams,
) -> Result<(), i32> {
    let mut drifts = Vec::new();
    if checked.playbook.hash != saved.playbook_hash {
        drifts.push(Drift {
            what: format!(
                "the playbook {} changed",
                checked.playbook.file.display_path()
            ),
            diff: crate::saved_plan::diff_lines(&saved.playbook_text, &checked.playbook.file.text),
        });
    }
    drifts.extend(compare_params(&saved.params, &params.public()));
    if drifts.is_empty() && !saved.offline {
        // Plan again, silently, to see what the reads return now — from the very playbook
        // that will be applied, not from a second read of the file.
        let quiet = Arc::new(Emitter::new(Arc::new(Masker::new()), Vec::new()));
        let runner = plan_runner(Arc::clone(checked), params.clone(), false, quiet);
        let fresh = runner.plan().await;
        let now = fresh
            .reads
            .iter()
            .map(|(step, outputs)| {
                (
                    step.clone(),
                    fingerprint(&saved.plan_id, outputs, &runner.emitter.masker),
                )
            })
            .collect();
        drifts.extend(compare_reads(saved, &now));
    }
    if drifts.is_empty() {
        return Ok(());
    }
    let masker = Masker::new();
    for name in &params.secret {
        if let Some(value) = params.values.get(name) {
            masker.add(value);
        }
    }
    eprintln!(
        "error: the world moved since the plan was made ({}); nothing was applied",
        saved.created_at
    );
    for drift in &drifts {
        eprintln!("  - {}", masker.mask(&drift.what));
        for line in drift.diff.iter().take(40) {
            eprintln!("      {}", masker.mask(line));
        }
    }
    eprintln!("  = help: run `flow plan` again to see what apply would do now");
    Err(exit::INVALID)
}
