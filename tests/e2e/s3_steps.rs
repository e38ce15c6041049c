//! The S3 step types against a real `moto_server` on 127.0.0.1, with the real SDK clients:
//! what a user sees, and what the bucket holds afterwards.

use crate::common::Flow;
use crate::common::moto::{Moto, outputs};
use serde_json::Value;

fn apply(flow: Flow, moto: &Moto, code: i32) -> (crate::common::Outcome, Vec<Value>) {
    moto.apply(flow, code)
}

#[test]
fn a_file_goes_up_is_listed_and_comes_back_verified() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let (out, events) = apply(
        Flow::new().file("dump.rdb", "REDIS0011 data").playbook(
            "flow: 1\nsteps:\n  up:\n    type: s3.put\n    with: { bucket: backups, key: redis/dump-1.rdb, path: dump.rdb }\n  list:\n    type: s3.list\n    with: { bucket: backups, prefix: redis/ }\n  down:\n    type: s3.get\n    with: { bucket: backups, key: \"{{ steps.list.latest.key }}\", path: restore/dump.rdb }\n",
        ),
        &moto,
        0,
    );
    assert_eq!(moto.keys("backups"), vec!["redis/dump-1.rdb"]);
    assert_eq!(outputs(&events, "list")["count"], 1);
    // The listing as a table, as the operator reads it.
    assert!(
        out.stdout.contains("redis/dump-1.rdb  14"),
        "{}",
        out.stdout
    );
    assert_eq!(outputs(&events, "down")["verified"], true);
    assert_eq!(
        outputs(&events, "down")["sha256"],
        outputs(&events, "up")["sha256"]
    );
    assert_eq!(out.file("restore/dump.rdb"), "REDIS0011 data");
}

#[test]
fn a_copy_that_does_not_match_its_sha256_fails_and_leaves_no_file() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let (out, _) = apply(
        Flow::new().file("dump.rdb", "REDIS0011 data").playbook(
            "flow: 1\nsteps:\n  up:\n    type: s3.put\n    with: { bucket: backups, key: dump.rdb, path: dump.rdb }\n  down:\n    type: s3.get\n    with: { bucket: backups, key: dump.rdb, path: restored.rdb, sha256: \"0000000000000000000000000000000000000000000000000000000000000000\" }\n",
        ),
        &moto,
        1,
    );
    out.stdout_has("does not match its sha256");
    assert!(!out.exists("restored.rdb"));
    let leftovers: Vec<String> = std::fs::read_dir(out.dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Objects written in the same second tie on LastModified: the newest is the later key.
#[test]
fn keep_latest_keeps_the_newest_with_ties_broken_by_key_and_the_plan_lists_the_keys() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    let mut flow = Flow::new().file("f", "x");
    let mut steps = String::new();
    for i in 1..=5 {
        steps.push_str(&format!(
            "  put{i}:\n    type: s3.put\n    with: {{ bucket: backups, key: \"redis/2026-12-0{i}.rdb\", path: f }}\n"
        ));
    }
    flow = flow.playbook(&format!("flow: 1\nsteps:\n{steps}"));
    apply(flow, &moto, 0);
    let retention = "flow: 1\nsteps:\n  retention:\n    type: s3.delete\n    with: { bucket: backups, prefix: redis/, keep_latest: 2 }\n";
    let plan = moto
        .reach(Flow::new().playbook(retention))
        .args(&["plan", "playbook.yaml"])
        .run();
    plan.code(0)
        .stdout_has("delete 3 object(s) of s3://backups/redis/")
        .stdout_has("- redis/2026-12-01.rdb")
        .stdout_has("keep redis/2026-12-05.rdb");
    assert_eq!(moto.keys("backups").len(), 5, "the plan deleted something");
    let (_, events) = apply(Flow::new().playbook(retention), &moto, 0);
    assert_eq!(
        moto.keys("backups"),
        vec!["redis/2026-12-04.rdb", "redis/2026-12-05.rdb"]
    );
    assert_eq!(
        outputs(&events, "retention")["deleted"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[test]
fn an_unknown_bucket_is_one_clear_line() {
    let moto = Moto::start();
    let (out, _) = apply(
        Flow::new()
            .playbook("flow: 1\nsteps:\n  list:\n    type: s3.list\n    with: { bucket: nope }\n"),
        &moto,
        1,
    );
    out.stdout_has("s3 ListObjectsV2 failed: NoSuchBucket");
}

/// `flow plan --offline` needs no credentials at all; a plan that must read and has none
/// fails with one line naming the credential chain.
#[test]
fn offline_plans_need_no_credentials_and_reads_without_them_say_so() {
    let home = tempfile::tempdir().expect("home");
    let playbook = "flow: 1\ndefaults:\n  aws: { region: us-east-1, endpoint_url: \"http://127.0.0.1:9\" }\nsteps:\n  list:\n    type: s3.list\n    with: { bucket: backups }\n  retention:\n    type: s3.delete\n    with: { bucket: backups, prefix: redis/, keep_latest: 3 }\n";
    let bare = |flow: Flow| {
        flow.env("HOME", home.path().to_str().expect("utf-8"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
    };
    let offline = bare(Flow::new().playbook(playbook))
        .args(&["plan", "playbook.yaml", "--offline"])
        .run();
    offline.code(0).stdout_has("not listed: --offline");
    let online = bare(Flow::new().playbook(playbook))
        .args(&["plan", "playbook.yaml"])
        .run();
    online.code(1).stdout_has("no AWS credentials");
}

/// A saved plan's `s3.delete` deletes the keys it listed or nothing: an object that appeared
/// under the prefix since is drift (exit 2), and the bucket is left as it is.
#[test]
fn a_saved_plan_refuses_to_delete_keys_it_did_not_list() {
    let moto = Moto::start();
    moto.create_bucket("backups");
    moto.boto(
        "s3.put_object(Bucket='backups', Key='dir/a.rdb', Body=b'a')\n\
         s3.put_object(Bucket='backups', Key='dir/b.rdb', Body=b'b')",
    );
    let flow = Flow::new().playbook(
        "flow: 1\nsteps:\n  retention:\n    type: s3.delete\n    with: { bucket: backups, prefix: dir/, keep_latest: 1 }\n",
    );
    let dir = flow.path("");
    let plan = moto
        .reach(flow)
        .args(&["plan", "playbook.yaml", "--out", "plan.json"])
        .run();
    plan.code(0).stdout_has("dir/a.rdb");
    moto.boto("s3.put_object(Bucket='backups', Key='dir/c.rdb', Body=b'c')");
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = crate::common::run::flow(&dir, &["apply", "plan.json", "--yes"], &env);
    out.code(2)
        .stderr_has("what step `retention` would act on changed since the plan");
    let mut keys = moto.keys("backups");
    keys.sort();
    assert_eq!(keys, vec!["dir/a.rdb", "dir/b.rdb", "dir/c.rdb"]);
    // The world back as planned: the plan applies, deleting what it listed.
    moto.boto("s3.delete_object(Bucket='backups', Key='dir/c.rdb')");
    crate::common::run::flow(&dir, &["apply", "plan.json", "--yes"], &env).code(0);
    assert_eq!(moto.keys("backups"), vec!["dir/b.rdb"]);
}
