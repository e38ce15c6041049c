//! The Redis block's `kubernetes:` connection: Redis in a pod of the `kubectl` stand-in
//! (tests/fixtures/k8s), reached through a port-forward flow starts, watches and starts
//! again when the pod restarts; `redis.backup` copies the files out of the pod.

use crate::common::Flow;
use crate::common::k8s::{Cluster, redis_deployment, redis_statefulset};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

fn labels() -> serde_json::Value {
    json!({ "app.kubernetes.io/name": "redis" })
}

const DEFAULTS: &str = "defaults:\n  redis:\n    url: redis://localhost:6379\n    kubernetes: { namespace: data, selector: app.kubernetes.io/name=redis }\n";

#[test]
fn redis_steps_reach_a_pod_through_a_port_forward_that_flow_starts_and_ends() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", labels(), &[])]);
    cluster.redis_cli("data", "redis-0", &["SET", "in-the-pod", "yes"]);
    let playbook = format!(
        "flow: 1\n{DEFAULTS}steps:\n  read:\n    type: redis.command\n    with: {{ command: [GET, in-the-pod] }}\n  write:\n    type: redis.command\n    with: {{ command: [SET, from-flow, '1'] }}\noutputs:\n  value: \"{{{{ steps.read.reply }}}}\"\n"
    );
    let flow = cluster.flow(Flow::new().playbook(&playbook));
    let plan = flow.args(&["plan", "playbook.yaml"]).run();
    plan.code(0).stdout_has(
        "SET from-flow 1 on redis://localhost:6379 in data/app.kubernetes.io/name=redis",
    );
    let out = cluster
        .flow(Flow::new().playbook(&playbook))
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    out.code(0).stdout_has("value  yes");
    assert_eq!(
        cluster.redis_cli("data", "redis-0", &["GET", "from-flow"]),
        "1"
    );
    let calls = cluster.calls();
    assert!(
        calls.contains("-n data port-forward --address 127.0.0.1 pod/redis-0 :6379"),
        "{calls}"
    );
    assert!(
        cluster.until(|| cluster.kubectl_processes().is_empty()),
        "flow left kubectl running: {:?}",
        cluster.kubectl_processes()
    );
}

/// The pod is deleted between two steps (the StatefulSet recreates `redis-0`; the first
/// forward ends with it): the next steps reach the new pod through a new forward.
#[test]
fn the_connection_follows_the_pod_through_its_restart() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", labels(), &[])]);
    let playbook = format!(
        "flow: 1\n{DEFAULTS}steps:\n  write:\n    type: redis.command\n    with: {{ command: [SET, k, before-restart] }}\n  restart:\n    type: exec\n    with: {{ command: [kubectl, -n, data, delete, pod, redis-0] }}\n  back:\n    type: redis.wait\n    with: {{ timeout: 30s }}\n  read:\n    type: redis.command\n    with: {{ command: [GET, k] }}\noutputs:\n  value: \"{{{{ steps.read.reply }}}}\"\n"
    );
    let out = cluster
        .flow(Flow::new().playbook(&playbook))
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    // Redis saved on SIGTERM (default save points), so the new pod has the key.
    out.code(0).stdout_has("value  before-restart");
    let forwards = cluster.calls().matches(" port-forward ").count();
    assert!(forwards >= 2, "one forward per pod:\n{}", cluster.calls());
}

/// A Deployment's new pod has a new name: the selector finds it.
#[test]
fn a_selector_finds_a_deployments_new_pod() {
    let cluster = Cluster::start(&[redis_deployment(
        "october",
        "redis",
        json!({ "app": "redis" }),
        &["--save", "", "--appendonly", "no"],
    )]);
    let before = cluster.pods("october", "app=redis");
    let playbook = "flow: 1\ndefaults:\n  redis:\n    url: redis://localhost:6379\n    kubernetes: { namespace: october, selector: app=redis }\nsteps:\n  write:\n    type: redis.command\n    with: { command: [SET, k, v] }\n  restart:\n    type: exec\n    with: { command: [kubectl, -n, october, delete, pod, -l, app=redis] }\n  back:\n    type: redis.wait\n    with: { timeout: 30s }\n  count:\n    type: redis.command\n    with: { command: [DBSIZE] }\noutputs:\n  keys: \"{{ steps.count.reply }}\"\n";
    let out = cluster
        .flow(Flow::new().playbook(playbook))
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    // No persistence: the new pod starts empty — and it is the new pod that answered.
    out.code(0).stdout_has("keys  0");
    let after = cluster.pods("october", "app=redis");
    assert_ne!(before, after);
    assert!(
        cluster.calls().contains(&format!(
            "port-forward --address 127.0.0.1 pod/{} :6379",
            after[0]
        )),
        "{}",
        cluster.calls()
    );
}

/// `redis.backup` with `dest` copies the RDB and the AOF files out of the pod (through
/// `kubectl exec`), private to their owner — never a file of the same path on this machine.
#[test]
fn redis_backup_copies_the_files_out_of_the_pod_privately() {
    let cluster = Cluster::start(&[redis_statefulset(
        "data",
        "redis",
        labels(),
        &["--appendonly", "yes"],
    )]);
    for i in 0..20 {
        cluster.redis_cli("data", "redis-0", &["SET", &format!("k{i}"), "v"]);
    }
    let playbook = format!(
        "flow: 1\n{DEFAULTS}steps:\n  backup:\n    type: redis.backup\n    with: {{ dest: backups/redis-%Y%m%d.rdb }}\noutputs:\n  rdb: \"{{{{ steps.backup.rdb_path }}}}\"\n  bytes: \"{{{{ steps.backup.bytes }}}}\"\n"
    );
    let out = cluster
        .flow(Flow::new().playbook(&playbook))
        .args(&["apply", "playbook.yaml", "--yes"])
        .run();
    out.code(0).stdout_has("rdb    /data/dump.rdb");
    let copies: Vec<_> = std::fs::read_dir(out.path("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let rdb = copies
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "rdb"))
        .expect("the RDB copy");
    let aof = copies
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "aof"))
        .expect("the AOF copy");
    let bytes = std::fs::read(rdb).unwrap();
    assert!(bytes.starts_with(b"REDIS"));
    out.stdout_has(&format!("bytes  {}", bytes.len()));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(rdb), 0o600);
    assert_eq!(mode(aof), 0o700);
    let mut aof_files: Vec<String> = std::fs::read_dir(aof)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            assert_eq!(mode(&path), 0o600);
            path.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    aof_files.sort();
    assert_eq!(
        aof_files,
        [
            "appendonly.aof.1.base.rdb",
            "appendonly.aof.1.incr.aof",
            "appendonly.aof.manifest"
        ]
    );
}

#[test]
fn a_kubernetes_block_says_what_is_wrong() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", labels(), &[])]);
    let run = |redis: &str| {
        let playbook = format!(
            "flow: 1\nsteps:\n  ping:\n    type: redis.command\n    effect: write\n    with: {{ {redis}, command: [PING] }}\n"
        );
        cluster
            .flow(Flow::new().playbook(&playbook))
            .args(&["apply", "playbook.yaml", "--yes"])
            .run()
    };
    run("url: 'redis://redis.data.svc:6379', kubernetes: { namespace: data, pod: redis-0 }")
        .code(1)
        .stdout_has("with `kubernetes`, the url names Redis as the pod sees it");
    run("url: 'redis://localhost:6379', kubernetes: { namespace: data, selector: app=none }")
        .code(1)
        .stdout_has("no ready pod matches data/app=none (no pods)");
    run("url: 'redis://localhost:6379', kubernetes: { namespace: data }")
        .code(1)
        .stdout_has("kubernetes: give `pod`");
    run("url: 'redis://localhost:6379', kubernetes: { namespace: data, pod: redis-9 }")
        .code(1)
        .stdout_has("pods \"redis-9\" not found");
    run("url: 'redis://localhost:6379', kubernetes: { namespace: data, pod: redis-0, context: prod }")
        .code(1)
        .stdout_has("context \"prod\" does not exist");
    run("url: 'redis://localhost:6379', kubernetes: { namespace: data, pod: redis-0, context: stand-in }")
        .code(0);
}

/// A `kill -9` of flow takes its port-forward along (flow's supervisor ends it).
#[test]
fn a_killed_flow_leaves_no_port_forward_running() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", labels(), &[])]);
    let dir = tempfile::tempdir().unwrap();
    let playbook = format!(
        "flow: 1\n{DEFAULTS}steps:\n  write:\n    type: redis.command\n    with: {{ command: [SET, k, v] }}\n  long:\n    type: exec\n    with: {{ shell: 'echo yes > started; sleep 30' }}\n"
    );
    std::fs::write(dir.path().join("playbook.yaml"), playbook).unwrap();
    let mut flow = std::process::Command::new(crate::common::flow_bin())
        .args(["apply", "playbook.yaml", "--yes"])
        .current_dir(dir.path())
        .envs(cluster.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("out.txt")).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        crate::common::run::wait_for_file(
            &dir.path().join("started"),
            std::time::Duration::from_secs(30)
        ),
        "{}",
        crate::common::read(&dir.path().join("out.txt"))
    );
    assert!(
        !cluster.kubectl_processes().is_empty(),
        "the port-forward runs"
    );
    crate::common::run::signal(flow.id(), "KILL");
    crate::common::run::wait_bounded(&mut flow, std::time::Duration::from_secs(10));
    assert!(
        cluster.until(|| cluster.kubectl_processes().is_empty()),
        "left running: {:?}",
        cluster.kubectl_processes()
    );
}
