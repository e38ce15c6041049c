//! A cluster of the `kubectl` stand-in (tests/fixtures/k8s) for a test: its state folder,
//! workloads applied from JSON manifests, `kubectl` calls and `redis-cli` in a pod, and a
//! `Flow` that finds the stand-in first on PATH. Dropped, it stops the cluster (every
//! container killed); the controller also stops by itself when the test process is gone.
//!
//! Pods run in namespaces of their own, so the stand-in needs root (CI runs the tests as
//! root) and util-linux (`unshare`, `nsenter`, `setpriv`); missing either is a failure that
//! says so, never a skip.
#![allow(dead_code)]

use super::{Flow, Ran};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Cluster {
    pub state: tempfile::TempDir,
    /// The stand-in's knobs (`FAKE_K8S_POD_START_DELAY`, …) for this cluster.
    settings: Vec<(String, String)>,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/k8s")
}

fn check_requirements() {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    assert!(
        String::from_utf8_lossy(&uid.stdout).trim() == "0",
        "the kubectl stand-in runs each pod in namespaces of its own (unshare): run the tests \
         as root, as CI does"
    );
    for tool in [
        "unshare",
        "nsenter",
        "setpriv",
        "python3",
        "redis-server",
        "ip",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "`{tool}` is missing: the kubectl stand-in needs util-linux (unshare, nsenter, \
             setpriv), iproute2 (ip), python3 and redis-server — `apt-get install util-linux \
             iproute2 python3 redis-server` (scripts/test installs them)"
        );
    }
}

impl Cluster {
    /// A cluster running `workloads` (manifests), each rolled out (its pods ready).
    pub fn start(workloads: &[Value]) -> Self {
        Self::start_with(workloads, &[])
    }

    /// As `start`, with the stand-in's knobs set: `[("FAKE_K8S_POD_START_DELAY", "3")]`.
    pub fn start_with(workloads: &[Value], settings: &[(&str, &str)]) -> Self {
        check_requirements();
        let cluster = Cluster {
            state: tempfile::tempdir().expect("cluster state"),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        cluster.apply(workloads);
        cluster
    }

    pub fn dir(&self) -> &Path {
        self.state.path()
    }

    /// Applies the manifests and waits until each workload is rolled out.
    pub fn apply(&self, workloads: &[Value]) {
        let manifest = self.dir().join("manifest.json");
        std::fs::write(
            &manifest,
            json!({ "kind": "List", "items": workloads }).to_string(),
        )
        .expect("manifest");
        self.kubectl(&["apply", "-f", &manifest.display().to_string()])
            .code(0);
        for workload in workloads {
            let kind = match workload["kind"].as_str() {
                Some("Deployment") => "deploy",
                _ => "sts",
            };
            let name = workload["metadata"]["name"].as_str().expect("name");
            let namespace = workload["metadata"]["namespace"].as_str().expect("ns");
            self.kubectl(&[
                "-n",
                namespace,
                "rollout",
                "status",
                &format!("{kind}/{name}"),
                "--timeout=30s",
            ])
            .code(0);
        }
    }

    /// The environment of a process that uses this cluster.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PATH".into(),
                format!(
                    "{}:{}",
                    fixtures().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
            ("FAKE_K8S".into(), self.dir().display().to_string()),
            ("FAKE_K8S_OWNER_PID".into(), std::process::id().to_string()),
        ]
        .into_iter()
        .chain(self.settings.iter().cloned())
        .collect()
    }

    /// `flow` with the stand-in first on PATH.
    pub fn flow(&self, mut flow: Flow) -> Flow {
        for (key, value) in self.env() {
            flow = flow.env(&key, &value);
        }
        flow
    }

    /// `kubectl ARGS`, run to its end (at most a minute).
    pub fn kubectl(&self, args: &[&str]) -> Ran {
        let mut command = Command::new(fixtures().join("kubectl"));
        command
            .args(args)
            .envs(self.env())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("run the kubectl stand-in");
        let stdout = super::run::reader(child.stdout.take().expect("stdout"));
        let stderr = super::run::reader(child.stderr.take().expect("stderr"));
        let code = super::run::wait_bounded(&mut child, Duration::from_secs(60));
        Ran {
            code,
            stdout: stdout.join().expect("stdout"),
            stderr: stderr.join().expect("stderr"),
        }
    }

    /// `kubectl -n NAMESPACE exec POD -- COMMAND…`.
    pub fn exec(&self, namespace: &str, pod: &str, command: &[&str]) -> Ran {
        let mut all = vec!["-n", namespace, "exec", pod, "--"];
        all.extend_from_slice(command);
        self.kubectl(&all)
    }

    /// `kubectl -n NAMESPACE exec POD -- redis-cli ARGS…`: the reply, trimmed; fails the test
    /// when kubectl does.
    pub fn redis_cli(&self, namespace: &str, pod: &str, args: &[&str]) -> String {
        let mut command = vec!["redis-cli"];
        command.extend_from_slice(args);
        let ran = self.exec(namespace, pod, &command);
        ran.code(0);
        ran.stdout.trim().to_string()
    }

    /// The replicas a Deployment asks for (`spec.replicas`).
    pub fn replicas(&self, namespace: &str, deployment: &str) -> String {
        let ran = self.kubectl(&[
            "-n",
            namespace,
            "get",
            &format!("deploy/{deployment}"),
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        ran.code(0);
        ran.stdout.trim().to_string()
    }

    /// A pod as `kubectl get pod -o json` shows it, or None when there is no such pod.
    pub fn pod_json(&self, namespace: &str, name: &str) -> Option<Value> {
        let ran = self.kubectl(&["-n", namespace, "get", "pod", name, "-o", "json"]);
        (ran.code == 0).then(|| serde_json::from_str(&ran.stdout).expect("pod json"))
    }

    /// A pod's status: `(uid, STATUS, restarts, ready)`, or None when there is no such pod.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<(String, String, u64, bool)> {
        let ran = self.kubectl(&["-n", namespace, "get", "pod", name, "-o", "json"]);
        if ran.code != 0 {
            return None;
        }
        let pod: Value = serde_json::from_str(&ran.stdout).expect("pod json");
        let status = &pod["status"]["containerStatuses"][0];
        let phase = if pod["metadata"]["deletionTimestamp"].is_null() {
            pod["status"]["phase"].as_str().unwrap_or("").to_string()
        } else {
            "Terminating".to_string()
        };
        Some((
            pod["metadata"]["uid"].as_str().unwrap_or("").to_string(),
            phase,
            status["restartCount"].as_u64().unwrap_or(0),
            status["ready"].as_bool().unwrap_or(false),
        ))
    }

    /// The names of the pods `selector` matches, terminating ones included.
    pub fn pods(&self, namespace: &str, selector: &str) -> Vec<String> {
        let ran = self.kubectl(&[
            "-n",
            namespace,
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        ran.code(0);
        ran.stdout.split_whitespace().map(str::to_string).collect()
    }

    /// Waits until `condition` holds (at most 30 s); false if it never did.
    pub fn until(&self, mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// A volume as the node stores it (`volumes/<namespace>/<claim>`): a test may look, an
    /// operator's laptop could not.
    pub fn volume(&self, namespace: &str, claim: &str) -> PathBuf {
        self.dir().join("volumes").join(namespace).join(claim)
    }

    /// Every kubectl call so far, one a line.
    pub fn calls(&self) -> String {
        super::read(&self.dir().join("calls.log"))
    }

    /// The pids of the processes started with this cluster's environment still running
    /// (kubectl calls, port-forwards, pods' processes): what a finished run must not leave.
    pub fn kubectl_processes(&self) -> Vec<u32> {
        let marker = format!("FAKE_K8S={}", self.dir().display());
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if !cmdline.contains("fixtures/k8s/kubectl") {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if environ
                .split(|b| *b == 0)
                .any(|var| var == marker.as_bytes())
            {
                pids.push(pid);
            }
        }
        pids
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.kubectl(&["stand-in", "down"]);
    }
}

/// A Redis StatefulSet `name` (one replica, pod `<name>-0`) with a volume claim `data` at
/// /data, labelled `labels`, running `redis-server ARGS` (the official image's entrypoint).
pub fn redis_statefulset(namespace: &str, name: &str, labels: Value, args: &[&str]) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [{
                    "name": "redis",
                    "image": "redis:7",
                    "args": args,
                    "ports": [{ "containerPort": 6379 }],
                    "volumeMounts": [{ "name": "data", "mountPath": "/data" }]
                }] }
            },
            "volumeClaimTemplates": [{ "metadata": { "name": "data" } }]
        }
    })
}

/// A Redis Deployment `name` with the claim `<name>-data` at /data (seed 002's `deploy/redis`).
pub fn redis_deployment(namespace: &str, name: &str, labels: Value, args: &[&str]) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "containers": [{
                        "name": "redis",
                        "image": "redis:7",
                        "args": args,
                        "ports": [{ "containerPort": 6379 }],
                        "volumeMounts": [{ "name": "data", "mountPath": "/data" }]
                    }],
                    "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": format!("{name}-data") } }]
                }
            }
        }
    })
}

/// A Deployment of `replicas` pods running `command` (seed 002's Celery `worker`).
pub fn deployment(namespace: &str, name: &str, replicas: u32, command: &[&str]) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "terminationGracePeriodSeconds": 3,
                    "containers": [{ "name": name, "image": format!("example/{name}"), "command": command }]
                }
            }
        }
    })
}
