//! The Redis step types (DESIGN §8) as a user sees them through `flow plan` / `flow apply`,
//! each test against its own real `redis-server` on 127.0.0.1, asserting on what flow
//! printed and on the server's state afterwards.

use crate::common::redis::{RedisServer, free_port};
use crate::common::run::mode_of;
use crate::common::{Flow, Outcome};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step && e.get("element").is_none())
        .unwrap_or_else(|| panic!("no step_finished for `{step}` in {events:#?}"))
}

fn outputs<'a>(events: &'a [Value], step: &str) -> &'a Value {
    &finished(events, step)["outputs"]
}

/// Log lines a step printed (`step_output` events).
fn lines_of(events: &[Value], step: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "step_output" && e["step"] == step)
        .map(|e| e["line"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Applies `playbook.yaml` with `--yes --output json` (plus `extra`), expects `code`.
fn apply_json(flow: Flow, extra: &[&str], code: i32) -> (Outcome, Vec<Value>) {
    let mut args = vec!["apply", "playbook.yaml", "--yes", "--output", "json"];
    args.extend_from_slice(extra);
    let out = flow.args(&args).run();
    out.code(code);
    let events = out.events();
    (out, events)
}

fn apply_plain(flow: Flow, extra: &[&str]) -> Outcome {
    let mut args = vec!["apply", "playbook.yaml", "--yes"];
    args.extend_from_slice(extra);
    flow.args(&args).run()
}

fn plan_json(flow: Flow, extra: &[&str]) -> (Outcome, Vec<Value>) {
    let mut args = vec!["plan", "playbook.yaml", "--output", "json"];
    args.extend_from_slice(extra);
    let out = flow.args(&args).run();
    out.code(0);
    let events = out.events();
    (out, events)
}

/// Everything the run printed, both streams.
fn printed(out: &Outcome) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

/// The one line of output that mentions `needle`, for asserting what else it says.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line mentions {needle:?} in:\n{text}"))
}

/// Every file under `dir`, recursively, as (path, content).
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            found.push((
                path.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    found
}

fn assert_nowhere(out: &Outcome, secret: &str) {
    assert!(
        !out.stdout.contains(secret),
        "the secret {secret:?} is in stdout:\n{}",
        out.stdout
    );
    assert!(
        !out.stderr.contains(secret),
        "the secret {secret:?} is in stderr:\n{}",
        out.stderr
    );
    let state = out.path(".flow");
    for (path, content) in files_under(&state) {
        assert!(
            !content.contains(secret),
            "the secret {secret:?} is in the journal file {path}:\n{content}"
        );
    }
}

// ---------------------------------------------------------------- redis.command

#[test]
fn command_set_then_get_gives_the_reply_and_changes_the_server() {
    let redis = RedisServer::start();
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  set: {{ type: redis.command, with: {{ command: [SET, "greeting", "hello world"] }} }}
  get: {{ type: redis.command, with: {{ command: [GET, greeting] }} }}
  echo: {{ type: log, with: {{ message: "got {{{{ steps.get.reply }}}}" }} }}
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "set")["reply"], "OK");
    assert_eq!(outputs(&events, "get")["reply"], "hello world");
    assert_eq!(lines_of(&events, "echo"), vec!["got hello world"]);
    assert_eq!(redis.cli(&["GET", "greeting"]), "hello world");
}

#[test]
fn command_reply_types_become_data() {
    let redis = RedisServer::start();
    redis.cli(&["RPUSH", "list", "a", "b", "c"]);
    redis.cli(&["HSET", "hash", "name", "ada", "age", "36"]);
    let url = redis.url();
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  incr: {{ type: redis.command, with: {{ url: "{url}", command: [INCRBY, counter, "41"] }} }}
  range: {{ type: redis.command, with: {{ url: "{url}", command: [LRANGE, list, "0", "-1"] }} }}
  missing: {{ type: redis.command, with: {{ url: "{url}", command: [GET, no_such_key] }} }}
  as_map: {{ type: redis.command, with: {{ url: "{url}/0?protocol=resp3", command: [HGETALL, hash] }} }}
  use_int: {{ type: assert, with: {{ that: "steps.incr.reply == 41 and steps.missing.reply is none" }} }}
"#
        )),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "incr")["reply"], json!(41));
    assert_eq!(outputs(&events, "range")["reply"], json!(["a", "b", "c"]));
    assert_eq!(outputs(&events, "missing")["reply"], Value::Null);
    assert_eq!(
        outputs(&events, "as_map")["reply"],
        json!({ "name": "ada", "age": "36" })
    );
    assert_eq!(finished(&events, "use_int")["status"], "succeeded");
    assert_eq!(redis.cli(&["GET", "counter"]), "41");
}

#[test]
fn command_read_runs_during_plan_and_write_does_not() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "a", "1"]);
    redis.cli(&["SET", "b", "2"]);
    let playbook = format!(
        r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  size: {{ type: redis.command, with: {{ command: [DBSIZE] }} }}
  write: {{ type: redis.command, with: {{ command: [SET, written_in_plan, "x"] }} }}
  say: {{ type: log, with: {{ message: "size is {{{{ steps.size.reply }}}}" }} }}
"#,
        url = redis.url()
    );
    let (_, events) = plan_json(Flow::new().playbook(&playbook), &[]);
    let action = |step: &str| {
        events
            .iter()
            .find(|e| e["event"] == "plan_step" && e["step"] == step)
            .map(|e| e["action"].clone())
            .unwrap_or_else(|| panic!("no plan_step for {step}: {events:#?}"))
    };
    assert_eq!(action("size"), "read");
    assert_ne!(action("write"), "read");
    assert_eq!(
        lines_of(&events, "say"),
        vec!["size is 2"],
        "DBSIZE did not run during plan"
    );
    assert_eq!(
        redis.cli(&["EXISTS", "written_in_plan"]),
        "0",
        "SET ran during plan"
    );

    let human = Flow::new()
        .playbook(&playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    human.code(0).stdout_has("size is 2");
    assert_eq!(redis.cli(&["EXISTS", "written_in_plan"]), "0");

    apply_json(Flow::new().playbook(&playbook), &[], 0);
    assert_eq!(redis.cli(&["GET", "written_in_plan"]), "x");
}

/// PFCOUNT is flagged `readonly` by every Redis, yet it may rewrite its key (it caches the
/// count in the HyperLogLog, and replicates that: `may_replicate`, a flag COMMAND INFO
/// hides); TOUCH exists to change the keys' access time. Neither is a read: neither runs
/// during plan, and the key is byte for byte what it was.
#[test]
fn pfcount_and_touch_are_writes_and_never_run_during_plan() {
    let redis = RedisServer::start();
    redis.cli(&["PFADD", "visitors", "a", "b", "c"]);
    let before = redis.command(&["DUMP", "visitors"]);
    let playbook = format!(
        r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  count: {{ type: redis.command, with: {{ command: [PFCOUNT, visitors] }} }}
  touch: {{ type: redis.command, with: {{ command: [TOUCH, visitors] }} }}
"#,
        url = redis.url()
    );
    let (_, events) = plan_json(Flow::new().playbook(&playbook), &[]);
    for step in ["count", "touch"] {
        let action = events
            .iter()
            .find(|e| e["event"] == "plan_step" && e["step"] == step)
            .map(|e| e["action"].clone());
        assert_eq!(action, Some(json!("change")), "{step}: {events:#?}");
    }
    assert_eq!(
        redis.command(&["DUMP", "visitors"]),
        before,
        "the plan rewrote the key"
    );
    let (_, events) = apply_json(Flow::new().playbook(&playbook), &[], 0);
    assert_eq!(outputs(&events, "count")["reply"], 3);
}

#[test]
fn command_diagnostic_reads_run_during_plan_and_a_config_password_is_masked() {
    // Seed 001's incident reads: SLOWLOG GET, CONFIG GET, CLIENT LIST, MEMORY USAGE, LATENCY.
    // The replication password is in no param and no URL: only the reply holds it.
    let password = "pw-in-config-7f3";
    let redis = RedisServer::start();
    redis.cli(&["CONFIG", "SET", "masterauth", password]);
    redis.cli(&["SET", "session:1", "{}"]);
    let url = redis.url();
    let playbook = format!(
        r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  slowlog: {{ type: redis.command, with: {{ command: [SLOWLOG, GET, "10"] }} }}
  config: {{ type: redis.command, with: {{ command: [CONFIG, GET, masterauth] }} }}
  clients: {{ type: redis.command, with: {{ command: [CLIENT, LIST] }} }}
  usage: {{ type: redis.command, with: {{ command: [MEMORY, USAGE, "session:1"] }} }}
  latency: {{ type: redis.command, with: {{ command: [LATENCY, LATEST] }} }}
  say: {{ type: log, with: {{ message: "config {{{{ steps.config.reply }}}}, usage {{{{ steps.usage.reply }}}}" }} }}
"#
    );
    let (out, events) = plan_json(Flow::new().playbook(&playbook), &[]);
    for step in ["slowlog", "config", "clients", "usage", "latency"] {
        let action = events
            .iter()
            .find(|e| e["event"] == "plan_step" && e["step"] == step)
            .map(|e| e["action"].clone());
        assert_eq!(action, Some(json!("read")), "{step}: {events:#?}");
    }
    let said = lines_of(&events, "say").join("\n");
    assert!(
        said.starts_with("config ['masterauth', '***'], usage "),
        "{said}"
    );
    assert_nowhere(&out, password);
}

#[test]
fn command_effect_override_decides_what_runs_in_plan() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "a", "1"]);
    let playbook = format!(
        r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  declared_read:
    type: redis.command
    effect: read
    with: {{ command: [SET, marker, "from-plan"] }}
  declared_write:
    type: redis.command
    effect: write
    with: {{ command: [DBSIZE] }}
  say: {{ type: log, with: {{ message: "size is {{{{ steps.declared_write.reply }}}}" }} }}
"#,
        url = redis.url()
    );
    let out = Flow::new()
        .playbook(&playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0)
        .stdout_has("(known after apply: steps.declared_write.reply)")
        .stdout_lacks("size is 1");
    assert_eq!(
        redis.cli(&["GET", "marker"]),
        "from-plan",
        "`effect: read` did not make the command run during plan"
    );
}

#[test]
fn command_shutdown_succeeds_and_the_server_is_gone() {
    let mut redis = RedisServer::start();
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  stop: {{ type: redis.command, with: {{ url: "{url}", command: [SHUTDOWN, NOSAVE] }} }}
  after: {{ type: log, with: {{ message: "stopped" }} }}
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    assert_eq!(finished(&events, "stop")["status"], "succeeded");
    assert_eq!(finished(&events, "after")["status"], "succeeded");
    assert!(
        redis.has_exited(Duration::from_secs(5)),
        "redis-server still runs after SHUTDOWN"
    );
    assert!(!redis.is_alive());
}

#[test]
fn command_reconnects_to_a_server_restarted_after_shutdown() {
    // The restore shape of seed 002: SHUTDOWN, the server comes back, wait, use it again.
    let mut first = RedisServer::start();
    let port = first.port();
    first.cli(&["SET", "before", "1"]);
    let flow = Flow::new().playbook(&format!(
        r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  before: {{ type: redis.command, with: {{ command: [GET, before] }} }}
  stop: {{ type: redis.command, with: {{ command: [SHUTDOWN, NOSAVE] }} }}
  up: {{ type: redis.wait, with: {{ timeout: 15s, interval: 100ms }} }}
  after: {{ type: redis.command, with: {{ command: [SET, after_restart, "yes"] }} }}
"#,
        url = first.url()
    ));
    let runner = std::thread::spawn(move || {
        flow.args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
            .run()
    });
    assert!(
        first.has_exited(Duration::from_secs(20)),
        "the first server never shut down"
    );
    std::thread::sleep(Duration::from_millis(300));
    let second = RedisServer::start_on(port, &[]);
    let out = runner.join().expect("flow thread");
    out.code(0);
    let events = out.events();
    assert_eq!(outputs(&events, "before")["reply"], "1");
    assert_eq!(outputs(&events, "after")["reply"], "OK");
    assert_eq!(second.cli(&["GET", "after_restart"]), "yes");
}

#[test]
fn command_an_unknown_command_fails_naming_it_and_the_target() {
    let redis = RedisServer::start();
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  bogus: {{ type: redis.command, with: {{ url: "{url}", command: [NOSUCHCOMMAND, x] }} }}
"#,
            url = redis.url()
        )),
        &[],
    );
    out.code(1);
    let all = printed(&out);
    let line = line_with(&all, "✘ bogus");
    assert!(line.contains("NOSUCHCOMMAND"), "{line}");
    assert!(line.contains(&redis.url()), "{line}");
    assert!(redis.is_alive());
}

// ---------------------------------------------------------------- redis.info

#[test]
fn info_reports_the_health_figures() {
    let redis = RedisServer::start_with(&["--maxmemory", "64mb"]);
    redis.cli(&["SET", "a", "1"]);
    redis.cli(&["SET", "b", "2"]);
    redis.cli(&["SET", "c", "3", "EX", "3600"]);
    redis.cli_in(2, &["SET", "other_db", "x"]);
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  health: {{ type: redis.info, with: {{ url: "{url}" }} }}
  check:
    type: assert
    with:
      that:
        - steps.health.role == "master"
        - steps.health.dbsize == 3
        - steps.health.used_memory > 0
        - steps.health.keyspace.db0.keys == 3
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    let o = outputs(&events, "health");
    assert_eq!(o["role"], "master");
    assert_eq!(o["dbsize"], json!(3));
    assert!(o["used_memory"].as_i64().unwrap_or(0) > 0, "{o:#}");
    assert_eq!(o["maxmemory"], json!(64 * 1024 * 1024));
    assert_eq!(o["keyspace"]["db0"]["keys"], json!(3));
    assert_eq!(o["keyspace"]["db0"]["expires"], json!(1));
    assert_eq!(o["keyspace"]["db2"]["keys"], json!(1));
    assert_eq!(o["aof_enabled"], json!(false));
    assert!(o["connected_clients"].as_i64().unwrap_or(0) >= 1, "{o:#}");
    assert_eq!(o["blocked_clients"], json!(0));
    assert!(o["rdb_last_save_time"].as_i64().unwrap_or(0) > 0, "{o:#}");
    assert!(
        o.get("keyspace_hit_ratio").is_some(),
        "keyspace_hit_ratio missing: {o:#}"
    );
    for section in ["server", "memory", "replication", "persistence", "keyspace"] {
        assert!(
            o["info"].get(section).is_some(),
            "info lacks {section}: {o:#}"
        );
    }
    assert_eq!(o["info"]["server"]["tcp_port"], json!(redis.port()));
    assert_eq!(finished(&events, "check")["status"], "succeeded");
}

#[test]
fn info_sections_limit_the_info_output() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "a", "1"]);
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  mem: {{ type: redis.info, with: {{ url: "{url}", sections: [memory] }} }}
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    let o = outputs(&events, "mem");
    let sections: Vec<&String> = o["info"]
        .as_object()
        .expect("info is a mapping")
        .keys()
        .collect();
    assert_eq!(sections, vec!["memory"], "{o:#}");
    assert!(o["info"]["memory"]["used_memory"].as_i64().unwrap_or(0) > 0);
    // The figures are still filled.
    assert_eq!(o["role"], "master");
    assert_eq!(o["dbsize"], json!(1));
}

#[test]
fn info_is_a_read_and_runs_during_plan() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "a", "1"]);
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  health: {{ type: redis.info, with: {{ url: "{url}" }} }}
  say: {{ type: log, with: {{ message: "role={{{{ steps.health.role }}}} keys={{{{ steps.health.dbsize }}}}" }} }}
"#,
            url = redis.url()
        ))
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0).stdout_has("role=master keys=1");
}

// ---------------------------------------------------------------- redis.wait

#[test]
fn wait_succeeds_at_once_on_a_live_server() {
    let redis = RedisServer::start();
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  up: {{ type: redis.wait, with: {{ url: "{url}", timeout: 5s }} }}
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    let waited = outputs(&events, "up")["waited"].as_f64().expect("waited");
    assert!(waited < 2.0, "waited {waited}s for a live server");
}

#[test]
fn wait_fails_after_its_timeout_naming_the_target_and_the_last_error() {
    let port = free_port();
    let began = Instant::now();
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  up: {{ type: redis.wait, with: {{ url: "redis://127.0.0.1:{port}", timeout: 1s, interval: 200ms }} }}
"#
        )),
        &[],
    );
    let elapsed = began.elapsed();
    out.code(1);
    let all = printed(&out);
    let line = line_with(&all, "✘ up");
    assert!(
        line.contains(&format!("redis://127.0.0.1:{port}")),
        "{line}"
    );
    assert!(
        line.contains("1s") || line.contains("1.0s"),
        "the message does not say how long: {line}"
    );
    assert!(
        line.to_lowercase().contains("refused"),
        "the message lacks the last error: {line}"
    );
    assert!(
        elapsed >= Duration::from_millis(700),
        "gave up after {elapsed:?}, before its 1s timeout"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} for a 1s timeout"
    );
}

#[test]
fn wait_waits_for_a_server_that_starts_a_moment_later() {
    let port = free_port();
    let flow = Flow::new().playbook(&format!(
        r#"flow: 1
steps:
  up: {{ type: redis.wait, with: {{ url: "redis://127.0.0.1:{port}", timeout: 15s, interval: 100ms }} }}
  ping: {{ type: redis.command, with: {{ url: "redis://127.0.0.1:{port}", command: [PING] }} }}
"#
    ));
    let runner = std::thread::spawn(move || {
        flow.args(&["apply", "playbook.yaml", "--yes", "--output", "json"])
            .run()
    });
    std::thread::sleep(Duration::from_millis(500));
    let redis = RedisServer::start_on(port, &[]);
    let out = runner.join().expect("flow thread");
    out.code(0);
    let events = out.events();
    let waited = outputs(&events, "up")["waited"].as_f64().expect("waited");
    assert!(waited >= 0.3, "waited only {waited}s");
    assert!(waited < 15.0, "waited {waited}s");
    assert_eq!(outputs(&events, "ping")["reply"], "PONG");
    assert!(redis.is_alive());
}

// ---------------------------------------------------------------- redis.compare

fn seed_same(servers: &[&RedisServer]) {
    for r in servers {
        r.cli(&["SET", "user:1", r#"{"name":"ada"}"#]);
        r.cli(&["HSET", "profile:1", "plan", "pro", "seats", "3"]);
        r.cli(&["RPUSH", "queue", "j1", "j2"]);
        r.cli(&["SET", "session:x", "tok", "EX", "3600"]);
    }
}

fn compare_playbook(left: &RedisServer, right: &RedisServer, extra: &str) -> String {
    format!(
        r#"flow: 1
steps:
  cmp:
    type: redis.compare
    with:
      left: {{ url: "{}" }}
      right: {{ url: "{}" }}
      labels: [production, restored]
{extra}"#,
        left.url(),
        right.url()
    )
}

fn row<'a>(rows: &'a Value, check: &str) -> &'a Value {
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no row {check:?} in {rows:#}"))
}

#[test]
fn compare_identical_servers_are_equal_and_print_a_labelled_table() {
    let left = RedisServer::start();
    let right = RedisServer::start();
    seed_same(&[&left, &right]);
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(
            &left,
            &right,
            "      sample_keys: 4\n      checks: [ping, dbsize, keyspace, role, persistence]\n",
        )),
        &[],
        0,
    );
    let o = outputs(&events, "cmp");
    assert_eq!(o["equal"], json!(true), "{o:#}");
    for r in o["rows"].as_array().expect("rows") {
        assert_eq!(r["match"], json!(true), "row differs: {r}");
    }
    assert_eq!(row(&o["rows"], "dbsize")["left"], json!(4));
    assert_eq!(row(&o["rows"], "ping")["right"], "PONG");
    let table = lines_of(&events, "cmp").join("\n");
    assert!(table.contains("production"), "no left label:\n{table}");
    assert!(table.contains("restored"), "no right label:\n{table}");
    assert!(table.contains("dbsize"), "{table}");

    // The human output shows the same table.
    let out = apply_plain(
        Flow::new().playbook(&compare_playbook(&left, &right, "")),
        &[],
    );
    out.code(0).stdout_has("production").stdout_has("restored");
}

#[test]
fn compare_reports_an_extra_key_on_one_side() {
    let left = RedisServer::start();
    let right = RedisServer::start();
    seed_same(&[&left, &right]);
    right.cli(&["SET", "extra", "only here"]);
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(&left, &right, "")),
        &[],
        0,
    );
    let o = outputs(&events, "cmp");
    assert_eq!(o["equal"], json!(false), "{o:#}");
    let dbsize = row(&o["rows"], "dbsize");
    assert_eq!(dbsize["left"], json!(4));
    assert_eq!(dbsize["right"], json!(5));
    assert_eq!(dbsize["match"], json!(false));
    assert_eq!(row(&o["rows"], "keyspace db0")["match"], json!(false));
    assert_eq!(row(&o["rows"], "role")["match"], json!(true));
    let table = lines_of(&events, "cmp").join("\n");
    assert!(line_with(&table, "dbsize").contains('✘'), "{table}");
}

#[test]
fn compare_sample_keys_finds_a_changed_value() {
    // One key on each side, so the random sample is certain to pick it.
    let left = RedisServer::start();
    let right = RedisServer::start();
    left.cli(&["SET", "config:flag", r#"{"enabled":true}"#]);
    right.cli(&["SET", "config:flag", r#"{"enabled":false}"#]);
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(&left, &right, "      sample_keys: 5\n")),
        &[],
        0,
    );
    let o = outputs(&events, "cmp");
    assert_eq!(o["equal"], json!(false), "{o:#}");
    assert_eq!(row(&o["rows"], "dbsize")["match"], json!(true), "{o:#}");
    let changed = o["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["check"].as_str().unwrap_or("").contains("config:flag"))
        .unwrap_or_else(|| panic!("no row names the changed key: {o:#}"));
    assert_eq!(changed["match"], json!(false));
    assert_ne!(changed["left"], changed["right"]);
    // The data was only read.
    assert_eq!(left.cli(&["GET", "config:flag"]), r#"{"enabled":true}"#);
    assert_eq!(right.cli(&["GET", "config:flag"]), r#"{"enabled":false}"#);
}

/// A restore beside production that moved on: by how much they differ, in figures a
/// playbook can hold to a tolerance — the key counts' drift, and of the sampled keys how
/// many the right side has and how many are identical. A database no larger than the sample
/// is compared whole (every key, not a random draw), and each key that differs is a row.
#[test]
fn compare_says_by_how_much_the_sides_differ() {
    let left = RedisServer::start();
    let right = RedisServer::start();
    for server in [&left, &right] {
        let mut args = vec!["MSET".to_string()];
        for i in 0..99 {
            args.push(format!("post:{i:02}"));
            args.push(format!("Post {i}"));
        }
        server.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    left.cli(&["SET", "session:new", "since the snapshot"]);
    left.cli(&["SET", "post:07", "edited since"]);
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(&left, &right, "      sample_keys: 500\n")),
        &[],
        0,
    );
    let o = outputs(&events, "cmp");
    assert_eq!(o["equal"], json!(false), "{o:#}");
    assert_eq!(o["left_keys"], json!(100));
    assert_eq!(o["right_keys"], json!(99));
    assert_eq!(o["key_drift_percent"], json!(1.0));
    assert_eq!(o["sampled"], json!(100), "every key: {o:#}");
    assert_eq!(o["present"], json!(99));
    assert_eq!(o["identical"], json!(98));
    assert_eq!(o["present_percent"], json!(99.0));
    assert_eq!(o["identical_percent"], json!(98.0));
    assert_eq!(
        o["summary"],
        "production 100 keys, restored 99 keys (drift 1%); 100 keys sampled: 99 present (99%), 98 identical (98%)"
    );
    let differing: Vec<&str> = o["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .filter_map(|r| r["check"].as_str())
        .collect();
    assert_eq!(
        differing,
        [
            "dbsize",
            "keyspace db0",
            "key post:07",
            "key session:new",
            "sample keys"
        ]
    );
    assert_eq!(row(&o["rows"], "key session:new")["right"], "missing");
}

/// `calls` of one command in INFO commandstats (0 when never called).
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .map(|rest| rest.split(',').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn compare_on_a_large_keyspace_samples_only_the_keys_asked_for() {
    let left = RedisServer::start();
    let right = RedisServer::start();
    for server in [&left, &right] {
        for start in (0..20_000).step_by(5_000) {
            let mut args = vec!["MSET".to_string()];
            for i in start..start + 5_000 {
                args.push(format!("session:{i:05}"));
                args.push(format!(r#"{{"n":{i}}}"#));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            server.cli(&args);
        }
        server.cli(&["CONFIG", "RESETSTAT"]);
    }
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(&left, &right, "      sample_keys: 50\n")),
        &[],
        0,
    );
    let o = outputs(&events, "cmp");
    assert_eq!(o["equal"], json!(true), "{o:#}");
    let sample = row(&o["rows"], "sample keys");
    assert_eq!(sample["left"], json!("50 of 20000 keys sampled"), "{o:#}");
    assert_eq!(sample["right"], json!("50 present, 50 identical"), "{o:#}");
    let table = lines_of(&events, "cmp").join("\n");
    assert!(
        line_with(&table, "sample keys").contains("50 of 20000"),
        "{table}"
    );
    // A sample: the values of 50 keys were read on each side, not 20 000.
    assert_eq!(calls(&left, "get"), 50);
    assert_eq!(calls(&right, "get"), 50);
    assert!(
        calls(&left, "randomkey") <= 150,
        "{}",
        calls(&left, "randomkey")
    );
    assert_eq!(calls(&right, "randomkey"), 0);
}

#[test]
fn compare_tolerance_lets_dbsize_differ() {
    let left = RedisServer::start();
    let right = RedisServer::start();
    for i in 0..4 {
        left.cli(&["SET", &format!("k{i}"), "v"]);
    }
    for i in 0..3 {
        right.cli(&["SET", &format!("k{i}"), "v"]);
    }
    let strict = "      checks: [dbsize, keyspace]\n";
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(&left, &right, strict)),
        &[],
        0,
    );
    let o = outputs(&events, "cmp");
    assert_eq!(o["equal"], json!(false), "without tolerance: {o:#}");

    let tolerant = "      checks: [dbsize, keyspace]\n      tolerance: 50%\n";
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(&left, &right, tolerant)),
        &[],
        0,
    );
    let o = outputs(&events, "cmp");
    assert_eq!(o["equal"], json!(true), "with 50% tolerance: {o:#}");
    let dbsize = row(&o["rows"], "dbsize");
    assert_eq!(dbsize["left"], json!(4));
    assert_eq!(dbsize["right"], json!(3));
    assert_eq!(dbsize["match"], json!(true));

    // 1% of 4 keys is not one key.
    let tight = "      checks: [dbsize]\n      tolerance: 1%\n";
    let (_, events) = apply_json(
        Flow::new().playbook(&compare_playbook(&left, &right, tight)),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "cmp")["equal"], json!(false));
}

// ---------------------------------------------------------------- redis.backup

#[test]
fn backup_copies_a_restorable_rdb_file() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "user:1", r#"{"name":"ada"}"#]);
    redis.cli(&["HSET", "profile:1", "plan", "pro", "seats", "3"]);
    redis.cli(&["RPUSH", "queue", "j1", "j2", "j3"]);
    redis.cli(&["SADD", "tags", "red", "blue"]);
    let flow = Flow::new().playbook(&format!(
        r#"flow: 1
steps:
  backup:
    type: redis.backup
    with:
      url: "{url}"
      timeout: 20s
      dest: out/redis-backup-%Y%m%d.rdb
"#,
        url = redis.url()
    ));
    let (out, events) = apply_json(flow, &[], 0);
    let o = outputs(&events, "backup");

    let out_dir = out.path("out");
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap_or_else(|e| panic!("no out/ folder: {e}\n{o:#}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "expected one backup file: {names:?}");
    let name = &names[0];
    let stamped = regex::Regex::new(r"^redis-backup-\d{8}\.rdb$").unwrap();
    assert!(stamped.is_match(name), "name not stamped: {name}");
    let copy = out_dir.join(name);
    let size = std::fs::metadata(&copy).expect("backup file").len();
    assert!(size > 0, "the backup is empty");
    assert_eq!(o["bytes"], json!(size), "{o:#}");
    assert!(o["lastsave"].as_i64().unwrap_or(0) > 0, "{o:#}");
    assert_eq!(
        o["rdb_path"],
        json!(redis.dir().join("dump.rdb").display().to_string())
    );
    let path = o["path"]
        .as_str()
        .unwrap_or_else(|| panic!("no path: {o:#}"));
    assert!(path.ends_with(name.as_str()), "path {path} vs {name}");
    let bytes = std::fs::read(&copy).unwrap();
    assert!(bytes.starts_with(b"REDIS"), "not an RDB file");

    // A new server loading the copy has the same data.
    let restored = RedisServer::start_in(&out_dir, &["--dbfilename", name]);
    assert_eq!(restored.keys("*"), redis.keys("*"));
    assert_eq!(restored.cli(&["GET", "user:1"]), r#"{"name":"ada"}"#);
    assert_eq!(
        restored.cli(&["HGET", "profile:1", "seats"]),
        redis.cli(&["HGET", "profile:1", "seats"])
    );
    assert_eq!(restored.cli(&["LRANGE", "queue", "0", "-1"]), "j1\nj2\nj3");
    assert_eq!(restored.cli(&["SCARD", "tags"]), "2");
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn backup_waits_for_a_save_already_running_and_saves_after_it() {
    // A "cron" BGSAVE is running when the step starts (each key takes 0.4s to write: about
    // 2.4s for six keys). A key written after it began is in no file but a save started after
    // that one: the step's.
    let redis = RedisServer::start_with(&["--rdb-key-save-delay", "400000"]);
    for i in 0..5 {
        redis.cli(&["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(redis.cli(&["BGSAVE"]), "Background saving started");
    redis.cli(&["SET", "late", "written after the cron save began"]);
    // The step's own save need not be slow (the running child keeps its own setting).
    redis.cli(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let info = redis.cli(&["INFO", "persistence"]);
    assert!(
        info.contains("rdb_bgsave_in_progress:1"),
        "the cron save is over before the step starts: {info}"
    );
    let began = unix_now();
    let flow = Flow::new().file("out/.keep", "").playbook(&format!(
        r#"flow: 1
steps:
  backup:
    type: redis.backup
    with: {{ url: "{url}", timeout: 60s, dest: out }}
"#,
        url = redis.url()
    ));
    let (out, events) = apply_json(flow, &[], 0);
    let o = outputs(&events, "backup");
    assert!(
        lines_of(&events, "backup")
            .iter()
            .any(|l| l.contains("already running")),
        "{events:#?}"
    );
    assert!(o["lastsave"].as_i64().unwrap() >= began, "{o:#}");
    // `dest` is a folder: a timestamped file inside it, private to its owner.
    // Relative paths stay as written: relative to where flow ran.
    let path = out.path(o["path"].as_str().unwrap());
    assert_eq!(path.parent().unwrap(), out.path("out"));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        regex::Regex::new(r"^dump-\d{8}-\d{6}\.rdb$")
            .unwrap()
            .is_match(&name),
        "{name}"
    );
    assert_eq!(mode_of(&path), 0o600);
    let restored = RedisServer::start_in(&out.path("out"), &["--dbfilename", &name]);
    assert_eq!(
        restored.cli(&["GET", "late"]),
        "written after the cron save began"
    );
    assert_eq!(restored.cli(&["DBSIZE"]), "6");
}

#[test]
fn backup_with_aof_on_copies_the_aof_files_too() {
    let redis = RedisServer::start_with(&["--appendonly", "yes"]);
    redis.cli(&["SET", "session:1", r#"{"organisationId":"org-a"}"#]);
    let flow = Flow::new().playbook(&format!(
        r#"flow: 1
steps:
  backup:
    type: redis.backup
    with: {{ url: "{url}", dest: backups/redis.rdb }}
"#,
        url = redis.url()
    ));
    let (out, events) = apply_json(flow, &[], 0);
    let o = outputs(&events, "backup");
    let aof = out.path("backups/redis.aof");
    assert_eq!(o["aof_path"], json!("backups/redis.aof"), "{o:#}");
    assert_eq!(mode_of(&out.path("backups")), 0o700);
    assert_eq!(mode_of(&out.path("backups/redis.rdb")), 0o600);
    assert_eq!(mode_of(&aof), 0o700);
    let files: Vec<String> = std::fs::read_dir(&aof)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f.ends_with(".manifest")), "{files:?}");
    for file in &files {
        assert_eq!(mode_of(&aof.join(file)), 0o600, "{file}");
    }
    assert!(
        lines_of(&events, "backup")
            .iter()
            .any(|l| l.starts_with("AOF is on: copied")),
        "{events:#?}"
    );
    // The copied AOF folder is one a server starts from, with the data.
    let restored_dir = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    };
    copy(&aof, &restored_dir.path().join("appendonlydir"));
    let restored = RedisServer::start_in(restored_dir.path(), &["--appendonly", "yes"]);
    assert_eq!(
        restored.cli(&["GET", "session:1"]),
        r#"{"organisationId":"org-a"}"#
    );
}

#[test]
fn backup_is_a_write_and_does_not_save_during_plan() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "a", "1"]);
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  backup: {{ type: redis.backup, with: {{ url: "{url}", dest: out/backup.rdb }} }}
"#,
            url = redis.url()
        ))
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0).stdout_has("BGSAVE");
    assert!(!out.exists("out/backup.rdb"));
    assert!(
        !redis.dir().join("dump.rdb").exists(),
        "plan made the server save"
    );
}

// ---------------------------------------------------------------- redis.delete

const HOUR_MS: i64 = 3_600_000;

/// Seed 001's session store: `session:*` JSON values with organisationId and createdAt (ms),
/// plus a value that is not JSON, one without createdAt, and keys outside the pattern.
fn seed_sessions(redis: &RedisServer, now_ms: i64) {
    let session = |key: &str, org: &str, age_hours: i64| {
        let value = json!({
            "organisationId": org,
            "createdAt": now_ms - age_hours * HOUR_MS,
            "userId": key,
        })
        .to_string();
        redis.cli(&["SET", key, &value, "EX", "86400"]);
    };
    session("session:a-new", "org-a", 1);
    session("session:a-old", "org-a", 20);
    session("session:b-new", "org-b", 2);
    session("session:b-old", "org-b", 13);
    session("session:c-edge", "org-c", 11);
    redis.cli(&["SET", "session:raw", "not json at all"]);
    redis.cli(&[
        "SET",
        "session:nocreated",
        r#"{"organisationId":"org-b","userId":"x"}"#,
    ]);
    // Outside the pattern, though they would match the conditions.
    redis.cli(&[
        "SET",
        "other:a-old",
        &json!({ "organisationId": "org-a", "createdAt": 1 }).to_string(),
    ]);
    redis.cli(&["SET", "sessions_total", "7"]);
}

const ALL_SEEDED: &[&str] = &[
    "other:a-old",
    "session:a-new",
    "session:a-old",
    "session:b-new",
    "session:b-old",
    "session:c-edge",
    "session:nocreated",
    "session:raw",
    "sessions_total",
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn remaining(gone: &[&str]) -> Vec<String> {
    ALL_SEEDED
        .iter()
        .filter(|k| !gone.contains(k))
        .map(|k| k.to_string())
        .collect()
}

const PURGE_PLAYBOOK: &str = r#"flow: 1
params:
  url: { type: string }
  org: { type: string, required: false, default: "" }
  now_ms: { type: integer, required: false, default: 0 }
  mode: { type: string, choices: [org, age, all] }
defaults:
  redis: { url: "{{ params.url }}" }
steps:
  by_org:
    type: redis.delete
    when: params.mode == "org"
    with:
      pattern: "session:*"
      where: value is mapping and value.organisationId == params.org
  by_age:
    type: redis.delete
    when: params.mode == "age"
    with:
      pattern: "session:*"
      where: value is mapping and value.createdAt is defined and value.createdAt < (params.now_ms - 43200000)
  everything:
    type: redis.delete
    when: params.mode == "all"
    with:
      pattern: "session:*"
"#;

fn purge(redis: &RedisServer, params: &[String]) -> (Outcome, Vec<Value>) {
    let mut args: Vec<String> = vec!["-p".into(), format!("url={}", redis.url())];
    for p in params {
        args.push("-p".into());
        args.push(p.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    apply_json(Flow::new().playbook(PURGE_PLAYBOOK), &args, 0)
}

#[test]
fn delete_by_organisation_deletes_exactly_its_sessions() {
    let redis = RedisServer::start();
    seed_sessions(&redis, now_ms());
    let (_, events) = purge(&redis, &["mode=org".into(), "org=org-a".into()]);
    let o = outputs(&events, "by_org");
    assert_eq!(o["matched"], json!(2), "{o:#}");
    assert_eq!(o["deleted"], json!(2), "{o:#}");
    assert_eq!(
        redis.keys("*"),
        remaining(&["session:a-new", "session:a-old"])
    );
}

#[test]
fn delete_older_than_twelve_hours_by_created_at_in_milliseconds() {
    let redis = RedisServer::start();
    let now = now_ms();
    seed_sessions(&redis, now);
    let (_, events) = purge(&redis, &["mode=age".into(), format!("now_ms={now}")]);
    let o = outputs(&events, "by_age");
    assert_eq!(o["matched"], json!(2), "{o:#}");
    assert_eq!(o["deleted"], json!(2), "{o:#}");
    // 20h and 13h old go; 1h, 2h and 11h stay, so do the non-JSON value, the value without
    // createdAt and the keys outside the pattern.
    assert_eq!(
        redis.keys("*"),
        remaining(&["session:a-old", "session:b-old"])
    );
}

#[test]
fn delete_older_than_twelve_hours_with_now_in_the_expression() {
    let redis = RedisServer::start();
    seed_sessions(&redis, now_ms());
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  old_sessions:
    type: redis.delete
    with:
      url: "{url}"
      pattern: "session:*"
      where: "value is mapping and value.createdAt is defined and value.createdAt < ((now() | strftime('%s') | int) * 1000 - 43200000)"
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "old_sessions")["deleted"], json!(2));
    assert_eq!(
        redis.keys("*"),
        remaining(&["session:a-old", "session:b-old"])
    );
}

#[test]
fn delete_all_sessions_leaves_only_the_other_keys() {
    let redis = RedisServer::start();
    seed_sessions(&redis, now_ms());
    let (_, events) = purge(&redis, &["mode=all".into()]);
    let o = outputs(&events, "everything");
    assert_eq!(o["matched"], json!(7), "{o:#}");
    assert_eq!(o["deleted"], json!(7), "{o:#}");
    assert_eq!(redis.keys("*"), vec!["other:a-old", "sessions_total"]);
}

#[test]
fn delete_where_sees_key_ttl_and_type() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "cache:expiring", "v", "EX", "600"]);
    redis.cli(&["SET", "cache:forever", "v"]);
    redis.cli(&["HSET", "cache:hash", "f", "v"]);
    redis.cli(&["SET", "cache:keep-me", "v", "EX", "600"]);
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  purge:
    type: redis.delete
    with:
      url: "{url}"
      pattern: "cache:*"
      where: "(ttl > 0 or type == 'hash') and key != 'cache:keep-me'"
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "purge")["deleted"], json!(2));
    assert_eq!(redis.keys("*"), vec!["cache:forever", "cache:keep-me"]);
}

#[test]
fn delete_plan_shows_the_count_and_a_sample_and_deletes_nothing() {
    let redis = RedisServer::start();
    seed_sessions(&redis, now_ms());
    let args = [
        "plan",
        "playbook.yaml",
        "-p",
        &format!("url={}", redis.url()),
        "-p",
        "mode=org",
        "-p",
        "org=org-a",
    ];
    let out = Flow::new().playbook(PURGE_PLAYBOOK).args(&args).run();
    out.code(0);
    let plan = line_with(&out.stdout, "by_org");
    assert!(plan.contains("delete 2 keys"), "no count: {plan}");
    out.stdout_has("session:a-new").stdout_has("session:a-old");
    out.stdout_lacks("session:b-new");
    assert_eq!(redis.keys("*"), remaining(&[]), "plan deleted keys");

    // Many matches: a sample, and how many more.
    for i in 0..25 {
        redis.cli(&["SET", &format!("session:bulk-{i:02}"), "x"]);
    }
    let all_args = [
        "plan",
        "playbook.yaml",
        "-p",
        &format!("url={}", redis.url()),
        "-p",
        "mode=all",
    ];
    let out = Flow::new().playbook(PURGE_PLAYBOOK).args(&all_args).run();
    out.code(0);
    assert!(
        line_with(&out.stdout, "everything").contains("delete 32 keys"),
        "{}",
        out.stdout
    );
    out.stdout_has("more");
    let listed = out
        .stdout
        .lines()
        .filter(|l| l.contains("- session:"))
        .count();
    assert!(
        (1..32).contains(&listed),
        "expected a sample, got {listed} keys listed:\n{}",
        out.stdout
    );
    assert_eq!(
        redis.command(&["DBSIZE"]).to_text(),
        "34",
        "plan deleted keys"
    );
}

#[test]
fn delete_where_failing_on_one_key_fails_and_deletes_nothing() {
    let redis = RedisServer::start();
    seed_sessions(&redis, now_ms());
    // Many keys that would match, so SCAN meets some before the bad one.
    for i in 0..30 {
        redis.cli(&[
            "SET",
            &format!("session:more-{i:02}"),
            &json!({ "organisationId": "org-a", "createdAt": 1 }).to_string(),
        ]);
    }
    let before = redis.keys("*");
    assert_eq!(before.len(), 39);
    // `.organisationId` of the text "not json at all" is undefined: only session:raw fails.
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  purge_org:
    type: redis.delete
    with:
      url: "{url}"
      pattern: "session:*"
      batch: 1
      where: value.organisationId == "org-a"
"#,
            url = redis.url()
        )),
        &[],
    );
    out.code(1);
    let all = printed(&out);
    let line = line_with(&all, "✘ purge_org");
    assert!(line.contains("session:raw"), "the key is not named: {line}");
    assert!(
        line.contains(&redis.url()),
        "the target is not named: {line}"
    );
    assert_eq!(
        redis.keys("*"),
        before,
        "keys were deleted by a failed step"
    );
}

// ---------------------------------------------------------------- bad input

#[test]
fn unreachable_redis_fails_every_step_type_clearly() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let bodies = [
        format!("type: redis.command\n    with: {{ url: \"{url}\", command: [SET, k, v] }}"),
        format!("type: redis.command\n    with: {{ url: \"{url}\", command: [GET, k] }}"),
        format!("type: redis.info\n    with: {{ url: \"{url}\" }}"),
        format!("type: redis.delete\n    with: {{ url: \"{url}\", pattern: \"session:*\" }}"),
        format!("type: redis.backup\n    with: {{ url: \"{url}\" }}"),
        format!(
            "type: redis.compare\n    with: {{ left: {{ url: \"{url}\" }}, right: {{ url: \"{url}\" }} }}"
        ),
    ];
    for body in bodies {
        let began = Instant::now();
        let out = apply_plain(
            Flow::new().playbook(&format!("flow: 1\nsteps:\n  step:\n    {body}\n")),
            &[],
        );
        out.code(1);
        let all = printed(&out);
        let line = line_with(&all, "✘ step");
        assert!(
            line.contains(&format!("cannot connect to {url}")),
            "{body}: {line}"
        );
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "{body}: took {:?}",
            began.elapsed()
        );
    }
}

#[test]
fn wrong_password_is_an_authentication_error_that_never_shows_the_password() {
    let redis = RedisServer::start_with(&["--requirepass", "right-Pa55word"]);
    redis.cli(&["SET", "k", "before"]);
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  set: {{ type: redis.command, with: {{ url: "{url}", password: "wrong-Pa55word", command: [SET, k, changed] }} }}
"#,
            url = redis.url()
        )),
        &[],
    );
    out.code(1);
    let all = printed(&out);
    let line = line_with(&all, "✘ set");
    assert!(
        line.to_lowercase().contains("authentication"),
        "not an authentication error: {line}"
    );
    assert!(line.contains(&redis.url()), "{line}");
    assert_nowhere(&out, "wrong-Pa55word");
    assert_nowhere(&out, "right-Pa55word");
    assert_eq!(redis.cli(&["GET", "k"]), "before");

    // No password at all against a server that wants one.
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  info: {{ type: redis.info, with: {{ url: "{url}" }} }}
"#,
            url = redis.url()
        )),
        &[],
    );
    out.code(1);
    let all = printed(&out);
    let line = line_with(&all, "✘ info");
    assert!(
        line.to_lowercase().contains("auth"),
        "does not say authentication is needed: {line}"
    );
}

#[test]
fn the_right_password_in_with_or_in_the_url_works() {
    let redis = RedisServer::start_with(&["--requirepass", "right-Pa55word"]);
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  by_field: {{ type: redis.command, with: {{ url: "{url}", password: "right-Pa55word", command: [SET, a, "1"] }} }}
  by_url: {{ type: redis.command, with: {{ url: "redis://:right-Pa55word@127.0.0.1:{port}", command: [SET, b, "2"] }} }}
"#,
            url = redis.url(),
            port = redis.port()
        )),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "by_field")["reply"], "OK");
    assert_eq!(redis.keys("*"), vec!["a", "b"]);
}

#[test]
fn an_invalid_url_is_a_clear_error() {
    for url in [
        "not a url",
        "redis://127.0.0.1:notaport",
        "redis://:in-url-Secret9@127.0.0.1:notaport",
    ] {
        let out = apply_plain(
            Flow::new().playbook(&format!(
                r#"flow: 1
steps:
  ping: {{ type: redis.command, with: {{ url: "{url}", command: [PING] }} }}
"#
            )),
            &[],
        );
        assert!(
            out.code == 1 || out.code == 2,
            "{url}: exit {}\n{}",
            out.code,
            printed(&out)
        );
        let all = printed(&out);
        assert!(
            all.to_lowercase().contains("invalid redis url")
                || all.to_lowercase().contains("invalid url"),
            "{url}: not a clear error:\n{all}"
        );
        assert_nowhere(&out, "in-url-Secret9");
    }
}

// ---------------------------------------------------------------- secrets

#[test]
fn passwords_never_appear_in_output_or_in_the_journal() {
    let pw = "Zq9-secret-pass";
    let redis = RedisServer::start_with(&["--requirepass", pw]);
    redis.cli(&["SET", "session:1", r#"{"organisationId":"o"}"#]);
    let port = redis.port();
    let playbook = format!(
        r#"flow: 1
defaults:
  redis: {{ url: "redis://127.0.0.1:{port}", password: "{pw}" }}
steps:
  set: {{ type: redis.command, with: {{ command: [SET, k, v] }} }}
  echo: {{ type: redis.command, with: {{ command: [ECHO, "{pw}"] }} }}
  conf: {{ type: redis.command, with: {{ command: [CONFIG, GET, requirepass] }} }}
  info: {{ type: redis.info, with: {{ url: "redis://:{pw}@127.0.0.1:{port}" }} }}
  url_echo: {{ type: redis.command, with: {{ url: "redis://:{pw}@127.0.0.1:{port}", command: [ECHO, "{pw}"] }} }}
  up: {{ type: redis.wait, with: {{ url: "redis://:{pw}@127.0.0.1:{port}", timeout: 5s }} }}
  cmp:
    type: redis.compare
    with:
      left: {{ url: "redis://127.0.0.1:{port}", password: "{pw}" }}
      right: {{ url: "redis://:{pw}@127.0.0.1:{port}" }}
  del: {{ type: redis.delete, with: {{ url: "redis://:{pw}@127.0.0.1:{port}", pattern: "session:*" }} }}
  say: {{ type: log, with: {{ message: "echo={{{{ steps.echo.reply }}}} url_echo={{{{ steps.url_echo.reply }}}}" }} }}
"#
    );
    // Plan, in both formats.
    let out = Flow::new()
        .playbook(&playbook)
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0);
    assert_nowhere(&out, pw);
    let out = Flow::new()
        .playbook(&playbook)
        .args(&["plan", "playbook.yaml", "--output", "json"])
        .run();
    out.code(0);
    assert_nowhere(&out, pw);

    // Apply, human and JSON; the journal under .flow is checked by assert_nowhere.
    let out = apply_plain(Flow::new().playbook(&playbook), &[]);
    out.code(0);
    assert_nowhere(&out, pw);
    assert!(out.exists(".flow"), "no journal was written");
    let (out, events) = apply_json(Flow::new().playbook(&playbook), &[], 0);
    assert_nowhere(&out, pw);
    assert_eq!(outputs(&events, "echo")["reply"], "***");
    assert_eq!(redis.cli(&["GET", "k"]), "v");
    assert_eq!(redis.cli(&["EXISTS", "session:1"]), "0");
}

#[test]
fn a_failing_step_with_a_url_password_does_not_leak_it() {
    let pw = "Url-only-Pw77";
    let redis = RedisServer::start_with(&["--requirepass", "another-one"]);
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  ping: {{ type: redis.command, with: {{ url: "redis://:{pw}@127.0.0.1:{port}", command: [PING] }} }}
  info: {{ type: redis.info, needs: [], with: {{ url: "redis://:{pw}@127.0.0.1:{port}" }} }}
"#,
            port = redis.port()
        )),
        &[],
    );
    out.code(1);
    assert_nowhere(&out, pw);
}

#[test]
fn a_saved_plan_does_not_contain_a_literal_password() {
    // DESIGN §5/§7: the plan file holds the playbook path and hash, and secrets are masked
    // in it like everywhere else.
    let pw = "Saved-plan-Pw31";
    let redis = RedisServer::start_with(&["--requirepass", pw]);
    let port = redis.port();
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  by_field: {{ type: redis.command, with: {{ url: "redis://127.0.0.1:{port}", password: "{pw}", command: [SET, k, v] }} }}
  by_url: {{ type: redis.command, with: {{ url: "redis://:{pw}@127.0.0.1:{port}", command: [DBSIZE] }} }}
"#
        ))
        .args(&["plan", "playbook.yaml", "--out", "plan.json"])
        .run();
    out.code(0);
    assert_nowhere(&out, pw);
    let plan = out.file("plan.json");
    assert!(
        !plan.contains(pw),
        "the password is in the saved plan:\n{plan}"
    );
    assert_eq!(redis.cli(&["EXISTS", "k"]), "0");
}

// ---------------------------------------------------------------- more edges

#[test]
fn info_keyspace_hit_ratio_counts_hits_and_misses() {
    let redis = RedisServer::start();
    redis.cli(&["SET", "a", "1"]);
    redis.cli(&["GET", "a"]);
    redis.cli(&["GET", "a"]);
    redis.cli(&["GET", "a"]);
    redis.cli(&["GET", "missing"]);
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  health: {{ type: redis.info, with: {{ url: "{url}" }} }}
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    assert_eq!(
        outputs(&events, "health")["keyspace_hit_ratio"],
        json!(0.75)
    );
}

#[test]
fn acl_username_and_password_authenticate() {
    let redis = RedisServer::start();
    redis.cli(&["ACL", "SETUSER", "app", "on", ">app-Pw-42", "~*", "+@all"]);
    let url = redis.url();
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  who: {{ type: redis.command, with: {{ url: "{url}", username: app, password: "app-Pw-42", command: [ACL, WHOAMI] }} }}
"#
        )),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "who")["reply"], "app");
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  who: {{ type: redis.command, with: {{ url: "{url}", username: nobody, password: "app-Pw-42", command: [ACL, WHOAMI] }} }}
"#
        )),
        &[],
    );
    out.code(1);
    let all = printed(&out);
    assert!(
        line_with(&all, "✘ who").to_lowercase().contains("auth"),
        "{all}"
    );
    assert_nowhere(&out, "app-Pw-42");
}

#[test]
fn shutdown_does_not_run_during_plan() {
    let redis = RedisServer::start();
    let out = Flow::new()
        .playbook(&format!(
            r#"flow: 1
steps:
  stop: {{ type: redis.command, with: {{ url: "{url}", command: [SHUTDOWN, NOSAVE] }} }}
"#,
            url = redis.url()
        ))
        .args(&["plan", "playbook.yaml"])
        .run();
    out.code(0).stdout_has("SHUTDOWN");
    assert!(redis.is_alive(), "plan shut the server down");
}

#[test]
fn steps_on_one_target_share_a_connection() {
    let redis = RedisServer::start();
    let received = |r: &RedisServer| -> i64 {
        let info = r.cli(&["INFO", "stats"]);
        info.lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("total_connections_received")
    };
    let before = received(&redis);
    apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
defaults:
  redis: {{ url: "{url}" }}
steps:
  a: {{ type: redis.command, with: {{ command: [SET, a, "1"] }} }}
  b: {{ type: redis.command, with: {{ command: [SET, b, "2"] }} }}
  c: {{ type: redis.command, with: {{ command: [GET, a] }} }}
  d: {{ type: redis.info, with: {{}} }}
  e: {{ type: redis.delete, with: {{ pattern: "nothing:*" }} }}
  f: {{ type: redis.command, with: {{ command: [DBSIZE] }} }}
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    // One connection from flow (two if plan and apply open their own), plus our own INFO.
    let opened = received(&redis) - before - 1;
    assert!(
        opened <= 2,
        "six steps on one target opened {opened} connections"
    );
}

#[test]
fn delete_where_sees_a_hash_as_a_mapping() {
    let redis = RedisServer::start();
    redis.cli(&[
        "HSET",
        "session:h1",
        "organisationId",
        "org-a",
        "userId",
        "u1",
    ]);
    redis.cli(&[
        "HSET",
        "session:h2",
        "organisationId",
        "org-b",
        "userId",
        "u2",
    ]);
    let (_, events) = apply_json(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  purge:
    type: redis.delete
    with:
      url: "{url}"
      pattern: "session:*"
      where: value is mapping and value.organisationId == "org-a"
"#,
            url = redis.url()
        )),
        &[],
        0,
    );
    assert_eq!(outputs(&events, "purge")["deleted"], json!(1));
    assert_eq!(redis.keys("*"), vec!["session:h2"]);
}

#[test]
fn backup_fails_at_its_timeout_saying_so() {
    // Each key takes 0.5s to save: the save cannot finish within the 1s timeout.
    let redis = RedisServer::start_with(&["--rdb-key-save-delay", "500000"]);
    for i in 0..10 {
        redis.cli(&["SET", &format!("k{i}"), "v"]);
    }
    let began = Instant::now();
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  backup: {{ type: redis.backup, with: {{ url: "{url}", timeout: 1s, dest: out/backup.rdb }} }}
"#,
            url = redis.url()
        )),
        &[],
    );
    out.code(1);
    let all = printed(&out);
    let line = line_with(&all, "✘ backup");
    assert!(line.contains("BGSAVE"), "{line}");
    assert!(line.contains("1s") || line.contains("1.0s"), "{line}");
    assert!(line.contains(&redis.url()), "{line}");
    assert!(!out.exists("out/backup.rdb"), "a partial backup was copied");
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "took {:?}",
        began.elapsed()
    );
}

#[test]
fn a_silent_server_fails_within_the_connect_timeout() {
    // Something listens on the port but never answers (a wrong port, a firewall).
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(20) {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let began = Instant::now();
    let out = apply_plain(
        Flow::new().playbook(&format!(
            r#"flow: 1
steps:
  ping:
    type: redis.command
    timeout: 12s
    with: {{ url: "redis://127.0.0.1:{port}", connect_timeout: 1s, command: [PING] }}
"#
        )),
        &[],
    );
    let elapsed = began.elapsed();
    out.code(1);
    let all = printed(&out);
    let line = line_with(&all, "✘ ping");
    assert!(line.contains(&format!("127.0.0.1:{port}")), "{line}");
    assert!(
        elapsed < Duration::from_secs(8),
        "a silent server held the step for {elapsed:?} despite connect_timeout: 1s"
    );
    drop(holder);
}
