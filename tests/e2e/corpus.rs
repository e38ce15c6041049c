//! The invalid-input corpus: every `tests/corpus/invalid/NNN-*.yaml` is a malformed playbook
//! (or a valid one run with bad params) whose leading `#` comments say what `flow` must do:
//!
//! ```text
//! # expect-exit: 2
//! # expect-error: error: unknown field `stepz` in the playbook   (the first stderr line, exactly)
//! # args: plan -p count=abc        (optional, default `validate`; the playbook path goes right
//!                                   after the subcommand; '…' and "…" group words)
//! # location: cli                  (optional: the error is about a command-line param, so
//!                                   instead of ` --> file:line:col` the first line names `-p`)
//! # expect-location: 12            (optional: the ` --> file:LINE[:COL]` the error must point at)
//! # stderr-lacks: hunter2          (optional, repeatable: text that must not appear on stderr)
//! # stderr-max-bytes: 2000         (optional: stderr must be at most this long)
//! ```
//!
//! Files ending in `.params.yaml` are params files used by entries (`--params-file`), not
//! entries. Every mismatch across the corpus is reported in one failure message.
//!
//! Entries too big to commit (deep nesting, 30 000 steps, alias bombs, megabyte lines) are
//! written by the tests below into a temp dir, with the same headers, and run with a memory
//! limit and a timeout so that a regression fails the test instead of the machine.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MIN_ENTRIES: usize = 150;

#[derive(Debug, Default)]
struct Expect {
    exit: Option<i32>,
    error: Option<String>,
    args: Option<String>,
    cli_location: bool,
    location: Option<String>,
    lacks: Vec<String>,
    max_stderr: Option<usize>,
}

/// The `# key: value` lines at the top of an entry, up to the first line that is not one.
fn parse_header(text: &str) -> Result<Expect, String> {
    let mut expect = Expect::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# ") else {
            break;
        };
        let Some((key, value)) = rest.split_once(':') else {
            break;
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match key {
            "expect-exit" => {
                let code = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("`expect-exit: {value}` is not a number"))?;
                expect.exit = Some(code);
            }
            "expect-error" => expect.error = Some(value.to_string()),
            "args" => expect.args = Some(value.trim().to_string()),
            "location" if value.trim() == "cli" => expect.cli_location = true,
            "location" => return Err(format!("`location: {value}`: only `cli` is known")),
            "expect-location" => expect.location = Some(value.trim().to_string()),
            "stderr-lacks" => expect.lacks.push(value.to_string()),
            "stderr-max-bytes" => {
                let bytes = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("`stderr-max-bytes: {value}` is not a number"))?;
                expect.max_stderr = Some(bytes);
            }
            "params-file" => {
                return Err("`params-file:` is not supported: name a sibling \
                            NNN-name.params.yaml in `args: plan --params-file …`"
                    .into());
            }
            _ => break,
        }
    }
    if expect.exit.is_none() {
        return Err("no `# expect-exit:` header".into());
    }
    if expect.error.is_none() {
        return Err("no `# expect-error:` header".into());
    }
    Ok(expect)
}

/// Splits `args` on whitespace; single or double quotes group words (no escapes).
fn split_args(args: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in args.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.get_or_insert_with(String::new).push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            None if c.is_whitespace() => words.extend(word.take()),
            None => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("unclosed quote in `args: {args}`"));
    }
    words.extend(word.take());
    if words.is_empty() {
        return Err("`args:` is empty".into());
    }
    Ok(words)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.ends_with(".yaml") && !name.ends_with(".params.yaml")
        })
        .collect();
    files.sort();
    files
}

/// Copies the corpus folder (flat) so that nothing a run might write (a journal, a file from
/// a step that should never have run) lands in the source tree; names stay the same, so
/// errors still print the bare file name.
fn copy_corpus(src: &Path, dest: &Path) {
    for entry in std::fs::read_dir(src).expect("read corpus") {
        let path = entry.expect("dir entry").path();
        if path.is_file() {
            std::fs::copy(&path, dest.join(path.file_name().unwrap())).expect("copy entry");
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `flow ARGS[0] NAME ARGS[1..]` in `dir`; `bounded`: under a 4 GiB address-space limit
/// and a 60 s timeout (for generated entries that once exhausted memory or hung).
fn run_flow(dir: &Path, name: &str, args: &[String], bounded: bool) -> Run {
    let mut command = if bounded {
        let mut sh = Command::new("sh");
        sh.args(["-c", "ulimit -v 4194304 && exec timeout 60 \"$@\"", "sh"])
            .arg(crate::common::flow_bin());
        sh
    } else {
        Command::new(crate::common::flow_bin())
    };
    command
        .arg(&args[0])
        .arg(name)
        .args(&args[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "FLOW_STATE_DIR",
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
        "NO_COLOR",
    ] {
        command.env_remove(var);
    }
    let output = command.output().expect("spawn flow");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every problem with one entry (empty: it behaves as its header says).
fn check(dir: &Path, path: &Path, location_re: &regex::Regex, bounded: bool) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = String::from_utf8_lossy(&std::fs::read(path).expect("read entry")).into_owned();
    let expect = match parse_header(&text) {
        Ok(expect) => expect,
        Err(e) => return vec![format!("bad header: {e}")],
    };
    let args_text = expect.args.as_deref().unwrap_or("validate");
    let args = match split_args(args_text) {
        Ok(args) => args,
        Err(e) => return vec![format!("bad header: {e}")],
    };
    let run = run_flow(dir, &name, &args, bounded);
    let first = run.stderr.lines().next().unwrap_or("");
    let mut problems = Vec::new();

    if run.stderr.contains("panicked") || run.code == 101 {
        problems.push("flow panicked".to_string());
    }
    if run.code == -1 || run.code == 134 || run.stderr.contains("overflowed its stack") {
        problems.push("flow was killed by a signal (a stack overflow or an abort?)".to_string());
    }
    let want_exit = expect.exit.unwrap();
    if run.code != want_exit {
        problems.push(format!("exit code {} (expected {want_exit})", run.code));
    }
    let want_error = expect.error.as_deref().unwrap();
    if first != want_error {
        problems.push(format!(
            "first stderr line differs\n      expected: {want_error}\n      actual:   {first}"
        ));
    }
    if expect.cli_location {
        if !first.contains("-p") && !first.contains("params file") {
            problems.push("the error names neither `-p` nor the params file".into());
        }
    } else if !location_re.is_match(&run.stderr) {
        problems.push("stderr names no location (` --> file:line:col`)".into());
    }
    if let Some(location) = &expect.location {
        // The first ` --> file:line:col`, compared on the line (and the column when given).
        let found = location_re
            .captures(&run.stderr)
            .map(|c| (c[1].to_string(), c[2].to_string(), c[3].to_string()));
        let matches = found.as_ref().is_some_and(|(file, line, col)| {
            let mut want = location.split(':');
            file == &name
                && want.next() == Some(line.as_str())
                && want.next().is_none_or(|want_col| want_col == col)
        });
        if !matches {
            let actual = found.map_or("(none)".to_string(), |(f, l, c)| format!("{f}:{l}:{c}"));
            problems.push(format!(
                "points at the wrong place\n      expected: {name}:{location}\n      actual:   {actual}"
            ));
        }
    }
    if let Some(max) = expect.max_stderr
        && run.stderr.len() > max
    {
        problems.push(format!(
            "stderr is {} bytes long (at most {max} expected)",
            run.stderr.len()
        ));
    }
    for needle in &expect.lacks {
        if run.stderr.contains(needle.as_str()) {
            problems.push(format!("stderr contains {needle:?}, which it must not"));
        }
    }

    if problems.is_empty() {
        return problems;
    }
    let shown = if run.stderr.trim().is_empty() {
        format!("(stderr empty) stdout:\n{}", run.stdout)
    } else {
        run.stderr.clone()
    };
    let shown: Vec<String> = shown
        .lines()
        .take(12)
        .map(|l| l.chars().take(300).collect())
        .collect();
    let command: Vec<&str> = std::iter::once(args[0].as_str())
        .chain([name.as_str()])
        .chain(args[1..].iter().map(String::as_str))
        .collect();
    problems.push(format!(
        "ran `flow {}` (exit {}); output:\n        {}",
        command.join(" "),
        run.code,
        shown.join("\n        ")
    ));
    problems
}

#[test]
fn invalid_corpus_is_rejected_clearly() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/invalid");
    let files = entries(&corpus);
    let work = tempfile::tempdir().expect("temp dir");
    copy_corpus(&corpus, work.path());
    let location_re = regex::Regex::new(r" --> ([^:\s]+):(\d+):(\d+)").unwrap();

    let mut failures = Vec::new();
    for path in &files {
        let problems = check(work.path(), path, &location_re, false);
        if !problems.is_empty() {
            let name = path.file_name().unwrap().to_string_lossy();
            failures.push(format!("{name}:\n  - {}", problems.join("\n  - ")));
        }
    }

    assert!(
        files.len() >= MIN_ENTRIES,
        "the corpus has {} entries, expected at least {MIN_ENTRIES}",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus entries do not behave as their header says:\n\n{}\n",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn header_args_split_like_a_shell() {
    assert_eq!(
        split_args("plan -p 'hosts={a: 1}' -p x=\"a b\"").unwrap(),
        ["plan", "-p", "hosts={a: 1}", "-p", "x=a b"]
    );
    assert!(split_args("plan -p 'x").is_err());
}

/// A generated entry: its file name, its header lines (without `# `) and its body.
struct Generated {
    name: String,
    header: Vec<String>,
    body: String,
}

impl Generated {
    fn new(name: &str, header: &[&str], body: String) -> Self {
        Self {
            name: name.to_string(),
            header: header.iter().map(|h| h.to_string()).collect(),
            body,
        }
    }

    /// Adds `expect-location:` for line `body_line` of the body (1-based), column `col`.
    fn at(mut self, body_line: usize, col: usize) -> Self {
        let line = self.header.len() + 1 + body_line;
        self.header.push(format!("expect-location: {line}:{col}"));
        self
    }
}

/// Writes the entries (and `files`, such as params files) into a temp dir and checks each
/// as a corpus entry; every mismatch is reported at once.
fn check_generated(entries: &[Generated], files: &[(&str, String)]) {
    let work = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(work.path().join(name), text).expect("write file");
    }
    let location_re = regex::Regex::new(r" --> ([^:\s]+):(\d+):(\d+)").unwrap();
    let mut failures = Vec::new();
    for entry in entries {
        let header: String = entry.header.iter().map(|h| format!("# {h}\n")).collect();
        let path = work.path().join(&entry.name);
        std::fs::write(&path, format!("{header}{}", entry.body)).expect("write entry");
        let problems = check(work.path(), &path, &location_re, true);
        if !problems.is_empty() {
            failures.push(format!("{}:\n  - {}", entry.name, problems.join("\n  - ")));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

const TOO_DEEP: &str = "lists and mappings are nested more than 256 levels deep here";

#[test]
fn deep_block_nesting_is_refused_with_its_location_not_a_stack_overflow() {
    let head = "flow: 1\nparams:\n  hosts: { type: list, required: false }\nsteps:\n  a:\n    type: log\n    with:\n      message: x\n      table:\n";
    let deep_list = format!("{}x\n", "- ".repeat(1_400));
    let mut entries = Vec::new();

    // `- - - …` under `table:` (at depth 5): the 252nd `- ` starts level 257.
    let error = format!("expect-error: error: {TOO_DEEP}");
    let e = Generated::new(
        "g01-deep-block-sequence.yaml",
        &["expect-exit: 2", &error],
        format!("{head}        {deep_list}"),
    )
    .at(10, 9 + 2 * 252);
    entries.push(e);

    // One mapping per line, each indented one more space.
    let mapping: String = (0..3_000)
        .map(|i| format!("{}k:\n", " ".repeat(8 + i)))
        .collect();
    let e = Generated::new(
        "g02-deep-block-mapping.yaml",
        &["expect-exit: 2", &error],
        format!("{head}{mapping}{}v\n", " ".repeat(8 + 3_000)),
    )
    .at(10 + 252, 9 + 252);
    entries.push(e);

    // The same from `-p`, which has no file to point at: the column in the value.
    let cli = format!("args: plan -p 'hosts={}'", deep_list.trim_end());
    let cli_error = format!(
        "expect-error: error: param `hosts` (from -p): {TOO_DEEP} (at column {} of the value)",
        2 * 256 + 1
    );
    entries.push(Generated::new(
        "g03-deep-cli-param.yaml",
        &["expect-exit: 2", &cli_error, &cli, "location: cli"],
        head.to_string(),
    ));

    // And from a params file, which is pointed at.
    entries.push(Generated::new(
        "g04-deep-params-file.yaml",
        &[
            "expect-exit: 2",
            &error,
            "args: plan --params-file g04-deep-params-file.params.yaml",
        ],
        head.to_string(),
    ));
    let params_file = format!("hosts:\n  {deep_list}");
    check_generated(
        &entries,
        &[("g04-deep-params-file.params.yaml", params_file)],
    );
}

#[test]
fn an_alias_bomb_by_bytes_is_refused_with_its_location() {
    // A 2 MB anchored scalar aliased 5 000 times would be 10 GB; the third alias passes 4 MiB.
    let big = "A".repeat(2_000_000);
    let aliases: String = (0..5_000).map(|_| "        - *big\n").collect();
    let body = format!(
        "flow: 1\nsteps:\n  a:\n    type: log\n    with:\n      message: &big {big}\n      table:\n{aliases}"
    );
    let e = Generated::new(
        "g05-alias-bomb-bytes.yaml",
        &[
            "expect-exit: 2",
            "expect-error: error: YAML aliases (`*name`) expand to more than 4 MiB of text here; refusing what looks like an alias bomb",
            "stderr-max-bytes: 2000",
        ],
        body,
    )
    .at(10, 11);
    check_generated(&[e], &[]);
}

/// 30 000 steps, each waiting for the one above it (the recursive cycle search overflowed
/// the stack at about that many); with `cycle`, the last two wait for each other.
const CHAIN: usize = 30_000;

fn chain_of_steps(cycle: bool) -> String {
    let steps: String = (0..CHAIN)
        .map(|i| {
            let needs = if cycle && i == CHAIN - 2 {
                format!(" needs: [s{}],", CHAIN - 1)
            } else {
                String::new()
            };
            format!("  s{i}: {{ type: log,{needs} with: {{ message: hi }} }}\n")
        })
        .collect();
    format!("flow: 1\nsteps:\n{steps}")
}

#[test]
fn a_cycle_at_the_end_of_a_long_chain_of_steps_is_named_without_overflowing_the_stack() {
    let error = format!(
        "expect-error: error: dependency cycle: s{0} → s{1} → s{0}",
        CHAIN - 2,
        CHAIN - 1
    );
    let e = Generated::new(
        "g06-cycle-after-a-long-chain.yaml",
        &["expect-exit: 2", &error],
        chain_of_steps(true),
    )
    .at(3 + CHAIN - 2, 3);
    check_generated(&[e], &[]);
}

#[test]
fn a_long_chain_of_steps_validates_without_overflowing_the_stack() {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::write(work.path().join("chain.yaml"), chain_of_steps(false)).expect("write");
    let run = run_flow(work.path(), "chain.yaml", &["validate".to_string()], true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("{CHAIN} steps")),
        "{}",
        run.stdout
    );
}

#[test]
fn a_megabyte_line_is_cut_around_the_caret_in_diagnostics() {
    let long = "a".repeat(1_000_000);
    let mut entries = Vec::new();
    // The error is at the end of a 1 MB line.
    let e = Generated::new(
        "g07-unknown-field-after-a-long-value.yaml",
        &[
            "expect-exit: 2",
            "expect-error: error: step `a`: unknown field `with.bogus`",
            "stderr-max-bytes: 2000",
        ],
        format!(
            "flow: 1\nsteps:\n  a:\n    type: log\n    with: {{ message: \"{long}\", bogus: 1 }}\n"
        ),
    )
    .at(5, 26 + long.len());
    entries.push(e);
    // The message quotes a 1 MB value: it loses its middle.
    let error = format!(
        "expect-error: error: unknown step type `{}…{}`",
        "a".repeat(300 - "unknown step type `".len()),
        "a".repeat(99)
    );
    let e = Generated::new(
        "g08-long-unknown-type.yaml",
        &["expect-exit: 2", &error, "stderr-max-bytes: 2000"],
        format!("flow: 1\nsteps:\n  a:\n    type: {long}\n"),
    )
    .at(4, 11);
    entries.push(e);
    check_generated(&entries, &[]);
}

#[test]
fn read_file_of_a_fifo_or_a_device_fails_the_step_instead_of_hanging() {
    let work = tempfile::tempdir().expect("temp dir");
    let made = Command::new("mkfifo")
        .arg(work.path().join("pipe"))
        .status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    for (path, what) in [
        ("pipe", "it is a FIFO, not a regular file"),
        ("/dev/zero", "it is a character device"),
    ] {
        let playbook = format!(
            "flow: 1\nsteps:\n  a:\n    type: log\n    with:\n      message: \"{{{{ read_file('{path}') | length }}}}\"\n"
        );
        std::fs::write(work.path().join("read.yaml"), playbook).expect("write playbook");
        let run = run_flow(work.path(), "read.yaml", &["plan".to_string()], true);
        assert_eq!(run.code, 1, "{path}: {}{}", run.stdout, run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(
            run.stdout.contains(what) && run.stdout.contains(path),
            "{path}: {}",
            run.stdout
        );
    }
}
