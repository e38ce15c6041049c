//! `flow apply` semantics a user relies on: ordering, concurrency, retry, timeout, undo,
//! finally, continue_on_error, failure propagation, for_each, when, exit codes.
//! Order is shown through side effects and the `--output json` event stream, never timing.

use crate::common::Flow;
use serde_json::Value;

// ---------------------------------------------------------------- helpers

/// The `step_finished` event of a whole step (not of one `for_each` element).
fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step && e.get("element").is_none())
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))
}

/// Index in the stream of the first `kind` event of `step` (whole step, first attempt).
fn index_of(events: &[Value], kind: &str, step: &str) -> usize {
    events
        .iter()
        .position(|e| e["event"] == kind && e["step"] == step && e.get("element").is_none())
        .unwrap_or_else(|| panic!("no {kind} for `{step}` in {events:#?}"))
}

fn run_finished(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "run_finished")
        .expect("a run_finished event")
}

fn all_output(out: &crate::common::Outcome) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

/// A shell loop that writes `mine` then waits (at most 5s) for `other`; exit 9 if it never comes.
fn rendezvous(mine: &str, other: &str) -> String {
    format!(
        "touch {mine}; i=0; while [ ! -e {other} ]; do i=$((i+1)); [ $i -gt 50 ] && exit 9; sleep 0.1; done"
    )
}

/// Whether a process is still running (a zombie or a missing /proc entry counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next())
                .unwrap_or('?');
            !matches!(state, 'Z' | 'X')
        }
    }
}

// ---------------------------------------------------------------- ordering

#[test]
fn steps_without_needs_run_top_to_bottom_each_waiting_for_the_one_above() {
    // `a` is slow and `b` is fast: run at once, `b` would append first.
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  a: { type: exec, with: { shell: "sleep 0.3; echo a >> order.txt" } }
  b: { type: exec, with: { shell: "echo b >> order.txt" } }
  c: { type: exec, with: { shell: "echo c >> order.txt" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    assert_eq!(out.file("order.txt"), "a\nb\nc\n");
    let events = out.events();
    assert!(index_of(&events, "step_finished", "a") < index_of(&events, "step_started", "b"));
    assert!(index_of(&events, "step_finished", "b") < index_of(&events, "step_started", "c"));
}

#[test]
fn needs_empty_steps_are_independent_and_run_concurrently() {
    // Each step waits for the other's marker: this only succeeds when both run at once.
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  a: {{ type: exec, needs: [], timeout: 2s, with: {{ shell: "{}" }} }}
  b: {{ type: exec, needs: [], timeout: 2s, with: {{ shell: "{}" }} }}
"#,
            rendezvous("a.marker", "b.marker"),
            rendezvous("b.marker", "a.marker")
        ))
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    assert_eq!(finished(&events, "a")["status"], "succeeded");
    assert_eq!(finished(&events, "b")["status"], "succeeded");
}

#[test]
fn concurrency_1_runs_independent_steps_one_at_a_time_so_the_rendezvous_times_out() {
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  a: {{ type: exec, needs: [], timeout: 2s, with: {{ shell: "{}" }} }}
  b: {{ type: exec, needs: [], timeout: 2s, with: {{ shell: "{}" }} }}
"#,
            rendezvous("a.marker", "b.marker"),
            rendezvous("b.marker", "a.marker")
        ))
        .args(&[
            "apply",
            "playbook.yaml",
            "--concurrency",
            "1",
            "--output",
            "json",
        ])
        .run();
    out.code(1);
    let events = out.events();
    let first = events
        .iter()
        .find(|e| e["event"] == "step_finished")
        .expect("a finished step");
    assert_eq!(first["status"], "failed");
    assert!(
        first["error"].as_str().unwrap_or("").contains("timed out"),
        "{first}"
    );
    // Only one of the two ever got the marker written: they never overlapped.
    assert!(!(out.exists("a.marker") && out.exists("b.marker")));
}

#[test]
fn a_reference_adds_a_dependency_even_with_needs_empty() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  a: { type: exec, with: { shell: "sleep 0.3; echo from-a" } }
  quick: { type: exec, needs: [], with: { command: [echo, quick] } }
  b:
    type: exec
    needs: [quick]
    with: { command: [echo, "got {{ steps.a.stdout }}"] }
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    assert!(index_of(&events, "step_finished", "a") < index_of(&events, "step_started", "b"));
    assert_eq!(finished(&events, "b")["outputs"]["stdout"], "got from-a");
}

#[test]
fn needs_waits_for_exactly_the_listed_steps_not_the_one_above() {
    // `c` needs only `a`; `b` (just above it) waits for `c` to have run, so it would time out
    // if `c` also waited for `b`.
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  a: {{ type: exec, with: {{ shell: "echo a >> order.txt" }} }}
  b: {{ type: exec, needs: [], timeout: 3s, with: {{ shell: "{}; echo b >> order.txt" }} }}
  c: {{ type: exec, needs: [a], with: {{ shell: "echo c >> order.txt; touch c.marker" }} }}
"#,
            rendezvous("b.marker", "c.marker")
        ))
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0);
    assert_eq!(out.file("order.txt"), "a\nc\nb\n");
}

// ---------------------------------------------------------------- for_each

#[test]
fn for_each_concurrency_2_runs_two_elements_at_once() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  meet:
    type: exec
    for_each: [x, y]
    concurrency: 2
    timeout: 2s
    with:
      shell: "touch {{ item }}.marker; other={{ 'y' if item == 'x' else 'x' }}; i=0; while [ ! -e $other.marker ]; do i=$((i+1)); [ $i -gt 50 ] && exit 9; sleep 0.1; done"
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    assert_eq!(finished(&out.events(), "meet")["status"], "succeeded");
}

#[test]
fn for_each_default_concurrency_is_one_element_at_a_time() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  meet:
    type: exec
    for_each: [x, y]
    timeout: 2s
    with:
      shell: "touch {{ item }}.marker; other={{ 'y' if item == 'x' else 'x' }}; i=0; while [ ! -e $other.marker ]; do i=$((i+1)); [ $i -gt 50 ] && exit 9; sleep 0.1; done"
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(1);
    let events = out.events();
    let meet = finished(&events, "meet");
    assert_eq!(meet["status"], "failed");
    assert!(
        meet["error"].as_str().unwrap_or("").contains("timed out"),
        "{meet}"
    );
    assert!(
        !out.exists("y.marker"),
        "element 1 started alongside element 0"
    );
}

#[test]
fn for_each_results_are_in_element_order_even_when_elements_finish_out_of_order() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  each:
    type: exec
    for_each: [3, 1, 2]
    concurrency: 3
    with:
      # The first element waits until the two others are done, so it finishes last.
      shell: "{% if item == 3 %}i=0; until [ -e 1.done ] && [ -e 2.done ]; do i=$((i+1)); [ $i -gt 50 ] && exit 9; sleep 0.1; done; sleep 0.2; {% endif %}echo {{ item_index }}:{{ item }}; touch {{ item }}.done"
  report:
    type: log
    with:
      message: "joined={{ steps.each.results | map(attribute='stdout') | join(',') }} items={{ steps.each.results | map(attribute='item') | join(',') }}"
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let events = out.events();
    // The elements really did finish out of order (element 0 last)…
    let finish_order: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["step"] == "each")
        .filter_map(|e| e["element"].as_u64())
        .collect();
    assert_eq!(finish_order.len(), 3, "{finish_order:?}");
    assert_eq!(finish_order.last(), Some(&0), "{finish_order:?}");
    // …yet `results` follows the elements, each with its `item`.
    let results = finished(&events, "each")["outputs"]["results"]
        .as_array()
        .expect("results list")
        .clone();
    assert_eq!(results.len(), 3);
    for (i, (item, stdout)) in [(3, "0:3"), (1, "1:1"), (2, "2:2")].iter().enumerate() {
        assert_eq!(results[i]["item"], *item, "{results:?}");
        assert_eq!(results[i]["stdout"], *stdout, "{results:?}");
    }
    assert!(
        out.stdout.contains("joined=0:3,1:1,2:2 items=3,1,2"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_failing_for_each_element_fails_the_step_and_names_the_element() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  each:
    type: exec
    for_each: [ok, bad]
    with: { shell: "test {{ item }} = ok" }
  after: { type: exec, with: { shell: "touch after.marker" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(1);
    let events = out.events();
    let each = finished(&events, "each");
    assert_eq!(each["status"], "failed");
    assert!(
        each["error"].as_str().unwrap_or("").contains("bad"),
        "{each}"
    );
    assert_eq!(finished(&events, "after")["status"], "skipped");
    assert!(!out.exists("after.marker"));
}

// ---------------------------------------------------------------- retry

const COUNT_UP: &str = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count";

#[test]
fn retry_succeeds_on_the_third_attempt_with_three_attempts() {
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  flaky:
    type: exec
    retry: {{ attempts: 3, delay: 10ms }}
    with: {{ shell: "{COUNT_UP}; [ $n -ge 3 ]" }}
"#
        ))
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    assert_eq!(out.file("count").trim(), "3");
    let events = out.events();
    let retries = events
        .iter()
        .filter(|e| e["event"] == "step_retrying" && e["step"] == "flaky")
        .count();
    assert_eq!(retries, 2);
    assert_eq!(finished(&events, "flaky")["status"], "succeeded");
}

#[test]
fn retry_with_two_attempts_gives_up_and_the_run_fails() {
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  flaky:
    type: exec
    retry: {{ attempts: 2, delay: 10ms }}
    with: {{ shell: "{COUNT_UP}; [ $n -ge 3 ]" }}
"#
        ))
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert_eq!(out.file("count").trim(), "2");
}

#[test]
fn retry_until_retries_while_the_result_is_not_the_expected_value() {
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  poll:
    type: exec
    retry: {{ attempts: 5, delay: 10ms, until: "result.stdout == 'ready-3'" }}
    with: {{ shell: "{COUNT_UP}; echo ready-$n" }}
  after:
    type: log
    with: {{ message: "final={{{{ steps.poll.stdout }}}}" }}
"#
        ))
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0).stdout_has("final=ready-3");
    assert_eq!(out.file("count").trim(), "3");
}

#[test]
fn retry_until_never_true_fails_after_all_attempts() {
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  poll:
    type: exec
    retry: {{ attempts: 3, delay: 10ms, until: "result.stdout == 'never'" }}
    with: {{ shell: "{COUNT_UP}; echo not-yet" }}
"#
        ))
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(1);
    assert_eq!(out.file("count").trim(), "3");
    let events = out.events();
    let poll = finished(&events, "poll");
    assert_eq!(poll["status"], "failed");
    assert!(
        poll["error"].as_str().unwrap_or("").contains("until"),
        "{poll}"
    );
}

#[test]
fn retry_backoff_and_max_delay_shape_the_delays() {
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  flaky:
    type: exec
    retry: {{ attempts: 4, delay: 10ms, backoff: 2.0, max_delay: 30ms }}
    with: {{ shell: "{COUNT_UP}; [ $n -ge 4 ]" }}
"#
        ))
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    let delays: Vec<u64> = out
        .events()
        .iter()
        .filter(|e| e["event"] == "step_retrying")
        .filter_map(|e| e["delay_ms"].as_u64())
        .collect();
    assert_eq!(delays, vec![10, 20, 30]);
}

// ---------------------------------------------------------------- timeout

#[test]
fn timeout_cancels_the_attempt_fast_and_kills_the_child_processes() {
    let started = std::time::Instant::now();
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  slow:
    type: exec
    timeout: 1s
    with: { shell: "echo $$ > shell.pid; sleep 30 & echo $! > sleep.pid; wait" }
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "flow took {:?}",
        started.elapsed()
    );
    out.code(1);
    let events = out.events();
    let slow = finished(&events, "slow");
    assert_eq!(slow["status"], "failed");
    assert!(
        slow["error"].as_str().unwrap_or("").contains("timed out"),
        "{slow}"
    );
    for file in ["shell.pid", "sleep.pid"] {
        let pid: u32 = out.file(file).trim().parse().expect("a pid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(!alive(pid), "process {pid} ({file}) outlived its step");
    }
}

#[test]
fn timeout_applies_per_attempt_and_retry_tries_again() {
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  slow_then_fast:
    type: exec
    timeout: 500ms
    retry: {{ attempts: 2, delay: 10ms }}
    with: {{ shell: "{COUNT_UP}; [ $n -ge 2 ] || sleep 5" }}
"#
        ))
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0);
    assert_eq!(out.file("count").trim(), "2");
}

// ---------------------------------------------------------------- undo

#[test]
fn undo_runs_in_reverse_order_of_completion_when_a_later_step_fails() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  first:
    type: exec
    with: { command: [echo, first-out] }
    undo: { type: exec, with: { shell: "echo undo-first:{{ steps.first.stdout }} >> undo.log" } }
  second:
    type: exec
    with: { command: [echo, second-out] }
    undo: { type: exec, with: { shell: "echo undo-second:{{ steps.second.stdout }} >> undo.log" } }
  boom: { type: exec, with: { shell: "exit 1" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert_eq!(
        out.file("undo.log"),
        "undo-second:second-out\nundo-first:first-out\n"
    );
}

#[test]
fn undo_order_follows_completion_not_the_order_written() {
    // `slow` is written first but completes last, so it is undone first.
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  slow:
    type: exec
    needs: []
    with: { shell: "i=0; while [ ! -e fast.marker ]; do i=$((i+1)); [ $i -gt 50 ] && exit 9; sleep 0.1; done; sleep 0.3" }
    undo: { type: exec, with: { shell: "echo slow >> undo.log" } }
  fast:
    type: exec
    needs: []
    with: { shell: "touch fast.marker" }
    undo: { type: exec, with: { shell: "echo fast >> undo.log" } }
  boom: { type: exec, needs: [slow, fast], with: { shell: "exit 1" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert_eq!(out.file("undo.log"), "slow\nfast\n");
}

#[test]
fn no_undo_runs_when_the_run_succeeds() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  first:
    type: exec
    with: { command: [echo, hi] }
    undo: { type: exec, with: { shell: "echo undone >> undo.log" } }
  second: { type: exec, with: { shell: "true" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0);
    assert!(!out.exists("undo.log"), "undo ran on success");
}

#[test]
fn the_failed_step_itself_and_unstarted_steps_are_not_undone() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  ok:
    type: exec
    with: { shell: "true" }
    undo: { type: exec, with: { shell: "echo ok >> undo.log" } }
  boom:
    type: exec
    with: { shell: "exit 1" }
    undo: { type: exec, with: { shell: "echo boom >> undo.log" } }
  later:
    type: exec
    with: { shell: "true" }
    undo: { type: exec, with: { shell: "echo later >> undo.log" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert_eq!(out.file("undo.log"), "ok\n");
}

#[test]
fn for_each_undo_runs_once_per_completed_element_with_its_item() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  each:
    type: exec
    for_each: [a, b]
    with: { command: [echo, "made-{{ item }}"] }
    undo: { type: exec, with: { shell: "echo undo-{{ item }} >> undo.log" } }
  boom: { type: exec, with: { shell: "exit 1" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert_eq!(out.file("undo.log"), "undo-b\nundo-a\n");
}

// ---------------------------------------------------------------- finally

#[test]
fn finally_runs_after_a_failure_in_written_order_and_the_run_still_fails() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  boom: { type: exec, with: { shell: "exit 1" } }
finally:
  one: { type: exec, with: { shell: "echo one >> finally.log" } }
  two: { type: exec, with: { shell: "echo two >> finally.log" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert_eq!(out.file("finally.log"), "one\ntwo\n");
}

#[test]
fn finally_runs_after_success_too() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  fine: { type: exec, with: { shell: "echo main >> log" } }
finally:
  cleanup: { type: exec, with: { shell: "echo finally >> log" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0);
    assert_eq!(out.file("log"), "main\nfinally\n");
}

#[test]
fn finally_sees_status_and_error_of_every_step() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  good: { type: exec, with: { command: [echo, fine] } }
  bad: { type: exec, with: { shell: "echo went-wrong >&2; exit 5" } }
  never: { type: exec, with: { shell: "true" } }
finally:
  report:
    type: log
    with:
      message: "good={{ steps.good.status }} bad={{ steps.bad.status }} never={{ steps.never.status }} why={{ steps.bad.error }}"
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1)
        .stdout_has("good=succeeded bad=failed never=skipped why=")
        .stdout_has("went-wrong");
}

#[test]
fn needs_approval_stops_the_run_with_exit_3_runs_finally_and_names_the_flag() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  before: { type: exec, with: { shell: "echo before >> log" } }
  go: { type: confirm, with: { message: Really? } }
  after: { type: exec, with: { shell: "echo after >> log" } }
finally:
  cleanup:
    type: exec
    with: { shell: "echo cleanup-{{ steps.go.status }}-{{ steps.after.status }} >> log" }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(3);
    assert!(
        all_output(&out).contains("--approve go"),
        "{}",
        all_output(&out)
    );
    // `after` never ran; `cleanup` did, and saw `go` stopped (DESIGN's statuses: failed or
    // declined) and `after` skipped.
    let log = out.file("log");
    assert!(
        log == "before\ncleanup-failed-skipped\n" || log == "before\ncleanup-declined-skipped\n",
        "{log:?}"
    );
}

#[test]
fn approve_flag_for_the_step_lets_the_run_through() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  go: { type: confirm, with: { message: Really? } }
  after: { type: exec, with: { shell: "echo after >> log" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "--approve", "go"])
        .run()
        .code(0);
}

#[test]
fn approve_for_an_unknown_step_is_a_usage_error() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  go: { type: confirm, with: { message: Really? } }
  after: { type: exec, with: { shell: "echo after >> log" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "--approve", "goo"])
        .run();
    out.code(2).stderr_has("goo");
    assert!(!out.exists("log"));
}

#[test]
fn step_level_confirm_without_terminal_needs_approval() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  write:
    type: exec
    confirm: Write the file?
    with: { shell: "touch written" }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(3);
    assert!(
        all_output(&out).contains("--approve write"),
        "{}",
        all_output(&out)
    );
    assert!(!out.exists("written"));
}

#[test]
fn a_failing_finally_step_fails_an_otherwise_successful_run() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  fine: { type: exec, with: { shell: "true" } }
finally:
  cleanup: { type: exec, with: { shell: "exit 1" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(1);
}

// ---------------------------------------------------------------- failures and continue_on_error

#[test]
fn continue_on_error_records_the_failure_lets_dependants_run_and_the_run_exits_0() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  flaky: { type: exec, continue_on_error: true, with: { shell: "exit 4" } }
  next:
    type: exec
    with: { shell: "echo next-saw-{{ steps.flaky.status }} >> log" }
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    assert_eq!(out.file("log"), "next-saw-failed\n");
    let events = out.events();
    let flaky = finished(&events, "flaky");
    assert_eq!(flaky["status"], "failed");
    assert_eq!(flaky["continued"], true);
    assert_eq!(run_finished(&events)["exit_code"], 0);
}

#[test]
fn continue_on_error_shows_as_continued_in_the_summary() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  flaky: { type: exec, continue_on_error: true, with: { shell: "exit 4" } }
  next: { type: exec, with: { shell: "true" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("failed (continued)");
}

#[test]
fn a_failed_step_skips_its_dependants_naming_it_while_a_running_branch_finishes() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  boom: { type: exec, needs: [], with: { shell: "exit 1" } }
  child: { type: exec, needs: [boom], with: { shell: "touch child.marker" } }
  branch: { type: exec, needs: [], with: { shell: "sleep 0.5; touch branch.marker" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(1);
    assert!(!out.exists("child.marker"));
    assert!(
        out.exists("branch.marker"),
        "the running branch was cut short"
    );
    let events = out.events();
    let child = finished(&events, "child");
    assert_eq!(child["status"], "skipped");
    let reason = child["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("boom") && reason.contains("fail"),
        "{child}"
    );
    assert_eq!(finished(&events, "branch")["status"], "succeeded");
    assert_eq!(run_finished(&events)["status"], "failed");
}

#[test]
fn a_failed_step_is_reported_with_its_error_in_the_summary() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  boom: { type: exec, with: { shell: "echo disk full >&2; exit 1" } }
  later: { type: exec, with: { shell: "true" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(1)
        .stdout_has("Summary")
        .stdout_has("disk full")
        .stdout_has("not run: step `boom` failed");
}

// ---------------------------------------------------------------- when

#[test]
fn when_false_skips_with_the_reason_in_json_and_summary_and_dependants_still_run() {
    let playbook = r#"flow: 1
params:
  go: { type: boolean, default: false }
steps:
  maybe:
    type: exec
    when: params.go
    with: { shell: "touch maybe.marker" }
  after:
    type: exec
    needs: [maybe]
    with: { shell: "echo after-{{ steps.maybe.status }} >> log" }
"#;
    let json = Flow::new()
        .playbook(playbook)
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    json.code(0);
    assert!(!json.exists("maybe.marker"));
    assert_eq!(json.file("log"), "after-skipped\n");
    let events = json.events();
    let maybe = finished(&events, "maybe");
    assert_eq!(maybe["status"], "skipped");
    assert_eq!(maybe["reason"], "when: params.go");

    let human = Flow::new()
        .playbook(playbook)
        .args(&["apply", "playbook.yaml"])
        .run();
    human.code(0);
    let summary = human
        .stdout
        .split("Summary")
        .nth(1)
        .expect("a summary")
        .to_string();
    let row = summary
        .lines()
        .find(|l| l.trim_start().starts_with("maybe"))
        .unwrap_or_else(|| panic!("no summary row for maybe:\n{summary}"));
    assert!(
        row.contains("skipped") && row.contains("when: params.go"),
        "{row}"
    );
}

#[test]
fn when_true_runs_the_step() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  go: { type: boolean, default: false }
steps:
  maybe: { type: exec, when: params.go, with: { shell: "touch maybe.marker" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "-p", "go=true"])
        .run();
    out.code(0);
    assert!(out.exists("maybe.marker"));
}

#[test]
fn when_can_react_to_an_earlier_steps_output() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  probe: { type: exec, with: { command: [echo, "no"] } }
  act: { type: exec, when: "steps.probe.stdout == 'yes'", with: { shell: "touch act.marker" } }
  other: { type: exec, when: "steps.probe.stdout == 'no'", with: { shell: "touch other.marker" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0);
    assert!(!out.exists("act.marker"));
    assert!(out.exists("other.marker"));
}

// ---------------------------------------------------------------- exit codes

#[test]
fn exit_0_on_success_with_outputs_printed() {
    Flow::new()
        .playbook(
            r#"flow: 1
steps:
  hi: { type: exec, with: { command: [echo, hello] } }
outputs:
  greeting: "{{ steps.hi.stdout }}"
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0)
        .stdout_has("Outputs")
        .stdout_has("greeting")
        .stdout_has("hello");
}

#[test]
fn exit_2_and_nothing_runs_when_a_required_param_is_missing() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  who: { type: string }
steps:
  touch: { type: exec, with: { shell: "touch ran" } }
  hi: { type: log, with: { message: "hi {{ params.who }}" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(2).stderr_has("who");
    assert!(!out.exists("ran"));
}

#[test]
fn exit_2_for_an_unknown_param_name() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  touch: { type: exec, with: { shell: "touch ran" } }
"#,
        )
        .args(&["apply", "playbook.yaml", "-p", "nope=1"])
        .run();
    out.code(2).stderr_has("nope");
    assert!(!out.exists("ran"));
}

#[test]
fn exit_2_and_nothing_runs_when_a_later_step_has_a_bad_reference() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  touch: { type: exec, with: { shell: "touch ran" } }
  bad: { type: log, with: { message: "{{ steps.missing.stdout }}" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(2).stderr_has("missing");
    assert!(!out.exists("ran"));
}

#[test]
fn exit_1_and_run_finished_failed_when_a_step_fails() {
    let out = Flow::new()
        .playbook("flow: 1\nsteps:\n  boom: { type: exec, with: { shell: \"exit 1\" } }\n")
        .args(&["apply", "playbook.yaml", "--output", "json"])
        .run();
    out.code(1);
    let events = out.events();
    let end = run_finished(&events);
    assert_eq!(end["status"], "failed");
    assert_eq!(end["exit_code"], 1);
}

#[test]
fn undo_runs_before_finally() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  made:
    type: exec
    with: { shell: "echo made >> order.log" }
    undo: { type: exec, with: { shell: "echo undo >> order.log" } }
  boom: { type: exec, with: { shell: "exit 1" } }
finally:
  cleanup: { type: exec, with: { shell: "echo finally >> order.log" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert_eq!(out.file("order.log"), "made\nundo\nfinally\n");
}

#[test]
fn for_each_over_an_empty_list_succeeds_with_no_results() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  each: { type: exec, for_each: [], with: { shell: "touch ran" } }
  count: { type: log, with: { message: "n={{ steps.each.results | length }}" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(0).stdout_has("n=0");
    assert!(!out.exists("ran"));
}

#[test]
fn for_each_over_a_list_param_given_with_p() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
params:
  hosts: { type: list }
steps:
  each:
    type: file.write
    for_each: "{{ params.hosts }}"
    with: { path: "{{ item }}.done", content: "index {{ item_index }}" }
"#,
        )
        .args(&["apply", "playbook.yaml", "-p", "hosts=[web1, web2]"])
        .run();
    out.code(0);
    assert_eq!(out.file("web1.done"), "index 0");
    assert_eq!(out.file("web2.done"), "index 1");
}

#[test]
fn concurrency_0_is_a_usage_error() {
    let out = Flow::new()
        .playbook("flow: 1\nsteps:\n  a: { type: exec, with: { shell: \"touch ran\" } }\n")
        .args(&["apply", "playbook.yaml", "--concurrency", "0"])
        .run();
    out.code(2);
    assert!(!out.exists("ran"));
}

#[test]
fn yes_approves_a_step_level_confirm() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  write:
    type: exec
    confirm: Write the file?
    with: { shell: "touch written" }
"#,
        )
        .args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
        .run();
    out.code(0);
    assert!(out.exists("written"));
    let events = out.events();
    let approval = events
        .iter()
        .find(|e| e["event"] == "approval")
        .expect("the approval is recorded");
    assert_eq!(approval["step"], "write");
    assert_eq!(approval["how"], "--yes");
}

#[test]
fn human_output_without_a_terminal_has_no_control_codes() {
    let out = Flow::new()
        .playbook(
            r#"flow: 1
steps:
  ok: { type: exec, with: { command: [echo, hi] } }
  boom: { type: exec, with: { shell: "exit 1" } }
"#,
        )
        .args(&["apply", "playbook.yaml"])
        .run();
    out.code(1);
    assert!(!out.stdout.contains('\u{1b}') && !out.stderr.contains('\u{1b}'));
    assert!(!out.stdout.contains('\r'));
}
