//! The `kubernetes:` block of a Redis target: Redis in a pod, reached the way an operator
//! reaches it — through `kubectl` (the one on PATH, with the kubeconfig it reads). The
//! connection goes through a `kubectl port-forward` that flow starts (`port_forward.rs`),
//! and files are read with `kubectl exec` (`pod_files.rs`).

use flow_engine::children::{self, GroupGuard};
use flow_engine::prelude::*;
use std::process::Stdio;
use std::time::Duration;

/// Where Redis runs in Kubernetes. Give `pod` or `selector`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    /// The namespace (default: the context's).
    pub namespace: Option<String>,
    /// The pod by name (`redis-0`), or a workload kubectl picks a pod of (`deploy/redis`,
    /// `statefulset/redis`).
    pub pod: Option<String>,
    /// Or a label selector (`app=redis`): a ready pod it matches, looked up again each time
    /// the forward starts (a Deployment's new pod has a new name).
    pub selector: Option<String>,
    /// The container, when the pod has more than one.
    pub container: Option<String>,
    /// The kubeconfig context (default: the current one).
    pub context: Option<String>,
}

impl KubernetesTarget {
    /// How the block is named in messages: `october/app=redis`, `data/redis-0`.
    pub fn display(&self) -> String {
        let which = self
            .pod
            .as_deref()
            .or(self.selector.as_deref())
            .unwrap_or("?");
        match &self.namespace {
            Some(namespace) => format!("{namespace}/{which}"),
            None => which.to_string(),
        }
    }

    /// Exactly one of `pod` and `selector`.
    pub fn check(&self) -> Result<(), StepError> {
        match (&self.pod, &self.selector) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(StepError::failed(
                "kubernetes: give `pod` (a name, or `deploy/NAME`) or `selector` (`app=redis`), one of them",
            )),
        }
    }

    /// `kubectl [--context C] [-n NS] ARGS…`, ready to run as a child of a step: in its own
    /// process group, ended with flow (`children::prepare`).
    pub fn kubectl(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("kubectl");
        if let Some(context) = &self.context {
            command.args(["--context", context]);
        }
        if let Some(namespace) = &self.namespace {
            command.args(["-n", namespace]);
        }
        command.args(args).stdin(Stdio::null());
        children::prepare(&mut command);
        command
    }

    /// Runs `kubectl ARGS` to its end, at most `limit`: its stdout, or its stderr as the error.
    pub async fn run(&self, args: &[&str], limit: Duration) -> Result<Vec<u8>, String> {
        let mut command = self.kubectl(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().map_err(|e| spawn_error(&e))?;
        let mut guard = GroupGuard::new(&child);
        let output = tokio::time::timeout(limit, child.wait_with_output())
            .await
            .map_err(|_| {
                format!(
                    "`kubectl {}` did not finish within {}",
                    args.join(" "),
                    flow_engine::duration::format_duration(limit)
                )
            })?
            .map_err(|e| format!("`kubectl {}`: {e}", args.join(" ")))?;
        guard.disarm();
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(last_line(&output.stderr)
                .unwrap_or_else(|| format!("`kubectl {}` failed", args.join(" "))))
        }
    }

    /// What `kubectl port-forward` and `kubectl exec` are given: `pod/NAME` or the workload
    /// named in `pod`, or the first ready pod `selector` matches now.
    pub async fn resolve(&self, limit: Duration) -> Result<String, StepError> {
        self.check()?;
        if let Some(pod) = &self.pod {
            return Ok(if pod.contains('/') {
                pod.clone()
            } else {
                format!("pod/{pod}")
            });
        }
        let selector = self.selector.as_deref().unwrap_or_default();
        let listed = self
            .run(&["get", "pods", "-l", selector, "-o", "json"], limit)
            .await
            .map_err(|e| {
                StepError::failed(format!("cannot list the pods of {}: {e}", self.display()))
            })?;
        let list: serde_json::Value = serde_json::from_slice(&listed).map_err(|e| {
            StepError::failed(format!(
                "`kubectl get pods -l {selector} -o json` gave no JSON: {e}"
            ))
        })?;
        ready_pod(&list)
            .map(|name| format!("pod/{name}"))
            .ok_or_else(|| {
                StepError::failed(format!(
                    "no ready pod matches {} ({})",
                    self.display(),
                    pods_seen(&list)
                ))
            })
    }
}

/// The first pod (by name) that is running, ready and not being deleted.
fn ready_pod(list: &serde_json::Value) -> Option<String> {
    let mut ready: Vec<String> = list["items"]
        .as_array()?
        .iter()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .filter(|pod| pod["status"]["phase"] == "Running")
        .filter(|pod| {
            pod["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .filter_map(|pod| pod["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    ready.sort();
    ready.into_iter().next()
}

/// `pods: redis-0 (terminating)`, `no pods`: what was there instead of a ready pod.
fn pods_seen(list: &serde_json::Value) -> String {
    let pods: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pod| {
            let name = pod["metadata"]["name"].as_str().unwrap_or("?");
            let state = if !pod["metadata"]["deletionTimestamp"].is_null() {
                "terminating".to_string()
            } else if pod["status"]["phase"] != "Running" {
                pod["status"]["phase"]
                    .as_str()
                    .unwrap_or("not running")
                    .to_lowercase()
            } else {
                "not ready".to_string()
            };
            format!("{name} ({state})")
        })
        .collect();
    if pods.is_empty() {
        "no pods".into()
    } else {
        format!("pods: {}", pods.join(", "))
    }
}

pub fn spawn_error(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        "cannot run `kubectl`: command not found (the `kubernetes:` block drives the kubectl on PATH)".into()
    } else {
        format!("cannot run `kubectl`: {error}")
    }
}

/// The last line of kubectl's stderr that says something: the error (not `command
/// terminated with exit code 1`, which `kubectl exec` adds after the command's own message).
pub fn last_line(stderr: &[u8]) -> Option<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("command terminated with exit code"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, ready: bool, deleting: bool) -> serde_json::Value {
        let mut pod = serde_json::json!({
            "metadata": { "name": name },
            "status": { "phase": phase, "conditions": [
                { "type": "Ready", "status": if ready { "True" } else { "False" } }
            ] }
        });
        if deleting {
            pod["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z".into();
        }
        pod
    }

    #[test]
    fn a_selector_takes_a_ready_pod_never_a_terminating_one() {
        let list = serde_json::json!({ "items": [
            pod("redis-b", "Running", true, true),
            pod("redis-c", "Running", true, false),
            pod("redis-a", "Pending", false, false),
        ] });
        assert_eq!(ready_pod(&list).as_deref(), Some("redis-c"));
        let none = serde_json::json!({ "items": [pod("redis-0", "Running", true, true)] });
        assert_eq!(ready_pod(&none), None);
        assert_eq!(pods_seen(&none), "pods: redis-0 (terminating)");
        assert_eq!(pods_seen(&serde_json::json!({ "items": [] })), "no pods");
    }

    #[test]
    fn pod_or_selector_one_of_them() {
        let block = |pod: Option<&str>, selector: Option<&str>| KubernetesTarget {
            namespace: Some("october".into()),
            pod: pod.map(str::to_string),
            selector: selector.map(str::to_string),
            container: None,
            context: None,
        };
        assert!(block(Some("redis-0"), None).check().is_ok());
        assert!(block(None, Some("app=redis")).check().is_ok());
        assert!(block(None, None).check().is_err());
        assert!(block(Some("redis-0"), Some("app=redis")).check().is_err());
        assert_eq!(
            block(None, Some("app=redis")).display(),
            "october/app=redis"
        );
    }
}
