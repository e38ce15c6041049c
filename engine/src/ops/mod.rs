//! The operations behind the CLI commands, as library functions: the CLI parses arguments,
//! builds these options and prints nothing itself. One file per command, like cargo's `ops/`;
//! this one holds what they share: exit codes, global settings, diagnostics, loading.

mod apply;
mod drift;
mod plan;
mod policy;
mod resume;
mod run_setup;
mod validate;

pub use apply::{ApplyOptions, apply};
pub use plan::{PlanOptions, plan};
pub use policy::{PolicyOptions, policy};
pub use resume::{ResumeOptions, resume};
pub use run_setup::new_run_id;
pub use validate::validate;

use crate::analyze::Checked;
use crate::diagnostic::Diagnostic;
use crate::output::Verbosity;
use crate::param::{ParamInputs, ResolvedParams};
use crate::registry::Registry;
use std::path::{Path, PathBuf};

/// Exit codes of DESIGN §1, and 4 (README "Exit codes").
pub mod exit {
    pub const OK: i32 = 0;
    pub const STEP_FAILED: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const APPROVAL: i32 = 3;
    /// A step failed (or was declined, or the run interrupted) and an `undo` failed: a step is
    /// still applied that should have been reversed.
    pub const ROLLBACK_INCOMPLETE: i32 = 4;
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

pub(crate) fn json_output() -> bool {
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

pub(crate) fn resolve_params(
    checked: &Checked,
    inputs: &ParamInputs,
) -> Result<ResolvedParams, Vec<Diagnostic>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let params = crate::param::resolve_asking(
        &checked.playbook.params,
        inputs,
        &|name| std::env::var(name).ok(),
        &cwd,
        &crate::prompt::ParamPrompter(crate::prompt::TerminalPrompter::detect()),
    )
    .map_err(|d| d.items)?;
    // Once the params are good: an error about them comes first.
    print_diagnostics(&crate::argv_secrets::given_with_p(
        &checked.playbook.params,
        inputs,
    ));
    Ok(params)
}

/// Loads and checks the playbook and resolves its params: everything before a run.
pub(crate) fn prepare(
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
