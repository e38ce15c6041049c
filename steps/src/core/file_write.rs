//! `file.write`: writes (or appends to) a local file, reporting whether it changed, through
//! the safe replacement of `safe_file`.

use super::safe_file::{check_regular, edit_locked, replace_file};
use flow_engine::prelude::*;
use std::fs::{OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
        if let Err(e) = check_regular(&path) {
            return Description::new(Action::Change, format!("write {}", params.path))
                .detail(format!("will fail: {e}"));
        }
        match std::fs::read(&path) {
            Err(_) => {
                let missing = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty() && !p.exists());
                let folders = match missing {
                    Some(dir) => format!(", creating the folder {}", dir.display()),
                    None => String::new(),
                };
                Description::new(
                    Action::Create,
                    format!("create {} ({bytes}{folders})", params.path),
                )
            }
            Ok(_) if params.append => {
                Description::new(Action::Change, format!("append {bytes} to {}", params.path))
            }
            Ok(old) if old == params.content.as_bytes() => {
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
        let FileWriteParams {
            content,
            append,
            mode,
            ..
        } = params;
        let mode = mode.map(|m| m.0);
        // Missing folders on the way are created, as the plan's "create" promised.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let changed = edit_locked(&path, move |real| {
            check_regular(real)?;
            if append {
                append_to(real, content.as_bytes(), mode)?;
                return Ok(!content.is_empty());
            }
            match std::fs::read(real) {
                Ok(old) if old == content.as_bytes() => {
                    if let Some(mode) = mode
                        && std::fs::metadata(real)?.mode() & 0o7777 != mode
                    {
                        std::fs::set_permissions(real, Permissions::from_mode(mode))?;
                    }
                    Ok(false)
                }
                _ => replace_file(real, content.as_bytes(), mode).map(|()| true),
            }
        })
        .await
        .map_err(fail)?
        .map_err(fail)?;
        Ok(FileWriteOutputs {
            path: path.display().to_string(),
            changed,
        })
    }
}

/// Appends under `mode` (set before anything is written; a new file is created with it).
fn append_to(real: &Path, content: &[u8], mode: Option<u32>) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode.unwrap_or(0o666))
        .open(real)?;
    if let Some(mode) = mode {
        file.set_permissions(Permissions::from_mode(mode))?;
    }
    file.write_all(content)?;
    file.flush()
}
