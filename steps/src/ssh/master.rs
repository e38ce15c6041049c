//! Opening a connection's control master (`ssh -M -f -N`), the one OpenSSH process a
//! destination's steps share.
//!
//! - The handshake runs in a process group of flow's, like a local command: a handshake that
//!   stalls (a host that sends its banner, then nothing) is ended with its attempt, not left
//!   behind — one orphan per retry, otherwise — and it dies with flow.
//! - A `proxy_jump` bastion gets the block's rules too. OpenSSH's own `-J` reaches it with an
//!   `ssh` that is given the `-F` config file and nothing of the command line, so a config's
//!   `StrictHostKeyChecking no` for the bastion let an unknown bastion key through, and the
//!   block's `known_hosts` was not used for it. Instead the master reaches it through a
//!   `ProxyCommand` of flow's: an `ssh -W` that reads a config written for the connection —
//!   the block's rules (`BatchMode`, the host key check, `known_hosts`, the connect timeout)
//!   first, where they win over anything later, then the user's config. Bastions before it
//!   (`a,b`) are reached by that `ssh`'s `-J`, which hands them the same config.

use super::SshTarget;
use super::target::HostKeyCheck;
use flow_engine::children::{self, GroupGuard};
use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;
use openssh::Session;
use std::path::{Path, PathBuf};

/// An open connection: the session, and the folder of its control socket, logs and config
/// (removed when dropped).
pub struct Master {
    pub session: Session,
    pub folder: tempfile::TempDir,
}

/// How long the master stays once idle when flow could not close it (flow was killed and
/// its supervisor could not either).
const IDLE_PERSIST: &str = "ControlPersist=300s";

/// Opens the control master to `target`. ConnectTimeout covers the TCP connect; twice it,
/// the whole handshake.
pub async fn open(target: &SshTarget) -> Result<Master, StepError> {
    let limit = target.connect_timeout() * 2;
    let folder = tempfile::Builder::new()
        .prefix(".flow-ssh-")
        .tempdir_in(std::env::temp_dir())
        .map_err(|e| fail(target, &format!("cannot make a folder for its socket: {e}")))?;
    let socket = folder.path().join("master");
    let log = folder.path().join("log");
    // What a bastion's `ssh` says (ssh sends a ProxyCommand's stderr to /dev/null when the
    // connection persists).
    let hop_log = folder.path().join("hop-log");
    let mut command = tokio::process::Command::new("ssh");
    command
        .arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(&socket)
        .args(["-M", "-f", "-N", "-o", IDLE_PERSIST])
        .args(rules(target))
        .args(target_options(target));
    if let Some(jump) = &target.proxy_jump {
        let config = folder.path().join("bastion-config");
        std::fs::write(&config, bastion_config(target)?)
            .map_err(|e| fail(target, &format!("cannot write {}: {e}", config.display())))?;
        command
            .arg("-o")
            .arg(proxy_command(&config, jump, &hop_log));
    }
    command
        .arg("--")
        .arg(&target.host)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    children::prepare(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| fail(target, &format!("cannot run ssh: {e}")))?;
    let mut group = GroupGuard::new(&child);
    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.map_err(|e| fail(target, &format!("waiting for ssh: {e}")))?,
        // Dropping `group` ends the handshake and its bastion's `ssh`.
        Err(_) => {
            return Err(fail(
                target,
                &format!(
                    "no answer within {}",
                    flow_engine::duration::format_duration(target.connect_timeout())
                ),
            ));
        }
    };
    if !status.success() {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        return Err(connect_error(target, &read(&log), &read(&hop_log)));
    }
    // The master forked into a session of its own (its bastion's `ssh` stays with it).
    group.disarm();
    Ok(Master {
        session: Session::resume_mux(socket.into_boxed_path(), Some(log.into_boxed_path())),
        folder,
    })
}

/// The block's rules, as `ssh_config` options: never a password prompt, the host key
/// check, the connect timeout, the known_hosts file.
fn rule_lines(target: &SshTarget) -> Vec<(&'static str, String)> {
    let check = match target.host_key_check {
        HostKeyCheck::Strict => "yes",
        HostKeyCheck::AcceptNew => "accept-new",
    };
    // Whole seconds, at least one: ssh's ConnectTimeout.
    let seconds = target.connect_timeout().as_secs().max(1);
    let mut rules = vec![
        ("BatchMode", "yes".to_string()),
        ("StrictHostKeyChecking", check.to_string()),
        ("ConnectTimeout", seconds.to_string()),
    ];
    if let Some(known_hosts) = &target.known_hosts {
        rules.push(("UserKnownHostsFile", known_hosts.clone()));
    }
    rules
}

/// The rules as command-line options, for the destination.
fn rules(target: &SshTarget) -> Vec<String> {
    rule_lines(target)
        .into_iter()
        .flat_map(|(name, value)| ["-o".to_string(), format!("{name}={value}")])
        .collect()
}

/// The command-line options of the destination alone.
fn target_options(target: &SshTarget) -> Vec<String> {
    let mut options = Vec::new();
    if let Some(port) = target.port {
        options.extend(["-p".to_string(), port.to_string()]);
    }
    if let Some(user) = &target.user {
        options.extend(["-l".to_string(), user.clone()]);
    }
    if let Some(key) = &target.key {
        // Only that key is offered.
        options.extend([
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-i".into(),
            key.clone(),
        ]);
    }
    if let Some(config) = &target.config {
        options.extend(["-F".to_string(), config.clone()]);
    }
    options
}

/// `-o ProxyCommand=…`: an `ssh -W` to the last bastion of `jump` (`[user@]host[:port]`,
/// several separated by commas) reading `config`; those before it through its `-J`; what it
/// says appended to `log`. ssh runs it with `sh -c` after replacing `%` tokens, so each word
/// is quoted and each `%` doubled.
fn proxy_command(config: &Path, jump: &str, log: &Path) -> String {
    let word = |text: &str| shell_quote(text).replace('%', "%%");
    let (before, last) = match jump.rsplit_once(',') {
        Some((before, last)) => (Some(before), last),
        None => (None, jump),
    };
    // `ssh://` is how a destination carries `user@host:port`.
    let last = if last.starts_with("ssh://") {
        last.to_string()
    } else {
        format!("ssh://{last}")
    };
    let mut command = format!(
        "ProxyCommand=ssh -F {}",
        word(&config.display().to_string())
    );
    if let Some(before) = before {
        command.push_str(&format!(" -J {}", word(before)));
    }
    command.push_str(&format!(
        " -W '[%h]:%p' -- {} 2>>{}",
        word(&last),
        word(&log.display().to_string())
    ));
    command
}

/// The config a bastion's `ssh` reads: the block's rules, then the user's config. In
/// ssh_config the first value of an option wins.
fn bastion_config(target: &SshTarget) -> Result<String, StepError> {
    let mut config =
        "# Written by flow for one connection: the block's rules for its bastions, then the user's config.\n"
            .to_string();
    for (name, value) in rule_lines(target) {
        if name == "UserKnownHostsFile" {
            // `%` starts a token in this option; `%%` is a `%`.
            let path = config_path(target, "known_hosts", &value)?.replace('%', "%%");
            config.push_str(&format!("{name} \"{path}\"\n"));
        } else {
            config.push_str(&format!("{name} {value}\n"));
        }
    }
    match &target.config {
        Some(user_config) => {
            let path = config_path(target, "config", user_config)?;
            if path.contains(['*', '?', '[']) {
                return Err(fail(
                    target,
                    &format!(
                        "`config` {user_config}: ssh would read `*`, `?` or `[` in it as a pattern"
                    ),
                ));
            }
            config.push_str(&format!("Include \"{path}\"\n"));
        }
        // What ssh reads when it is given no config file.
        None => config.push_str("Include ~/.ssh/config\nInclude /etc/ssh/ssh_config\n"),
    }
    Ok(config)
}

/// A path of the block, absolute (a relative one in the config would be read from `~/.ssh`)
/// and fit for a quoted ssh_config value.
fn config_path(target: &SshTarget, field: &str, path: &str) -> Result<String, StepError> {
    let absolute: PathBuf =
        std::path::absolute(path).map_err(|e| fail(target, &format!("`{field}` {path}: {e}")))?;
    let text = absolute.to_str().unwrap_or_default();
    if text.is_empty() || text.contains(['"', '\\', '\n', '\r']) {
        return Err(fail(
            target,
            &format!(
                "`{field}` {path}: ssh cannot be given a path that holds a quote, a backslash or a line break"
            ),
        ));
    }
    Ok(text.to_string())
}

fn fail(target: &SshTarget, why: &str) -> StepError {
    StepError::failed(format!("cannot connect to {}: {why}", target.display()))
}

/// Why a connection failed, in the words an operator acts on, from what the master logged
/// and what a bastion's `ssh` printed.
fn connect_error(target: &SshTarget, log: &str, hop_log: &str) -> StepError {
    if let Some(jump) = &target.proxy_jump
        && let Some(why) = known_reason(target, hop_log)
    {
        return fail(target, &format!("through the bastion {jump}: {why}"));
    }
    if let Some(why) = known_reason(target, log) {
        return fail(target, &why);
    }
    let last = |text: &str| {
        text.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
            .map(str::to_string)
    };
    let why = last(log)
        .or_else(|| last(hop_log))
        .unwrap_or_else(|| "ssh failed without saying why".to_string());
    fail(target, why.strip_prefix("ssh: ").unwrap_or(&why))
}

fn known_reason(target: &SshTarget, text: &str) -> Option<String> {
    Some(if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        // ssh names the entry: `Offending ED25519 key in /root/.ssh/known_hosts:3`.
        let entry = text
            .lines()
            .find_map(|l| l.split_once("Offending ").map(|(_, rest)| rest.to_string()))
            .and_then(|rest| {
                rest.split_once(" in ")
                    .map(|(_, at)| format!(" ({})", at.trim()))
            })
            .unwrap_or_default();
        format!(
            "the host key does not match known_hosts{entry}: refused (a changed key is either a \
             rebuilt host or someone in the middle; check, then fix the entry)"
        )
    } else if text.contains("Host key verification failed") || text.contains("host key is known") {
        "the host key is not in known_hosts, and host_key_check is strict (`accept-new` records \
         a new host's key on first contact)"
            .to_string()
    } else if text.contains("Permission denied") {
        format!(
            "authentication failed (only keys and the agent are tried; a password is never asked){}",
            target
                .key
                .as_ref()
                .map(|k| format!(": key {k}"))
                .unwrap_or_default()
        )
    } else if text.contains("Could not resolve hostname") {
        "unknown host: not an address, and no alias of that name in the ssh config".to_string()
    } else if text.contains("Connection refused") {
        "connection refused".to_string()
    } else if text.contains("timed out") {
        "connection timed out".to_string()
    } else {
        return None;
    })
}
