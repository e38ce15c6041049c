//! `file.write`: writes (or appends to) a local file, reporting whether it changed.

use flow_engine::context::{PlanContext, StepContext};
use flow_engine::step_type::{Action, Description, Effect, StepError, StepType};
use flow_engine::values::FileMode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub struct FileWrite;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileWriteParams {
    /// The file to write (relative to where flow runs).
    pub path: String,
    /// What to write.
    pub content: String,
    /// Append instead of replacing.
    #[serde(default)]
    pub append: bool,
    /// Permissions as octal text, e.g. "0600".
    pub mode: Option<FileMode>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FileWriteOutputs {
    pub path: String,
    /// Whether the file's content changed.
    pub changed: bool,
}

impl StepType for FileWrite {
    const NAME: &'static str = "file.write";
    const SUMMARY: &'static str = "Write or append to a local file";
    const EFFECT: Effect = Effect::Write;
    const DEFAULTS: Option<&'static str> = Some("file");
    const EXAMPLE: &'static str = r#"audit:
  type: file.write
  with:
    path: provisioned-instances.log
    append: true
    content: "{{ now() }} {{ steps.launch.instance_id }} {{ steps.pick.value }}\n""#;
    type Params = FileWriteParams;
    type Outputs = FileWriteOutputs;

    async fn describe(&self, params: &FileWriteParams, ctx: &PlanContext) -> Description {
        let path = ctx.resolve_path(&params.path);
        let bytes = if flow_engine::evaluate::mentions_unknown(&params.content) {
            "content known after apply".to_string()
        } else {
            format!("{} bytes", params.content.len())
        };
        match std::fs::read_to_string(&path) {
            Err(_) => Description::new(Action::Create, format!("create {} ({bytes})", params.path)),
            Ok(_) if params.append => {
                Description::new(Action::Change, format!("append {bytes} to {}", params.path))
            }
            Ok(old) if old == params.content => {
                Description::new(Action::Change, format!("write {} (unchanged)", params.path))
            }
            Ok(old) => Description::new(
                Action::Change,
                format!("rewrite {} ({} bytes → {bytes})", params.path, old.len()),
            ),
        }
    }

    async fn apply(
        &self,
        params: FileWriteParams,
        ctx: &StepContext,
    ) -> Result<FileWriteOutputs, StepError> {
        let path = ctx.resolve_path(&params.path);
        let fail =
            |e: std::io::Error| StepError::failed(format!("cannot write {}: {e}", path.display()));
        let old = tokio::fs::read(&path).await.ok();
        let changed = if params.append {
            use tokio::io::AsyncWriteExt;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await
                .map_err(fail)?;
            file.write_all(params.content.as_bytes())
                .await
                .map_err(fail)?;
            file.flush().await.map_err(fail)?;
            !params.content.is_empty()
        } else if old.as_deref() != Some(params.content.as_bytes()) {
            write_atomically(&path, params.content.as_bytes())
                .await
                .map_err(fail)?;
            true
        } else {
            false
        };
        if let Some(mode) = &params.mode {
            tokio::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode.0))
                .await
                .map_err(fail)?;
        }
        Ok(FileWriteOutputs {
            path: path.display().to_string(),
            changed,
        })
    }
}

/// Writes through a temporary file in the same folder and a rename, so a reader never sees
/// half a file; keeps the permissions of the file it replaces.
pub async fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.flow-{}", std::process::id()));
    tokio::fs::write(&temp, content).await?;
    if let Ok(meta) = tokio::fs::metadata(path).await {
        tokio::fs::set_permissions(&temp, meta.permissions()).await?;
    }
    tokio::fs::rename(&temp, path).await.inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}
