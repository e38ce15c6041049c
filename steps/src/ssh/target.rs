//! The SSH block every SSH step type takes (`host`, `user`, `port`, `key`, `known_hosts`,
//! `host_key_check`, `proxy_jump`, `connect_timeout`, `config`; settable under
//! `defaults: { ssh: … }`), and the sessions of a run: one multiplexed OpenSSH connection (a
//! control master) per destination, opened on first use, shared by every step of the run,
//! reopened once if it went away, closed when the run ends.

use flow_engine::prelude::*;
use openssh::Session;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the server's host key is checked. There is no "accept anything".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyCheck {
    /// The key must already be in `known_hosts` (the default).
    #[default]
    Strict,
    /// A host not yet known is recorded on first contact; a known host must match.
    AcceptNew,
}

/// An SSH connection block: merges `defaults.ssh` wherever it appears.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[schemars(extend("x-flow-defaults" = "ssh"))]
pub struct SshTarget {
    /// An address, or a host alias of the ssh config.
    pub host: String,
    /// Login name (default: from the ssh config, else the local user).
    pub user: Option<String>,
    /// Port (default: from the ssh config, else 22).
    pub port: Option<u16>,
    /// A private key file; only that key is offered.
    pub key: Option<String>,
    /// The known_hosts file to check host keys against (default: ssh's own).
    pub known_hosts: Option<String>,
    /// `strict` (default): the host key must be known; `accept-new`: record a new host's key.
    #[serde(default)]
    pub host_key_check: HostKeyCheck,
    /// A bastion to go through (`user@bastion:port`), as `ssh -J`.
    pub proxy_jump: Option<String>,
    /// How long to wait for the connection (default 10s).
    pub connect_timeout: Option<FlowDuration>,
    /// An ssh_config file to read (aliases, bastions) instead of ~/.ssh/config.
    pub config: Option<String>,
}

impl SshTarget {
    /// How the host is named in messages: `user@host:port` as far as the block says.
    pub fn display(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{user}{}{port}", self.host)
    }

    /// The local files the block names exist and are files: a missing key is not an
    /// "authentication failed", a folder given as `config` not an "unknown host".
    fn check_files(&self) -> Result<(), StepError> {
        let named = [
            ("key", self.key.as_deref(), true),
            ("config", self.config.as_deref(), true),
            // May not exist yet: `accept-new` creates it.
            ("known_hosts", self.known_hosts.as_deref(), false),
        ];
        for (field, path, must_exist) in named {
            let Some(path) = path else { continue };
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_file() => {}
                Ok(_) => {
                    return Err(StepError::failed(format!(
                        "cannot connect to {}: `{field}` {path} is not a file",
                        self.display()
                    )));
                }
                Err(_) if !must_exist => {}
                Err(e) => {
                    return Err(StepError::failed(format!(
                        "cannot connect to {}: `{field}` {path}: {e}",
                        self.display()
                    )));
                }
            }
        }
        if self.port == Some(0) {
            return Err(StepError::failed(format!(
                "cannot connect to {}: port 0 is no port",
                self.display()
            )));
        }
        if self.host.starts_with('-') {
            return Err(StepError::failed(format!(
                "`{}` is not a host name (it would be read as an ssh option)",
                self.host
            )));
        }
        Ok(())
    }

    pub(super) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(10))
    }
}

/// Whether a connection failure may pass with time (the host is booting), as opposed to one
/// that never will (a host key that does not match).
pub fn is_not_yet(error: &StepError) -> bool {
    let message = error.message();
    !message.contains("known_hosts") && !message.contains("authentication failed")
}

type Slot = Arc<tokio::sync::Mutex<Option<Open>>>;

/// A connection of the run, with the pid of its control master (asked once, when it opens)
/// and the folder of its socket, logs and config.
struct Open {
    session: Arc<Session>,
    master: Option<i32>,
    _folder: tempfile::TempDir,
}

/// The pid of a session's control master (`ssh -O check` says `Master running (pid=N)`).
async fn master_pid(session: &Session) -> Option<i32> {
    let output = tokio::process::Command::new("ssh")
        .arg("-S")
        .arg(session.control_socket())
        .args(["-O", "check", "flow-master"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stderr);
    let start = text.find("pid=")? + 4;
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// The SSH sessions of a run, one per destination: a resource of the run, closed when it ends.
#[derive(Default)]
pub struct Sessions {
    slots: Mutex<HashMap<SshTarget, Slot>>,
    /// Work that must reach a host before its connection closes (ending a cancelled command).
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Resource for Sessions {
    async fn close(&self) {
        let pending: Vec<_> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for task in pending {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let slots: Vec<Slot> = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        for slot in slots {
            if let Some(open) = slot.lock().await.take() {
                close(open).await;
            }
        }
    }
}

/// Closes a session once no command uses it any more (the master process exits), and tells
/// the supervisor its master is no longer flow's to end — also when the master had died by
/// itself, so its pid, which may be reused, is never signalled. A session still in use stays
/// registered: the supervisor ends it with flow.
async fn close(open: Open) {
    match Arc::try_unwrap(open.session) {
        Ok(session) => {
            let _ = session.close().await;
            if let Some(pid) = open.master {
                flow_engine::children::ended_normally(pid);
            }
        }
        // Its socket stays where the commands still using it find it.
        Err(_) => {
            let _ = open._folder.keep();
        }
    }
}

impl Sessions {
    /// Keeps `task` to be awaited before the connections close.
    pub fn pending(&self, task: tokio::task::JoinHandle<()>) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    fn slot(&self, target: &SshTarget) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(slots.entry(target.clone()).or_default())
    }

    /// The session to `target`, connecting on first use (steps of one host wait for one
    /// connection; other hosts connect at the same time).
    pub async fn get(&self, target: &SshTarget) -> Result<Arc<Session>, StepError> {
        target.check_files()?;
        let slot = self.slot(target);
        let mut open = slot.lock().await;
        if let Some(open) = open.as_ref() {
            return Ok(Arc::clone(&open.session));
        }
        let super::master::Master { session, folder } = super::master::open(target).await?;
        // The master daemonizes into a session of its own: it dies with flow all the same.
        let master = master_pid(&session).await;
        if let Some(pid) = master {
            flow_engine::children::outlive_not(pid);
        }
        let session = Arc::new(session);
        *open = Some(Open {
            session: Arc::clone(&session),
            master,
            _folder: folder,
        });
        Ok(session)
    }

    /// Forgets the session to `target` after its master went away; the next `get` reconnects.
    pub async fn forget(&self, target: &SshTarget) {
        let slot = self.slot(target);
        let open = slot.lock().await.take();
        if let Some(open) = open {
            close(open).await;
        }
    }

    /// The session to `target`, checked alive; a dead master is reopened once.
    pub async fn live(&self, target: &SshTarget) -> Result<Arc<Session>, StepError> {
        let session = self.get(target).await?;
        if session.check().await.is_ok() {
            return Ok(session);
        }
        drop(session);
        self.forget(target).await;
        self.get(target).await
    }
}
