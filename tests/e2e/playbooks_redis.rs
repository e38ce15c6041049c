//! The shipped playbooks of seed 001 (ProspectFlow session store: health and sessions), end
//! to end against real redis-server processes on 127.0.0.1. Its backup, restore and incident
//! playbooks run against its docker-compose container in playbooks_prospectflow.rs; seed 002
//! (October) is in playbooks_october.rs.

use crate::common::redis::RedisServer;
use crate::common::{Flow, Outcome};
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;

fn playbook(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks")
        .join(path)
        .display()
        .to_string()
}

fn used_memory(server: &RedisServer) -> u64 {
    let info = server.cli(&["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

/// `n` connections blocked in BLPOP (dropped with the returned streams).
fn blocked_clients(server: &RedisServer, n: usize) -> Vec<TcpStream> {
    let streams: Vec<TcpStream> = (0..n)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
            let key = format!("never:{i}");
            write!(
                s,
                "*3\r\n$5\r\nBLPOP\r\n${}\r\n{key}\r\n$1\r\n0\r\n",
                key.len()
            )
            .expect("BLPOP");
            s
        })
        .collect();
    for _ in 0..100 {
        if server
            .cli(&["INFO", "clients"])
            .contains(&format!("blocked_clients:{n}"))
        {
            return streams;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the {n} BLPOP clients never showed as blocked");
}

#[test]
fn health_report_passes_on_a_healthy_server_and_prints_the_figures() {
    let server = RedisServer::start();
    server.cli(&["SET", "session:a", "{}"]);
    Flow::new()
        .args(&[
            "apply",
            &playbook("prospectflow/redis-health.yaml"),
            "-p",
            &format!("url={}", server.url()),
        ])
        .run()
        .code(0)
        .stdout_has("maxmemory_policy")
        .stdout_has("role              master")
        .stdout_has("dbsize            1")
        .stdout_has("used_memory_peak  ")
        .stdout_has("latency_p50       ")
        .stderr_has("warning: step `memory_limit`: maxmemory is not set; the runbook sets 256 MiB")
        .stderr_lacks("step `role`");
}

#[test]
fn health_report_warns_at_70_percent_memory_and_one_blocked_client() {
    let server = RedisServer::start();
    // maxmemory so that the server uses about 80% of it: a warning, not yet critical.
    let max = used_memory(&server) * 100 / 80;
    server.cli(&["CONFIG", "SET", "maxmemory", &max.to_string()]);
    let _blocked = blocked_clients(&server, 1);
    Flow::new()
        .args(&[
            "apply",
            &playbook("prospectflow/redis-health.yaml"),
            "-p",
            &format!("url={}", server.url()),
        ])
        .run()
        .code(0)
        .stderr_has("warning: step `memory_warning`: memory 8")
        .stderr_has(" MiB is above 70%")
        .stderr_has("warning: step `blocked_warning`: 1 blocked clients (above 0)");
}

#[test]
fn health_report_fails_on_a_critical_threshold_naming_it() {
    let server = RedisServer::start();
    let _blocked = blocked_clients(&server, 11);
    Flow::new()
        .args(&[
            "apply",
            &playbook("prospectflow/redis-health.yaml"),
            "-p",
            &format!("url={}", server.url()),
        ])
        .run()
        .code(1)
        .stdout_has("a critical threshold is breached (memory n/a% of limit, ")
        .stdout_has(", 11 blocked, ")
        .stdout_has("(false: `steps.info.blocked_clients <= 10`)");
}

#[test]
fn session_inspect_counts_lists_views_and_deletes_one_session() {
    let server = RedisServer::start();
    server.cli(&[
        "SET",
        "session:sub-1",
        r#"{"organisationId":"org-a","userId":"u-1"}"#,
        "EX",
        "86400",
    ]);
    server.cli(&["SET", "session:sub-2", r#"{"organisationId":"org-b"}"#]);
    server.cli(&["SET", "other", "x"]);
    let run = |extra: &[&str]| {
        let inspect = playbook("prospectflow/session-inspect.yaml");
        let url = format!("url={}", server.url());
        let mut args = vec!["apply", inspect.as_str(), "-p", url.as_str()];
        args.extend_from_slice(extra);
        Flow::new().args(&args).run()
    };
    // Count and list.
    run(&[])
        .code(0)
        .stdout_has("2 keys match session:*: session:sub-1, session:sub-2");
    // One session: its JSON as a table, its TTL in seconds and hours; nothing deleted.
    run(&["-p", "session=session:sub-1"])
        .code(0)
        .stdout_has("session:sub-1: expires in 86")
        .stdout_has("s (24.0h)")
        .stdout_has("organisationId  userId")
        .stdout_has("org-a           u-1");
    run(&["-p", "session=session:nope"])
        .code(0)
        .stdout_has("session:nope: does not exist");
    assert_eq!(server.cli(&["EXISTS", "session:sub-1"]), "1");
    // Delete it: asks first (no terminal, no --yes: exit 3, nothing deleted), then with --yes.
    run(&["-p", "session=session:sub-1", "-p", "delete=true"]).code(3);
    assert_eq!(server.cli(&["EXISTS", "session:sub-1"]), "1");
    run(&["-p", "session=session:sub-1", "-p", "delete=true", "--yes"]).code(0);
    assert_eq!(server.keys("*"), ["other", "session:sub-2"]);
}

fn sessions(server: &RedisServer) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let day_ago = now_ms - 24 * 3600 * 1000;
    server.cli(&[
        "SET",
        "session:a1",
        &format!(r#"{{"organisationId":"org-a","createdAt":{now_ms}}}"#),
    ]);
    server.cli(&[
        "SET",
        "session:a2",
        &format!(r#"{{"organisationId":"org-a","createdAt":{day_ago}}}"#),
    ]);
    server.cli(&[
        "SET",
        "session:b1",
        &format!(r#"{{"organisationId":"org-b","createdAt":{day_ago}}}"#),
    ]);
    server.cli(&[
        "SET",
        "session:b2",
        &format!(r#"{{"organisationId":"org-b","createdAt":{now_ms}}}"#),
    ]);
    server.cli(&["SET", "session:raw", "not json at all"]);
    server.cli(&["SET", "session:nocreated", r#"{"organisationId":"org-c"}"#]);
    server.cli(&[
        "SET",
        "cache:x",
        r#"{"organisationId":"org-a","createdAt":1}"#,
    ]);
}

fn purge(server: &RedisServer, args: &[&str]) -> Outcome {
    let url = format!("url={}", server.url());
    let mut all = vec!["apply", "--output", "json", "--yes"];
    let path = playbook("prospectflow/session-purge.yaml");
    all.insert(1, &path);
    all.extend(["-p", &url]);
    all.extend(args);
    Flow::new().args(&all).run()
}

#[test]
fn session_purge_by_organisation_deletes_exactly_its_sessions() {
    let server = RedisServer::start();
    sessions(&server);
    purge(&server, &["-p", "mode=organisation", "-p", "org=org-a"]).code(0);
    assert_eq!(
        server.keys("*"),
        [
            "cache:x",
            "session:b1",
            "session:b2",
            "session:nocreated",
            "session:raw"
        ]
    );
}

#[test]
fn session_purge_by_age_keeps_young_sessions_non_json_values_and_ones_without_created_at() {
    let server = RedisServer::start();
    sessions(&server);
    purge(&server, &["-p", "mode=older_than", "-p", "max_age=12h"]).code(0);
    assert_eq!(
        server.keys("*"),
        [
            "cache:x",
            "session:a1",
            "session:b2",
            "session:nocreated",
            "session:raw"
        ]
    );
}

#[test]
fn session_purge_all_leaves_other_keys() {
    let server = RedisServer::start();
    sessions(&server);
    purge(&server, &["-p", "mode=all"]).code(0);
    assert_eq!(server.keys("*"), ["cache:x"]);
}

#[test]
fn session_purge_shows_the_count_before_asking_and_deletes_nothing_unapproved() {
    let server = RedisServer::start();
    sessions(&server);
    let path = playbook("prospectflow/session-purge.yaml");
    let url = format!("url={}", server.url());
    Flow::new()
        .args(&[
            "plan",
            &path,
            "-p",
            &url,
            "-p",
            "mode=organisation",
            "-p",
            "org=org-a",
        ])
        .run()
        .code(0)
        .stdout_has("confirm: Delete 2 sessions (organisation)")
        .stdout_has("  - purge  (redis.delete)  delete 2 keys matching `session:*`");
    Flow::new()
        .args(&[
            "apply",
            &path,
            "-p",
            &url,
            "-p",
            "mode=organisation",
            "-p",
            "org=org-a",
        ])
        .run()
        .code(3)
        .stdout_has("--approve go_ahead");
    assert_eq!(
        server.keys("session:*").len(),
        6,
        "nothing may be deleted without approval"
    );
}

#[test]
fn session_purge_by_organisation_without_an_organisation_says_what_to_pass() {
    let server = RedisServer::start();
    sessions(&server);
    purge(&server, &["-p", "mode=organisation"])
        .code(1)
        .stdout_has("pass -p org=<organisationId>");
    assert_eq!(server.keys("*").len(), 7);
}
