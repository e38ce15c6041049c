//! An exact plan (DESIGN §4): only the unknown parts of a value are marked, conditions are
//! three-valued, skips propagate in plan and apply alike, and `-v` shows all a read returned.

use crate::common::Flow;
use crate::common::redis::RedisServer;

use crate::common::run::plan_step;

/// `bgsave` is a write, so what it prints is known only after apply.
const BACKUP: &str = r#"flow: 1
params:
  bucket: { type: string, required: false }
  pod: { type: string, default: redis-0 }
steps:
  bgsave:
    type: exec
    with: { command: [echo, /data/dump.rdb] }
  copy_out:
    type: exec
    with:
      command: [echo, kubectl, cp, "{{ params.pod }}:{{ steps.bgsave.stdout | trim }}", ./backups/]
  upload:
    type: exec
    when: params.bucket is not none and steps.bgsave.stdout != ''
    with: { command: [echo, "upload to {{ params.bucket }}"] }
  announce:
    type: exec
    when: params.pod == 'redis-0' or steps.bgsave.stdout == ''
    with: { command: [echo, announced] }
  listed:
    type: exec
    when: ["params.pod == 'x' or params.pod == 'redis-0'", "steps.bgsave.stdout != ''"]
    with: { command: [echo, listed] }
  parts:
    type: exec
    for_each: "{{ steps.bgsave.stdout.split('/') }}"
    with: { command: [echo, "part {{ item }} of {{ params.pod }}"] }
"#;

#[test]
fn only_the_unknown_part_of_a_value_is_marked() {
    let out = Flow::new()
        .playbook(BACKUP)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_has(
            "~ copy_out  (exec)  run: echo kubectl cp 'redis-0:(known after apply: steps.bgsave.stdout | trim)' ./backups/",
        )
        .stdout_has("for each of (known after apply: steps.bgsave.stdout.split('/')): run: echo 'part (known after apply: item) of redis-0'")
        .stdout_lacks("$known_after_apply");
    let json = Flow::new()
        .playbook(BACKUP)
        .args(&["--output", "json", "plan", "playbook.yaml"])
        .run();
    let events = json.events();
    let copy = plan_step(&events, "copy_out");
    assert!(
        copy["summary"]
            .as_str()
            .is_some_and(|s| s.contains("redis-0:(known after apply: steps.bgsave.stdout | trim)")),
        "{copy}"
    );
}

#[test]
fn a_condition_false_whatever_the_unknown_part_is_a_skip_and_true_or_unknown_runs() {
    let out = Flow::new()
        .playbook(BACKUP)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_has("… upload  (exec)  skipped (when: params.bucket is not none and steps.bgsave.stdout != '')")
        .stdout_has("~ announce  (exec)  run: echo announced\n")
        // A list of conditions is bracketed so that it reads as it is evaluated.
        .stdout_has("[only if: (params.pod == 'x' or params.pod == 'redis-0') and steps.bgsave.stdout != '']")
        .stdout_has("Plan: 0 to read, 0 to create, 5 to change, 0 to delete, 0 to ask, 1 skipped.");
    // With the known part true, the unknown part decides: the step is conditional.
    let out = Flow::new()
        .playbook(BACKUP)
        .args(&["plan", "playbook.yaml", "-p", "bucket=b"])
        .run();
    out.code(0)
        .stdout_has("run: echo 'upload to b'  [only if: params.bucket is not none and steps.bgsave.stdout != '']")
        .stdout_has("6 to change, 0 to delete, 0 to ask, 0 skipped.");
    let json = Flow::new()
        .playbook(BACKUP)
        .args(&["--output", "json", "plan", "playbook.yaml"])
        .run();
    let events = json.events();
    let upload = plan_step(&events, "upload");
    assert_eq!(upload["action"], "skip", "{upload}");
    assert_eq!(
        upload["reason"],
        "when: params.bucket is not none and steps.bgsave.stdout != ''"
    );
    assert!(plan_step(&events, "announce")["condition"].is_null());
}

/// `restore` is skipped when there is no backup; what needs it is skipped with it, what looks
/// at its status or has a default runs.
const RESTORE: &str = r#"flow: 1
params:
  backup: { type: string, default: "" }
steps:
  restore:
    type: exec
    when: { if: "params.backup != ''", reason: no backup found }
    with: { command: [echo, "restored {{ params.backup }}"] }
  verify:
    type: exec
    needs: [restore]
    with: { command: [echo, verified] }
  report:
    type: exec
    needs: []
    with: { command: [echo, "restore said {{ steps.restore.stdout }}"] }
  status:
    type: exec
    needs: [restore]
    with: { command: [echo, "restore was {{ steps.restore.status }}"] }
  fallback:
    type: exec
    needs: []
    with: { command: [echo, "{{ steps.restore.stdout | default('nothing restored') }}"] }
  chained:
    type: exec
    needs: [verify]
    with: { command: [echo, chained] }
"#;

#[test]
fn a_step_whose_needed_step_was_skipped_is_skipped_with_the_reason_in_plan_and_apply() {
    let plan = Flow::new()
        .playbook(RESTORE)
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("… restore  (exec)  skipped (no backup found (when: params.backup != ''))")
        .stdout_has("… verify  (exec)  skipped (needs `restore`, which was skipped: no backup found (when: params.backup != ''))")
        .stdout_has("… report  (exec)  skipped (needs `restore`, which was skipped: no backup found")
        .stdout_has("~ status  (exec)  run: echo 'restore was skipped'")
        .stdout_has("~ fallback  (exec)  run: echo 'nothing restored'")
        // A chain names the first cause once.
        .stdout_has("… chained  (exec)  skipped (needs `verify`, which was skipped: no backup found (when: params.backup != ''))")
        .stdout_has("2 to change, 0 to delete, 0 to ask, 4 skipped.");
    let json = Flow::new()
        .playbook(RESTORE)
        .args(&["--output", "json", "plan", "playbook.yaml"])
        .run();
    let events = json.events();
    let verify = plan_step(&events, "verify");
    assert_eq!(verify["action"], "skip", "{verify}");
    assert_eq!(
        verify["reason"],
        "needs `restore`, which was skipped: no backup found (when: params.backup != '')"
    );
    assert_eq!(plan_step(&events, "status")["action"], "change");

    let apply = Flow::new()
        .playbook(RESTORE)
        .args(&["--output", "json", "apply", "playbook.yaml"])
        .run();
    apply.code(0);
    let events = apply.events();
    let finished = |step: &str| crate::common::run::finished(&events, step).clone();
    assert_eq!(finished("verify")["status"], "skipped");
    assert_eq!(
        finished("verify")["reason"],
        "needs `restore`, which was skipped: no backup found (when: params.backup != '')"
    );
    assert_eq!(finished("report")["status"], "skipped");
    assert_eq!(finished("status")["status"], "succeeded");
    assert_eq!(
        finished("status")["outputs"]["stdout"],
        "restore was skipped"
    );
    assert_eq!(
        finished("fallback")["outputs"]["stdout"],
        "nothing restored"
    );
    assert_eq!(finished("chained")["status"], "skipped");
    // Skipped dependants never started.
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "step_started" && e["step"] == "verify"),
        "{events:#?}"
    );

    // With a backup, everything runs.
    Flow::new()
        .playbook(RESTORE)
        .args(&["apply", "playbook.yaml", "-p", "backup=b.rdb"])
        .run()
        .code(0)
        .stdout_lacks("skipped (needs");
}

#[test]
fn validate_warns_where_a_step_reads_outputs_of_a_step_that_may_be_skipped() {
    let out = Flow::new()
        .playbook(RESTORE)
        .args(&["validate", "playbook.yaml"])
        .run();
    out.code(0)
        .stderr_has("warning: step `report` reads `steps.restore.stdout`, but `restore` may be skipped (it has a `when`): then `report` is skipped too")
        .stderr_has("playbook.yaml:16:46")
        .stderr_has("write `steps.restore.stdout | default(…)`");
    // Handled reads (a default, a look at the status) are not warned about.
    assert_eq!(
        out.stderr.matches("may be skipped").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn plan_v_shows_all_a_read_returned() {
    let playbook = "flow: 1\nsteps:\n  list:\n    type: exec\n    effect: read\n    with: { shell: \"head -c 120 /dev/zero | tr '\\\\0' z; echo; seq 101 115\" }\n";
    let long = "z".repeat(120);
    let brief = Flow::new()
        .playbook(playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    brief
        .code(0)
        .stdout_has(&format!("        stdout: {}… (16 lines)\n", "z".repeat(80)))
        .stdout_lacks(&long)
        .stdout_lacks("\n          115\n");
    let whole = Flow::new()
        .playbook(playbook)
        .args(&["plan", "-v", "playbook.yaml"])
        .run();
    whole
        .code(0)
        .stdout_has(&format!(
            "        stdout:\n          {long}\n          101\n"
        ))
        .stdout_has("          115\n");
}

#[test]
fn a_saved_plan_of_a_read_of_megabytes_stays_small_and_applies() {
    let playbook = "flow: 1\nsteps:\n  big:\n    type: exec\n    effect: read\n    with: { shell: \"head -c 3000000 /dev/zero | tr '\\\\0' x\" }\n  after:\n    type: exec\n    with: { command: [echo, done] }\n";
    let saved = Flow::new()
        .playbook(playbook)
        .args(&["plan", "playbook.yaml", "--out", "plan.json"])
        .run();
    saved.code(0).stdout_has("        stdout: ");
    let size = std::fs::metadata(saved.path("plan.json")).unwrap().len();
    assert!(size < 20_000, "plan.json is {size} bytes");
    crate::common::run::flow(saved.dir.path(), &["apply", "plan.json"], &[])
        .code(0)
        .stdout_has("Run succeeded");
}

#[test]
fn saved_plans_of_partly_known_values_three_valued_conditions_and_skips_apply_unchanged() {
    for (playbook, name) in [(BACKUP, "backup"), (RESTORE, "restore")] {
        let saved = Flow::new()
            .playbook(playbook)
            .args(&["plan", "playbook.yaml", "--out", "plan.json"])
            .run();
        saved.code(0);
        crate::common::run::flow(saved.dir.path(), &["apply", "plan.json"], &[])
            .code(0)
            .stdout_has("Run succeeded");
        let _ = name;
    }
}

#[test]
fn a_known_read_against_a_server_that_is_down_is_a_read_that_failed_not_a_write() {
    let redis = RedisServer::start();
    let url = redis.url();
    drop(redis);
    let out = Flow::new()
        .playbook(&format!(
            "flow: 1\nsteps:\n  ping:\n    type: redis.command\n    with: {{ url: \"{url}\", command: [PING] }}\n"
        ))
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(1)
        .stdout_has("✘ ping  (redis.command)  error: read failed: cannot connect to")
        .stdout_lacks("shown as a write");
}

/// A read of what an earlier write makes (the file `make` writes) is left to apply: the plan
/// says so and what the read found now, instead of failing.
#[test]
fn a_read_of_what_an_earlier_write_makes_is_read_during_apply() {
    let playbook = "flow: 1\nsteps:\n  make:\n    type: exec\n    with: { command: [sh, -c, 'echo made > made.txt'] }\n  check:\n    type: exec\n    effect: read\n    with: { command: [cat, made.txt] }\n";
    let plan = Flow::new()
        .playbook(playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("= check  (exec)  run: cat made.txt")
        .stdout_has("read during apply, after `make` has changed things (read now: `cat made.txt` exited with 1");
    // Without a write before it, a failing read still fails the plan.
    Flow::new()
        .playbook("flow: 1\nsteps:\n  check:\n    type: exec\n    effect: read\n    with: { command: [cat, made.txt] }\n")
        .args(&["plan", "playbook.yaml"])
        .run()
        .code(1)
        .stdout_has("read failed: `cat made.txt` exited with 1");
    Flow::new()
        .playbook(playbook)
        .args(&["apply", "playbook.yaml"])
        .run()
        .code(0);
}

/// A `choose` given its answer asks nobody: the plan takes the answer, and what follows
/// shows it (seed 000's `RedisSnapshot=` tag) instead of "known after apply".
#[test]
fn a_choose_given_its_answer_is_known_in_the_plan() {
    let playbook = "flow: 1\nparams:\n  snap: { type: string, default: b }\nsteps:\n  pick:\n    type: choose\n    with: { prompt: Which?, options: [a, b], default: \"{{ params.snap }}\", ask: false }\n  use:\n    type: exec\n    with: { command: [echo, \"restoring {{ steps.pick.value }}\"] }\n";
    let plan = Flow::new()
        .playbook(playbook)
        .args(&["plan", "playbook.yaml", "--out", "plan.json"])
        .run();
    plan.code(0)
        .stdout_has("= pick  (choose)  choose: Which? → b (given, not asked)")
        .stdout_has("~ use  (exec)  run: echo 'restoring b'");
    crate::common::run::flow(plan.dir.path(), &["apply", "plan.json"], &[])
        .code(0)
        .stdout_has("Run succeeded");
}

/// Found by a hostile pass of the exact plan.
mod hostile {
    use crate::common::Flow;

    #[test]
    fn a_template_with_letters_beyond_ascii_validates_plans_and_applies() {
        let playbook = "flow: 1\nsteps:\n  a: { type: log, with: { message: \"Café → naïve {{ 1 + 1 }} é\" } }\n";
        Flow::new()
            .playbook(playbook)
            .args(&["validate", "playbook.yaml"])
            .run()
            .code(0);
        Flow::new()
            .playbook(playbook)
            .args(&["apply", "playbook.yaml"])
            .run()
            .code(0)
            .stdout_has("Café → naïve 2 é");
    }

    #[test]
    fn a_long_filter_chain_applies_and_one_too_long_is_refused_at_validate() {
        let chain = |n: usize| {
            format!(
                "flow: 1\nsteps:\n  w: {{ type: exec, with: {{ command: [echo, abc] }} }}\n  d: {{ type: log, with: {{ message: \"x {{{{ steps.w.stdout | trim{} }}}}\" }} }}\n",
                " | upper".repeat(n - 1)
            )
        };
        Flow::new()
            .playbook(&chain(1000))
            .args(&["apply", "playbook.yaml"])
            .run()
            .code(0)
            .stdout_has("x ABC");
        Flow::new()
            .playbook(&chain(1001))
            .args(&["validate", "playbook.yaml"])
            .run()
            .code(2)
            .stderr_has("this template has 1001 filters (`|`); flow allows 1000 in one template");
    }

    #[test]
    fn a_secret_holding_a_placeholder_character_or_cut_in_a_brief_or_upper_cased_never_shows() {
        let playbook = "flow: 1\nparams:\n  pw: { type: string, secret: true }\nsteps:\n  w: { type: exec, with: { command: [echo, abc] } }\n  a: { type: exec, with: { command: [echo, \"{{ params.pw }}-{{ steps.w.stdout }}\"] } }\n  r: { type: exec, effect: read, with: { shell: \"printf '%076d' 0; echo {{ params.pw | quote }}; echo {{ params.pw | upper | quote }}\" } }\n";
        for pw in ["TOPSECRETaa\u{E000}0\u{E001}zz", "ZQXWTOPSECRET"] {
            let out = Flow::new()
                .playbook(playbook)
                .args(&[
                    "plan",
                    "playbook.yaml",
                    "-p",
                    &format!("pw={pw}"),
                    "--out",
                    "plan.json",
                ])
                .run();
            out.code(0);
            let everything = format!("{}{}{}", out.stdout, out.stderr, out.file("plan.json"));
            for part in ["TOPSECRET", "ZQ", "topsecret"] {
                assert!(
                    !everything.contains(part),
                    "`{part}` of the secret shows:\n{everything}"
                );
            }
        }
    }

    #[test]
    fn readers_of_a_skipped_step_in_for_each_and_by_subscript_are_skipped_too() {
        let playbook = "flow: 1\nparams:\n  go: { type: boolean, default: false }\nsteps:\n  a: { type: exec, when: params.go, with: { command: [echo, hi] } }\n  f: { type: log, needs: [], for_each: [1, 2], with: { message: \"{{ item }} {{ steps.a.stdout }}\" } }\n  s: { type: log, needs: [], with: { message: \"{{ steps.a['stdout'] }}\" } }\n  e: { type: log, needs: [], for_each: \"{{ [] }}\", with: { message: \"{{ item }}\" } }\n  after: { type: log, needs: [e], with: { message: \"{{ steps.e.results | length }} results\" } }\n";
        let plan = Flow::new()
            .playbook(playbook)
            .args(&["plan", "playbook.yaml"])
            .run();
        plan.code(0)
            .stdout_has("… f  (log)  skipped (needs `a`, which was skipped: when: params.go)")
            .stdout_has("… s  (log)  skipped (needs `a`, which was skipped: when: params.go)")
            .stdout_has("log: 0 results");
        Flow::new()
            .playbook(playbook)
            .args(&["apply", "playbook.yaml"])
            .run()
            .code(0)
            .stdout_has("  f      skipped  ")
            .stdout_has("  s      skipped  ")
            .stdout_has("0 results");
    }

    #[test]
    fn what_needs_a_conditional_step_is_conditional_in_the_plan_and_whitespace_control_is_kept() {
        let playbook = "flow: 1\nsteps:\n  w: { type: exec, with: { command: [echo, zz] } }\n  x: { type: log, when: \"steps.w.stdout == 'zz'\", with: { message: x } }\n  y: { type: log, needs: [x], with: { message: y } }\n  t: { type: log, with: { message: \"A  {{- steps.w.stdout -}}  B {{ {'a': {'b': steps.w.stdout}} }}\" } }\n";
        Flow::new()
            .playbook(playbook)
            .args(&["plan", "playbook.yaml"])
            .run()
            .code(0)
            .stdout_has("= y  (log)  log: y  [only if: `x` runs]")
            .stdout_has("log: A(known after apply: steps.w.stdout)B (known after apply: {'a': {'b': steps.w.stdout}})");
    }

    #[test]
    fn a_redis_read_on_a_server_known_only_after_apply_is_a_read() {
        Flow::new()
            .playbook("flow: 1\nsteps:\n  w: { type: exec, with: { command: [echo, '6379'] } }\n  p: { type: redis.command, with: { url: \"redis://127.0.0.1:{{ steps.w.stdout | trim }}\", command: [PING] } }\n")
            .args(&["plan", "playbook.yaml"])
            .run()
            .code(0)
            .stdout_has("= p  (redis.command)  PING on redis://127.0.0.1:(known after apply: steps.w.stdout | trim)");
    }
}
