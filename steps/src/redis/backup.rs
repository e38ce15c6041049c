//! `redis.backup`: BGSAVE, wait until LASTSAVE moves, and copy the RDB file out when the
//! server's data folder is on this machine.

use super::{Connections, RedisTarget, reply};
use flow_engine::duration::format_duration;
use flow_engine::prelude::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Backup;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BackupParams {
    #[serde(flatten)]
    pub target: RedisTarget,
    /// How long BGSAVE may take (default 60s); past it the step fails.
    pub timeout: Option<FlowDuration>,
    /// Where to copy the RDB file; strftime patterns name it by time, e.g.
    /// `backups/redis-backup-%Y%m%d_%H%M%S.rdb`. Needs the server's `dir` on this machine.
    pub dest: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BackupOutputs {
    /// LASTSAVE after the save (Unix seconds).
    pub lastsave: i64,
    /// The server's RDB file (`dir`/`dbfilename`).
    pub rdb_path: String,
    /// The copy made with `dest`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Size of the RDB file (when it is readable here).
    pub bytes: Option<u64>,
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

    async fn describe(&self, params: &BackupParams, _: &PlanContext) -> Description {
        let mut d = Description::new(
            Action::Create,
            format!("BGSAVE on {}", params.target.display()),
        );
        if let Some(dest) = &params.dest {
            d = d.detail(format!("copy the RDB file to {}", stamped(dest)));
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
        let began = Instant::now();
        let before = self.save_state(&connections, target).await?;
        if let Err(error) = connections.query(target, &redis::cmd("BGSAVE")).await
            && !error.message().contains("already in progress")
        {
            return Err(error);
        }
        let lastsave = loop {
            let now = self.save_state(&connections, target).await?;
            let saved = match (before.saves, now.saves) {
                (Some(b), Some(n)) => n > b && !now.in_progress,
                _ => now.lastsave > before.lastsave,
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
                    "BGSAVE on {} did not finish within {} (LASTSAVE still {})",
                    target.display(),
                    format_duration(timeout),
                    before.lastsave
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let seconds = began.elapsed().as_secs_f64();
        let rdb_path = PathBuf::from(self.config(&connections, target, "dir").await?)
            .join(self.config(&connections, target, "dbfilename").await?);
        let shown = rdb_path.display().to_string();
        let bytes = tokio::fs::metadata(&rdb_path).await.ok().map(|m| m.len());
        if bytes == Some(0) {
            return Err(StepError::failed(format!(
                "the backup is empty: {shown} has 0 bytes"
            )));
        }
        let mut path = None;
        if let Some(dest) = &params.dest {
            let bytes = bytes.ok_or_else(|| {
                StepError::failed(format!("cannot copy the backup: {shown} is not readable on this machine (is Redis remote?)"))
            })?;
            let dest = ctx.resolve_path(&stamped(dest));
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(parent).await.map_err(|e| {
                    StepError::failed(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let copied = tokio::fs::copy(&rdb_path, &dest).await.map_err(|e| {
                StepError::failed(format!("cannot copy {shown} to {}: {e}", dest.display()))
            })?;
            if copied != bytes || copied == 0 {
                return Err(StepError::failed(format!(
                    "the copy {} has {copied} bytes, the RDB file {bytes}",
                    dest.display()
                )));
            }
            path = Some(dest.display().to_string());
        }
        Ok(BackupOutputs {
            lastsave,
            rdb_path: shown,
            path,
            bytes,
            seconds,
        })
    }
}

/// Fills strftime patterns (`%Y%m%d_%H%M%S`) with the current UTC time.
fn stamped(pattern: &str) -> String {
    if !pattern.contains('%') {
        return pattern.to_string();
    }
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(pattern, &now).unwrap_or_else(|_| pattern.to_string())
}
