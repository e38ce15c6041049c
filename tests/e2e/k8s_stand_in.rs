//! The `kubectl` stand-in (tests/fixtures/k8s) reproduces what the runbooks depend on in a
//! real cluster (shared/REALITY.md, "Kubernetes" and "Redis"): these tests pin each
//! behaviour, so that a playbook that passes against the stand-in has met it.

use crate::common::k8s::{Cluster, deployment, fixtures, redis_deployment, redis_statefulset};
use crate::common::redis::raw_command;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// An RFC 3339 time of the stand-in's API.
fn timestamp(value: &serde_json::Value) -> jiff::Timestamp {
    value
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

fn redis_labels() -> serde_json::Value {
    json!({ "app.kubernetes.io/name": "redis" })
}

/// A pod's filesystem is its own: Redis sees its volume at /data (`CONFIG GET dir`), which
/// this machine's /data is not; files get in and out through `exec` and `cp` only.
#[test]
fn a_pods_data_is_reachable_only_through_exec_and_cp() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", redis_labels(), &[])]);
    assert_eq!(
        cluster.redis_cli("data", "redis-0", &["CONFIG", "GET", "dir"]),
        "dir\n/data"
    );
    let name = format!("only-in-the-pod-{}", std::process::id());
    cluster
        .exec(
            "data",
            "redis-0",
            &["sh", "-c", &format!("echo from-the-pod > /data/{name}")],
        )
        .code(0);
    assert!(
        !Path::new("/data").join(&name).exists(),
        "the pod's /data must not be this machine's"
    );
    // The node keeps the volume; that is where the file is.
    assert_eq!(
        std::fs::read_to_string(cluster.volume("data", "data-redis-0").join(&name)).unwrap(),
        "from-the-pod\n"
    );
    // A host path does not exist in the pod either.
    let host_file = cluster.dir().join("on-this-machine");
    std::fs::write(&host_file, "x").unwrap();
    cluster
        .exec(
            "data",
            "redis-0",
            &["cat", &host_file.display().to_string()],
        )
        .code(1)
        .stderr_has("No such file or directory");
    // `cp` in and out.
    let out = cluster.dir().join("copied-out");
    cluster
        .kubectl(&[
            "-n",
            "data",
            "cp",
            &format!("redis-0:/data/{name}"),
            &out.display().to_string(),
        ])
        .code(0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from-the-pod\n");
    cluster
        .kubectl(&[
            "-n",
            "data",
            "cp",
            &host_file.display().to_string(),
            "redis-0:/tmp/copied-in",
        ])
        .code(0);
    cluster
        .exec("data", "redis-0", &["cat", "/tmp/copied-in"])
        .code(0)
        .stdout_has("x");
}

/// `kubectl delete pod` sends SIGTERM; Redis then saves its dataset (default save points) over
/// a dump.rdb that was replaced meanwhile — a naive restore loses — and the StatefulSet's
/// controller starts `redis-0` again, a new pod on the same volume.
#[test]
fn deleting_a_pod_makes_redis_save_over_replaced_files_and_the_statefulset_recreates_it() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", redis_labels(), &[])]);
    let cli = |args: &[&str]| cluster.redis_cli("data", "redis-0", args);
    cli(&["SET", "restored", "yes"]);
    cli(&["SAVE"]);
    cluster
        .exec(
            "data",
            "redis-0",
            &["cp", "/data/dump.rdb", "/data/restored.rdb"],
        )
        .code(0);
    cli(&["DEL", "restored"]);
    cli(&["SET", "live", "yes"]);
    // The "restore": the file replaced under the running Redis.
    cluster
        .exec(
            "data",
            "redis-0",
            &["cp", "/data/restored.rdb", "/data/dump.rdb"],
        )
        .code(0);
    let old = cluster.pod_json("data", "redis-0").expect("redis-0");
    cluster
        .kubectl(&["-n", "data", "delete", "pod", "redis-0"])
        .code(0)
        .stdout_has("pod \"redis-0\" deleted");
    cluster
        .kubectl(&["-n", "data", "rollout", "status", "sts/redis"])
        .code(0);
    // A new pod of the same name, whose container started a moment after it was created.
    let new = cluster.pod_json("data", "redis-0").expect("recreated");
    assert_ne!(new["metadata"]["uid"], old["metadata"]["uid"]);
    let status = &new["status"]["containerStatuses"][0];
    assert_eq!(status["restartCount"], 0);
    let created = timestamp(&new["metadata"]["creationTimestamp"]);
    let started = timestamp(&status["state"]["running"]["startedAt"]);
    assert!(
        started.duration_since(created).as_secs_f64() >= 0.5,
        "the container started at once: {new}"
    );
    assert_eq!(cli(&["GET", "live"]), "yes", "SIGTERM saved the dataset");
    assert_eq!(cli(&["EXISTS", "restored"]), "0", "over the replaced file");
    let log = cluster.kubectl(&["-n", "data", "logs", "redis-0"]);
    assert!(
        log.stdout.contains("Ready to accept connections"),
        "{}",
        log.stdout
    );
}

/// A Deployment's replacement pod has a new name, and the same volume.
#[test]
fn a_deployments_replacement_pod_has_a_new_name_and_the_same_volume() {
    let cluster = Cluster::start(&[redis_deployment(
        "october",
        "redis",
        json!({ "app": "redis" }),
        &[],
    )]);
    let first = cluster.pods("october", "app=redis");
    assert_eq!(first.len(), 1);
    assert!(first[0].starts_with("redis-"), "{first:?}");
    cluster.redis_cli("october", "deploy/redis", &["SET", "k", "v"]);
    cluster
        .kubectl(&["-n", "october", "delete", "pod", &first[0]])
        .code(0);
    cluster
        .kubectl(&["-n", "october", "rollout", "status", "deploy/redis"])
        .code(0)
        .stdout_has("deployment \"redis\" successfully rolled out");
    let second = cluster.pods("october", "app=redis");
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0], first[0]);
    assert_eq!(
        cluster.redis_cli("october", "deploy/redis", &["GET", "k"]),
        "v"
    );
}

/// `kubectl port-forward` forwards to one pod's container and ends when it ends
/// (kubernetes/kubectl#686): it does not follow the new pod.
#[test]
fn port_forward_ends_when_its_pod_ends() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", redis_labels(), &[])]);
    let mut forward = Command::new(fixtures().join("kubectl"))
        .args(["-n", "data", "port-forward", "pod/redis-0", ":6379"])
        .envs(cluster.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("port-forward");
    let mut first = String::new();
    let mut stdout = BufReader::new(forward.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    // Read on, as a terminal would: a closed stdout kills kubectl (SIGPIPE).
    let _rest = crate::common::run::reader(stdout);
    let port: u16 = first
        .trim()
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not a forward: {first:?}"));
    assert_eq!(
        raw_command(port, None, &["PING"]).unwrap().to_text(),
        "PONG"
    );
    cluster
        .kubectl(&["-n", "data", "delete", "pod", "redis-0"])
        .code(0);
    let code = crate::common::run::wait_bounded(&mut forward, Duration::from_secs(10));
    let stderr = crate::common::run::reader(forward.stderr.take().unwrap())
        .join()
        .unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("lost connection to pod"), "{stderr}");
    cluster
        .kubectl(&["-n", "data", "rollout", "status", "sts/redis"])
        .code(0);
    assert!(
        raw_command(port, None, &["PING"]).is_err(),
        "the old forward must not reach the new pod"
    );
}

/// A container that exits (`SHUTDOWN NOSAVE`) is restarted by the kubelet in the same pod,
/// a moment later; what was not saved is gone.
#[test]
fn a_container_that_exits_is_restarted_in_the_same_pod() {
    let cluster = Cluster::start(&[redis_statefulset("data", "redis", redis_labels(), &[])]);
    cluster.redis_cli("data", "redis-0", &["SET", "unsaved", "x"]);
    let (uid, ..) = cluster.pod("data", "redis-0").unwrap();
    cluster
        .exec("data", "redis-0", &["redis-cli", "SHUTDOWN", "NOSAVE"])
        .code(0);
    assert!(
        cluster.until(|| cluster
            .pod("data", "redis-0")
            .is_some_and(|p| p.2 == 1 && p.3)),
        "redis-0 was not restarted: {:?}",
        cluster.pod("data", "redis-0")
    );
    assert_eq!(
        cluster.pod("data", "redis-0").unwrap().0,
        uid,
        "the same pod"
    );
    assert_eq!(cluster.redis_cli("data", "redis-0", &["DBSIZE"]), "0");
}

/// `exec` into a terminating pod fails; the pod is listed as Terminating until its grace
/// period is over, then gone.
#[test]
fn exec_into_a_terminating_pod_fails() {
    // A container that ignores SIGTERM: it lives out its grace period.
    let mut worker = deployment(
        "october",
        "worker",
        1,
        &["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"],
    );
    worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 10.into();
    let cluster = Cluster::start(&[worker]);
    let pod = cluster.pods("october", "app=worker").remove(0);
    cluster.exec("october", &pod, &["true"]).code(0);
    cluster
        .kubectl(&["-n", "october", "delete", "pod", &pod, "--wait=false"])
        .code(0);
    cluster
        .exec("october", &pod, &["true"])
        .code(1)
        .stderr_has("the pod is terminating");
    cluster
        .kubectl(&["-n", "october", "get", "pods"])
        .code(0)
        .stdout_has("Terminating");
    assert!(cluster.until(|| cluster.pod("october", &pod).is_none()));
}

/// `scale` changes what the controller aims at; pods come and go over time, and `get pods -l`
/// and `rollout status` see them doing so. (Pods start 3 s after they are created here, and
/// the workers live out a 10 s grace period: wide windows to look in.)
#[test]
fn scale_and_rollout_status_follow_the_controller_with_its_delays() {
    let mut worker = deployment(
        "october",
        "worker",
        2,
        &["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"],
    );
    worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 10.into();
    let cluster = Cluster::start_with(&[worker], &[("FAKE_K8S_POD_START_DELAY", "3")]);
    assert_eq!(cluster.replicas("october", "worker"), "2");
    cluster
        .kubectl(&["-n", "october", "scale", "deploy/worker", "--replicas=0"])
        .code(0)
        .stdout_has("deployment.apps/worker scaled");
    // The controller acts a moment after the API answers, as a real one does: the pods go
    // Terminating, not at once.
    let pods_say = |status: &str| {
        cluster
            .kubectl(&["-n", "october", "get", "pods", "-l", "app=worker"])
            .stdout
            .contains(status)
    };
    assert!(cluster.until(|| pods_say("Terminating")));
    cluster
        .kubectl(&[
            "-n",
            "october",
            "delete",
            "pods",
            "-l",
            "app=worker",
            "--grace-period=0",
        ])
        .code(0);
    assert!(cluster.pods("october", "app=worker").is_empty());
    cluster
        .kubectl(&["-n", "october", "scale", "deploy/worker", "--replicas=2"])
        .code(0);
    assert!(cluster.until(|| pods_say("ContainerCreating")));
    cluster
        .kubectl(&["-n", "october", "rollout", "status", "deploy/worker"])
        .code(0)
        .stdout_has("0 of 2 updated replicas are available")
        .stdout_has("successfully rolled out");
    // An index past the end is kubectl's error, not an empty answer.
    cluster
        .kubectl(&[
            "-n",
            "october",
            "get",
            "pods",
            "-l",
            "app=nothing",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .code(1)
        .stderr_has("array index out of bounds");
}
