//! The shipped playbooks of seed 002 (October: Redis backup and restore in Kubernetes), end to
//! end against the `kubectl` stand-in (tests/fixtures/k8s): Redis is a real redis-server in a
//! pod of the `redis` Deployment (label app=redis, its data on a volume at /data, reachable
//! only through kubectl), beside a `worker` Deployment of 2 replicas. Production moves: the
//! tests write to Redis after the backup, as the live service does.

use crate::common::k8s::{Cluster, deployment, redis_deployment};
use crate::common::{Flow, Outcome};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn playbook(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks/october")
        .join(path)
        .display()
        .to_string()
}

/// October's cluster: `deploy/redis` (RDB snapshots, Redis's default save points) and
/// `deploy/worker` with 2 replicas.
fn october() -> Cluster {
    Cluster::start(&[
        redis_deployment("october", "redis", json!({ "app": "redis" }), &[]),
        deployment("october", "worker", 2, &["sleep", "infinity"]),
    ])
}

fn cli(cluster: &Cluster, args: &[&str]) -> String {
    cluster.redis_cli("october", "deploy/redis", args)
}

fn workers(cluster: &Cluster) -> String {
    cluster.replicas("october", "worker")
}

fn backup(cluster: &Cluster, out: &Path) -> Outcome {
    cluster
        .flow(Flow::new())
        .args(&[
            "apply",
            &playbook("redis-backup.yaml"),
            "--yes",
            "-p",
            &format!("out_dir={}", out.display()),
        ])
        .run()
}

fn backups(out: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn restore(cluster: &Cluster, file: &Path, extra: &[&str]) -> Outcome {
    let backup = format!("backup={}", file.display());
    let restore = playbook("redis-restore.yaml");
    let mut args = vec!["apply", restore.as_str(), "-p", backup.as_str()];
    args.extend_from_slice(extra);
    cluster.flow(Flow::new()).args(&args).run()
}

#[test]
fn october_backup_writes_a_private_copy_of_the_pods_rdb_without_a_port_forward_by_hand() {
    let cluster = october();
    cli(&cluster, &["SET", "test-backup", "original"]);
    let out = tempfile::tempdir().unwrap();
    let ran = backup(&cluster, out.path());
    ran.code(0);
    let files = backups(out.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        regex::Regex::new(r"^redis-backup-\d{8}_\d{6}\.rdb$")
            .unwrap()
            .is_match(&name),
        "{name}"
    );
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "backups may hold sensitive data (seed 002)");
    let bytes = std::fs::read(&files[0]).unwrap();
    assert!(bytes.starts_with(b"REDIS"), "not an RDB file");
    ran.stdout_has(&format!("bytes     {}", bytes.len()));
    // flow started the port-forward itself, and nothing of it is left.
    assert!(
        cluster.calls().contains("port-forward"),
        "{}",
        cluster.calls()
    );
    assert!(cluster.until(|| cluster.kubectl_processes().is_empty()));
}

/// The runbook's end-to-end test, with a production that moves: a key written, the backup,
/// then the key changed and others written and deleted; the restore brings back exactly the
/// backup — after the container's restart, through a new port-forward — and the workers.
#[test]
fn october_restore_brings_the_backup_back_after_the_restart_and_the_workers_too() {
    let cluster = october();
    cli(&cluster, &["SET", "test-backup", "original"]);
    for i in 0..10 {
        cli(&cluster, &["SET", &format!("job:{i}"), "queued"]);
    }
    let out = tempfile::tempdir().unwrap();
    backup(&cluster, out.path()).code(0);
    let file = backups(out.path()).remove(0);
    // Production goes on.
    cli(&cluster, &["SET", "test-backup", "modified"]);
    cli(&cluster, &["SET", "added-later", "x"]);
    cli(&cluster, &["DEL", "job:0", "job:1"]);
    let pod = cluster.pods("october", "app=redis").remove(0);

    restore(&cluster, &file, &["--approve", "go_ahead"])
        .code(0)
        .stdout_has("restored 11 keys, test-backup = original");
    // Redis was restarted in its pod (the kubelet restarts the container) on the file.
    let (_, _, restarts, _) = cluster.pod("october", &pod).expect("the same pod");
    assert_eq!(restarts, 1);
    assert_eq!(cli(&cluster, &["GET", "test-backup"]), "original");
    assert_eq!(
        cli(&cluster, &["EXISTS", "added-later", "job:0", "job:1"]),
        "2"
    );
    assert_eq!(cli(&cluster, &["DBSIZE"]), "11");
    // The restarted Redis saves again (its own save points, not the restore's "").
    assert_eq!(
        cli(&cluster, &["CONFIG", "GET", "save"]),
        "save\n3600 1 300 100 60 10000"
    );
    assert_eq!(workers(&cluster), "2", "workers must be scaled back");
    assert!(
        cluster
            .calls()
            .contains("-n october scale deploy/worker --replicas=0"),
        "{}",
        cluster.calls()
    );
    assert!(cluster.until(|| cluster.kubectl_processes().is_empty()));
}

#[test]
fn a_failed_restore_still_scales_the_workers_back_and_redis_saves_again() {
    let cluster = october();
    cli(&cluster, &["SET", "test-backup", "current"]);
    let file = cluster.dir().join("some-backup.rdb");
    std::fs::write(&file, "REDIS0011").expect("backup file");
    let ran = cluster
        .flow(Flow::new())
        .env("FAKE_K8S_FAIL", "cp")
        .args(&[
            "apply",
            &playbook("redis-restore.yaml"),
            "-p",
            &format!("backup={}", file.display()),
            "--yes",
        ])
        .run();
    ran.code(1)
        .stdout_has("cp failed")
        .stdout_has("workers_back");
    assert_eq!(workers(&cluster), "2", "the finally step scales them back");
    assert_eq!(cli(&cluster, &["GET", "test-backup"]), "current");
    // The undo of `no_saves` gave Redis its save points back.
    assert_eq!(
        cli(&cluster, &["CONFIG", "GET", "save"]),
        "save\n3600 1 300 100 60 10000"
    );
}

#[test]
fn a_declined_restore_leaves_workers_and_data_alone() {
    let cluster = october();
    cli(&cluster, &["SET", "test-backup", "current"]);
    let file = cluster.dir().join("some-backup.rdb");
    std::fs::write(&file, "REDIS0011").expect("backup file");
    restore(&cluster, &file, &[])
        .code(3)
        .stdout_has("--approve go_ahead");
    assert_eq!(workers(&cluster), "2");
    assert_eq!(cli(&cluster, &["GET", "test-backup"]), "current");
    assert!(!cluster.calls().contains("scale"), "{}", cluster.calls());
}

#[test]
fn october_list_backups_shows_them_newest_first_and_warns_with_the_age_of_the_newest() {
    let flow = Flow::new()
        .file("backups/redis-backup-20251024_180500.rdb", "old")
        .file("backups/redis-backup-20251025_180500.rdb", "newer")
        .file("backups/notes.txt", "not a backup");
    let dir = flow.dir.path().to_path_buf();
    let age = |name: &str, hours: u64| {
        let path = dir.join("backups").join(name);
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(hours * 3600);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    };
    age("redis-backup-20251024_180500.rdb", 72);
    age("redis-backup-20251025_180500.rdb", 50);
    let out = flow
        .args(&[
            "apply",
            &playbook("redis-list-backups.yaml"),
            "-p",
            "out_dir=backups",
        ])
        .run();
    out.code(0)
        .stdout_has("2 backups in ")
        .stderr_has(
            "warning: step `fresh`: the newest backup, redis-backup-20251025_180500.rdb, is 50h old (more than 24h)",
        )
        .stdout_lacks("notes.txt");
    let newer = out.stdout.find("redis-backup-20251025").expect("listed");
    let older = out.stdout.find("redis-backup-20251024").expect("listed");
    assert!(newer < older, "not newest first:\n{}", out.stdout);
    Flow::new()
        .args(&[
            "apply",
            &playbook("redis-list-backups.yaml"),
            "-p",
            "out_dir=none",
        ])
        .run()
        .code(0)
        .stderr_has("warning: step `fresh`: no backup in ");
}

/// Retention is its own playbook: nothing is pruned unless asked, the plan lists each file it
/// deletes, and the apply deletes exactly those.
#[test]
fn october_prune_lists_what_it_deletes_and_deletes_only_that() {
    let mut flow = Flow::new().file("backups/notes.txt", "not a backup");
    let names = [
        "redis-backup-20250101_000000.rdb",
        "redis-backup-20250102_000000.rdb",
        "redis-backup-20250103_000000.rdb",
        "redis-backup-20250104_000000.rdb",
    ];
    for name in names {
        flow = flow.file(&format!("backups/{name}"), "REDIS");
    }
    for (i, name) in names.iter().enumerate() {
        let when =
            std::time::SystemTime::now() - std::time::Duration::from_secs(86400 * (10 - i as u64));
        std::fs::File::options()
            .write(true)
            .open(flow.path("backups").join(name))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    let dir = flow.dir.path().to_path_buf();
    let prune = playbook("redis-prune-backups.yaml");
    let plan = crate::common::run::flow(
        &dir,
        &["plan", &prune, "-p", "out_dir=backups", "-p", "keep=2"],
        &[],
    );
    plan.code(0)
        .stdout_has("delete 2 of `redis-backup-*.rdb` in ")
        .stdout_has("/backups (keep the newest 2; 2 kept)")
        .stdout_has("redis-backup-20250101_000000.rdb")
        .stdout_has("redis-backup-20250102_000000.rdb")
        .stdout_lacks("redis-backup-20250103_000000.rdb");
    crate::common::run::flow(
        &dir,
        &[
            "plan",
            &prune,
            "-p",
            "out_dir=backups",
            "-p",
            "older_than=8d",
        ],
        &[],
    )
    .code(0)
    .stdout_has("delete 3 of `redis-backup-*.rdb` in ")
    .stdout_has("(older than 8d; 1 kept)");
    crate::common::run::flow(&dir, &["apply", &prune, "-p", "out_dir=backups"], &[])
        .code(1)
        .stdout_has("say what to keep: -p keep=24");
    crate::common::run::flow(
        &dir,
        &[
            "apply",
            &prune,
            "-p",
            "out_dir=backups",
            "-p",
            "keep=2",
            "--yes",
        ],
        &[],
    )
    .code(0);
    let mut left: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "notes.txt",
            "redis-backup-20250103_000000.rdb",
            "redis-backup-20250104_000000.rdb"
        ]
    );
}
