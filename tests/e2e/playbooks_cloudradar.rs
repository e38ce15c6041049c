//! The shipped playbooks of seed 003 (cloudradar: Redis volume backup and restore through
//! S3), end to end against a real `moto_server` and the `kubectl` stand-in
//! (tests/fixtures/k8s): Redis is the `redis` StatefulSet of namespace `data` (pod `redis-0`,
//! AOF on, its volume at /data, reachable only through kubectl). Production moves: the tests
//! write to Redis after the backup, as the ingester does. And the CI workflow shipped beside
//! the playbooks names what exists.

use crate::common::k8s::{Cluster, redis_statefulset};
use crate::common::moto::Moto;
use crate::common::{Flow, Outcome, read};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn playbook(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("playbooks/cloudradar")
        .join(path)
        .display()
        .to_string()
}

/// cloudradar's Redis: a single-replica StatefulSet with AOF, as its runbook describes.
fn cloudradar_cluster() -> Cluster {
    Cluster::start(&[redis_statefulset(
        "data",
        "redis",
        json!({ "app.kubernetes.io/name": "redis" }),
        &["--appendonly", "yes"],
    )])
}

fn cli(cluster: &Cluster, args: &[&str]) -> String {
    cluster.redis_cli("data", "redis-0", args)
}

/// The event buffer and the photo metadata cache the runbook names.
fn fill(cluster: &Cluster) {
    for i in 0..5 {
        cli(
            cluster,
            &["RPUSH", "cloudradar:events", &format!("event-{i}")],
        );
        cli(cluster, &["SET", &format!("cloudradar:photo:v1:{i}"), "{}"]);
    }
}

fn run(moto: Option<&Moto>, cluster: &Cluster, which: &str, params: &[&str]) -> Outcome {
    let mut args = vec!["apply".to_string(), playbook(which), "--yes".to_string()];
    for p in params {
        args.push("-p".into());
        args.push(p.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let flow = match moto {
        Some(moto) => moto.reach(Flow::new()),
        None => Flow::new(),
    };
    cluster
        .flow(flow)
        .env("GITHUB_STEP_SUMMARY", "summary.md")
        .args(&args)
        .run()
}

/// The verdict, as printed at the end (`label` padded as the outputs are) and in the step
/// summary.
fn verdict_is(out: &Outcome, label: &str, verdict: &str) {
    out.stdout_has(&format!("{label}{verdict}"));
    let summary = read(&out.path("summary.md"));
    assert!(
        summary.contains(&format!("| verdict | {verdict}")),
        "{summary}"
    );
}

/// The nightly backup of `cluster` to the bucket `radar-backups`.
fn backup_to(moto: &Moto, cluster: &Cluster) {
    run(
        Some(moto),
        cluster,
        "redis-backup.yaml",
        &["bucket=radar-backups", "work_dir=work"],
    )
    .code(0);
}

/// An old backup folder as the playbook (and the seed's script) leaves it.
fn old_backup(moto: &Moto, bucket: &str, ts: &str) {
    moto.boto(&format!(
        "for k in ['cloudradar-redis-data-{ts}.tgz', 'cloudradar-redis-data-{ts}.tgz.sha256']:\n\
         \x20   s3.put_object(Bucket='{bucket}', Key='redis-backups/{ts}/' + k, Body=b'old')"
    ));
}

fn put(moto: &Moto, bucket: &str, key: &str) {
    moto.boto(&format!(
        "s3.put_object(Bucket='{bucket}', Key='{key}', Body=b'by hand')"
    ));
}

/// The dated folders under redis-backups/, in order.
fn dated_folders(keys: &[String]) -> Vec<String> {
    let dated = regex::Regex::new(r"^redis-backups/(\d{8}T\d{6}Z)/").unwrap();
    let mut folders: Vec<String> = keys
        .iter()
        .filter_map(|k| dated.captures(k).map(|c| c[1].to_string()))
        .collect();
    folders.dedup();
    folders
}

#[test]
fn cloudradar_backup_uploads_the_archive_and_its_checksum_and_keeps_the_last_3_backups() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    for ts in ["20250101T000000Z", "20250102T000000Z", "20250103T000000Z"] {
        old_backup(&moto, "radar-backups", ts);
    }
    let cluster = cloudradar_cluster();
    fill(&cluster);
    let out = run(
        Some(&moto),
        &cluster,
        "redis-backup.yaml",
        &["bucket=radar-backups", "work_dir=work"],
    );
    out.code(0)
        .stdout_has("verdict          RUN")
        .stdout_has("keys             6")
        .stdout_has("removed_backups  [\"redis-backups/20250101T000000Z\"]");
    assert!(
        cluster
            .calls()
            .contains("-n data exec redis-0 -- tar czf - -C /data ."),
        "{}",
        cluster.calls()
    );
    let keys = moto.keys("radar-backups");
    let kept = dated_folders(&keys);
    assert_eq!(kept.len(), 3, "three backups (folders) kept: {keys:?}");
    assert_eq!(&kept[..2], ["20250102T000000Z", "20250103T000000Z"]);
    let new = &kept[2];
    let archive = format!("redis-backups/{new}/cloudradar-redis-data-{new}.tgz");
    assert!(keys.contains(&archive), "{keys:?}");
    assert!(keys.contains(&format!("{archive}.sha256")), "{keys:?}");
    // The checksum in the bucket is the archive's, in sha256sum's format, and the archive is
    // Redis's /data: its AOF folder.
    let checked = moto.boto(&format!(
        "import hashlib, tarfile, io\n\
         body = s3.get_object(Bucket='radar-backups', Key='{archive}')['Body'].read()\n\
         line = s3.get_object(Bucket='radar-backups', Key='{archive}.sha256')['Body'].read().decode()\n\
         names = sorted(m.name for m in tarfile.open(fileobj=io.BytesIO(body)).getmembers() if m.isfile())\n\
         print(line.split()[0] == hashlib.sha256(body).hexdigest(), line.split()[1], [n for n in names if 'manifest' in n])"
    ));
    assert_eq!(
        checked,
        format!("True cloudradar-redis-data-{new}.tgz ['./appendonlydir/appendonly.aof.manifest']")
    );
    // The local archive holds Redis's data: only its owner reads it.
    let local = out.path(&format!("work/cloudradar-redis-data-{new}.tgz"));
    let mode = std::fs::metadata(&local).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let summary = read(&out.path("summary.md"));
    assert!(summary.contains("| verdict | RUN |"), "{summary}");
}

/// The nightly backup with an archive copied by hand directly under redis-backups/, and a
/// folder not named as the playbook names its backups: neither is ever a candidate for
/// rotation — before, the stray object made the rotation delete every backup, the new one
/// included, with the verdict RUN.
#[test]
fn rotation_never_deletes_what_the_playbook_did_not_create() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    old_backup(&moto, "radar-backups", "20250101T000000Z");
    old_backup(&moto, "radar-backups", "20250102T000000Z");
    put(
        &moto,
        "radar-backups",
        "redis-backups/cloudradar-redis-data-manual.tgz",
    );
    put(
        &moto,
        "radar-backups",
        "redis-backups/before-migration/dump.tgz",
    );
    let cluster = cloudradar_cluster();
    fill(&cluster);
    let before = moto.keys("radar-backups");

    // The plan lists exactly what goes: with keep=2, the oldest dated folder.
    let plan = cluster
        .flow(moto.reach(Flow::new()))
        .args(&[
            "plan",
            &playbook("redis-backup.yaml"),
            "-p",
            "bucket=radar-backups",
            "-p",
            "keep=2",
        ])
        .run();
    plan.code(0)
        .stdout_has("delete 2 object(s) of s3://radar-backups/")
        .stdout_has("- redis-backups/20250101T000000Z/cloudradar-redis-data-20250101T000000Z.tgz")
        .stdout_lacks("- redis-backups/20250102T000000Z/")
        .stdout_lacks("- redis-backups/cloudradar-redis-data-manual.tgz")
        .stdout_lacks("- redis-backups/before-migration/");

    let out = run(
        Some(&moto),
        &cluster,
        "redis-backup.yaml",
        &["bucket=radar-backups", "work_dir=work", "keep=2"],
    );
    out.code(0).stdout_has("verdict          RUN");
    let after = moto.keys("radar-backups");
    for key in &before {
        let deleted = key.starts_with("redis-backups/20250101T000000Z/");
        assert_eq!(!deleted, after.contains(key), "{key}: {after:?}");
    }
    let folders = dated_folders(&after);
    assert_eq!(folders.len(), 2, "{after:?}");
    assert_eq!(folders[0], "20250102T000000Z");
    // And with a bucket holding nothing but the stray objects, nothing is deleted.
    let lone = Moto::start();
    lone.create_bucket("radar-backups");
    put(
        &lone,
        "radar-backups",
        "redis-backups/cloudradar-redis-data-manual.tgz",
    );
    run(
        Some(&lone),
        &cluster,
        "redis-backup.yaml",
        &["bucket=radar-backups", "work_dir=work", "keep=1"],
    )
    .code(0)
    .stdout_has("verdict          RUN");
    let kept = lone.keys("radar-backups");
    assert!(
        kept.contains(&"redis-backups/cloudradar-redis-data-manual.tgz".to_string()),
        "{kept:?}"
    );
    assert_eq!(dated_folders(&kept).len(), 1, "the new backup: {kept:?}");
}

#[test]
fn cloudradar_backup_is_skipped_with_its_reason_when_disabled_or_the_bucket_is_missing() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    let cluster = cloudradar_cluster();
    let calls = cluster.calls();
    let out = run(
        Some(&moto),
        &cluster,
        "redis-backup.yaml",
        &["bucket=radar-backups", "redis_backup_restore=false"],
    );
    out.code(0);
    verdict_is(
        &out,
        "verdict          ",
        "SKIPPED: backup disabled (redis_backup_restore=false) (when: params.redis_backup_restore)",
    );
    let out = run(
        Some(&moto),
        &cluster,
        "redis-backup.yaml",
        &["bucket=no-such-bucket"],
    );
    out.code(0)
        .stdout_has("verdict          SKIPPED: bucket s3://no-such-bucket does not exist");
    assert_eq!(cluster.calls(), calls, "nothing was asked of the cluster");
    assert!(moto.keys("radar-backups").is_empty());
}

/// The seed's script without --s3-bucket: a local archive and its checksum, no AWS at all.
#[test]
fn a_backup_without_a_bucket_is_a_local_archive() {
    let cluster = cloudradar_cluster();
    fill(&cluster);
    let out = run(None, &cluster, "redis-backup.yaml", &["work_dir=work"]);
    out.code(0)
        .stdout_has("verdict          RUN")
        .stdout_has("a local archive in ");
    let archives: Vec<PathBuf> = std::fs::read_dir(out.path("work"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 2, "the .tgz and its .sha256: {archives:?}");
    let tgz = archives
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .unwrap();
    out.stdout_has(&format!("archive          {}", tgz.display()));
    let sha = std::fs::read_to_string(format!("{}.sha256", tgz.display())).unwrap();
    assert_eq!(
        sha.split_whitespace().next().unwrap(),
        crate::common::run::sha256_of(tgz)
    );
}

/// CI rebuilt the environment: Redis is new and empty — but, running AOF, it has already
/// written its appendonlydir/. That is not data to protect: the restore runs, without
/// `force`, and after the restart Redis answers with the backup's keys.
#[test]
fn a_ci_restore_into_a_fresh_aof_redis_restores_the_backup() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    let production = cloudradar_cluster();
    fill(&production);
    backup_to(&moto, &production);
    drop(production);

    let fresh = cloudradar_cluster();
    assert_eq!(
        fresh
            .kubectl(&["-n", "data", "exec", "redis-0", "--", "ls", "/data"])
            .stdout
            .trim(),
        "appendonlydir"
    );
    let out = run(
        Some(&moto),
        &fresh,
        "redis-restore.yaml",
        &[
            "bucket=radar-backups",
            "work_dir=work",
            "check_key=cloudradar:photo:v1:3",
        ],
    );
    out.code(0)
        .stdout_has("verdict        RUN: restored 6 keys")
        .stdout_has("replacing an empty Redis (appendonlydir)");
    assert_eq!(cli(&fresh, &["LLEN", "cloudradar:events"]), "5");
    assert_eq!(cli(&fresh, &["DBSIZE"]), "6");
    let (_, _, restarts, _) = fresh.pod("data", "redis-0").unwrap();
    assert_eq!(restarts, 1, "Redis was restarted on the restored files");
    // AOF is on again (its own configuration), and the data is in it: another restart keeps it.
    assert_eq!(
        cli(&fresh, &["CONFIG", "GET", "appendonly"]),
        "appendonly\nyes"
    );
    fresh
        .kubectl(&["-n", "data", "delete", "pod", "redis-0"])
        .code(0);
    fresh
        .kubectl(&["-n", "data", "rollout", "status", "sts/redis"])
        .code(0);
    assert_eq!(cli(&fresh, &["DBSIZE"]), "6");
    let summary = read(&out.path("summary.md"));
    assert!(
        summary.contains("| verdict | RUN: restored 6 keys |"),
        "{summary}"
    );
}

/// Production moves on after the backup. Without `force`, a Redis holding keys is not
/// replaced (skipped, with the reason); with it, the backup comes back exactly — the
/// changed key as it was, the later key gone — after the restart. Before, the pod delete
/// made Redis save its dataset over the restored files: the verdict said RUN and the data
/// was not the backup's.
#[test]
fn a_forced_restore_over_newer_data_brings_the_backup_back() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    let cluster = cloudradar_cluster();
    fill(&cluster);
    cli(&cluster, &["SET", "cloudradar:state", "at-backup"]);
    backup_to(&moto, &cluster);
    cli(&cluster, &["SET", "cloudradar:state", "later"]);
    cli(&cluster, &["SET", "cloudradar:photo:v1:99", "{}"]);
    cli(&cluster, &["LPOP", "cloudradar:events"]);

    let out = run(
        Some(&moto),
        &cluster,
        "redis-restore.yaml",
        &["bucket=radar-backups", "work_dir=work"],
    );
    out.code(0).stdout_has(
        "verdict        SKIPPED: Redis /data is not empty (8 keys in db0): nothing restored; force=true replaces them",
    );
    assert_eq!(cli(&cluster, &["GET", "cloudradar:state"]), "later");

    // This time from its S3 URI (the script's --s3-uri).
    let archive = moto
        .keys("radar-backups")
        .into_iter()
        .find(|k| k.ends_with(".tgz"))
        .expect("the backup");
    let out = run(
        Some(&moto),
        &cluster,
        "redis-restore.yaml",
        &[
            &format!("s3_uri=s3://radar-backups/{archive}"),
            "work_dir=work",
            "force=true",
            "check_key=cloudradar:state",
        ],
    );
    out.code(0)
        .stdout_has("verdict        RUN: restored 7 keys")
        .stdout_has("replacing 8 keys");
    assert_eq!(cli(&cluster, &["GET", "cloudradar:state"]), "at-backup");
    assert_eq!(cli(&cluster, &["EXISTS", "cloudradar:photo:v1:99"]), "0");
    assert_eq!(cli(&cluster, &["LLEN", "cloudradar:events"]), "5");
    // The save points and AOF switched off for the restore are the restarted Redis's own again.
    assert_eq!(
        cli(&cluster, &["CONFIG", "GET", "appendonly"]),
        "appendonly\nyes"
    );
    assert_eq!(
        cli(&cluster, &["CONFIG", "GET", "save"]),
        "save\n3600 1 300 100 60 10000"
    );
}

/// A Redis without AOF (save points only): on SIGTERM it saves its dataset as dump.rdb — over
/// the restored one, if it still may. The backup's BGSAVE makes the archive hold the data of
/// the moment; the restore switches the save points off and restarts without saving.
#[test]
fn a_forced_restore_into_an_rdb_only_redis_is_not_saved_over() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    let cluster = Cluster::start(&[redis_statefulset(
        "data",
        "redis",
        json!({ "app.kubernetes.io/name": "redis" }),
        &[],
    )]);
    fill(&cluster);
    backup_to(&moto, &cluster);
    cli(&cluster, &["SET", "cloudradar:photo:v1:99", "{}"]);
    cli(&cluster, &["DEL", "cloudradar:events"]);
    run(
        Some(&moto),
        &cluster,
        "redis-restore.yaml",
        &["bucket=radar-backups", "work_dir=work", "force=true"],
    )
    .code(0)
    .stdout_has("verdict        RUN: restored 6 keys");
    assert_eq!(cli(&cluster, &["LLEN", "cloudradar:events"]), "5");
    assert_eq!(cli(&cluster, &["EXISTS", "cloudradar:photo:v1:99"]), "0");
}

#[test]
fn cloudradar_restore_is_skipped_when_no_backup_is_found() {
    let moto = Moto::start();
    moto.create_bucket("radar-backups");
    // An archive copied by hand is not a backup of the playbook: not taken as the latest.
    put(
        &moto,
        "radar-backups",
        "redis-backups/cloudradar-redis-data-manual.tgz",
    );
    let cluster = cloudradar_cluster();
    let out = run(
        Some(&moto),
        &cluster,
        "redis-restore.yaml",
        &["bucket=radar-backups", "force=true"],
    );
    out.code(0);
    verdict_is(
        &out,
        "verdict        ",
        "SKIPPED: no backup found under s3://radar-backups/redis-backups/",
    );
    assert!(!cluster.calls().contains("tar"), "{}", cluster.calls());
}

#[test]
fn cloudradar_restore_from_a_local_archive_verifies_its_checksum_before_touching_data() {
    let source = cloudradar_cluster();
    fill(&source);
    let made = run(None, &source, "redis-backup.yaml", &["work_dir=work"]);
    made.code(0);
    let archive = std::fs::read_dir(made.path("work"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .expect("the archive");
    let sha = PathBuf::from(format!("{}.sha256", archive.display()));
    let good = std::fs::read_to_string(&sha).unwrap();
    std::fs::write(
        &sha,
        format!(
            "{}  {}\n",
            "0".repeat(64),
            archive.file_name().unwrap().to_string_lossy()
        ),
    )
    .unwrap();
    let target = cloudradar_cluster();
    let params = [
        format!("archive={}", archive.display()),
        format!("sha256={}", sha.display()),
    ];
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    run(None, &target, "redis-restore.yaml", &params)
        .code(1)
        .stdout_has("checksum mismatch: the archive is ");
    assert_eq!(cli(&target, &["DBSIZE"]), "0");
    assert!(!target.calls().contains("tar"), "{}", target.calls());
    assert!(!target.calls().contains("CONFIG"), "nothing touched");

    std::fs::write(&sha, good).unwrap();
    run(None, &target, "redis-restore.yaml", &params)
        .code(0)
        .stdout_has("verdict        RUN: restored 6 keys");
    assert_eq!(
        cli(&target, &["LRANGE", "cloudradar:events", "0", "0"]),
        "event-0"
    );
    // A key the backup does not hold fails the check, whatever the count.
    let mut again = params.clone();
    again.extend(["force=true", "check_key=cloudradar:not-in-the-backup"]);
    run(None, &target, "redis-restore.yaml", &again)
        .code(1)
        .stdout_has(
            "cloudradar:not-in-the-backup, a key of the backup, is not in the restored Redis",
        )
        .stdout_has("verdict        FAILED");
}

/// The GitHub Actions workflow shipped beside the playbooks (the seed's CI pipeline): it
/// parses, and every `flow apply` in it names a shipped playbook and only params it has.
#[test]
fn the_ci_workflow_names_existing_playbooks_and_params() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = root.join("playbooks/cloudradar/ci/redis-backup-restore.yml");
    let text = std::fs::read_to_string(&workflow).expect("the workflow");
    let file = flow_engine::source::SourceFile::new(&workflow, text.clone());
    let parsed = flow_engine::yaml::parse(&file)
        .unwrap_or_else(|e| panic!("the workflow is not YAML: {e:?}"))
        .to_json();
    let jobs = parsed["jobs"].as_object().expect("jobs");
    assert!(jobs.len() >= 2, "a backup job and a restore job: {jobs:?}");
    let apply = regex::Regex::new(r"flow apply (\S+\.yaml)((?:\s+(?:-p \S+|--\S+))*)").unwrap();
    let mut applied = Vec::new();
    for (name, job) in jobs {
        for step in job["steps"].as_array().expect("steps") {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            let script = script.replace("\\\n", " ");
            for found in apply.captures_iter(&script) {
                let path = root.join(&found[1]);
                assert!(path.is_file(), "{name}: {} does not exist", &found[1]);
                let book = std::fs::read_to_string(&path).unwrap();
                let book =
                    flow_engine::yaml::parse(&flow_engine::source::SourceFile::new(&path, book))
                        .unwrap()
                        .to_json();
                for param in found[2].split_whitespace().filter(|w| w.contains('=')) {
                    let param = param.split('=').next().unwrap();
                    assert!(
                        book["params"].get(param).is_some(),
                        "{name}: {} has no param `{param}`",
                        &found[1]
                    );
                }
                // The values the workflow passes in the environment reach a param.
                let envs: Vec<&str> = book["params"]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter_map(|p| p["env"].as_str())
                    .collect();
                let passed = parsed["env"]
                    .as_object()
                    .into_iter()
                    .chain(step["env"].as_object())
                    .flat_map(|e| e.keys())
                    .filter(|k| k.starts_with("REDIS_"));
                for var in passed {
                    assert!(
                        envs.contains(&var.as_str()),
                        "{name}: {} reads no {var}",
                        &found[1]
                    );
                }
                applied.push(found[1].to_string());
            }
        }
    }
    applied.sort();
    assert_eq!(
        applied,
        [
            "playbooks/cloudradar/redis-backup.yaml",
            "playbooks/cloudradar/redis-restore.yaml"
        ]
    );
    // The verdict reaches the step summary: flow writes it where GITHUB_STEP_SUMMARY points.
    assert!(
        !text.contains("GITHUB_STEP_SUMMARY: "),
        "flow finds it itself"
    );
}
