//! The operations behind the CLI commands, as library functions: the CLI parses arguments,
//! builds these options and prints nothing itself.

use crate::analyze::Checked;
use crate::context::{Approvals, Interaction};
use crate::diagnostic::Diagnostic;
use crate::event::{Emitter, Mode, Reporter};
use crate::output::{HumanReporter, JsonReporter, Verbosity};
use crate::param::{ParamInputs, ResolvedParams};
use crate::prompt::TerminalPrompter;
use crate::registry::Registry;
use crate::run::{RunSettings, Runner};
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

/// Prints diagnostics on stderr, errors first; under GitHub Actions also as annotations.
pub fn print_diagnostics(diagnostics: &[Diagnostic], masker: Option<&Masker>) {
    let github = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    let mask = |text: String| masker.map(|m| m.mask(&text)).unwrap_or(text);
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| !d.is_error());
    for diagnostic in sorted {
        eprint!("{}", mask(diagnostic.render()));
        if github {
            eprintln!("{}", mask(diagnostic.github_annotation()));
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
            print_diagnostics(&checked.warnings, None);
            Ok(checked)
        }
        Err(diagnostics) => {
            print_diagnostics(&diagnostics, None);
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

fn resolve_params(checked: &Checked, inputs: &ParamInputs) -> Result<ResolvedParams, i32> {
    let cwd = std::env::current_dir().unwrap_or_default();
    crate::param::resolve(
        &checked.playbook.params,
        inputs,
        &|name| std::env::var(name).ok(),
        &cwd,
    )
    .map_err(|diags| {
        print_diagnostics(&diags.items, None);
        exit::INVALID
    })
}

fn emitter(global: &Global, masker: Arc<Masker>) -> Arc<Emitter> {
    let reporter: Box<dyn Reporter> = match global.output {
        OutputFormat::Json => Box::new(JsonReporter),
        OutputFormat::Human => Box::new(HumanReporter::new(global.verbosity)),
    };
    Arc::new(Emitter::new(masker, vec![reporter]))
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
}

/// `flow plan`.
pub async fn plan(options: PlanOptions, registry: &Registry, global: &Global) -> i32 {
    let (checked, params) = match prepare(&options.playbook, &options.params, registry) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let settings = RunSettings {
        run_id: new_run_id(),
        mode: Mode::Plan,
        concurrency: 1,
        offline: options.offline,
    };
    let interaction = Interaction::new(Box::new(crate::prompt::NoTerminal), Approvals::default());
    let runner = start(checked, params, settings, interaction, global);
    runner.plan().await.status.exit_code()
}

/// Loads and checks the playbook and resolves its params: everything before a run.
fn prepare(
    path: &Path,
    inputs: &ParamInputs,
    registry: &Registry,
) -> Result<(Checked, ResolvedParams), i32> {
    let checked = check(path, registry)?;
    let params = resolve_params(&checked, inputs)?;
    Ok((checked, params))
}

fn start(
    checked: Checked,
    params: ResolvedParams,
    settings: RunSettings,
    interaction: Interaction,
    global: &Global,
) -> Arc<Runner> {
    let emitter = emitter(global, Arc::new(Masker::new()));
    Runner::new(
        Arc::new(checked),
        params,
        settings,
        emitter,
        Arc::new(interaction),
    )
}

pub struct ApplyOptions {
    pub playbook: PathBuf,
    pub params: ParamInputs,
    pub approvals: Approvals,
    pub concurrency: usize,
}

/// `flow apply`.
pub async fn apply(options: ApplyOptions, registry: &Registry, global: &Global) -> i32 {
    let (checked, params) = match prepare(&options.playbook, &options.params, registry) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    for name in &options.approvals.approve {
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
            print_diagnostics(&[d], None);
            return exit::INVALID;
        }
    }
    let settings = RunSettings {
        run_id: new_run_id(),
        mode: Mode::Apply,
        concurrency: options.concurrency.max(1),
        offline: false,
    };
    let interaction = Interaction::new(TerminalPrompter::detect(), options.approvals);
    let runner = start(checked, params, settings, interaction, global);
    runner.apply().await.status.exit_code()
}

/// `flow graph`: the dependency graph as Graphviz dot or Mermaid.
pub fn graph(checked: &Checked, mermaid: bool) -> String {
    let playbook = &checked.playbook;
    let mut out = String::new();
    let label = |i: usize| {
        let s = &playbook.steps[i];
        format!("{}\\n{}", s.display_name(), s.body.type_name)
    };
    if mermaid {
        out.push_str("flowchart TD\n");
        for &i in &checked.order {
            out.push_str(&format!(
                "  {}[\"{}\"]\n",
                playbook.steps[i].id,
                label(i).replace("\\n", "<br/>")
            ));
        }
        for (i, deps) in checked.deps.iter().enumerate() {
            for d in deps {
                out.push_str(&format!(
                    "  {} --> {}\n",
                    playbook.steps[*d].id, playbook.steps[i].id
                ));
            }
        }
        let finally: Vec<&str> = playbook.finally_steps().map(|s| s.id.as_str()).collect();
        if !finally.is_empty() {
            out.push_str("  subgraph finally\n");
            for (n, id) in finally.iter().enumerate() {
                out.push_str(&format!(
                    "    {id}[\"{}\"]\n",
                    label(playbook.step(id).map(|s| s.index).unwrap_or(0)).replace("\\n", "<br/>")
                ));
                if n > 0 {
                    out.push_str(&format!("    {} --> {id}\n", finally[n - 1]));
                }
            }
            out.push_str("  end\n");
        }
    } else {
        out.push_str(&format!(
            "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box];\n",
            playbook.name.replace('"', "'")
        ));
        for &i in &checked.order {
            out.push_str(&format!(
                "  {} [label=\"{}\"];\n",
                playbook.steps[i].id,
                label(i)
            ));
        }
        for (i, deps) in checked.deps.iter().enumerate() {
            for d in deps {
                out.push_str(&format!(
                    "  {} -> {};\n",
                    playbook.steps[*d].id, playbook.steps[i].id
                ));
            }
        }
        let finally: Vec<&crate::playbook::Step> = playbook.finally_steps().collect();
        if !finally.is_empty() {
            out.push_str("  subgraph cluster_finally {\n    label=\"finally\";\n");
            for (n, step) in finally.iter().enumerate() {
                out.push_str(&format!(
                    "    {} [label=\"{}\"];\n",
                    step.id,
                    label(step.index)
                ));
                if n > 0 {
                    out.push_str(&format!("    {} -> {};\n", finally[n - 1].id, step.id));
                }
            }
            out.push_str("  }\n");
        }
        out.push_str("}\n");
    }
    out
}

/// `flow steps`: the catalogue, or one type's page.
pub fn steps_page(registry: &Registry, name: Option<&str>) -> Result<String, Diagnostic> {
    let Some(name) = name else {
        let rows: Vec<Vec<String>> =
            std::iter::once(vec!["type".into(), "effect".into(), "what it does".into()])
                .chain(registry.iter().map(|t| {
                    let m = t.meta();
                    let effect = if m.effect_overridable {
                        format!("{} (or read)", m.effect.as_str())
                    } else {
                        m.effect.as_str().to_string()
                    };
                    vec![m.name.to_string(), effect, m.summary.to_string()]
                }))
                .collect();
        return Ok(format!(
            "{}\n`flow steps TYPE` shows a type's params, outputs and an example.\n",
            crate::table::render_rows(&rows, true)
        ));
    };
    let Some(step_type) = registry.get(name) else {
        let d = Diagnostic::error(None, format!("unknown step type `{name}`"));
        return Err(
            match crate::diagnostic::did_you_mean(name, registry.names()) {
                Some(hint) => d.with_help(hint),
                None => d.with_help("`flow steps` lists the step types"),
            },
        );
    };
    let meta = step_type.meta();
    let mut out = format!(
        "{} — {}\neffect: {}{}\n",
        meta.name,
        meta.summary,
        meta.effect.as_str(),
        if meta.effect_overridable {
            " (override with `effect: read`)"
        } else {
            ""
        }
    );
    out.push_str(&format!(
        "defaults family: {}\n\nParams (`with`):\n",
        meta.family
    ));
    let required: Vec<&str> = meta
        .params_schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let mut rows = vec![vec![
        "name".to_string(),
        "type".to_string(),
        "required".to_string(),
        "description".to_string(),
    ]];
    if let Some(props) = meta
        .params_schema
        .get("properties")
        .and_then(|p| p.as_object())
    {
        for (field, schema) in props {
            rows.push(vec![
                field.clone(),
                crate::schema::describe(schema),
                if required.contains(&field.as_str()) {
                    "yes".into()
                } else {
                    "no".into()
                },
                schema
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            ]);
        }
    }
    out.push_str(&crate::table::render_rows(&rows, true));
    out.push_str("\nOutputs (`steps.<id>.<name>`, plus status and error):\n");
    let mut rows = vec![vec![
        "name".to_string(),
        "type".to_string(),
        "description".to_string(),
    ]];
    if let Some(props) = meta
        .outputs_schema
        .get("properties")
        .and_then(|p| p.as_object())
    {
        for (field, schema) in props {
            let sensitive = if meta.sensitive_outputs.contains(&field.as_str()) {
                " (secret: masked)"
            } else {
                ""
            };
            rows.push(vec![
                field.clone(),
                crate::schema::describe(schema),
                format!(
                    "{}{sensitive}",
                    schema
                        .get("description")
                        .and_then(|d| d.as_str())
                        .unwrap_or("")
                ),
            ]);
        }
    }
    if rows.len() == 1 {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&crate::table::render_rows(&rows, true));
    }
    out.push_str("\nExample:\n");
    for line in meta.example.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    Ok(out)
}
