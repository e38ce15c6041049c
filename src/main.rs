//! The `flow` command line: parses arguments and hands them to `flow_engine::ops`.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use flow_engine::Diagnostic;
use flow_engine::context::Approvals;
use flow_engine::ops::{self, Global, OutputFormat, exit};
use flow_engine::output::Verbosity;
use flow_engine::param::ParamInputs;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "flow",
    version,
    about = "Run operations runbooks written as YAML playbooks: validated before they run, planned, applied.",
    long_about = "flow runs operations runbooks written as YAML playbooks. A playbook declares typed params and a \
graph of typed steps; flow validates the whole playbook before it touches anything, shows a plan of what it would \
do, and applies it with dependencies, concurrency, retries, approvals and a summary.",
    after_help = "Examples:\n  flow validate playbooks/examples/hello.yaml\n  flow plan playbooks/examples/hello.yaml -p who=ops\n  flow apply playbooks/examples/hello.yaml -p who=ops --yes\n\nExit codes: 0 success · 1 a step failed · 2 invalid playbook, params or usage · 3 approval declined or needed · 4 rollback incomplete (an undo failed: a step is still applied) · 130 interrupted"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How to print events: `human` lines, or `json` (one JSON object per event on stdout).
    #[arg(long, global = true, value_enum, default_value_t = Output::Human)]
    output: Output,
    /// Where run journals are kept.
    #[arg(long, global = true, env = "FLOW_STATE_DIR", default_value = ".flow")]
    state_dir: PathBuf,
    /// Show more: every line steps print.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Show less: only problems and the summary.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// No colors (flow prints none off a terminal anyway).
    #[arg(long, global = true)]
    no_color: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Human,
    Json,
}

#[derive(Args)]
struct ParamArgs {
    /// A param value, NAME=VALUE (repeatable); lists and maps are YAML: `-p hosts='[a, b]'`.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A YAML file of param values (`-p` wins over it).
    #[arg(long, value_name = "FILE")]
    params_file: Option<PathBuf>,
}

impl ParamArgs {
    fn inputs(self) -> ParamInputs {
        ParamInputs {
            cli: self.params,
            file: self.params_file,
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Check a playbook without running anything (exit 2 with file:line:col on error).
    #[command(after_help = "Example:\n  flow validate playbooks/examples/hello.yaml")]
    Validate {
        /// The playbook file.
        playbook: PathBuf,
    },
    /// Show what apply would do: reads run, writes are described, nothing changes.
    #[command(
        after_help = "Examples:\n  flow plan playbooks/examples/hello.yaml -p who=ops\n  flow plan restore.yaml --params-file prod.yaml --out plan.json\n  flow plan restore.yaml --offline\n\nSymbols: = read  + create  ~ change  - delete/stop  ? asks  … skipped"
    )]
    Plan {
        /// The playbook file.
        playbook: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// Do not run read steps either; their outputs show as unknown.
        #[arg(long)]
        offline: bool,
        /// Save the plan to this file: `flow apply FILE` applies exactly it, or refuses if the
        /// playbook, the params or what the reads return changed since.
        #[arg(long, value_name = "PLAN.json")]
        out: Option<PathBuf>,
    },
    /// Apply a playbook (validated first), or a plan saved by `flow plan --out`; or resume a run.
    #[command(
        after_help = "Examples:\n  flow apply playbooks/examples/hello.yaml -p who=ops\n  flow apply restore.yaml -p snapshot=daily/2026-11-22.rdb --approve go_ahead\n  flow apply plan.json --yes\n  flow apply --resume 20261123-021758-4f2a --approve go_ahead\n\nWithout a terminal (CI), `confirm` steps need --yes or --approve STEP; otherwise the run stops with exit 3.\nEach run is recorded under --state-dir: see `flow runs` and `flow show RUN`.\n\nResume: `--resume RUN` goes on with a run that failed, was declined, needs an approval, was interrupted\nor was killed. Steps that finished keep their recorded outputs and do not run again; the others run from\nthe playbook as it is now (fix the failed step, then resume), with the same run id and idempotency\ntokens. Changing a step that finished is refused (exit 2, with a diff). Give secret params again with -p.\nA run whose rollback is incomplete (exit 4: an undo failed) runs the failed undos again first, with\ntheir own tokens; if one fails again, nothing else runs and it exits 4 again.\n\nExit codes: 0 success · 1 a step failed · 2 invalid playbook, params, plan or usage · 3 approval declined\nor needed · 4 rollback incomplete: a step failed (or was declined, or the run interrupted) and an undo\nfailed, so a step is still applied · 130 interrupted"
    )]
    Apply {
        /// The playbook file, or a PLAN.json saved by `flow plan --out` (not with --resume).
        #[arg(value_name = "PLAYBOOK|PLAN.json", required_unless_present = "resume")]
        playbook: Option<PathBuf>,
        /// Resume this run (its id, or a unique prefix, as `flow runs` lists it) instead: the
        /// playbook is the one the run was recorded with, read again.
        #[arg(long, value_name = "RUN_ID", conflicts_with = "playbook")]
        resume: Option<String>,
        #[command(flatten)]
        params: ParamArgs,
        /// Approve every `confirm` without asking.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Approve this step's confirmation without asking (repeatable).
        #[arg(long, value_name = "STEP")]
        approve: Vec<String>,
        /// At most N steps at once.
        #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
    },
    /// Print the least-privilege IAM policy the playbook's AWS steps need (JSON, on stdout).
    #[command(
        after_help = "Examples:\n  flow policy playbooks/blot/provision-and-restore.yaml\n  flow policy restore.yaml -p bucket=blot-redis-backups --account 123456789012 > policy.json\n  aws iam put-role-policy --role-name blot-restore --policy-name flow --policy-document file://policy.json\n\nEach AWS step type declares the calls it makes, during plan and apply, its `undo` included. Resources\nare ARNs where the params are known without running anything (rendered as `flow plan --offline` renders\nthem): a part known only after apply becomes `*`. The region comes from the step's AWS block (else `*`),\nthe account from --account (else `*`). A step whose `when` is false for these params is left out; a\nrequired param not given is covered whatever it will be. Statements are grouped by step: `LaunchEc2Run`\nis step `launch` (ec2.run), `LaunchUndoEc2Terminate` its undo. Why a statement is as wide as it is, and\nwhat flow cannot see (a launch template's instance profile, the resources a CloudFormation template\ncreates), is printed on stderr, each note naming its Sid.\n\nFor a step `backups: { type: s3.list, with: { bucket: blot-redis-backups, prefix: daily/ } }`:\n  {\n    \"Version\": \"2012-10-17\",\n    \"Statement\": [\n      {\n        \"Sid\": \"BackupsS3List\",\n        \"Effect\": \"Allow\",\n        \"Action\": [\"s3:ListBucket\"],\n        \"Resource\": [\"arn:aws:s3:::blot-redis-backups\"],\n        \"Condition\": { \"StringEquals\": { \"s3:prefix\": \"daily/\" } }\n      }\n    ]\n  }"
    )]
    Policy {
        /// The playbook file.
        playbook: PathBuf,
        #[command(flatten)]
        params: ParamArgs,
        /// The AWS account id ARNs name (default: `*`, any account).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// List recorded runs, newest first.
    #[command(after_help = "Examples:\n  flow runs\n  flow --state-dir /var/lib/flow runs")]
    Runs,
    /// Print one recorded run: its params, steps, approvals and outputs.
    #[command(
        after_help = "Examples:\n  flow show 20261123-021758-4f2a\n  flow show 20261123-02   # a unique prefix is enough"
    )]
    Show {
        /// The run id (or a unique prefix), as `flow runs` lists it.
        run: String,
    },
    /// Serve a read-only web view of the recorded runs (the journal under --state-dir), live.
    #[command(
        after_help = "Examples:\n  flow serve                        # http://127.0.0.1:8484/\n  flow serve --listen 0.0.0.0:8484  # prints a URL with a generated token\n\nPages: / (runs), /runs/RUN (one run, its graph; live while it runs), /runs/RUN/steps/STEP\n(a step's output); JSON: /api/runs, /api/runs/RUN. Nothing can be changed from it.\nOff 127.0.0.1 every request needs the token: `Authorization: Bearer TOKEN`, or ?token=TOKEN once\n(it then sets a cookie). Without --token or FLOW_SERVE_TOKEN, one is generated and printed."
    )]
    Serve {
        /// Address and port to listen on.
        #[arg(long, value_name = "HOST:PORT", default_value = flow_serve::DEFAULT_LISTEN)]
        listen: String,
        /// The token every request must carry (generated when listening off loopback without one).
        #[arg(
            long,
            env = "FLOW_SERVE_TOKEN",
            hide_env_values = true,
            value_name = "TOKEN"
        )]
        token: Option<String>,
    },
    /// Print the dependency graph.
    #[command(
        after_help = "Example:\n  flow graph restore.yaml --format dot | dot -Tsvg > restore.svg"
    )]
    Graph {
        /// The playbook file.
        playbook: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// List step types, or show one type's params, outputs and an example.
    #[command(after_help = "Examples:\n  flow steps\n  flow steps exec")]
    Steps {
        /// A step type, e.g. `exec`.
        #[arg(value_name = "TYPE")]
        step_type: Option<String>,
    },
    /// Print the JSON Schema of the playbook format (for editors).
    #[command(
        after_help = "Example:\n  flow schema > schemas/playbook.schema.json\n  # then, first line of a playbook:\n  # yaml-language-server: $schema=../schemas/playbook.schema.json"
    )]
    Schema,
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  flow completions bash > ~/.local/share/bash-completion/completions/flow"
    )]
    Completions { shell: clap_complete::Shell },
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

fn main() {
    #[cfg(feature = "aws")]
    flow_steps_aws::target::forget_empty_settings();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            std::process::exit(if error.use_stderr() {
                exit::INVALID
            } else {
                exit::OK
            });
        }
    };
    let global = Global {
        output: match cli.output {
            Output::Human => OutputFormat::Human,
            Output::Json => OutputFormat::Json,
        },
        verbosity: if cli.quiet {
            Verbosity::Quiet
        } else if cli.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        },
        state_dir: cli.state_dir,
    };
    let _ = cli.no_color;
    if matches!(global.output, OutputFormat::Json) {
        ops::use_json_output();
    }
    let json = matches!(global.output, OutputFormat::Json);
    let registry = registry();
    let code = match cli.command {
        Command::Validate { playbook } => ops::validate(&playbook, &registry, &global),
        Command::Plan {
            playbook,
            params,
            offline,
            out,
        } => {
            let options = ops::PlanOptions {
                playbook,
                params: params.inputs(),
                offline,
                out,
            };
            runtime().block_on(ops::plan(options, &registry, &global))
        }
        Command::Apply {
            playbook,
            resume,
            params,
            yes,
            approve,
            concurrency,
        } => match (resume, playbook) {
            (Some(run), _) => {
                let options = ops::ResumeOptions {
                    run,
                    params: params.inputs(),
                    approvals: Approvals { yes, approve },
                    concurrency: usize::from(concurrency),
                };
                runtime().block_on(ops::resume(options, &registry, &global))
            }
            (None, Some(playbook)) => {
                let options = ops::ApplyOptions {
                    playbook,
                    params: params.inputs(),
                    approvals: Approvals { yes, approve },
                    concurrency: usize::from(concurrency),
                };
                runtime().block_on(ops::apply(options, &registry, &global))
            }
            // clap requires one of them.
            (None, None) => exit::INVALID,
        },
        Command::Policy {
            playbook,
            params,
            account,
        } => {
            let options = ops::PolicyOptions {
                playbook,
                params: params.inputs(),
                account,
            };
            ops::policy(options, &registry, &global)
        }
        Command::Runs if json => print_json(&flow_engine::history::runs_json(&global.state_dir)),
        Command::Runs => print_page(&flow_engine::history::runs_page(&global.state_dir)),
        Command::Show { run } if json => {
            // Streamed: a journal may be far larger than memory should hold.
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let shown = flow_engine::history::show_json(&global.state_dir, &run, &mut out)
                .and_then(|()| {
                    use std::io::Write as _;
                    writeln!(out)
                        .and_then(|()| out.flush())
                        .map_err(|e| format!("cannot write the run: {e}"))
                });
            match shown {
                Ok(()) => exit::OK,
                // `flow show … | head`: the reader has what it wanted.
                Err(message) if message.contains("Broken pipe") => exit::OK,
                Err(message) => page_or_error(Err(Diagnostic::error(None, message))),
            }
        }
        Command::Show { run } => page_or_error(
            flow_engine::history::show_page(&global.state_dir, &run)
                .map_err(|message| Diagnostic::error(None, message)),
        ),
        Command::Serve { listen, token } => flow_serve::serve(flow_serve::Options {
            state_dir: global.state_dir.clone(),
            listen,
            token,
        }),
        Command::Graph { playbook, format } => match ops::check(&playbook, &registry) {
            Ok(checked) => print_page(&flow_engine::graph_view::graph(
                &checked,
                matches!(format, GraphFormat::Mermaid),
            )),
            Err(code) => code,
        },
        Command::Steps { step_type } if json => {
            match flow_engine::catalogue::steps_json(&registry, step_type.as_deref()) {
                Ok(value) => print_json(&value),
                Err(diagnostic) => page_or_error(Err(diagnostic)),
            }
        }
        Command::Steps { step_type } => page_or_error(flow_engine::catalogue::steps_page(
            &registry,
            step_type.as_deref(),
        )),
        Command::Schema => {
            let schema = flow_engine::playbook_schema::playbook_schema(&registry);
            print_json(&schema)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "flow", &mut std::io::stdout());
            exit::OK
        }
    };
    std::process::exit(code);
}

fn print_json(value: &serde_json::Value) -> i32 {
    print_page(&(serde_json::to_string_pretty(value).unwrap_or_default() + "\n"))
}

/// Writes a page to stdout. A reader that stopped early (`flow schema | head`) is not an
/// error: `print!` would panic on the broken pipe, so the page is written by hand.
fn print_page(page: &str) -> i32 {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(page.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            exit::STEP_FAILED
        }
    }
}

/// Prints a page, or its diagnostic with exit 2.
fn page_or_error(page: Result<String, Diagnostic>) -> i32 {
    match page {
        Ok(page) => print_page(&page),
        Err(diagnostic) => {
            ops::print_diagnostics(&[diagnostic]);
            exit::INVALID
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts (it only fails when the OS refuses threads)")
}

/// Every step type this build of flow has: the AWS ones with the `aws` feature (default).
fn registry() -> flow_engine::Registry {
    #[allow(unused_mut)]
    let mut registry = flow_steps::registry();
    #[cfg(feature = "aws")]
    flow_steps_aws::register_all(&mut registry);
    registry
}
