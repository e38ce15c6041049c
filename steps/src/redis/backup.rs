//! `redis.backup`: BGSAVE, wait until it is done, and copy the RDB file (and the AOF files,
//! when AOF is on) out when the server's data folder is on this machine or in its pod (a
//! `kubernetes:` target). A save already running when the step starts (a cron backup) holds
//! data from before the step: it is waited out and ours runs after it, so the backup is at
//! least as new as the step.

use super::backup_copy::{copy_aof_dir, copy_file, private_dir};
use super::pod_files::ServerFiles;
use super::{Connections, RedisTarget, reply};
use flow_engine::duration::format_duration;
use flow_engine::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Backup;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BackupParams {
    #[serde(flatten)]
    pub target: RedisTarget,
    /// How long BGSAVE may take (default 60s); past it the step fails.
    pub timeout: Option<FlowDuration>,
    /// Where to copy the RDB file; strftime patterns name it by time, e.g.
    /// `backups/redis-backup-%Y%m%d_%H%M%S.rdb`; a folder (existing, or written with a
    /// trailing `/`) gets a timestamped file inside, like `cp`. The copy is private (0600).
    /// With AOF on, the AOF files are copied beside it (`<name>.aof`). Needs the server's
    /// `dir` on this machine or in its pod (a `kubernetes:` target: copied through `kubectl
    /// exec`), or `data_dir`.
    pub dest: Option<String>,
    /// The server's data folder as this machine sees it, when that is not the path the server
    /// gives (`CONFIG GET dir` answers the server's own view): a container's bind mount —
    /// `infra/redis/data` on the host for the container's `/data`. The files are copied from
    /// here.
    pub data_dir: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BackupOutputs {
    /// LASTSAVE after the save (Unix seconds).
    pub lastsave: i64,
    /// The server's RDB file as flow reads it: `data_dir`, else the server's `dir` (in its
    /// pod, for a `kubernetes:` target), and `dbfilename`.
    pub rdb_path: String,
    /// The copy made with `dest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Size of the RDB file (when it is readable from here, or from its pod).
    pub bytes: Option<u64>,
    /// The copy of the AOF files (a folder for Redis 7's `appendonlydir`, else a file), when
    /// AOF is on and they were copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aof_path: Option<String>,
    /// How long the save took.
    pub seconds: f64,
}

/// What says a save finished: LASTSAVE (one-second resolution) and, on Redis 7, the count of
/// RDB saves, which moves even when a save starts and ends within the same second.
#[derive(Debug, PartialEq)]
struct SaveState {
    lastsave: i64,
    saves: Option<i64>,
    in_progress: bool,
    last_status: Option<String>,
}

impl Backup {
    async fn save_state(
        &self,
        connections: &Connections,
        target: &RedisTarget,
    ) -> Result<SaveState, StepError> {
        let info = super::info::read_info(connections, target).await?;
        let int =
            |name: &str| super::info_text::field(&info, name).and_then(serde_json::Value::as_i64);
        Ok(SaveState {
            lastsave: self.lastsave(connections, target).await?,
            saves: int("rdb_saves"),
            in_progress: int("rdb_bgsave_in_progress") == Some(1),
            last_status: super::info_text::field(&info, "rdb_last_bgsave_status")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        })
    }

    /// Waits until no background save runs (one started by someone else: a cron backup).
    async fn wait_idle(
        &self,
        connections: &Connections,
        target: &RedisTarget,
        began: Instant,
        timeout: Duration,
    ) -> Result<SaveState, StepError> {
        loop {
            let state = self.save_state(connections, target).await?;
            if !state.in_progress {
                return Ok(state);
            }
            if began.elapsed() > timeout {
                return Err(StepError::failed(format!(
                    "a background save already running on {} did not finish within {} \
                     (timeout); ours was not started",
                    target.display(),
                    format_duration(timeout),
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// BGSAVE once no other save runs. `SCHEDULE`: during an AOF rewrite the save starts
    /// when the rewrite ends instead of being refused.
    async fn start_save(
        &self,
        ctx: &StepContext,
        connections: &Connections,
        target: &RedisTarget,
        began: Instant,
        timeout: Duration,
    ) -> Result<SaveState, StepError> {
        let mut announced = false;
        loop {
            let before = self.save_state(connections, target).await?;
            let before = if before.in_progress {
                if !announced {
                    announced = true;
                    ctx.output(
                        "log",
                        &format!(
                            "a background save is already running on {} (started elsewhere): \
                             waiting for it, then saving again",
                            target.display()
                        ),
                    );
                }
                self.wait_idle(connections, target, began, timeout).await?
            } else {
                before
            };
            match connections
                .query(target, redis::cmd("BGSAVE").arg("SCHEDULE"))
                .await
            {
                Ok(_) => return Ok(before),
                // Another save started between our look and our BGSAVE: wait for it too.
                Err(error) if error.message().contains("already in progress") => continue,
                // A server older than 3.2 knows no SCHEDULE.
                Err(error) if error.message().contains("syntax") => {
                    connections.query(target, &redis::cmd("BGSAVE")).await?;
                    return Ok(before);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// With AOF on, copies the AOF files beside the RDB copy `dest` (`<name>.aof`): the
    /// `appendonlydir` folder of Redis 7, the single `appendonly.aof` before. Says so plainly
    /// when they cannot be copied from here.
    async fn copy_aof(
        &self,
        ctx: &StepContext,
        connections: &Connections,
        target: &RedisTarget,
        files: &ServerFiles,
        data_dir: &str,
        dest: &Path,
    ) -> Result<Option<String>, StepError> {
        if self.config(connections, target, "appendonly").await? != "yes" {
            return Ok(None);
        }
        let aof_dest = dest.with_extension("aof");
        let (src, folder) = match self.config(connections, target, "appenddirname").await {
            Ok(name) => (format!("{data_dir}/{name}"), true),
            Err(_) => (
                format!(
                    "{data_dir}/{}",
                    self.config(connections, target, "appendfilename").await?
                ),
                false,
            ),
        };
        let copied = if folder {
            copy_aof_dir(files, &src, &aof_dest)
                .await
                .map(|files| files.len())
        } else {
            copy_file(files, &src, &aof_dest).await.map(|_| 1)
        };
        match copied {
            Ok(files) => {
                ctx.output(
                    "log",
                    &format!(
                        "AOF is on: copied {src} ({files} file{}) to {}",
                        if files == 1 { "" } else { "s" },
                        aof_dest.display()
                    ),
                );
                Ok(Some(aof_dest.display().to_string()))
            }
            Err(error) => {
                ctx.warn(&format!(
                    "AOF is on but its files were not copied ({src}: {error}): the backup is the \
                     RDB snapshot only"
                ));
                Ok(None)
            }
        }
    }

    /// Where the server's files can be read from: here, its pod, or nowhere (through a
    /// `tunnel`, they are on the tunnel's host — never a file of the same name here).
    async fn files(
        &self,
        connections: &Connections,
        target: &RedisTarget,
    ) -> Result<Option<ServerFiles>, StepError> {
        if let Some(kubernetes) = &target.kubernetes {
            let pod = connections.pod(target).await?.unwrap_or_default();
            return Ok(Some(ServerFiles::Pod {
                target: kubernetes.clone(),
                pod,
            }));
        }
        Ok(target.tunnel.is_none().then_some(ServerFiles::Local))
    }

    async fn lastsave(
        &self,
        connections: &Connections,
        target: &RedisTarget,
    ) -> Result<i64, StepError> {
        let value = connections.query(target, &redis::cmd("LASTSAVE")).await?;
        reply::as_int(&value).ok_or_else(|| {
            StepError::failed(format!("LASTSAVE on {} gave no number", target.display()))
        })
    }

    async fn config(
        &self,
        connections: &Connections,
        target: &RedisTarget,
        name: &str,
    ) -> Result<String, StepError> {
        let value = connections
            .query(target, redis::cmd("CONFIG").arg("GET").arg(name))
            .await?;
        let json = reply::to_json(value);
        let text = match &json {
            serde_json::Value::Array(pair) => {
                pair.get(1).and_then(|v| v.as_str()).map(str::to_string)
            }
            serde_json::Value::Object(map) => {
                map.get(name).and_then(|v| v.as_str()).map(str::to_string)
            }
            _ => None,
        };
        text.ok_or_else(|| {
            StepError::failed(format!(
                "CONFIG GET {name} on {} gave {json}",
                target.display()
            ))
        })
    }
}

impl StepType for Backup {
    const NAME: &'static str = "redis.backup";
    const SUMMARY: &'static str = "BGSAVE, wait for LASTSAVE to advance, and copy the RDB file out";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"backup:
  type: redis.backup
  with:
    url: redis://127.0.0.1:6379
    timeout: 30s
    dest: backups/redis-backup-%Y%m%d_%H%M%S.rdb"#;
    type Params = BackupParams;
    type Outputs = BackupOutputs;

    async fn describe(&self, params: &BackupParams, ctx: &PlanContext) -> Description {
        let mut d = Description::new(
            Action::Create,
            format!("BGSAVE on {}", params.target.display()),
        );
        if let Some(dest) = &params.dest {
            d = d.detail(match &params.data_dir {
                Some(folder) => format!("copy the RDB file from {folder} to {}", stamped(dest)),
                None => format!("copy the RDB file to {}", stamped(dest)),
            });
            if let Err(e) = check_destination(&ctx.resolve_path(&stamped(dest))) {
                d = d.detail(format!("will fail: {e}"));
            }
        }
        d
    }

    async fn apply(
        &self,
        params: BackupParams,
        ctx: &StepContext,
    ) -> Result<BackupOutputs, StepError> {
        let connections = super::connections(ctx);
        let target = &params.target;
        let timeout = params
            .timeout
            .map(|t| t.0)
            .unwrap_or(Duration::from_secs(60));
        // Said before the save, not after it: a device or a FIFO is never replaced.
        if let Some(dest) = &params.dest {
            check_destination(&ctx.resolve_path(&stamped(dest)))
                .map_err(|e| StepError::failed(format!("cannot copy the backup to {dest}: {e}")))?;
        }
        let began = Instant::now();
        let before = self
            .start_save(ctx, &connections, target, began, timeout)
            .await?;
        let lastsave = loop {
            let now = self.save_state(&connections, target).await?;
            let saved = match (before.saves, now.saves) {
                (Some(b), Some(n)) => n > b && !now.in_progress,
                _ => now.lastsave > before.lastsave && !now.in_progress,
            };
            if saved {
                if now.last_status.as_deref().is_some_and(|s| s != "ok") {
                    return Err(StepError::failed(format!(
                        "BGSAVE on {} failed (rdb_last_bgsave_status: {})",
                        target.display(),
                        now.last_status.unwrap_or_default()
                    )));
                }
                break now.lastsave;
            }
            if began.elapsed() > timeout {
                return Err(StepError::failed(format!(
                    "BGSAVE on {} did not finish within {} (timeout; LASTSAVE still {})",
                    target.display(),
                    format_duration(timeout),
                    now.lastsave
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let seconds = began.elapsed().as_secs_f64();
        let dbfilename = self.config(&connections, target, "dbfilename").await?;
        // Where flow reads the server's files: `data_dir` when the playbook names it (a
        // container's bind mount: the server's own `dir` is its view, `/data`), else the
        // server's `dir`, here or in its pod.
        let (data_dir, files) = match &params.data_dir {
            Some(folder) => (
                ctx.resolve_path(folder).display().to_string(),
                Some(ServerFiles::Local),
            ),
            None => (
                self.config(&connections, target, "dir").await?,
                self.files(&connections, target).await?,
            ),
        };
        let rdb_path = format!("{}/{dbfilename}", data_dir.trim_end_matches('/'));
        let bytes = match &files {
            Some(files) => files.size(&rdb_path).await,
            None => None,
        };
        if bytes == Some(0) {
            return Err(StepError::failed(format!(
                "the backup is empty: {rdb_path} has 0 bytes"
            )));
        }
        let (mut path, mut aof_path) = (None, None);
        if let Some(dest) = &params.dest {
            let files = files.ok_or_else(|| {
                StepError::failed(format!(
                    "cannot copy the backup: through a `tunnel`, {rdb_path} is on {} — copy it \
                     with ssh.download",
                    target
                        .tunnel
                        .as_ref()
                        .map(|t| t.display())
                        .unwrap_or_default()
                ))
            })?;
            let bytes = bytes.ok_or_else(|| {
                StepError::failed(format!(
                    "cannot copy the backup: {rdb_path} is not readable {} (is Redis remote, or \
                     in a container? `data_dir` names the folder this machine sees as the \
                     server's `dir`; a Redis in Kubernetes takes a `kubernetes:` block)",
                    match &files {
                        ServerFiles::Local => "on this machine",
                        ServerFiles::Pod { .. } => "in its pod",
                    }
                ))
            })?;
            if let ServerFiles::Local = files
                && let Some(written) = std::fs::metadata(&rdb_path)
                    .ok()
                    .and_then(|m| m.modified().ok())
            {
                stale_copy_check(&rdb_path, written, lastsave)?;
            }
            let dest = destination(&ctx.resolve_path(&stamped(dest)), dest, &dbfilename);
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                private_dir(parent).map_err(|e| {
                    StepError::failed(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let copied = copy_file(&files, &rdb_path, &dest).await.map_err(|e| {
                StepError::failed(format!("cannot copy {rdb_path} to {}: {e}", dest.display()))
            })?;
            if copied == 0 {
                return Err(StepError::failed(format!(
                    "the copy {} is empty (the RDB file had {bytes} bytes)",
                    dest.display()
                )));
            }
            path = Some(dest.display().to_string());
            aof_path = self
                .copy_aof(ctx, &connections, target, &files, &data_dir, &dest)
                .await?;
        }
        Ok(BackupOutputs {
            lastsave,
            rdb_path,
            path,
            bytes,
            aof_path,
            seconds,
        })
    }
}

/// The file about to be copied must be the one this save wrote: a `dump.rdb` older than the
/// save is another server's, or a folder the server no longer writes (a wrong `data_dir`, a
/// bind mount that is not the server's `dir`) — copying it would make an old backup look new.
const STALE_AFTER_SECONDS: i64 = 5;

fn stale_copy_check(
    shown: &str,
    written: std::time::SystemTime,
    lastsave: i64,
) -> Result<(), StepError> {
    let written = written
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // LASTSAVE is set (in whole seconds) when the server notices the save ended, a cron tick
    // after the file was renamed into place: a file of this save is at most a moment older.
    if written + STALE_AFTER_SECONDS < lastsave {
        return Err(StepError::failed(format!(
            "{shown} was last written {} s before this save finished (LASTSAVE {lastsave}): it \
             is not the file the server saves — is `data_dir` (or the server's `dir`) the \
             folder it writes?",
            lastsave - written
        )));
    }
    Ok(())
}

/// Where the copy goes: `dest` itself, or inside it when it is a folder (an existing one, or
/// one written with a trailing `/`), named after the server's file and the time, like `cp`.
fn destination(resolved: &Path, written: &str, dbfilename: &str) -> PathBuf {
    if written.ends_with('/') || resolved.is_dir() {
        let stem = Path::new(dbfilename)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dump".into());
        resolved.join(stamped(&format!("{stem}-%Y%m%d-%H%M%S.rdb")))
    } else {
        resolved.to_path_buf()
    }
}

/// Whether a copy may go to `dest`: a folder (the copy goes inside), or what a file may
/// replace (symlinks followed: not a device, a FIFO, a socket).
fn check_destination(dest: &Path) -> std::io::Result<()> {
    if dest.is_dir() {
        return Ok(());
    }
    crate::core::safe_file::check_regular(&crate::core::safe_file::resolve_symlinks(dest)?)
}

/// Fills strftime patterns (`%Y%m%d_%H%M%S`) with the current UTC time.
fn stamped(pattern: &str) -> String {
    if !pattern.contains('%') {
        return pattern.to_string();
    }
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(pattern, &now).unwrap_or_else(|_| pattern.to_string())
}
