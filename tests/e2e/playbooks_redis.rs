//! The shipped playbooks of seed 001 (ProspectFlow session store), end to end against real
//! redis-server processes on 127.0.0.1. (Seed 002, October, is in playbooks_october.rs.)

use crate::common::redis::RedisServer;
use crate::common::{Flow, Outcome};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};

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

/// A redis-server the restore playbook started (daemonized, its pid in a file): killed when
/// the test ends.
struct Daemon(PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Seed 001's Redis (AOF + RDB) with 50 sessions, backed up with redis.backup (RDB and AOF
/// copies), then changed: a session written after the backup, ten deleted. The restore
/// playbook (with or without the AOF copy) must bring back exactly the backup.
fn restore_with_aof(with_aof_copy: bool) {
    let data = tempfile::tempdir().unwrap();
    let server = RedisServer::start_in(data.path(), &["--appendonly", "yes"]);
    for i in 0..50 {
        server.cli(&[
            "SET",
            &format!("session:{i:02}"),
            r#"{"organisationId":"org-a"}"#,
        ]);
    }
    let backup = Flow::new()
        .playbook(&format!(
            "flow: 1\nsteps:\n  backup:\n    type: redis.backup\n    with: {{ url: \"{}\", dest: backups/redis.rdb }}\n",
            server.url()
        ))
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    backup.code(0);
    assert!(backup.exists("backups/redis.aof"), "{}", backup.context());
    server.cli(&["SET", "session:after-backup", "{}"]);
    for i in 0..10 {
        server.cli(&["DEL", &format!("session:{i:02}")]);
    }
    assert_eq!(server.cli(&["DBSIZE"]), "41");

    let port = server.port().to_string();
    let dir = data.path().display().to_string();
    let pidfile = data.path().join("restored.pid");
    let _daemon = Daemon(pidfile.clone());
    let stop = format!("stop=[redis-cli, -p, '{port}', shutdown, nosave]");
    let start = format!(
        "start=[redis-server, --port, '{port}', --bind, 127.0.0.1, --dir, '{dir}', --appendonly, 'yes', --save, '', --daemonize, 'yes', --pidfile, '{}']",
        pidfile.display()
    );
    let rdb = backup.path("backups/redis.rdb").display().to_string();
    let aof = if with_aof_copy {
        backup.path("backups/redis.aof").display().to_string()
    } else {
        String::new()
    };
    let restore = playbook("prospectflow/redis-restore.yaml");
    let args = [
        "apply",
        restore.as_str(),
        "--yes",
        "-p",
        &format!("url={}", server.url()),
        "-p",
        &format!("backup={rdb}"),
        "-p",
        &format!("aof={aof}"),
        "-p",
        &stop,
        "-p",
        &start,
        "-p",
        "present_key=session:00",
        "-p",
        "absent_key=session:after-backup",
    ];
    let out = Flow::new().args(&args).run();
    out.code(0)
        .stdout_has("restored ")
        .stdout_has(": 41 keys before, 50 now (AOF on)");
    // The server serves the backup: 50 sessions, session:00 back, the later one gone …
    assert_eq!(server.cli(&["DBSIZE"]), "50");
    assert_eq!(
        server.cli(&["EXISTS", "session:00", "session:after-backup"]),
        "1"
    );
    // … and keeps serving it after another restart (it is in its AOF now).
    server.cli(&["SET", "session:after-restore", "{}"]);
    std::process::Command::new("redis-cli")
        .args(["-p", &port, "shutdown"])
        .status()
        .unwrap();
    let again = RedisServer::start_on(server.port(), &["--dir", &dir, "--appendonly", "yes"]);
    assert_eq!(again.cli(&["DBSIZE"]), "51");
    assert_eq!(
        again.cli(&["EXISTS", "session:00", "session:after-restore"]),
        "2"
    );
}

#[test]
fn restore_brings_an_rdb_backup_back_into_a_redis_running_aof() {
    restore_with_aof(false);
}

#[test]
fn restore_brings_the_aof_copy_of_a_backup_back() {
    restore_with_aof(true);
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

#[test]
fn prospectflow_backup_warns_without_aof_and_copies_the_rdb() {
    let server = RedisServer::start_with(&["--dbfilename", "dump.rdb"]);
    server.cli(&["SET", "session:a", "{}"]);
    let ran = Flow::new()
        .args(&[
            "apply",
            &playbook("prospectflow/redis-backup.yaml"),
            "-p",
            &format!("url={}", server.url()),
            "-p",
            "dest=backup/redis-%Y%m%d.rdb",
        ])
        .run();
    ran.code(0).stderr_has("warning: step `aof`: AOF is off");
    let copies: Vec<_> = std::fs::read_dir(ran.path("backup"))
        .expect("backup folder")
        .collect();
    assert_eq!(copies.len(), 1);
    let copy = copies[0].as_ref().unwrap().path();
    assert!(std::fs::read(&copy).unwrap().starts_with(b"REDIS"));
    ran.stdout_has(&format!("{}", std::fs::metadata(&copy).unwrap().len()));
}
