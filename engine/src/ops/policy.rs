//! `flow policy`: the least-privilege IAM policy of a playbook. The policy document goes to
//! stdout alone (ready for `aws iam put-role-policy --policy-document file://…`); what the
//! operator should know about it — why a statement is as wide as it is, which steps were left
//! out, what flow cannot see — goes to stderr, each note naming its statement's `Sid`.

use super::{Global, OutputFormat, check, exit, print_diagnostics, resolve_params};
use crate::context::{Approvals, Interaction};
use crate::diagnostic::Diagnostic;
use crate::event::{Emitter, Mode};
use crate::output::Verbosity;
use crate::param::ParamInputs;
use crate::permission::PermissionContext;
use crate::policy::{Gathered, document, iam_size, numbered, pretty};
use crate::prompt::NoTerminal;
use crate::registry::Registry;
use crate::run::{RunSettings, Runner};
use crate::secrets::Masker;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

pub struct PolicyOptions {
    pub playbook: PathBuf,
    pub params: ParamInputs,
    /// The AWS account id the ARNs name (default: any, `*`).
    pub account: Option<String>,
}

/// Two runs that differ in every digit of their clock and run id: what their renders do not
/// share depends on the run (see `crate::policy`).
const MOMENTS: [(&str, &str); 2] = [
    ("1987-06-05T04:03:02Z", "19870605-040302-0000"),
    ("2010-11-28T19:48:59Z", "20101128-194859-ffff"),
];

/// The largest managed policy IAM takes, in characters without whitespace.
const MANAGED_POLICY_LIMIT: usize = 6144;

/// `flow policy`.
pub fn policy(options: PolicyOptions, registry: &Registry, global: &Global) -> i32 {
    if let Some(account) = &options.account
        && !(account.len() == 12 && account.chars().all(|c| c.is_ascii_digit()))
    {
        print_diagnostics(&[Diagnostic::error(
            None,
            format!("`--account {account}`: an AWS account id is 12 digits"),
        )]);
        return exit::INVALID;
    }
    let mut checked = match check(&options.playbook, registry) {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    // A required param not given is no error here: the policy covers whatever it will be.
    let unknown_params: HashSet<String> = checked
        .playbook
        .params
        .values()
        .filter(|spec| spec.required)
        .map(|spec| spec.name.clone())
        .collect();
    for spec in checked.playbook.params.values_mut() {
        spec.required = false;
    }
    let params = match resolve_params(&checked, &options.params) {
        Ok(params) => params,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            return exit::INVALID;
        }
    };
    let unknown_params: HashSet<String> = unknown_params
        .into_iter()
        .filter(|name| params.values.get(name).is_none_or(|v| v.is_null()))
        .collect();
    let masker = Arc::new(Masker::new());
    let checked = Arc::new(checked);
    let [runner, other] = MOMENTS.map(|(now, run_id)| {
        let settings = RunSettings {
            run_id: run_id.to_string(),
            mode: Mode::Apply,
            concurrency: 1,
            offline: true,
            whole_reads: false,
            run_dir: None,
        };
        let interaction = Interaction::new(Box::new(NoTerminal), Approvals::default());
        Runner::new_at(
            Arc::clone(&checked),
            params.clone(),
            settings,
            Arc::new(Emitter::new(Arc::clone(&masker), Vec::new())),
            Arc::new(interaction),
            super::run_setup::interrupt_signal(),
            now.parse().unwrap_or(jiff::Timestamp::UNIX_EPOCH),
        )
    });
    let ctx = PermissionContext {
        account: options.account.unwrap_or_else(|| "*".to_string()),
    };
    let gathered = runner.gather_permissions(&other, &unknown_params, &ctx);
    if !gathered.failed.is_empty() {
        let diagnostics: Vec<Diagnostic> = gathered
            .failed
            .iter()
            .map(|(step, why)| {
                Diagnostic::error(
                    None,
                    masker.mask(&format!(
                        "step `{step}`: cannot tell the permissions it needs: {why}"
                    )),
                )
            })
            .collect();
        print_diagnostics(&diagnostics);
        return exit::STEP_FAILED;
    }
    let policy = masker.mask_json(&document(&gathered.steps));
    let mut notes = notes(&gathered);
    let size = iam_size(&policy);
    if size > MANAGED_POLICY_LIMIT {
        notes.push(format!(
            "the policy has {size} characters (without whitespace): a managed policy holds at most {MANAGED_POLICY_LIMIT}, an inline one on a role 10240 — split it by step"
        ));
    }
    let notes: Vec<String> = notes.iter().map(|n| masker.mask(n)).collect();
    if global.output == OutputFormat::Json {
        let event = serde_json::json!({
            "event": "policy",
            "playbook": runner.checked.playbook.file.display_path(),
            "policy": policy,
            "notes": notes,
        });
        println!("{event}");
        return exit::OK;
    }
    println!("{}", pretty(&policy));
    if global.verbosity > Verbosity::Quiet {
        for note in notes {
            eprintln!("note: {note}");
        }
    }
    exit::OK
}

/// What the operator should know beside the policy, in step order.
fn notes(gathered: &Gathered) -> Vec<String> {
    let mut notes = Vec::new();
    if gathered.steps.is_empty() {
        notes.push("no step of this playbook calls AWS: it needs no IAM permissions".to_string());
    }
    for step in &gathered.steps {
        for (i, statement) in step.permissions.statements.iter().enumerate() {
            if let Some(note) = &statement.note {
                notes.push(format!("{}: {note}", numbered(&step.sid, i)));
            }
        }
        for note in &step.permissions.notes {
            notes.push(format!(
                "{} (step `{}`, {}): {note}",
                step.sid, step.step, step.type_name
            ));
        }
    }
    for (step, reason) in &gathered.skipped {
        notes.push(format!(
            "step `{step}` is left out: it is skipped ({reason})"
        ));
    }
    if !gathered.unknown_params.is_empty() {
        notes.push(format!(
            "no value for {}: the policy holds for any (-p NAME=VALUE gives one)",
            gathered
                .unknown_params
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    notes
}
