//! What a run shows (DESIGN §6): a live view on a terminal, plain timestamped lines without
//! one (no control codes), `--output json` (only JSON lines on stdout), the summary table,
//! the GitHub step summary and annotations.

use crate::common::run::*;
use serde_json::Value;
use std::time::Duration;

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

fn dir_with(playbook: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "playbook.yaml", playbook);
    dir
}

/// A slow step (the spinner has time to turn), a skipped one, a quick one, outputs.
const LIVE: &str = r#"flow: 1
name: live
steps:
  slow:
    type: exec
    with: { shell: 'sleep 0.8; echo done' }
  skipped:
    type: log
    when: "false"
    with: { message: never }
  quick:
    type: log
    with: { message: hi }
outputs:
  said: "{{ steps.slow.stdout }}"
"#;

// ---------------------------------------------------------------- live view

#[test]
fn on_a_terminal_the_live_view_spins_marks_finished_steps_and_ends_with_the_summary() {
    let dir = dir_with(LIVE);
    let mut terminal = crate::common::pty::Terminal::start(dir.path(), "apply playbook.yaml");
    terminal.wait_for("slow (exec)");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        SPINNER
            .iter()
            .any(|c| screen.contains(&format!("{c}\x1b[0m slow (exec)")))
            || SPINNER
                .iter()
                .any(|c| screen.contains(&format!("{c} slow (exec)"))),
        "no spinner on the running step:\n{screen:?}"
    );
    let spinner_frames = SPINNER
        .iter()
        .filter(|c| screen.contains(&c.to_string()))
        .count();
    assert!(spinner_frames >= 3, "the spinner did not turn:\n{screen:?}");
    // The running line shows its elapsed time.
    let elapsed = regex::Regex::new(r"slow \(exec\)\S* (\x1b\[[0-9;]*m)?\d+s").unwrap();
    assert!(elapsed.is_match(&screen), "no elapsed time:\n{screen:?}");
    assert!(
        regex::Regex::new(r"✔ slow \d+(\.\d+)?(ms|s)")
            .unwrap()
            .is_match(&screen),
        "{screen:?}"
    );
    assert!(screen.contains("⊘ skipped"), "{screen:?}");
    assert!(screen.contains("when: false"), "{screen:?}");
    assert!(screen.contains("✔ quick"), "{screen:?}");
    let summary = screen
        .find("Summary")
        .unwrap_or_else(|| panic!("no summary:\n{screen}"));
    let end = &screen[summary..];
    for text in [
        "step",
        "status",
        "duration",
        "slow",
        "succeeded",
        "skipped",
        "Outputs",
        "said",
        "done",
        "Run succeeded",
    ] {
        assert!(
            end.contains(text),
            "{text:?} missing from the summary:\n{end}"
        );
    }
    // The live view is not the plain view: no timestamped event lines.
    assert!(
        !regex::Regex::new(r"\d{2}:\d{2}:\d{2} ✔ slow")
            .unwrap()
            .is_match(&screen),
        "{screen:?}"
    );
}

#[test]
fn on_a_terminal_a_failed_step_gets_a_cross_and_exit_1() {
    let dir = dir_with(
        r#"flow: 1
steps:
  bad:
    type: exec
    with: { shell: 'sleep 0.3; exit 5' }
"#,
    );
    let terminal = crate::common::pty::Terminal::start(dir.path(), "apply playbook.yaml");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("✘ bad"), "{screen:?}");
    assert!(screen.contains("exited with 5"), "{screen:?}");
    assert!(screen.contains("Run failed"), "{screen:?}");
}

/// While a question is on the screen, the spinner of a step running beside it does not draw
/// over it.
#[test]
fn on_a_terminal_a_prompt_pauses_the_live_view() {
    let dir = dir_with(
        r#"flow: 1
steps:
  slow:
    type: exec
    needs: []
    with: { shell: 'sleep 2' }
  ok:
    type: confirm
    needs: []
    with: { message: "Proceed now?" }
"#,
    );
    let mut terminal = crate::common::pty::Terminal::start(dir.path(), "apply playbook.yaml");
    terminal.wait_for("Proceed now?");
    let during = terminal.drawn_during(Duration::from_millis(700));
    assert!(
        !SPINNER.iter().any(|c| during.contains(*c)),
        "the spinner drew while the question was asked:\n{during:?}"
    );
    terminal.type_keys("y\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("✔ slow"), "{screen:?}");
    assert!(screen.contains("approved (terminal"), "{screen:?}");
}

// ---------------------------------------------------------------- plain

#[test]
fn without_a_terminal_the_output_is_plain_timestamped_lines_without_control_codes() {
    let dir = dir_with(
        r#"flow: 1
name: plain
params:
  who: { type: string, default: ops }
steps:
  slow:
    type: exec
    with: { shell: "sleep 0.4; echo hi {{ params.who }}; echo to-stderr >&2" }
  skipped:
    type: log
    when: "false"
    with: { message: never }
  warn:
    type: assert
    with: { that: "false", severity: warning, message: just a warning }
  bad:
    type: exec
    continue_on_error: true
    with: { shell: 'exit 3' }
outputs:
  said: "{{ steps.slow.stdout }}"
"#,
    );
    let stamped = regex::Regex::new(r"^\d{2}:\d{2}:\d{2} ").unwrap();
    for args in [
        &["apply", "playbook.yaml"][..],
        &["apply", "playbook.yaml", "-v"][..],
    ] {
        let ran = flow(dir.path(), args, &[("TERM", "xterm-256color")]);
        ran.code(0);
        for (name, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)] {
            assert!(!text.contains('\x1b'), "escape code on {name}:\n{text:?}");
            assert!(!text.contains('\r'), "carriage return on {name}:\n{text:?}");
            assert!(
                !SPINNER.iter().any(|c| text.contains(*c)),
                "spinner on {name}:\n{text}"
            );
        }
        // Every event line, up to the summary, starts with a time.
        let events: Vec<&str> = ran.stdout.lines().take_while(|l| !l.is_empty()).collect();
        assert!(events.len() >= 6, "{}", ran.context());
        for line in &events {
            assert!(
                stamped.is_match(line),
                "not timestamped: {line:?}\n{}",
                ran.context()
            );
        }
        let page = mask(&ran.stdout);
        for line in [
            "HH:MM:SS ▶ apply plain (run RUNID)",
            "HH:MM:SS ▶ slow (exec)",
            "HH:MM:SS ✔ slow DUR",
            "HH:MM:SS ⊘ skipped DUR skipped (when: false)",
            "HH:MM:SS ✔ warn DUR",
        ] {
            assert!(page.lines().any(|l| l == line), "no line {line:?}:\n{page}");
        }
        assert!(
            page.lines()
                .any(|l| l.starts_with("HH:MM:SS ✘ bad DUR") && l.contains("exited with 3")),
            "{page}"
        );
        assert!(ran.both().contains("just a warning"), "{}", ran.context());
    }
}

#[test]
fn the_summary_table_lists_step_status_reason_duration_and_the_outputs() {
    let dir = dir_with(LIVE);
    let ran = flow(dir.path(), &["apply", "playbook.yaml"], &[]);
    ran.code(0);
    let page = mask(&ran.stdout);
    let summary = &page[page.find("Summary").unwrap_or_else(|| panic!("{page}"))..];
    assert_eq!(
        summary.trim_end(),
        "Summary
  step  status  duration  detail
  ─  ─  ─  ─
  slow  succeeded  DUR
  skipped  skipped  DUR  when: false
  quick  succeeded  DUR

Outputs
  said  done

Run succeeded in DUR.",
        "{}",
        ran.stdout
    );
}

// ---------------------------------------------------------------- json

const SEQUENCE: &str = r#"flow: 1
name: seq
steps:
  greet:
    type: exec
    with: { command: [echo, hello] }
  skip:
    type: log
    when: "false"
    with: { message: never }
  say:
    type: log
    with: { message: "said {{ steps.greet.stdout }}" }
finally:
  fin:
    type: file.write
    with: { path: fin.txt, content: done }
outputs:
  greeting: "{{ steps.greet.stdout }}"
"#;

fn json_lines(ran: &Ran) -> Vec<Value> {
    assert!(!ran.stdout.is_empty(), "{}", ran.context());
    ran.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("stdout line is not JSON ({e}): {l:?}\n{}", ran.context())
            })
        })
        .collect()
}

#[test]
fn json_output_of_a_known_playbook_is_this_sequence_of_events() {
    let dir = dir_with(SEQUENCE);
    let ran = flow(
        dir.path(),
        &["--output", "json", "apply", "playbook.yaml"],
        &[],
    );
    ran.code(0);
    let events = json_lines(&ran);
    assert_eq!(
        tuples(&events),
        vec![
            t("run_started", "", ""),
            t("step_started", "greet", ""),
            t("step_output", "greet", ""),
            t("step_finished", "greet", "succeeded"),
            t("step_finished", "skip", "skipped"),
            t("step_started", "say", ""),
            t("step_output", "say", ""),
            t("step_finished", "say", "succeeded"),
            t("step_started", "fin", ""),
            t("step_finished", "fin", "succeeded"),
            t("run_finished", "", "succeeded"),
        ]
    );
    assert_eq!(events[0]["name"], "seq");
    assert_eq!(events[2]["line"], "hello");
    assert_eq!(events[6]["line"], "said hello");
    assert_eq!(events[4]["reason"], "when: false");
    assert_eq!(events[10]["outputs"]["greeting"], "hello");
    assert_eq!(events[10]["exit_code"], 0);
}

#[test]
fn json_output_is_only_json_on_stdout_even_with_warnings_and_a_failure() {
    let dir = dir_with(
        r#"flow: 1
params:
  who: { type: string, default: ops }
steps:
  greet:
    type: exec
    with: { shell: "echo hi {{ params.who }}; echo oops >&2" }
  check:
    type: assert
    with: { that: "false", severity: warning, message: just a warning }
  bad:
    type: exec
    with: { shell: 'echo failing >&2; exit 6' }
"#,
    );
    let ran = flow(
        dir.path(),
        &["apply", "playbook.yaml", "--output", "json", "-v"],
        &[],
    );
    ran.code(1);
    let events = json_lines(&ran);
    // The validation warning (unquoted interpolation) is for people: on stderr.
    ran.stderr_has("| quote");
    assert!(
        events.iter().any(|e| e["event"] == "warning"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("just a warning")),
        "{events:#?}"
    );
    let end = events.last().unwrap();
    assert_eq!(end["event"], "run_finished");
    assert_eq!(end["status"], "failed");
    assert_eq!(end["exit_code"], 1);
    assert!(!ran.stdout.contains('\x1b'));
}

#[test]
fn json_output_of_a_plan_is_only_json_too() {
    let dir = dir_with(SEQUENCE);
    let ran = flow(
        dir.path(),
        &["plan", "playbook.yaml", "--output", "json"],
        &[],
    );
    ran.code(0);
    let events = json_lines(&ran);
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "plan_step")
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(steps, vec!["greet", "skip", "say", "fin"]);
}

// ---------------------------------------------------------------- GitHub

#[test]
fn github_step_summary_gets_markdown_with_run_skipped_failed_verdicts_and_reasons() {
    let dir = dir_with(
        r#"flow: 1
name: gh
params:
  who: { type: string, default: ops }
steps:
  greet:
    type: exec
    with: { command: [echo, "hi {{ params.who }}"] }
  only_for_x:
    type: log
    when: "params.who == 'x'"
    with: { message: x }
  bad:
    type: exec
    continue_on_error: true
    with: { shell: 'exit 4' }
outputs:
  said: "{{ steps.greet.stdout }}"
"#,
    );
    let env = [("GITHUB_STEP_SUMMARY", "summary.md")];
    flow(dir.path(), &["apply", "playbook.yaml"], &env).code(0);
    let markdown = read(&dir.path().join("summary.md"));
    assert!(markdown.starts_with("### "), "{markdown}");
    assert!(markdown.contains("gh"), "{markdown}");
    assert!(
        markdown.contains("| step |"),
        "no Markdown table:\n{markdown}"
    );
    assert!(markdown.contains("|---|"), "no Markdown table:\n{markdown}");
    let row = |step: &str| {
        markdown
            .lines()
            .find(|l| l.starts_with(&format!("| {step} |")))
            .unwrap_or_else(|| panic!("no row for {step}:\n{markdown}"))
            .to_string()
    };
    assert!(row("greet").contains("| RUN |"), "{markdown}");
    let skipped = row("only_for_x");
    assert!(skipped.contains("| SKIPPED |"), "{markdown}");
    assert!(skipped.contains("when: params.who == 'x'"), "{markdown}");
    let bad = row("bad");
    assert!(
        bad.contains("FAILED") && bad.contains("exited with 4"),
        "{markdown}"
    );
    assert!(markdown.contains("hi ops"), "outputs missing:\n{markdown}");
}

#[test]
fn github_step_summary_is_appended_not_overwritten() {
    let dir = dir_with(
        r#"flow: 1
name: twice
params:
  who: { type: string, default: ops }
steps:
  only_for_x:
    type: log
    when: "params.who == 'x'"
    with: { message: x }
"#,
    );
    write(
        dir.path(),
        "summary.md",
        "## an earlier step of the job\n\n",
    );
    let env = [("GITHUB_STEP_SUMMARY", "summary.md")];
    flow(dir.path(), &["apply", "playbook.yaml"], &env).code(0);
    let first = read(&dir.path().join("summary.md"));
    flow(dir.path(), &["apply", "playbook.yaml", "-p", "who=x"], &env).code(0);
    let both = read(&dir.path().join("summary.md"));
    assert!(
        both.starts_with(&first),
        "the first summary was overwritten:\n{both}"
    );
    assert!(
        both.starts_with("## an earlier step of the job\n"),
        "{both}"
    );
    assert_eq!(both.matches("### ").count(), 2, "{both}");
    let second = &both[first.len()..];
    assert!(first.contains("| SKIPPED |"), "{first}");
    assert!(
        second.contains("| RUN |") && !second.contains("SKIPPED"),
        "{second}"
    );
}

const INVALID: &str = r#"flow: 1
steps:
  a:
    type: exec
    with: { command: [echo, "{{ params.nope }}"] }
"#;

#[test]
fn github_actions_prints_validation_errors_as_annotations() {
    let dir = dir_with(INVALID);
    let env = [("GITHUB_ACTIONS", "true")];
    for args in [
        &["validate", "playbook.yaml"][..],
        &["plan", "playbook.yaml"][..],
        &["apply", "playbook.yaml"][..],
    ] {
        let ran = flow(dir.path(), args, &env);
        ran.code(2);
        assert!(
            ran.both().lines().any(
                |l| l.starts_with("::error file=playbook.yaml,line=5,col=33::")
                    && l.contains("params.nope")
            ),
            "no annotation for {args:?}\n{}",
            ran.context()
        );
    }
    assert!(
        !dir.path().join(".flow").exists(),
        "an invalid playbook was recorded as a run"
    );
    // Not under Actions: no annotation.
    let ran = flow(dir.path(), &["validate", "playbook.yaml"], &[]);
    ran.code(2);
    assert!(!ran.both().contains("::error"), "{}", ran.context());
}

/// GitHub reads `file=…,line=…` as comma-separated properties: a `,` or `:` in a value must be
/// escaped (`%2C`, `%3A`) as the Actions toolkit does, or the annotation names another file.
#[test]
fn github_annotation_escapes_a_comma_in_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a,b.yaml", INVALID);
    let ran = flow(
        dir.path(),
        &["validate", "a,b.yaml"],
        &[("GITHUB_ACTIONS", "true")],
    );
    ran.code(2);
    assert!(
        ran.both()
            .contains("::error file=a%2Cb.yaml,line=5,col=33::"),
        "{}",
        ran.context()
    );
}
