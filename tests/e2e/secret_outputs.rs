//! Outputs a playbook declares secret — `secret: true` on a step, or `secret_outputs:
//! [stdout]` — are masked from the moment they exist: the lines they are made of are not
//! shown while the command runs, the values are masked in every channel (and what a template
//! derives from them), in `undo` and `finally` bodies and in `for_each` results, and a failure
//! does not quote a secret stderr. A name that is not an output of the step's type is an error
//! with a did-you-mean, at its place.

use crate::common::Flow;
use crate::common::channels::Channels;

const MINTED: &str = "Minted-Tok3n-5521";

#[test]
fn a_declared_secret_output_is_masked_in_every_channel_and_its_lines_are_not_shown() {
    let channels = Channels::of(
        &format!(
            r#"flow: 1
steps:
  mint:
    type: exec
    effect: read
    secret_outputs: [stdout]
    with: {{ shell: 'echo "{MINTED}"; echo "minting on stderr" >&2' }}
  use:
    type: log
    with: {{ message: "token {{{{ steps.mint.stdout }}}}" }}
  derived:
    type: log
    with: {{ message: "reversed {{{{ steps.mint.stdout | reverse }}}}" }}
outputs:
  token: "{{{{ steps.mint.stdout }}}}"
"#
        ),
        &[],
        &[],
    );
    channels
        .lack(MINTED)
        .lack("1255n3koT-detniM")
        .lack("Minted");
    let verbose = channels.channel("apply -v");
    // The run went through, readable: stderr (not declared secret) is shown, stdout is not.
    assert!(verbose.contains("token ***"), "{verbose}");
    assert!(verbose.contains("reversed ***"), "{verbose}");
    assert!(verbose.contains("minting on stderr"), "{verbose}");
    assert!(
        verbose.contains("[stdout not shown: the step's output is secret]"),
        "{verbose}"
    );
    let events = channels.events();
    let finished = events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "mint")
        .expect("mint finished");
    assert_eq!(finished["outputs"]["stdout"], "***", "{finished}");
    assert_eq!(finished["outputs_masked"], true, "{finished}");
}

/// `secret: true` (the values are built by the shell, so the playbook's text does not hold
/// them): every line hidden (its `undo`'s too), every output masked, the `undo` and
/// `finally` that read them masked, each `for_each` element's result masked — and a failing secret step's error
/// does not carry the tail of its stderr.
#[test]
fn a_secret_step_hides_its_lines_results_undo_finally_and_failure() {
    let channels = Channels::of(
        r#"flow: 1
steps:
  per_host:
    type: exec
    secret: true
    for_each: [alpha, bravo]
    with: { shell: 'echo "Elem""-Secret-$H-77"', env: { H: "{{ item }}" } }
    undo:
      type: exec
      with:
        shell: 'echo "undoing $R"'
        env: { R: "{{ steps.per_host.results | map(attribute='stdout') | join(',') }}" }
  mint:
    type: exec
    secret: true
    with: { shell: 'echo "Whole""-Secret-9904"; echo "Err""-Secret-9904" >&2' }
  report:
    type: log
    with: { message: "elements {{ steps.per_host.results | map(attribute='stdout') | join(',') }} and {{ steps.mint.stdout }}" }
  fails:
    type: exec
    secret: true
    with: { shell: 'echo "Fail""-Secret-3131" >&2; exit 3' }
finally:
  tell:
    type: log
    with: { message: "finally {{ steps.mint.stdout }} / {{ steps.mint.stderr }}" }
"#,
        &[],
        &[],
    );
    for secret in [
        "Elem-Secret",
        "Whole-Secret-9904",
        "Err-Secret-9904",
        "Fail-Secret-3131",
    ] {
        channels.lack(secret);
    }
    let plain = channels.channel("apply");
    assert!(plain.contains("elements ***,*** and ***"), "{plain}");
    assert!(plain.contains("finally *** / ***"), "{plain}");
    assert!(
        plain
            .contains("exited with 3 (expected 0) (stderr not shown: the step's output is secret)"),
        "{plain}"
    );
    // The undo ran (per element), reading the secret results.
    let undone = channels
        .events()
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["step"] == "per_host.undo")
        .count();
    assert_eq!(undone, 2);
}

#[test]
fn a_secret_output_that_the_type_does_not_have_is_an_error_at_its_place() {
    let ran = Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  mint:\n    type: exec\n    secret_outputs: [stdout, stdot]\n    with: { command: [echo, hi] }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run();
    ran.code(2)
        .stderr_has("step `mint`: `exec` has no output `stdot`")
        .stderr_has("playbook.yaml:5:30")
        .stderr_has("did you mean `stdout`?");
    Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  mint:\n    type: log\n    secret_outputs: [message]\n    with: { message: hi }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("`log` has no outputs");
    Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  mint:\n    type: exec\n    secret: true\n    secret_outputs: [stdout]\n    with: { command: [echo, hi] }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("makes every output secret")
        .stderr_has("playbook.yaml:6:21");
    Flow::new()
        .playbook(
            "flow: 1\nsteps:\n  mint:\n    type: exec\n    secret_outputs: stdout\n    with: { command: [echo, hi] }\n",
        )
        .args(&["validate", "playbook.yaml"])
        .run()
        .code(2)
        .stderr_has("must be a list of output names");
}

/// A resumed run keeps a finished secret step's outputs masked in its journal: a later step
/// that reads them runs the read again rather than being fed `***`.
#[test]
fn a_resume_runs_a_secret_read_again_rather_than_feed_its_mask() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  mint:
    type: exec
    effect: read
    secret_outputs: [stdout]
    with: { command: [echo, "Kept-Secret-4410"] }
  gate:
    type: exec
    with: { command: [test, -e, go] }
  write:
    type: file.write
    with: { path: written.txt, content: "{{ steps.mint.stdout }}" }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    std::fs::write(out.path("go"), "").expect("go");
    let state = out.path(".flow");
    let id = crate::common::run::only_run_id(&state);
    let resumed = crate::common::run::flow(out.dir.path(), &["apply", "--resume", &id], &[]);
    resumed.code(0);
    assert_eq!(out.file("written.txt"), "Kept-Secret-4410");
    assert!(!crate::common::read_tree(&state).contains("Kept-Secret"));
}

/// On a terminal, the live view shows the note in place of a secret stream's lines while the
/// step runs, and the value nowhere.
#[test]
fn the_live_view_does_not_show_the_lines_of_a_secret_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        r#"flow: 1
steps:
  mint:
    type: exec
    secret_outputs: [stdout]
    with: { shell: 'echo "Live""-Secret-8080"; sleep 1; echo "still working" >&2; sleep 1' }
  use:
    type: log
    with: { message: "got {{ steps.mint.stdout }}" }
"#,
    )
    .expect("playbook");
    let terminal = crate::common::pty::Terminal::start(dir.path(), "apply playbook.yaml");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("Live-Secret"), "{screen}");
    assert!(screen.contains("got ***"), "{screen}");
}
