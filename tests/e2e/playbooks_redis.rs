//! The shipped playbooks of seeds 001 (ProspectFlow session store: health and sessions; its
//! backup, restore and incident playbooks run against its docker-compose container in
//! playbooks_prospectflow.rs) and 002 (October backup and restore), end to end against real
//! redis-server processes on 127.0.0.1. The cluster
//! side of seed 002 goes through `kubectl`, played by tests/fixtures/k8s/kubectl, which acts
//! on local processes: a redis-server restarted after SHUTDOWN as a ReplicaSet would, and the
//! worker Deployment's replica count in a file.

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

#[test]
fn october_list_backups_shows_them_newest_first_and_warns_when_the_newest_is_old() {
    let flow = Flow::new()
        .file("backups/redis-backup-20251024_180500.rdb", "old")
        .file("backups/redis-backup-20251025_180500.rdb", "newer")
        .file("backups/notes.txt", "not a backup");
    let dir = flow.dir.path().to_path_buf();
    let age = |name: &str, days: &str| {
        let status = std::process::Command::new("touch")
            .args([
                "-d",
                days,
                &dir.join("backups").join(name).display().to_string(),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    };
    age("redis-backup-20251024_180500.rdb", "3 days ago");
    age("redis-backup-20251025_180500.rdb", "2 days ago");
    let list = playbook("october/redis-list-backups.yaml");
    let out = flow.args(&["apply", &list, "-p", "out_dir=backups"]).run();
    out.code(0)
        .stdout_has("2 backups in ")
        .stderr_has("warning: step `fresh`: no backup in ")
        .stdout_lacks("notes.txt");
    let newer = out
        .stdout
        .find("redis-backup-20251025")
        .expect("newer listed");
    let older = out
        .stdout
        .find("redis-backup-20251024")
        .expect("older listed");
    assert!(newer < older, "not newest first:\n{}", out.stdout);
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

/// The fake cluster of seed 002: a worker Deployment with 2 replicas and Redis as `redis-0`.
struct Cluster {
    state: tempfile::TempDir,
    redis_dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn new(server: &RedisServer) -> Self {
        let state = tempfile::tempdir().expect("cluster state");
        std::fs::write(state.path().join("worker.replicas"), "2").expect("replicas");
        Cluster {
            state,
            redis_dir: server.dir().to_path_buf(),
            port: server.port(),
        }
    }

    fn flow(&self, flow: Flow) -> Flow {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s");
        let path = format!(
            "{}:{}",
            fixtures.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        flow.env("PATH", &path)
            .env("FAKE_K8S", &self.state.path().display().to_string())
            .env("REDIS_PORT", &self.port.to_string())
            .env("REDIS_DIR", &self.redis_dir.display().to_string())
            .env("REDIS_URL", &format!("redis://127.0.0.1:{}", self.port))
    }

    fn workers(&self) -> String {
        std::fs::read_to_string(self.state.path().join("worker.replicas"))
            .expect("replicas")
            .trim()
            .to_string()
    }
}

impl Drop for Cluster {
    /// The redis-server the fake ReplicaSet started, if any.
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.state.path().join("redis.pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn backup(cluster: &Cluster, out: &Path, extra: &[&str]) -> Outcome {
    let out_dir = format!("out_dir={}", out.display());
    let mut args = vec!["apply", "--yes"];
    let path = playbook("october/redis-backup.yaml");
    args.insert(1, &path);
    args.extend(["-p", &out_dir]);
    args.extend(extra);
    cluster.flow(Flow::new()).args(&args).run()
}

#[test]
fn october_backup_copies_a_non_empty_rdb_and_keeps_the_last_n() {
    let server = RedisServer::start_with(&["--dbfilename", "dump.rdb"]);
    server.cli(&["SET", "test-backup", "original"]);
    let cluster = Cluster::new(&server);
    let out = tempfile::tempdir().expect("out");
    // Three older backups; with keep=2 only the newest two of all four stay.
    for (i, name) in [
        "redis-backup-20200101_000000.rdb",
        "redis-backup-20200102_000000.rdb",
        "redis-backup-20200103_000000.rdb",
    ]
    .iter()
    .enumerate()
    {
        let path = out.path().join(name);
        std::fs::write(&path, "old").expect("old backup");
        let age =
            std::time::SystemTime::now() - std::time::Duration::from_secs(3600 * (10 - i as u64));
        std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_modified(age)
            .expect("mtime");
    }
    let ran = backup(&cluster, out.path(), &["-p", "keep=2"]);
    ran.code(0).stdout_has("pruned    2");
    let mut left: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0], "redis-backup-20200103_000000.rdb");
    let fresh = out.path().join(&left[1]);
    assert!(std::fs::metadata(&fresh).unwrap().len() > 0);
    assert!(
        std::fs::read(&fresh).unwrap().starts_with(b"REDIS"),
        "not an RDB file"
    );
}

#[test]
fn october_backup_and_restore_bring_the_data_back_and_the_workers_too() {
    let server = RedisServer::start_with(&["--dbfilename", "dump.rdb"]);
    server.cli(&["SET", "test-backup", "original"]);
    let cluster = Cluster::new(&server);
    let out = tempfile::tempdir().expect("out");
    backup(&cluster, out.path(), &[]).code(0);
    let file = std::fs::read_dir(out.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    server.cli(&["SET", "test-backup", "modified"]);
    server.cli(&["SET", "added-later", "x"]);
    let restore = playbook("october/redis-restore.yaml");
    let backup_param = format!("backup={}", file.display());
    cluster
        .flow(Flow::new())
        .args(&[
            "apply",
            &restore,
            "-p",
            &backup_param,
            "--approve",
            "go_ahead",
        ])
        .run()
        .code(0)
        .stdout_has("restored 1 keys, test-backup = original");
    // The server the harness started was shut down; the fake ReplicaSet started another.
    let restored = crate::common::redis::raw_command(cluster.port, None, &["GET", "test-backup"])
        .expect("restored redis answers");
    assert_eq!(restored.to_text(), "original");
    let later = crate::common::redis::raw_command(cluster.port, None, &["EXISTS", "added-later"])
        .expect("EXISTS");
    assert_eq!(later.to_text(), "0");
    assert_eq!(cluster.workers(), "2", "workers must be scaled back");
    let calls = std::fs::read_to_string(cluster.state.path().join("calls.log")).unwrap();
    assert!(
        calls.contains("scale deploy/worker --replicas=0"),
        "{calls}"
    );
}

#[test]
fn a_failed_restore_still_scales_the_workers_back() {
    let server = RedisServer::start_with(&["--dbfilename", "dump.rdb"]);
    server.cli(&["SET", "test-backup", "current"]);
    let cluster = Cluster::new(&server);
    let file = cluster.state.path().join("some-backup.rdb");
    std::fs::write(&file, "REDIS0011").expect("backup file");
    let restore = playbook("october/redis-restore.yaml");
    let backup_param = format!("backup={}", file.display());
    cluster
        .flow(Flow::new())
        .env("FAKE_K8S_FAIL", "cp")
        .args(&["apply", &restore, "-p", &backup_param, "--yes"])
        .run()
        .code(1)
        .stdout_has("cp failed")
        .stdout_has("workers_back");
    assert_eq!(
        cluster.workers(),
        "2",
        "the finally step must scale the workers back"
    );
    assert_eq!(
        server.cli(&["GET", "test-backup"]),
        "current",
        "nothing was restored"
    );
}

#[test]
fn a_declined_restore_leaves_workers_and_data_alone() {
    let server = RedisServer::start_with(&["--dbfilename", "dump.rdb"]);
    server.cli(&["SET", "test-backup", "current"]);
    let cluster = Cluster::new(&server);
    let file = cluster.state.path().join("some-backup.rdb");
    std::fs::write(&file, "REDIS0011").expect("backup file");
    let restore = playbook("october/redis-restore.yaml");
    let backup_param = format!("backup={}", file.display());
    cluster
        .flow(Flow::new())
        .args(&["apply", &restore, "-p", &backup_param])
        .run()
        .code(3);
    assert_eq!(cluster.workers(), "2");
    assert_eq!(server.cli(&["GET", "test-backup"]), "current");
    let calls = std::fs::read_to_string(cluster.state.path().join("calls.log")).unwrap();
    assert!(!calls.contains("scale"), "{calls}");
}
