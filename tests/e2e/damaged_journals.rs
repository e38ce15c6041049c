//! A journal that was damaged — a line cut inside a UTF-8 character when the disk filled, a
//! line of garbage, a missing `events.jsonl` — never makes `flow apply --resume` run a
//! finished write again: what can be read is kept, a journal that lost what a step did is
//! refused, and `flow show` says what it could not read beside what it could. And a run id
//! is never empty.

use crate::common::run::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `made` is a write that counts its runs and prints a `✔`; `flaky` fails until `fixed`
/// exists.
const WRITE_THEN_FAIL: &str = r#"flow: 1
name: write-then-fail
steps:
  made:
    type: exec
    with: { shell: 'echo made >> counter; echo "done ✔"' }
  flaky:
    type: exec
    with: { shell: 'test -f fixed' }
"#;

/// A run of WRITE_THEN_FAIL that failed at `flaky`: the folder, the run id and its journal.
fn failed_run() -> (tempfile::TempDir, String, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "playbook.yaml", WRITE_THEN_FAIL);
    flow(dir.path(), &["apply", "playbook.yaml"], &[]).code(1);
    let run = only_run(&dir.path().join(".flow"));
    let id = run.file_name().unwrap().to_string_lossy().into_owned();
    (dir, id, run.join("events.jsonl"))
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open the journal")
        .write_all(bytes)
        .expect("append to the journal");
}

fn made_count(dir: &Path) -> usize {
    read(&dir.join("counter")).lines().count()
}

/// The disk filled while flow wrote `done ✔`: the journal ends in the middle of the `✔`
/// (bytes that are not UTF-8). Reading it as one string failed, the journal counted as
/// empty, and the resume ran `made` again.
#[test]
fn a_journal_cut_inside_a_utf8_character_resumes_without_running_a_finished_write_again() {
    let (dir, id, journal) = failed_run();
    let dir = dir.path();
    let line = br#"{"event":"step_output","step":"flaky","stream":"stdout","line":"done "#;
    append(&journal, &[&line[..], &"✔".as_bytes()[..2]].concat());
    assert_eq!(made_count(dir), 1);

    let shown = flow(dir, &["show", &id], &[]);
    shown.code(0);
    let page = mask(&shown.stdout);
    assert!(page.contains("  made  succeeded  DUR"), "{page}");
    assert!(page.contains("cut short"), "{page}");

    write(dir, "fixed", "");
    flow(dir, &["apply", "--resume", &id], &[])
        .code(0)
        .stdout_has("✔ made kept (succeeded before)");
    assert_eq!(made_count(dir), 1, "the finished write ran again");
}

/// A line in the middle that is not an event may have been the end of a write: the resume
/// is refused (exit 2, nothing run), and `flow show` says the journal is damaged and shows
/// what it could read.
#[test]
fn a_journal_with_a_damaged_line_is_not_resumed_and_show_says_so() {
    let (dir, id, journal) = failed_run();
    let dir = dir.path();
    let text = read(&journal);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "\u{0}\u{0}\u{0}garbage from a bad disk");
    std::fs::write(&journal, format!("{}\n", lines.join("\n"))).expect("rewrite the journal");

    let shown = flow(dir, &["show", &id], &[]);
    shown.code(0);
    let page = mask(&shown.stdout);
    assert!(page.contains("is damaged"), "{page}");
    assert!(page.contains("line 3: not JSON"), "{page}");
    assert!(page.contains("  made  succeeded  DUR"), "{page}");
    let json = flow(dir, &["--output", "json", "show", &id], &[]);
    json.code(0);
    let shown: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(shown["journal"]["damaged"], true, "{shown:#}");
    assert!(shown["events"].as_array().is_some_and(|e| e.len() > 3));

    write(dir, "fixed", "");
    let resumed = flow(dir, &["apply", "--resume", &id], &[]);
    resumed
        .code(2)
        .stderr_has("its journal")
        .stderr_has("is damaged: line 3 is not an event of the run");
    assert_eq!(made_count(dir), 1);
}

/// A journal that cannot be read at all is no journal of steps that finished: refused, not
/// taken as "nothing ran".
#[test]
fn a_run_whose_journal_cannot_be_read_is_not_resumed() {
    let (dir, id, journal) = failed_run();
    let dir = dir.path();
    std::fs::remove_file(&journal).expect("remove the journal");
    write(dir, "fixed", "");
    flow(dir, &["apply", "--resume", &id], &[])
        .code(2)
        .stderr_has("its journal")
        .stderr_has("cannot be read");
    assert_eq!(made_count(dir), 1, "the finished write ran again");
    let shown = flow(dir, &["show", &id], &[]);
    shown.code(0).stdout_has("cannot be read");
}

/// `""` is a prefix of every run id: with one run recorded it named that run.
#[test]
fn an_empty_run_id_is_refused_by_show_and_resume() {
    let (dir, _, _) = failed_run();
    let dir = dir.path();
    for args in [
        &["show", ""][..],
        &["apply", "--resume", ""][..],
        &["show", " "][..],
    ] {
        let out = flow(dir, args, &[]);
        out.code(2).stderr_has("the run id is empty");
        assert!(out.stdout.is_empty(), "{}", out.context());
    }
    assert_eq!(made_count(dir), 1);
}
