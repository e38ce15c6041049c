//! Ending a command flow started on a host, whatever ends its step: a `timeout` or Ctrl-C
//! drops the step, and the drop sends the kill over the same connection; a `kill -9` (or a
//! crash) of flow leaves nothing to drop, so the same kill is also left with flow's
//! supervisor as a last will, which runs it through the connection's control master before
//! it ends the master.

use super::Sessions;
use flow_engine::children::LastWill;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The line that ends a remote process group: SIGTERM now, SIGKILL 3 s later from a
/// detached shell on the host, so it returns at once.
fn kill_line(pid: u32, sudo: bool) -> String {
    let sudo = if sudo { "sudo -n " } else { "" };
    format!(
        "{sudo}kill -TERM -- -{pid} 2>/dev/null; (sleep 3; {sudo}kill -KILL -- -{pid}) >/dev/null 2>&1 </dev/null & true"
    )
}

/// The `ssh` client's absolute path (the supervisor cannot search `PATH`).
fn ssh_program() -> Option<&'static PathBuf> {
    static PROGRAM: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("ssh"))
                .find(|path| path.is_file())
                .and_then(|path| std::path::absolute(path).ok())
        })
        .as_ref()
}

/// The kill as a command of its own through the control master at `socket`, for the
/// supervisor. `-F /dev/null`: nothing of a user's ssh config (a `ControlMaster auto`)
/// stands in the way; it only ever talks to the master.
fn last_will(socket: &std::path::Path, line: &str) -> Option<LastWill> {
    let program = ssh_program()?;
    let argv: [&OsStr; 13] = [
        program.as_os_str(),
        "-F".as_ref(),
        "/dev/null".as_ref(),
        "-S".as_ref(),
        socket.as_os_str(),
        "-o".as_ref(),
        "ControlMaster=no".as_ref(),
        "-o".as_ref(),
        "BatchMode=yes".as_ref(),
        "-T".as_ref(),
        "flow-master".as_ref(),
        "--".as_ref(),
        line.as_ref(),
    ];
    LastWill::new(&argv)
}

/// Ends the remote command when dropped before [`finished`](Self::finished): its step was
/// cancelled. Knows the command once it said its pid ([`started`](Self::started)).
pub struct RemoteKill {
    sessions: Arc<Sessions>,
    session: Arc<openssh::Session>,
    sudo: bool,
    running: Mutex<Option<(u32, Option<LastWill>)>>,
    armed: AtomicBool,
}

impl RemoteKill {
    pub fn new(sessions: Arc<Sessions>, session: Arc<openssh::Session>, sudo: bool) -> Self {
        Self {
            sessions,
            session,
            sudo,
            running: Mutex::new(None),
            armed: AtomicBool::new(true),
        }
    }

    /// The command runs as process group `pid` on the host.
    pub fn started(&self, pid: u32) {
        let will = last_will(self.session.control_socket(), &kill_line(pid, self.sudo));
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Some((pid, will));
    }

    /// The command ended by itself: nothing to kill, the last will withdrawn.
    pub fn finished(&self) {
        self.armed.store(false, Ordering::Relaxed);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

impl Drop for RemoteKill {
    fn drop(&mut self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let Some((pid, will)) = running else { return };
        let line = kill_line(pid, self.sudo);
        let session = Arc::clone(&self.session);
        // On a task of its own, since the step is gone; the last will stands until the
        // kill has gone out, should flow die in between.
        self.sessions.pending(tokio::spawn(async move {
            let _ = session.raw_command(&line).status().await;
            drop(will);
        }));
    }
}
