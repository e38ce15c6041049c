//! `ssh.upload`: copies a local file or folder (recursively) to a host, over the run's
//! connection to it; the plan lists what would be copied.

use super::transfer::{
    TransferOutputs, local_dirs, local_files, put, remote_sha256, run, sha256_hex, wrap,
};
use super::{Sessions, SshTarget};
use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;

pub struct SshUpload;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshUploadParams {
    #[serde(flatten)]
    pub target: SshTarget,
    /// The local file or folder (relative to where flow runs).
    pub src: String,
    /// Where it goes on the host: the file's path, or the folder the tree lands in.
    pub dest: String,
    /// Permissions of the copied files (default: the host's umask).
    pub mode: Option<FileMode>,
    /// Write as root through `sudo -n`.
    #[serde(default)]
    pub sudo: bool,
}

impl SshUploadParams {
    fn plan(&self) -> Result<Vec<(std::path::PathBuf, String)>, String> {
        let files = local_files(std::path::Path::new(&self.src))
            .map_err(|e| format!("cannot read {}: {e}", self.src))?;
        // A FIFO would wait for a writer and `/dev/zero` never ends: regular files only.
        for (path, _) in &files {
            flow_engine::regular_file::check(path)
                .map_err(|e| format!("cannot upload {}: {e}", path.display()))?;
        }
        Ok(files
            .into_iter()
            .map(|(path, relative)| {
                let dest = if relative.as_os_str().is_empty() {
                    self.dest.clone()
                } else {
                    format!("{}/{}", self.dest.trim_end_matches('/'), relative.display())
                };
                (path, dest)
            })
            .collect())
    }
}

impl StepType for SshUpload {
    const NAME: &'static str = "ssh.upload";
    const SUMMARY: &'static str = "Copy a local file or folder to a host over SSH";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"helpers:
  type: ssh.upload
  with:
    host: restore-host
    src: scripts/
    dest: /opt/restore
    mode: "0755""#;
    type Params = SshUploadParams;
    type Outputs = TransferOutputs;

    async fn describe(&self, params: &SshUploadParams, _: &PlanContext) -> Description {
        let host = params.target.display();
        // A file another step makes first (a download): nothing to list until apply.
        if flow_engine::evaluate::mentions_unknown(&params.src) {
            return Description::new(
                Action::Create,
                format!("upload {} to {host}:{}", params.src, params.dest),
            );
        }
        match params.plan() {
            Ok(files) => {
                let mut d = Description::new(
                    Action::Create,
                    format!("upload {} file(s) to {host}:{}", files.len(), params.dest),
                );
                for (src, dest) in files.iter().take(20) {
                    d = d.detail(format!("{} → {dest}", src.display()));
                }
                if files.len() > 20 {
                    d = d.detail(format!("… and {} more", files.len() - 20));
                }
                d
            }
            Err(e) => Description::new(Action::Failed, e),
        }
    }

    async fn apply(
        &self,
        params: SshUploadParams,
        ctx: &StepContext,
    ) -> Result<TransferOutputs, StepError> {
        let files = params.plan().map_err(StepError::Failed)?;
        let session = ctx.resource::<Sessions>().live(&params.target).await?;
        let host = params.target.display();
        let mut outputs = TransferOutputs {
            files: Vec::new(),
            bytes: 0,
            verified: false,
        };
        let mut digests = Vec::new();
        // Every folder of the tree, empty ones too, in one command.
        let dirs = local_dirs(std::path::Path::new(&params.src))
            .map_err(|e| StepError::failed(format!("cannot read {}: {e}", params.src)))?;
        if !dirs.is_empty() {
            let base = params.dest.trim_end_matches('/');
            let quoted: Vec<String> = dirs
                .iter()
                .map(|d| {
                    let path = if d.as_os_str().is_empty() {
                        base.to_string()
                    } else {
                        format!("{base}/{}", d.display())
                    };
                    shell_quote(&path)
                })
                .collect();
            run(
                &session,
                &wrap(&format!("mkdir -p -- {}", quoted.join(" ")), params.sudo),
                None,
            )
            .await
            .map_err(|e| StepError::failed(format!("cannot create folders on {host}: {e}")))?;
        }
        for (src, dest) in files {
            let content = tokio::fs::read(&src)
                .await
                .map_err(|e| StepError::failed(format!("cannot read {}: {e}", src.display())))?;
            let name = src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dest = put(
                &session,
                &dest,
                &name,
                &content,
                params.mode.map(|m| m.0),
                params.sudo,
            )
            .await
            .map_err(|e| StepError::failed(format!("cannot write {host}:{dest}: {e}")))?;
            outputs.bytes += content.len() as u64;
            digests.push(sha256_hex(&content));
            outputs.files.push(dest);
        }
        // One more channel checks every copy against what was read here.
        let remote = remote_sha256(&session, &outputs.files, params.sudo)
            .await
            .map_err(|e| StepError::failed(format!("cannot check the copies on {host}: {e}")))?;
        if let Some(remote) = remote {
            for (dest, digest) in outputs.files.iter().zip(&digests) {
                if remote.get(dest) != Some(digest) {
                    return Err(StepError::failed(format!(
                        "{host}:{dest} does not hold what was sent (sha256 differs)"
                    )));
                }
            }
            outputs.verified = true;
        }
        Ok(outputs)
    }
}
