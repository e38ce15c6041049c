//! `files.prune`: retention for local backups — keep the newest N files matching a pattern
//! (and/or delete those older than a duration). Plan lists exactly what would go.

use flow_engine::duration::format_duration;
use flow_engine::prelude::*;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct FilesPrune;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesPruneParams {
    /// The folder (relative to where flow runs).
    pub dir: String,
    /// File names to consider, with `*` and `?`: `redis-backup-*.rdb`.
    pub pattern: String,
    /// Keep this many of the newest matching files.
    pub keep_latest: Option<usize>,
    /// Delete only files older than this (`7d`); with `keep_latest`, both must allow it.
    pub older_than: Option<FlowDuration>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FilesPruneOutputs {
    /// The files deleted.
    pub deleted: Vec<String>,
    /// How many matching files remain.
    pub kept: usize,
}

/// `*` matches any run of characters, `?` one character.
fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl FilesPruneParams {
    /// (to delete, kept count), newest first; ties broken by name so the order is stable.
    fn selection(&self, dir: &Path) -> Result<(Vec<PathBuf>, usize), String> {
        if self.keep_latest.is_none() && self.older_than.is_none() {
            return Err("give `keep_latest`, `older_than`, or both".into());
        }
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let mut files: Vec<(SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| matches(&self.pattern, &e.file_name().to_string_lossy()))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let now = SystemTime::now();
        let mut delete = Vec::new();
        let mut kept = 0;
        for (index, (modified, path)) in files.into_iter().enumerate() {
            let beyond_count = self.keep_latest.is_none_or(|keep| index >= keep);
            let old_enough = self
                .older_than
                .is_none_or(|age| now.duration_since(modified).unwrap_or_default() > age.0);
            if beyond_count && old_enough {
                delete.push(path);
            } else {
                kept += 1;
            }
        }
        Ok((delete, kept))
    }
}

/// An age as a retention is written: `7d`, `36h`, `90m` (not `10080m00s`).
fn written_age(age: std::time::Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0 => format_duration(age),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && age.subsec_nanos() == 0 => format!("{}m", s / 60),
        _ => format_duration(age),
    }
}

impl StepType for FilesPrune {
    const DEFAULTS: Option<&'static str> = Some("files");
    const NAME: &'static str = "files.prune";
    const SUMMARY: &'static str = "Delete old local files matching a pattern, keeping the newest N";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"retention:
  type: files.prune
  with:
    dir: backups
    pattern: "redis-backup-*.rdb"
    keep_latest: 7"#;
    type Params = FilesPruneParams;
    type Outputs = FilesPruneOutputs;

    async fn describe(&self, params: &FilesPruneParams, ctx: &PlanContext) -> Description {
        let rule = match (params.keep_latest, params.older_than) {
            (Some(n), None) => format!("keep the newest {n}"),
            (None, Some(age)) => format!("older than {}", written_age(age.0)),
            (Some(n), Some(age)) => format!(
                "keep the newest {n}, delete only older than {}",
                written_age(age.0)
            ),
            (None, None) => String::new(),
        };
        match params.selection(&ctx.resolve_path(&params.dir)) {
            Ok((delete, kept)) => {
                let mut d = Description::new(
                    Action::Delete,
                    format!(
                        "delete {} of `{}` in {} ({rule}; {kept} kept)",
                        delete.len(),
                        params.pattern,
                        params.dir
                    ),
                );
                for path in &delete {
                    d = d.detail(format!("- {}", path.display()));
                }
                d
            }
            Err(e) => Description::new(
                Action::Delete,
                format!("prune `{}` in {} ({rule})", params.pattern, params.dir),
            )
            .detail(e),
        }
    }

    async fn apply(
        &self,
        params: FilesPruneParams,
        ctx: &StepContext,
    ) -> Result<FilesPruneOutputs, StepError> {
        let (delete, kept) = params
            .selection(&ctx.resolve_path(&params.dir))
            .map_err(StepError::Failed)?;
        let mut deleted = Vec::new();
        for path in delete {
            tokio::fs::remove_file(&path)
                .await
                .map_err(|e| StepError::failed(format!("cannot delete {}: {e}", path.display())))?;
            deleted.push(path.display().to_string());
        }
        Ok(FilesPruneOutputs { deleted, kept })
    }
}

#[cfg(test)]
mod tests {
    use super::{matches, written_age};

    #[test]
    fn a_retention_age_reads_as_written() {
        use std::time::Duration;
        assert_eq!(written_age(Duration::from_secs(7 * 86400)), "7d");
        assert_eq!(written_age(Duration::from_secs(36 * 3600)), "36h");
        assert_eq!(written_age(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(written_age(Duration::from_secs(45)), "45.0s");
    }

    #[test]
    fn wildcards() {
        assert!(matches(
            "redis-backup-*.rdb",
            "redis-backup-20251024_180500.rdb"
        ));
        assert!(!matches("redis-backup-*.rdb", "redis-backup-1.rdb.tmp"));
        assert!(matches("a?c", "abc"));
        assert!(matches("*", ""));
    }
}
