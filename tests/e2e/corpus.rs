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
//! ```
//!
//! Files ending in `.params.yaml` are params files used by entries (`--params-file`), not
//! entries. Every mismatch across the corpus is reported in one failure message.

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

fn run_flow(dir: &Path, name: &str, args: &[String]) -> Run {
    let mut command = Command::new(crate::common::flow_bin());
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
fn check(dir: &Path, path: &Path, location_re: &regex::Regex) -> Vec<String> {
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
    let run = run_flow(dir, &name, &args);
    let first = run.stderr.lines().next().unwrap_or("");
    let mut problems = Vec::new();

    if run.stderr.contains("panicked") || run.code == 101 {
        problems.push("flow panicked".to_string());
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
    let shown: Vec<&str> = shown.lines().take(12).collect();
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
        let problems = check(work.path(), path, &location_re);
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
