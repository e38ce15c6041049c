//! The SSH block every SSH step type takes (`host`, `user`, `port`, `key`, `known_hosts`,
//! `host_key_check`, `proxy_jump`, `connect_timeout`, `config`; settable under
//! `defaults: { ssh: … }`), and the sessions of a run: one multiplexed OpenSSH connection (a
//! control master) per destination, opened on first use, shared by every step of the run,
//! reopened once if it went away, closed when the run ends.

use flow_engine::prelude::*;
use openssh::{KnownHosts, Session, SessionBuilder};
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

    fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(10))
    }

    fn builder(&self) -> SessionBuilder {
        let mut builder = SessionBuilder::default();
        builder
            .known_hosts_check(match self.host_key_check {
                HostKeyCheck::Strict => KnownHosts::Strict,
                HostKeyCheck::AcceptNew => KnownHosts::Add,
            })
            // Whole seconds, at least one: ssh's ConnectTimeout.
            .connect_timeout(self.connect_timeout().max(Duration::from_secs(1)))
            .control_directory(std::env::temp_dir())
            // A master left by a flow that was killed exits once idle, instead of forever.
            .control_persist(openssh::ControlPersist::IdleFor(
                std::num::NonZeroUsize::new(300).expect("not zero"),
            ));
        if let Some(user) = &self.user {
            builder.user(user.clone());
        }
        if let Some(port) = self.port {
            builder.port(port);
        }
        if let Some(key) = &self.key {
            builder.keyfile(key);
        }
        if let Some(file) = &self.known_hosts {
            builder.user_known_hosts_file(file);
        }
        if let Some(config) = &self.config {
            builder.config_file(config);
        }
        if let Some(jump) = &self.proxy_jump {
            builder.jump_hosts([jump]);
        }
        builder
    }
}

/// Why a connection failed, in the words an operator acts on.
fn connect_error(target: &SshTarget, error: &openssh::Error) -> StepError {
    let text = error.to_string();
    let detail = std::error::Error::source(error)
        .map(|s| s.to_string())
        .unwrap_or_default();
    let all = format!("{text} {detail}");
    let why = if all.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        // ssh names the entry: `Offending ED25519 key in /root/.ssh/known_hosts:3`.
        let entry = all
            .lines()
            .find_map(|l| l.split_once("Offending ").map(|(_, rest)| rest.to_string()))
            .and_then(|rest| rest.split_once(" in ").map(|(_, at)| format!(" ({at})")))
            .unwrap_or_default();
        format!(
            "the host key does not match known_hosts{entry}: refused (a changed key is either a \
             rebuilt host or someone in the middle; check, then fix the entry)"
        )
    } else if all.contains("Host key verification failed") || all.contains("host key is known") {
        "the host key is not in known_hosts, and host_key_check is strict (`accept-new` records \
         a new host's key on first contact)"
            .to_string()
    } else if all.contains("Permission denied") {
        format!(
            "authentication failed (only keys and the agent are tried; a password is never asked){}",
            target
                .key
                .as_ref()
                .map(|k| format!(": key {k}"))
                .unwrap_or_default()
        )
    } else if all.contains("Could not resolve hostname") {
        "unknown host: not an address, and no alias of that name in the ssh config".to_string()
    } else if all.contains("Connection refused") {
        "connection refused".to_string()
    } else if all.contains("timed out") {
        "connection timed out".to_string()
    } else if detail.is_empty() {
        text
    } else {
        format!("{text}: {detail}")
    };
    StepError::failed(format!("cannot connect to {}: {why}", target.display()))
}

/// Whether a connection failure may pass with time (the host is booting), as opposed to one
/// that never will (a host key that does not match).
pub fn is_not_yet(error: &StepError) -> bool {
    let message = error.message();
    !message.contains("known_hosts") && !message.contains("authentication failed")
}

type Slot = Arc<tokio::sync::Mutex<Option<Open>>>;

/// A connection of the run, with the pid of its control master (asked once, when it opens).
struct Open {
    session: Arc<Session>,
    master: Option<i32>,
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
    if let Ok(session) = Arc::try_unwrap(open.session) {
        let _ = session.close().await;
        if let Some(pid) = open.master {
            flow_engine::children::ended_normally(pid);
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
        let builder = target.builder();
        let connecting = builder.connect_mux(&target.host);
        // ConnectTimeout covers the TCP connect; this covers the whole handshake.
        let session = tokio::time::timeout(target.connect_timeout() * 2, connecting)
            .await
            .map_err(|_| {
                StepError::failed(format!(
                    "cannot connect to {}: no answer within {}",
                    target.display(),
                    flow_engine::duration::format_duration(target.connect_timeout())
                ))
            })?
            .map_err(|e| connect_error(target, &e))?;
        // The master daemonizes into a session of its own: it dies with flow all the same.
        let master = master_pid(&session).await;
        if let Some(pid) = master {
            flow_engine::children::outlive_not(pid);
        }
        let session = Arc::new(session);
        *open = Some(Open {
            session: Arc::clone(&session),
            master,
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
