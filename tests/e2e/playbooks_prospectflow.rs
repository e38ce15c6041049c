//! Seed 001 (ProspectFlow) in the environment its team runs: Redis 7 (AOF + RDB) in the
//! docker-compose container of infra/redis, its /data the host's infra/redis/data — played by
//! the docker stand-in (tests/fixtures/docker). The shipped backup, restore, persistence and
//! incident playbooks run with their defaults in a copy of that layout, and the tests look at
//! the state afterwards: what Redis serves, what the data folder holds, what the container
//! does. Production moves: sessions are written while and after the backup is taken.

use crate::common::docker::DockerHost;
use crate::common::redis::{RedisServer, raw_command};
use crate::common::{Flow, Ran};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn playbook(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks/prospectflow")
        .join(name)
        .display()
        .to_string()
}

fn sessions(host: &DockerHost, count: usize) {
    for i in 0..count {
        host.cli(&[
            "SET",
            &format!("session:{i:02}"),
            &format!(r#"{{"organisationId":"org-a","n":{i}}}"#),
        ]);
    }
}

/// The one file (or folder) in `dir` whose name ends with `suffix`.
fn only(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{suffix} in {}: {found:?}", dir.display());
    found.into_iter().next().unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A live service: `live:0`, `live:1`, … written one after the other until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (flag, count) = (Arc::clone(&stop), Arc::clone(&written));
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let n = count.load(Ordering::Relaxed);
                if raw_command(port, None, &["SET", &format!("live:{n}"), "x"]).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Writer {
            stop,
            written,
            thread: Some(thread),
        }
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("writer");
        }
        self.written()
    }
}

/// The numbers of the `live:N` keys Redis holds, sorted.
fn live_keys(host: &DockerHost) -> Vec<u64> {
    let mut numbers: Vec<u64> = host
        .cli(&["KEYS", "live:*"])
        .lines()
        .filter_map(|k| k.strip_prefix("live:")?.parse().ok())
        .collect();
    numbers.sort();
    numbers
}

fn backup(host: &DockerHost) -> (Ran, PathBuf, PathBuf) {
    let ran = host.flow(&["apply", &playbook("redis-backup.yaml"), "--yes"]);
    ran.code(0)
        .stdout_has("saved ")
        .stdout_has(" and the AOF files to backup/");
    let rdb = only(&host.path("backup"), ".rdb");
    let aof = only(&host.path("backup"), ".aof");
    (ran, rdb, aof)
}

fn restore(host: &DockerHost, extra: &[&str]) -> Ran {
    let restore = playbook("redis-restore.yaml");
    let mut args = vec!["apply", restore.as_str(), "--yes", "-v"];
    args.extend_from_slice(extra);
    host.flow(&args)
}

#[test]
fn backup_and_restore_round_trip_through_the_bind_mount_while_production_moves() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 50);
    let writer = Writer::start(host.port);
    while writer.written() < 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before_backup = writer.written();
    let (_, rdb, aof) = backup(&host);
    // The backup was read from the bind mount, not from CONFIG GET dir (/data).
    assert!(std::fs::read(&rdb).unwrap().starts_with(b"REDIS"));
    assert!(aof.join("appendonly.aof.manifest").is_file());
    // Production goes on after the backup.
    while writer.written() < before_backup + 200 {
        std::thread::sleep(Duration::from_millis(5));
    }
    host.cli(&["SET", "session:after-backup", "{}"]);
    for i in 0..10 {
        host.cli(&["DEL", &format!("session:{i:02}")]);
    }
    let total_written = writer.stop();

    let rdb_param = format!("backup={}", rdb.display());
    let aof_param = format!("aof={}", aof.display());
    let ran = restore(
        &host,
        &[
            "-p",
            &rdb_param,
            "-p",
            &aof_param,
            "-p",
            "present_key=session:00",
            "-p",
            "absent_key=session:after-backup",
        ],
    );
    ran.code(0)
        .stdout_has("is the container's /data")
        .stdout_has(" Container redis  Stopped")
        .stdout_has("placed the backup in ")
        .stdout_has("restored ");
    // Redis serves the backup: the 50 sessions, not the later one, and the live keys as they
    // were at one instant during the backup (a prefix: nothing later, nothing missing).
    assert_eq!(host.cli(&["EXISTS", "session:00", "session:09"]), "2");
    assert_eq!(host.cli(&["EXISTS", "session:after-backup"]), "0");
    let live = live_keys(&host);
    let expected: Vec<u64> = (0..live.len() as u64).collect();
    assert_eq!(live, expected, "the restored live keys are not one instant");
    assert!(
        live.len() as u64 >= before_backup && (live.len() as u64) < total_written,
        "{} live keys restored; {before_backup} before the backup, {total_written} in all",
        live.len()
    );
    // The replaced files are kept, and the restored ones are in the AOF: they survive a
    // restart of the container.
    let kept = names_in(&host.data_dir());
    assert!(
        kept.iter()
            .any(|n| n.starts_with("dump.rdb.before-restore-"))
            && kept
                .iter()
                .any(|n| n.starts_with("appendonlydir.before-restore-")),
        "{kept:?}"
    );
    let keys = host.cli(&["DBSIZE"]);
    host.compose(&["restart", "redis"]).code(0);
    host.wait_ready();
    assert_eq!(host.cli(&["DBSIZE"]), keys);
    assert_eq!(host.cli(&["EXISTS", "session:after-backup"]), "0");
}

#[test]
fn a_restore_from_an_rdb_alone_rebuilds_the_aof_redis_7_loads() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 5);
    let (_, rdb, _) = backup(&host);
    host.cli(&["FLUSHALL"]);
    host.cli(&["SET", "after", "1"]);
    let rdb_param = format!("backup={}", rdb.display());
    restore(&host, &["-p", &rdb_param, "-p", "absent_key=after"])
        .code(0)
        .stdout_has("staged a fresh AOF in appendonlydir/ whose base is the backup")
        .stdout_has(": 1 keys before, 5 now (AOF on)");
    host.compose(&["restart", "redis"]).code(0);
    host.wait_ready();
    assert_eq!(host.cli(&["DBSIZE"]), "5");
}

/// An RDB file of about 1.5 MB (random, so it does not compress), made by a plain
/// redis-server.
fn big_rdb(dir: &Path) -> PathBuf {
    let server = RedisServer::start_in(dir, &["--dbfilename", "big.rdb"]);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let value: String = (0..1_500_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    server.cli(&["SET", "session:big", &value]);
    server.cli(&["SAVE"]);
    let path = dir.join("big.rdb");
    assert!(std::fs::metadata(&path).unwrap().len() > 1_200_000);
    path
}

#[test]
fn a_restore_whose_copy_fails_starts_redis_again_and_says_why_in_one_line() {
    let big = tempfile::tempdir().unwrap();
    let backup = big_rdb(big.path());
    // Production's data folder is on a 1 MiB disk: the 1.5 MB backup does not fit.
    let host = DockerHost::with_small_data_disk(1 << 20);
    host.up();
    host.cli(&["SET", "session:live", "{}"]);
    let backup_param = format!("backup={}", backup.display());
    let ran = restore(&host, &["-p", &backup_param]);
    ran.code(1);
    // The error says what failed, in one line, in the summary and at the end.
    let place = ran
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("place ") && l.contains("failed"))
        .unwrap_or_else(|| panic!("no failed `place` in the summary\n{}", ran.context()));
    assert!(
        place.contains("cannot copy ") && place.contains("No space left on device"),
        "{place}"
    );
    let last = ran
        .stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.starts_with("Run failed") && last.contains("No space left on device"),
        "{}",
        ran.context()
    );
    assert!(!ran.stdout.contains("set -eu"), "{}", ran.context());
    ran.stdout_has("Redis is running again with the files it had: the restore failed at `place`")
        .stderr_lacks("warning");
    // The session store runs, with the data it had; nothing was moved, nothing is left over.
    assert!(
        host.answers(),
        "Redis must be running after a failed restore"
    );
    assert_eq!(host.cli(&["EXISTS", "session:live"]), "1");
    assert_eq!(host.inspect("{{.State.Status}}"), "running");
    assert_eq!(names_in(&host.data_dir()), ["appendonlydir", "dump.rdb"]);
}

#[test]
fn a_data_dir_that_is_not_the_containers_stops_nothing() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 3);
    let (_, rdb, _) = backup(&host);
    let started = host.inspect("{{.State.StartedAt}}");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(&rdb, elsewhere.path().join("dump.rdb")).unwrap();
    let rdb_param = format!("backup={}", rdb.display());
    let dir_param = format!("data_dir={}", elsewhere.path().display());
    let ran = restore(&host, &["-p", &rdb_param, "-p", &dir_param]);
    ran.code(1)
        .stdout_has("is not the folder Redis sees as /data")
        .stdout_has("pass -p data_dir=<the host side of its bind mount>");
    assert_eq!(
        host.inspect("{{.State.StartedAt}}"),
        started,
        "Redis was stopped"
    );
    host.docker(&["logs", "redis"])
        .code(0)
        .stdout_lacks("Received SIGTERM");
    assert_eq!(
        names_in(elsewhere.path()),
        ["dump.rdb"],
        "the marker is removed"
    );
    assert_eq!(host.cli(&["DBSIZE"]), "3");
}

#[test]
fn backup_copies_from_the_bind_mount_and_refuses_a_folder_redis_does_not_write() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 3);
    // redis.backup without data_dir looks where CONFIG GET dir says — /data, the container's
    // view — and says what to give.
    Flow::new()
        .playbook(&format!(
            "flow: 1\nsteps:\n  backup:\n    type: redis.backup\n    with: {{ url: \"{}\", dest: copy.rdb }}\n",
            host.url()
        ))
        .args(&["apply", "playbook.yaml", "--yes"])
        .run()
        .code(1)
        .stdout_has("cannot copy the backup: /data/dump.rdb is not readable on this machine")
        .stdout_has("`data_dir` names the folder this machine sees as the server's `dir`");
    // A data_dir holding an old dump.rdb that Redis does not write: refused, not copied.
    let stale = tempfile::tempdir().unwrap();
    std::fs::write(stale.path().join("dump.rdb"), b"REDIS0011 old").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(stale.path().join("dump.rdb"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let dir_param = format!("data_dir={}", stale.path().display());
    host.flow(&[
        "apply",
        &playbook("redis-backup.yaml"),
        "--yes",
        "-p",
        &dir_param,
    ])
    .code(1)
    .stdout_has("s before this save finished")
    .stdout_has("it is not the file the server saves");
    assert!(!host.path("backup").exists() || names_in(&host.path("backup")).is_empty());
}

#[test]
fn backup_warns_when_aof_is_off_and_copies_the_rdb_alone() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 3);
    host.cli(&["CONFIG", "SET", "appendonly", "no"]);
    let ran = host.flow(&[
        "apply",
        &playbook("redis-backup.yaml"),
        "--yes",
        "-p",
        "dest=backup/redis-%Y%m%d.rdb",
    ]);
    ran.code(0).stderr_has("warning: step `aof`: AOF is off");
    assert_eq!(names_in(&host.path("backup")).len(), 1, "no AOF copy");
    let copy = only(&host.path("backup"), ".rdb");
    assert!(std::fs::read(&copy).unwrap().starts_with(b"REDIS"));
    ran.stdout_has(&format!(
        "saved {} bytes",
        std::fs::metadata(&copy).unwrap().len()
    ));
}

#[test]
fn persistence_shows_the_last_rewrite_and_warns_when_aof_is_off() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 3);
    host.cli(&["BGREWRITEAOF"]);
    // Redis counts a rewrite in `aof_rewrites` when it starts it (and may schedule it behind
    // another): wait until it has finished, and say so if it never does.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let finished = |info: &str| {
        info.contains("aof_rewrites:1")
            && info.contains("aof_rewrite_in_progress:0")
            && info.contains("aof_rewrite_scheduled:0")
            && !info.contains("aof_last_rewrite_time_sec:-1")
    };
    while !finished(&host.cli(&["INFO", "persistence"])) {
        assert!(
            std::time::Instant::now() < deadline,
            "BGREWRITEAOF did not finish within 60 s"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let ran = host.flow(&["apply", &playbook("redis-persistence.yaml")]);
    ran.code(0)
        .stdout_has("last AOF rewrite   ")
        .stdout_has(" UTC, 1 since Redis started, the last took ")
        .stdout_has(" s, status ok")
        .stdout_has("AOF                on")
        .stdout_has("appendonlydir/:")
        .stdout_has("appendonly.aof.manifest")
        .stderr_lacks("warning");
    host.cli(&["CONFIG", "SET", "appendonly", "no"]);
    host.flow(&["apply", &playbook("redis-persistence.yaml")])
        .code(0)
        .stdout_has("AOF                off")
        .stderr_has("warning: step `aof`: AOF is off (the runbook expects aof_enabled:1)");
}

fn incident(host: &DockerHost, extra: &[&str]) -> Ran {
    let path = playbook("redis-incident.yaml");
    let mut args = vec!["apply", path.as_str(), "-v"];
    args.extend_from_slice(extra);
    host.flow(&args)
}

#[test]
fn incident_report_shows_container_stats_memory_disk_logs_slow_log_and_big_keys() {
    let host = DockerHost::new();
    host.up();
    host.cli(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    sessions(&host, 12);
    host.cli(&["SET", "session:huge", &"x".repeat(100_000)]);
    let ran = incident(&host, &[]);
    ran.code(0)
        .stdout_has("redis   redis:7-alpine")
        .stdout_has("MEM USAGE / LIMIT")
        .stdout_has(" / 300MiB ")
        .stdout_has("Mem:")
        .stdout_has("Filesystem")
        .stdout_has("container     running, exit code 0, 0 restarts")
        .stdout_has("PING          PONG")
        .stdout_has(" MiB used, peak ")
        .stdout_has("limit 256.0 MiB")
        .stdout_has("policy allkeys-lru")
        .stdout_has("keys          13")
        .stdout_has("AOF check     valid")
        .stdout_has("redis  | ")
        .stdout_has("Ready to accept connections")
        .stdout_has("SLOWLOG GET 10: 10 entries")
        .stdout_has("µs: SET session:huge")
        .stdout_has("Biggest string found '\"session:huge\"' has ");
    ran.stdout_has("container  running")
        .stdout_has("aof        valid");
}

#[test]
fn incident_report_of_a_stopped_redis_still_shows_its_container_logs_and_aof() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 2);
    host.compose(&["stop", "redis"]).code(0);
    incident(&host, &[])
        .code(0)
        .stdout_has("container     exited, exit code 0")
        .stdout_has("PING          no answer: ")
        .stdout_has("Redis is now ready to exit, bye bye")
        .stdout_has("AOF check     valid")
        .stdout_has("Redis does not answer PING");
}

/// Damages the last command of the AOF's incremental file (as a crash mid-write with a
/// corrupting disk would): Redis refuses to load it.
fn damage_the_aof(host: &DockerHost) {
    let dir = host.data_dir().join("appendonlydir");
    let incr = only(&dir, ".incr.aof");
    let mut bytes = std::fs::read(&incr).unwrap();
    let at = bytes.len() - 12;
    bytes.splice(at..at, b"GARBAGE!".iter().copied());
    std::fs::write(&incr, bytes).unwrap();
}

#[test]
fn incident_repairs_a_damaged_aof_on_a_copy_after_a_confirmation() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 10);
    host.cli(&["SET", "last-write", "damaged"]);
    host.compose(&["stop", "redis"]).code(0);
    damage_the_aof(&host);
    host.compose(&["start", "redis"]).code(0);
    // Redis cannot load it; `restart: unless-stopped` keeps starting it again.
    for _ in 0..200 {
        if host.inspect("{{.RestartCount}}") != "0" {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_ne!(host.inspect("{{.RestartCount}}"), "0");
    assert!(!host.answers());
    // Without an approval nothing is touched.
    let asked = incident(&host, &["-p", "repair_aof=true"]);
    asked
        .code(3)
        .stdout_has("AOF check     DAMAGED")
        .stdout_has("is not valid. Use the --fix option")
        .stdout_has("--approve repair_go_ahead");
    assert_eq!(names_in(&host.data_dir()), ["appendonlydir", "dump.rdb"]);
    // Approved: repaired on a copy, swapped in, Redis runs with what came before the damage.
    let ran = incident(&host, &["-p", "repair_aof=true", "--yes"]);
    ran.code(0)
        .stdout_has("kept the damaged AOF as appendonlydir.corrupt-")
        .stdout_has("Redis answers again with 10 keys");
    host.wait_ready();
    assert_eq!(host.cli(&["EXISTS", "session:00", "session:09"]), "2");
    assert_eq!(
        host.cli(&["EXISTS", "last-write"]),
        "0",
        "cut at the damage"
    );
    let names = names_in(&host.data_dir());
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("appendonlydir.corrupt-")),
        "{names:?}"
    );
    host.check_aof("/data/appendonlydir/appendonly.aof.manifest", "")
        .code(0);
}

#[test]
fn incident_restarts_the_container_when_asked() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 4);
    let started = host.inspect("{{.State.StartedAt}}");
    incident(&host, &["-p", "action=restart"])
        .code(3)
        .stdout_has("--approve restart");
    assert_eq!(host.inspect("{{.State.StartedAt}}"), started);
    incident(&host, &["-p", "action=restart", "--yes"])
        .code(0)
        .stdout_has(" Container redis  Restarting")
        .stdout_has("Redis answers again with 4 keys");
    assert_ne!(host.inspect("{{.State.StartedAt}}"), started);
}

/// The runbook's "recreate container": `down` removes the container, `up -d` makes a new one
/// on the same bind-mounted data, and Redis answers again with the sessions it had.
#[test]
fn incident_recreates_the_container_on_its_data_when_asked() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 4);
    host.cli(&["SAVE"]);
    let id = host.inspect("{{.Id}}");
    incident(&host, &["-p", "action=recreate", "--yes"])
        .code(0)
        .stdout_has("✔ recreate_down")
        .stdout_has("✔ recreate_up")
        .stdout_has("Redis answers again with 4 keys");
    assert_ne!(host.inspect("{{.Id}}"), id, "a new container");
}

fn session_store() -> RedisServer {
    let server = RedisServer::start();
    for i in 0..25 {
        server.cli(&[
            "SET",
            &format!("session:s{i:02}"),
            r#"{"organisationId":"org-x"}"#,
        ]);
    }
    server.cli(&["SET", "other", "1"]);
    server
}

#[test]
fn session_inspect_lists_every_session_one_a_line_when_asked() {
    let server = session_store();
    let url = format!("url={}", server.url());
    let inspect = playbook("session-inspect.yaml");
    let all = Flow::new()
        .args(&["apply", &inspect, "-p", &url, "-p", "all=true"])
        .run();
    all.code(0).stdout_has("25 keys match session:*:");
    for i in 0..25 {
        all.stdout_has(&format!("│ listing: session:s{i:02}\n"));
    }
    Flow::new()
        .args(&["apply", &inspect, "-p", &url])
        .run()
        .code(0)
        .stdout_has("25 keys match session:*: session:s00, ")
        .stdout_has("session:s19 …")
        .stdout_lacks("session:s20");
}

#[test]
fn session_purge_prints_each_deleted_key_when_asked() {
    let server = session_store();
    let url = format!("url={}", server.url());
    let ran = Flow::new()
        .args(&[
            "apply",
            &playbook("session-purge.yaml"),
            "--yes",
            "-p",
            &url,
            "-p",
            "mode=all",
            "-p",
            "print_deleted=true",
        ])
        .run();
    ran.code(0).stdout_has("deleted 25 of 25 matching sessions");
    for i in 0..25 {
        ran.stdout_has(&format!("deleted_keys: deleted session:s{i:02}\n"));
    }
    assert_eq!(server.keys("*"), ["other"]);
}

#[test]
fn incident_with_a_password_reaches_redis_in_and_out_of_the_container_and_never_shows_it() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 3);
    host.cli(&["CONFIG", "SET", "requirepass", "s3cret-pw-42"]);
    let ran = incident(&host, &["-p", "password=s3cret-pw-42"]);
    ran.code(0)
        .stdout_has("PING          PONG")
        .stdout_has("keys          3")
        .stdout_has("Biggest string found '\"session:");
    assert!(!ran.both().contains("s3cret-pw-42"), "{}", ran.context());
}

/// The health report through the published port: the container's redis.conf is the
/// runbook's (256 MB, allkeys-lru, AOF), so no setting is flagged.
#[test]
fn health_report_of_the_compose_redis_finds_the_runbooks_settings() {
    let host = DockerHost::new();
    host.up();
    sessions(&host, 3);
    host.flow(&["apply", &playbook("redis-health.yaml")])
        .code(0)
        .stdout_has("maxmemory           256.0 MiB")
        .stdout_has("maxmemory_policy    allkeys-lru")
        .stdout_has("aof_enabled         true")
        .stderr_lacks("warning: step `memory_limit`")
        .stderr_lacks("warning: step `eviction_policy`");
}
