//! A `kubectl port-forward` that flow runs for a Redis target with a `kubernetes:` block.
//!
//! A port-forward goes to one pod and ends — or stops forwarding — when that pod's container
//! ends: deleted, restarted after a `SHUTDOWN`, replaced by its controller
//! (kubernetes/kubectl#686: it never follows the new pod). So flow owns the forward: it
//! starts it with the connection, watches it (a forward that exited is noticed before the
//! connection is used again), and closes it with the connection — which `Connections`
//! drops when the server goes away — so that the next use starts a new forward to the pod
//! there is now, looked up again by its selector.

use super::kubernetes::{KubernetesTarget, spawn_error};
use flow_engine::children::GroupGuard;
use flow_engine::prelude::*;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

pub struct PortForward {
    child: tokio::process::Child,
    group: GroupGuard,
    /// The local port (on 127.0.0.1) that reaches the pod's port.
    pub port: u16,
    /// The pod it goes to, as kubectl was given it (`pod/redis-0`, `deploy/redis`).
    pub pod: String,
    /// The last lines kubectl wrote on stderr: why it ended.
    stderr: Arc<Mutex<String>>,
}

impl PortForward {
    /// Starts a forward from a free local port to `remote_port` of the pod, waiting at most
    /// `limit` for kubectl to say it forwards.
    pub async fn start(
        target: &KubernetesTarget,
        remote_port: u16,
        limit: Duration,
    ) -> Result<Self, StepError> {
        let pod = target.resolve(limit).await?;
        let ports = format!(":{remote_port}");
        let mut command = target.kubectl(&["port-forward", "--address", "127.0.0.1", &pod, &ports]);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| StepError::failed(spawn_error(&e)))?;
        let group = GroupGuard::new(&child);
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_read = child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(keep_tail(pipe, Arc::clone(&stderr))));
        let mut forward = PortForward {
            child,
            group,
            port: 0,
            pod,
            stderr,
        };
        let stdout = forward.child.stdout.take();
        let announced = async {
            let mut lines = BufReader::new(stdout?).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = forwarded_port(&line) {
                    // kubectl goes on printing `Handling connection for …`: read it all, or
                    // its pipe fills and it stops forwarding.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Some(port);
                }
            }
            None
        };
        match tokio::time::timeout(limit, announced).await {
            Ok(Some(port)) => {
                forward.port = port;
                Ok(forward)
            }
            Ok(None) => {
                let _ = forward.child.wait().await;
                forward.group.disarm();
                // Its error is the end of its stderr: read it all first.
                if let Some(reading) = stderr_read {
                    let _ = tokio::time::timeout(Duration::from_secs(1), reading).await;
                }
                Err(forward.failed("ended before it forwarded"))
            }
            Err(_) => Err(forward.failed(&format!(
                "did not forward within {}",
                flow_engine::duration::format_duration(limit)
            ))),
        }
    }

    /// Whether kubectl still runs (a forward whose pod ended exits).
    pub fn alive(&mut self) -> bool {
        match self.child.try_wait() {
            Ok(None) => true,
            _ => {
                self.group.disarm();
                false
            }
        }
    }

    fn failed(&self, what: &str) -> StepError {
        let stderr = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let why = super::kubernetes::last_line(stderr.as_bytes())
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        StepError::failed(format!("`kubectl port-forward {}` {what}{why}", self.pod))
    }
}

/// The local port of `Forwarding from 127.0.0.1:43017 -> 6379`.
fn forwarded_port(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("Forwarding from 127.0.0.1:")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Reads `pipe` to its end, keeping its last 4 KiB in `tail`.
async fn keep_tail(mut pipe: impl tokio::io::AsyncRead + Unpin, tail: Arc<Mutex<String>>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.push_str(&String::from_utf8_lossy(&buffer[..n]));
        if tail.len() > 4096 {
            let cut = tail.len() - 4096;
            let cut = (cut..tail.len())
                .find(|i| tail.is_char_boundary(*i))
                .unwrap_or(0);
            tail.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_port_is_read_from_kubectls_announcement() {
        assert_eq!(
            forwarded_port("Forwarding from 127.0.0.1:43017 -> 6379"),
            Some(43017)
        );
        assert_eq!(forwarded_port("Forwarding from [::1]:43017 -> 6379"), None);
        assert_eq!(forwarded_port("Handling connection for 43017"), None);
    }
}
