//! `flow serve` (DESIGN §6): the read-only web view of the journal, against the real binary
//! on 127.0.0.1 and real journals made by `flow apply` — what the pages and the JSON say,
//! 404s, the token off loopback, no secret anywhere, HTML escaped, a running run followed
//! live, and the pages as headless Chromium renders them.

use crate::common::run::{flow, wait_bounded};
use crate::common::serve::{Server, artifacts_dir, chromium_run, get_method, read_events};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "Serve-S3cret-\"quoted\"-7b1e";

const GOOD: &str = r#"flow: 1
name: web-good
steps:
  greet:
    type: exec
    name: Say <b>hello</b>
    with: { shell: 'echo "<script>alert(1)</script>"; echo "a warning" >&2' }
  after:
    type: exec
    needs: [greet]
    with: { command: [echo, second] }
outputs:
  said: "{{ steps.greet.stdout }}"
"#;

const BROKEN: &str = r#"flow: 1
name: web-broken
steps:
  fine:
    type: exec
    with: { command: [echo, fine] }
  breaks:
    type: exec
    needs: [fine]
    with: { shell: 'echo "broken on purpose" >&2; exit 7' }
  never:
    type: exec
    needs: [breaks]
    with: { command: [echo, never] }
"#;

const SECRETIVE: &str = r#"flow: 1
name: web-secret
params:
  pw: { type: string, secret: true, env: SERVE_TEST_PW }
  who: { type: string, default: ops }
steps:
  use_it:
    type: exec
    with:
      shell: 'echo "pw is $PW"; echo "pw on stderr $PW" >&2'
      env: { PW: "{{ params.pw }}" }
  tell:
    type: log
    with: { message: "told {{ params.pw }} to {{ params.who }}" }
outputs:
  echoed: "{{ steps.use_it.stdout }}"
"#;

const SKIPPING: &str = r#"flow: 1
name: web-skip
params:
  mode: { type: string, default: quick }
steps:
  always:
    type: exec
    with: { command: [echo, always] }
  thorough_only:
    type: exec
    when: "params.mode == 'thorough'"
    with: { command: [echo, thorough] }
"#;

/// A folder with the four playbooks applied into `.flow`: good, broken, secretive, skipping.
struct Journals {
    dir: tempfile::TempDir,
}

impl Journals {
    fn new() -> Journals {
        let dir = tempfile::tempdir().expect("temp dir");
        for (file, text) in [
            ("good.yaml", GOOD),
            ("broken.yaml", BROKEN),
            ("secret.yaml", SECRETIVE),
            ("skip.yaml", SKIPPING),
        ] {
            std::fs::write(dir.path().join(file), text).expect("write playbook");
        }
        let apply = |file: &str, code: i32| {
            flow(
                dir.path(),
                &["apply", file, "--yes"],
                &[("SERVE_TEST_PW", SECRET)],
            )
            .code(code);
        };
        apply("good.yaml", 0);
        apply("broken.yaml", 1);
        apply("secret.yaml", 0);
        apply("skip.yaml", 0);
        Journals { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join(".flow")
    }

    /// The id of the run of the playbook named `name`.
    fn id(&self, name: &str) -> String {
        let runs = crate::common::run::run_dirs(&self.state());
        runs.iter()
            .find(|run| crate::common::run::run_json(run)["name"] == name)
            .and_then(|run| run.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| panic!("no run of {name}"))
    }

    fn serve(&self) -> Server {
        Server::start(&self.state(), "127.0.0.1", &[], &[])
    }
}

fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["id"] == id))
        .unwrap_or_else(|| panic!("no step {id} in {run:#}"))
}

#[test]
fn serve_says_where_it_serves_and_stops_with_ctrl_c() {
    let journals = Journals::new();
    let server = journals.serve();
    let expected = format!(
        "flow serve: http://127.0.0.1:{}/ (state dir {}) — Ctrl-C stops",
        server.port,
        journals.state().display()
    );
    assert_eq!(server.banner, expected);
    server.get("/").status(200);
    assert_eq!(server.stop(), 0, "Ctrl-C is a clean stop");
}

#[test]
fn runs_page_and_api_list_every_run_newest_first() {
    let journals = Journals::new();
    let server = journals.serve();
    let page = server.get("/");
    page.status(200)
        .has("<meta name=\"viewport\"")
        .has("prefers-color-scheme");
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{}",
        page.head
    );
    for name in ["web-good", "web-broken", "web-secret", "web-skip"] {
        let id = journals.id(name);
        page.has(name).has(&format!("href=\"/runs/{id}\""));
    }
    page.has("✘ failed").has("✔ succeeded");

    let runs = server.get("/api/runs");
    runs.status(200);
    let runs = runs.json();
    let runs = runs.as_array().expect("an array of runs");
    let names: Vec<&str> = runs.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["web-skip", "web-secret", "web-broken", "web-good"],
        "newest first"
    );
    let broken = runs
        .iter()
        .find(|r| r["name"] == "web-broken")
        .expect("broken");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["exit_code"], 1);
    assert_eq!(broken["resumable"], true);
    assert_eq!(broken["live"], false);
    assert_eq!(
        broken["by"],
        format!(
            "{}@{}",
            crate::common::run::user(),
            crate::common::run::host()
        )
    );
    assert!(
        broken["playbook"]
            .as_str()
            .unwrap_or("")
            .ends_with("broken.yaml")
    );
    assert!(broken["duration_ms"].is_u64() && broken["started_at"].is_string());
    let good = runs.iter().find(|r| r["name"] == "web-good").expect("good");
    assert_eq!(good["status"], "succeeded");
    assert_eq!(good["exit_code"], 0);
    assert_eq!(good["resumable"], false);
}

#[test]
fn a_run_page_and_its_json_show_steps_params_outputs_and_the_graph() {
    let journals = Journals::new();
    let server = journals.serve();

    let id = journals.id("web-broken");
    let run = server.get(&format!("/api/runs/{id}"));
    run.status(200);
    let run = run.json();
    assert_eq!(run["run_id"], id.as_str());
    assert_eq!(run["status"], "failed");
    assert_eq!(step(&run, "fine")["status"], "succeeded");
    let breaks = step(&run, "breaks");
    assert_eq!(breaks["status"], "failed");
    assert_eq!(breaks["attempts"], 1);
    assert_eq!(breaks["needs"], serde_json::json!(["fine"]));
    assert!(
        breaks["error"].as_str().unwrap_or("").contains("exit"),
        "{breaks:#}"
    );
    assert_eq!(step(&run, "never")["status"], "skipped");
    assert!(
        run["closing_line"]
            .as_str()
            .unwrap_or("")
            .starts_with("Run failed after"),
        "{run:#}"
    );

    let page = server.get(&format!("/runs/{id}"));
    page.status(200)
        .has(&id)
        .has("web-broken")
        .has(&format!("flow apply --resume {id}"))
        .has("<svg")
        .has("class=\"node st-failed\" data-step=\"breaks\"")
        .has("class=\"node st-succeeded\" data-step=\"fine\"")
        .has("data-status=\"failed\" data-step=\"breaks\"")
        .has("Run failed after");

    // A unique prefix works, for the page and the JSON.
    let prefix = &id[..id.len() - 2];
    let others = [
        journals.id("web-good"),
        journals.id("web-secret"),
        journals.id("web-skip"),
    ];
    if others.iter().all(|other| !other.starts_with(prefix)) {
        server.get(&format!("/runs/{prefix}")).status(200).has(&id);
        assert_eq!(
            server.get(&format!("/api/runs/{prefix}")).json()["run_id"],
            id.as_str()
        );
    }

    let skip = journals.id("web-skip");
    let run = server.get(&format!("/api/runs/{skip}")).json();
    let skipped = step(&run, "thorough_only");
    assert_eq!(skipped["status"], "skipped");
    assert!(
        skipped["reason"].as_str().unwrap_or("").contains("when"),
        "the skip says why: {skipped:#}"
    );
    assert_eq!(run["params"]["mode"], "quick");
    server
        .get(&format!("/runs/{skip}"))
        .status(200)
        .has("⊘")
        .has("data-status=\"skipped\" data-step=\"thorough_only\"");

    let good = journals.id("web-good");
    let run = server.get(&format!("/api/runs/{good}")).json();
    assert_eq!(step(&run, "greet")["output_lines"], 2);
    assert_eq!(run["outputs"]["said"], "<script>alert(1)</script>");
    let output = server.get(&format!("/runs/{good}/steps/greet"));
    output.status(200).has("a warning").has("class=\"stderr\"");
}

#[test]
fn unknown_or_ambiguous_runs_and_odd_paths_are_404_and_nothing_can_be_changed() {
    let journals = Journals::new();
    let server = journals.serve();
    server
        .get("/runs/20990101-000000-dead")
        .status(404)
        .has("Not found")
        .has("<html");
    let json = server.get("/api/runs/20990101-000000-dead");
    json.status(404);
    assert!(
        json.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("no run")
    );
    // Every run id starts with the year: ambiguous.
    server.get("/runs/2").status(404).has("matches 4 runs");
    assert_eq!(server.get("/api/runs/2").status, 404);
    let id = journals.id("web-good");
    server
        .get(&format!("/runs/{id}/steps/no_such_step"))
        .status(404)
        .has("no step");
    for path in [
        "/runs/..%2F..%2F..%2Fetc%2Fpasswd",
        "/runs/../../etc/passwd",
        "/runs/%2e%2e",
        "/runs/..",
        "/api/runs/..%2Fruns",
        "/runs/%00",
        "/nothing/here",
    ] {
        let answer = server.get(path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.head);
        answer.lacks("root:x:0");
    }
    // Read-only: no route takes a write.
    for method in ["POST", "PUT", "DELETE"] {
        let answer = get_method(server.port, method, &format!("/runs/{id}"), &[]);
        assert_eq!(answer.status, 405, "{method}: {}", answer.head);
    }
}

#[test]
fn a_damaged_journal_still_shows() {
    let journals = Journals::new();
    let (good_id, broken_id) = (journals.id("web-good"), journals.id("web-broken"));
    let good = journals.state().join("runs").join(&good_id);
    let mut events = std::fs::read_to_string(good.join("events.jsonl")).expect("events");
    events.push_str("{\"event\": \"step_fini\nnot json at all\n\u{0}\u{1}garbage");
    std::fs::write(good.join("events.jsonl"), events).expect("damage events");
    let broken = journals
        .state()
        .join("runs")
        .join(journals.id("web-broken"));
    std::fs::write(broken.join("run.json"), "{ half a record").expect("damage run.json");
    let server = journals.serve();
    server.get("/").status(200).has("rebuilt from events.jsonl");
    // What could not be read is said, as `flow show` says it.
    server
        .get(&format!("/runs/{good_id}"))
        .status(200)
        .has("greet")
        .has("could not be read")
        .has("not JSON");
    server
        .get(&format!("/runs/{broken_id}"))
        .status(200)
        .has("rebuilt from events.jsonl");
    assert_eq!(
        server.get("/api/runs").json().as_array().map(Vec::len),
        Some(4)
    );
}

#[test]
fn no_secret_value_reaches_any_page_or_api_answer() {
    let journals = Journals::new();
    let server = journals.serve();
    let id = journals.id("web-secret");
    let json_escaped = serde_json::to_string(SECRET).expect("json");
    let json_escaped = json_escaped.trim_matches('"');
    let html_escaped = SECRET.replace('"', "&quot;");
    let mut bodies = Vec::new();
    for path in [
        "/".to_string(),
        "/api/runs".into(),
        format!("/runs/{id}"),
        format!("/runs/{id}?part=live"),
        format!("/api/runs/{id}"),
        format!("/runs/{id}/steps/use_it"),
        format!("/runs/{id}/steps/tell"),
    ] {
        let answer = server.get(&path);
        answer.status(200);
        bodies.push((path, answer.body));
    }
    let (_, events) = read_events(
        server.port,
        &format!("/runs/{id}/events"),
        Duration::from_secs(30),
        |seen| seen.contains("event: end"),
    );
    bodies.push(("events".into(), events));
    for (path, body) in &bodies {
        for form in [SECRET, json_escaped, html_escaped.as_str(), "Serve-S3cret"] {
            assert!(
                !body.contains(form),
                "{path} shows the secret ({form}):\n{body}"
            );
        }
    }
    let run = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(run["params"]["pw"], "***", "the secret param shows masked");
    let output = &bodies[5].1;
    assert!(output.contains("pw is ***"), "{output}");
}

#[test]
fn html_in_names_and_output_is_shown_escaped() {
    let journals = Journals::new();
    let server = journals.serve();
    let id = journals.id("web-good");
    for path in [
        format!("/runs/{id}"),
        format!("/runs/{id}?part=live"),
        format!("/runs/{id}/steps/greet"),
    ] {
        let page = server.get(&path);
        page.status(200)
            .lacks("<script>alert(1)")
            .lacks("<b>hello</b>")
            .has("&lt;b&gt;hello&lt;/b&gt;");
    }
    server
        .get(&format!("/runs/{id}/steps/greet"))
        .has("&lt;script&gt;alert(1)&lt;/script&gt;");
    let page = server.get(&format!("/runs/{id}"));
    page.has("&lt;script&gt;alert(1)&lt;/script&gt;");
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'none'")),
        "{}",
        page.head
    );
}

#[test]
fn off_loopback_every_request_needs_the_token() {
    let journals = Journals::new();
    let server = Server::start(&journals.state(), "0.0.0.0", &[], &[]);
    let token = server
        .banner
        .split("?token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no generated token in {:?}", server.banner))
        .to_string();
    assert!(token.len() >= 32, "a long token: {token}");
    assert!(server.banner.contains("Ctrl-C stops"), "{}", server.banner);
    let id = journals.id("web-good");
    for path in ["/", "/api/runs", &format!("/runs/{id}"), "/nothing"] {
        server.get(path).status(401).lacks("web-good");
        server
            .get_with(path, &[("Authorization", "Bearer wrong-token")])
            .status(401);
    }
    server.get("/?token=wrong").status(401);
    server
        .get_with("/", &[("Cookie", "flow_serve_token=wrong")])
        .status(401);
    server
        .get_with(
            "/api/runs",
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .status(200)
        .has("web-good");
    let first = server.get(&format!("/runs/{id}?token={token}"));
    first.status(200).has("web-good");
    let cookie = first
        .header("set-cookie")
        .unwrap_or_else(|| panic!("?token= sets a cookie: {}", first.head));
    let cookie = cookie.split(';').next().unwrap_or_default().to_string();
    server
        .get_with(&format!("/runs/{id}/steps/greet"), &[("Cookie", &cookie)])
        .status(200);

    // A token given in the environment is the one; it is not printed.
    let given = Server::start(
        &journals.state(),
        "0.0.0.0",
        &[],
        &[("FLOW_SERVE_TOKEN", "given-token-123")],
    );
    assert!(
        !given.banner.contains("given-token-123"),
        "{}",
        given.banner
    );
    given.get("/").status(401);
    given
        .get_with("/", &[("Authorization", "Bearer given-token-123")])
        .status(200);
    // The scheme's name is case-insensitive.
    given
        .get_with("/", &[("Authorization", "bearer given-token-123")])
        .status(200);
}

/// Found by a hostile pass: a page rebound to 127.0.0.1 by DNS, a token that cannot travel
/// in a cookie, and a connection that never finishes its headers.
#[test]
fn a_foreign_host_a_bad_token_and_an_unfinished_request_are_refused() {
    let journals = Journals::new();
    let server = Server::start(&journals.state(), "127.0.0.1", &[], &[]);
    server
        .get_with("/api/runs", &[("Host", "evil.example.com")])
        .status(421)
        .lacks("web-good");
    server
        .get_with("/api/runs", &[("Host", "localhost:8484")])
        .status(200)
        .has("web-good");

    for (token, why) in [
        ("ab;cd-0123456789", "';' cannot be in it"),
        ("short", "use at least 12"),
    ] {
        let out = std::process::Command::new(crate::common::flow_bin())
            .args(["serve", "--listen", "0.0.0.0:0", "--token", token])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{stderr}");
    }

    // Headers never finished: the connection is closed, not held for good.
    use std::io::{Read, Write};
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    idle.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let closed = idle.read_to_end(&mut rest);
    assert!(
        closed.is_ok(),
        "the unfinished request was held: {closed:?}"
    );
    server.get("/api/runs").status(200);
}

#[test]
fn a_port_in_use_is_one_line_and_exit_2() {
    let journals = Journals::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let listen = taken.local_addr().expect("addr").to_string();
    let state = journals.state();
    let ran = flow(
        journals.dir.path(),
        &[
            "serve",
            "--state-dir",
            &state.display().to_string(),
            "--listen",
            &listen,
        ],
        &[],
    );
    ran.code(2).stderr_has("in use").stderr_has(&listen);
    assert_eq!(
        ran.stderr.trim_end().lines().count(),
        1,
        "{}",
        ran.context()
    );
    assert_eq!(ran.stdout, "");
}

const SLOW: &str = r#"flow: 1
name: web-slow
steps:
  first:
    type: exec
    with: { command: [echo, one] }
  nap:
    type: exec
    needs: [first]
    with: { command: [sleep, "2"] }
  last:
    type: exec
    needs: [nap]
    with: { command: [echo, done] }
"#;

/// `flow apply` of the slow playbook in the background, once its `nap` step has started.
/// The caller waits for the child.
#[allow(clippy::zombie_processes)]
fn slow_run(dir: &Path) -> (std::process::Child, String) {
    std::fs::write(dir.join("slow.yaml"), SLOW).expect("write playbook");
    let mut child = Command::new(crate::common::flow_bin())
        .args(["apply", "slow.yaml", "--yes"])
        .current_dir(dir)
        .env_remove("FLOW_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn flow apply");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = crate::common::run::run_dirs(&dir.join(".flow"));
        let started = runs.iter().find(|run| {
            std::fs::read_to_string(run.join("events.jsonl"))
                .is_ok_and(|t| t.contains("\"step\":\"nap\""))
        });
        if let Some(run) = started {
            let id = run
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            return (child, id);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the slow run's nap never started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_running_run_streams_its_steps_as_they_finish() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join(".flow"), "127.0.0.1", &[], &[]);
    let (mut apply, id) = slow_run(dir.path());
    let before = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(before["live"], true, "{before:#}");
    assert_eq!(step(&before, "nap")["status"], "running");
    assert_eq!(step(&before, "last")["status"], "pending");
    server
        .get(&format!("/runs/{id}"))
        .has("data-status=\"running\" data-step=\"nap\"")
        .has("data-since=");

    let (ended, seen) = read_events(
        server.port,
        &format!("/runs/{id}/events"),
        Duration::from_secs(60),
        |seen| seen.contains("event: end"),
    );
    assert!(ended, "the stream ends with the run:\n{seen}");
    assert!(
        seen.starts_with("HTTP/1.0 200") || seen.starts_with("HTTP/1.1 200"),
        "{seen}"
    );
    assert!(seen.contains("text/event-stream"), "{seen}");
    let finished = seen
        .find("\"event\":\"step_finished\",\"step\":\"nap\"")
        .unwrap_or_else(|| panic!("no step_finished of nap:\n{seen}"));
    let run_finished = seen
        .find("\"event\":\"run_finished\"")
        .unwrap_or_else(|| panic!("no run_finished:\n{seen}"));
    assert!(finished < run_finished, "{seen}");
    assert_eq!(wait_bounded(&mut apply, Duration::from_secs(60)), 0);
    let after = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(after["status"], "succeeded");
    assert_eq!(step(&after, "last")["status"], "succeeded");
}

/// The rows of the steps table a rendered page shows: `(step, status)`.
fn step_rows(dom: &str) -> Vec<(String, String)> {
    let row = regex::Regex::new(r#"<tr class="step" data-status="([a-z_]+)" data-step="([^"]+)""#)
        .expect("regex");
    row.captures_iter(dom)
        .map(|c| (c[2].to_string(), c[1].to_string()))
        .collect()
}

#[test]
fn chromium_renders_the_runs_and_a_run_and_a_screenshot_is_kept() {
    let journals = Journals::new();
    let server = journals.serve();
    let base = format!("http://127.0.0.1:{}", server.port);
    let dom = chromium_run(&["--dump-dom"], &format!("{base}/"));
    for name in ["web-good", "web-broken", "web-secret", "web-skip"] {
        assert!(dom.contains(&journals.id(name)), "{dom}");
    }
    assert!(dom.contains("badge st-failed"), "{dom}");

    let id = journals.id("web-broken");
    let dom = chromium_run(&["--dump-dom"], &format!("{base}/runs/{id}"));
    assert_eq!(
        step_rows(&dom),
        [
            ("fine".to_string(), "succeeded".to_string()),
            ("breaks".into(), "failed".into()),
            ("never".into(), "skipped".into()),
        ]
    );
    assert!(dom.contains("<svg"), "{dom}");
    assert!(dom.contains("node st-failed"), "{dom}");

    let shot = artifacts_dir().join("run-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium_run(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            "--hide-scrollbars",
        ],
        &format!("{base}/runs/{id}"),
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG"), "{} is no PNG", shot.display());
    assert!(png.len() > 10_000, "{} is nearly empty", shot.display());
    let phone = artifacts_dir().join("runs-page-phone.png");
    chromium_run(
        &[
            &format!("--screenshot={}", phone.display()),
            "--window-size=390,844",
        ],
        &format!("{base}/"),
    );
    assert!(std::fs::metadata(&phone).is_ok_and(|m| m.len() > 5_000));
}

#[test]
fn chromium_shows_a_running_run_finish_without_a_reload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join(".flow"), "127.0.0.1", &[], &[]);
    let (mut apply, id) = slow_run(dir.path());
    let url = format!("http://127.0.0.1:{}/runs/{id}", server.port);
    let served = server.get(&format!("/runs/{id}"));
    assert!(
        step_rows(&served.body).contains(&("nap".into(), "running".into())),
        "{}",
        served.body
    );
    let dom = chromium_run(
        &[
            "--run-all-compositor-stages-before-draw",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ],
        &url,
    );
    assert_eq!(wait_bounded(&mut apply, Duration::from_secs(60)), 0);
    assert_eq!(
        step_rows(&dom),
        [
            ("first".to_string(), "succeeded".to_string()),
            ("nap".into(), "succeeded".into()),
            ("last".into(), "succeeded".into()),
        ],
        "the page followed the run to its end:\n{dom}"
    );
    assert!(dom.contains("Run succeeded in"), "{dom}");
}
