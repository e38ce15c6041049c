//! `ssh.download`: copies a file or folder (recursively) from a host to this machine, over the
//! run's connection to it.

use super::transfer::{TransferOutputs, run, wrap};
use super::{Sessions, SshTarget};
use flow_engine::prelude::*;
use flow_engine::template_env::shell_quote;
use std::path::Path;

pub struct SshDownload;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SshDownloadParams {
    #[serde(flatten)]
    pub target: SshTarget,
    /// The file or folder on the host.
    pub src: String,
    /// Where it goes here (relative to where flow runs): the file's path, or the folder the
    /// tree lands in.
    pub dest: String,
    /// Permissions of the copied files (default: 0644, and 0600 under `sudo`).
    pub mode: Option<FileMode>,
    /// Read as root through `sudo -n`.
    #[serde(default)]
    pub sudo: bool,
}

impl StepType for SshDownload {
    const NAME: &'static str = "ssh.download";
    const SUMMARY: &'static str = "Copy a file or folder from a host over SSH";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"fetch_dump:
  type: ssh.download
  with:
    host: db1
    src: /var/lib/redis/dump.rdb
    dest: backups/dump.rdb"#;
    type Params = SshDownloadParams;
    type Outputs = TransferOutputs;

    async fn describe(&self, params: &SshDownloadParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Create,
            format!(
                "download {}:{} to {}",
                params.target.display(),
                params.src,
                params.dest
            ),
        )
    }

    async fn apply(
        &self,
        params: SshDownloadParams,
        ctx: &StepContext,
    ) -> Result<TransferOutputs, StepError> {
        let session = ctx.resource::<Sessions>().live(&params.target).await?;
        let host = params.target.display();
        let src = params.src.trim_end_matches('/');
        // The files of the tree, relative to it: `` for a single file.
        // Folders (`D` + path, empty ones included) and files (`F` + path); a single file is
        // `F` with no path.
        let listing = wrap(
            &format!(
                "if [ -d {q} ]; then cd {q} && find . -type d -printf 'D%p\\0' && find . -type f -printf 'F%p\\0'; elif [ -f {q} ]; then printf 'F\\0'; else echo 'no such file or folder' >&2; exit 1; fi",
                q = shell_quote(src)
            ),
            params.sudo,
        );
        let listed = run(&session, &listing, None)
            .await
            .map_err(|e| StepError::failed(format!("cannot read {host}:{src}: {e}")))?;
        let mut relatives: Vec<String> = Vec::new();
        for entry in listed.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let (kind, path) = entry.split_at(1);
            let path = String::from_utf8_lossy(path);
            // `find` prints `.` for the root and `./name` below it (`./.hidden` keeps its dot).
            let path = match path.strip_prefix("./") {
                Some(rest) => rest.to_string(),
                None if path == "." => String::new(),
                None => path.into_owned(),
            };
            if kind == b"D" {
                let local = Path::new(&params.dest).join(&path);
                std::fs::create_dir_all(&local).map_err(|e| {
                    StepError::failed(format!("cannot create {}: {e}", local.display()))
                })?;
            } else {
                relatives.push(path);
            }
        }
        relatives.sort();
        let mode = params
            .mode
            .map(|m| m.0)
            .unwrap_or(if params.sudo { 0o600 } else { 0o644 });
        let mut outputs = TransferOutputs {
            files: Vec::new(),
            bytes: 0,
            verified: false,
        };
        let mut checks = Vec::new();
        for relative in relatives {
            let (remote, local) = if relative.is_empty() {
                (src.to_string(), params.dest.clone())
            } else {
                (
                    format!("{src}/{relative}"),
                    format!("{}/{relative}", params.dest.trim_end_matches('/')),
                )
            };
            let content = run(
                &session,
                &wrap(&format!("cat {}", shell_quote(&remote)), params.sudo),
                None,
            )
            .await
            .map_err(|e| StepError::failed(format!("cannot read {host}:{remote}: {e}")))?;
            write_local(Path::new(&local), &content, mode)
                .await
                .map_err(|e| StepError::failed(format!("cannot write {local}: {e}")))?;
            outputs.bytes += content.len() as u64;
            checks.push((remote, super::transfer::sha256_hex(&content)));
            outputs.files.push(local);
        }
        let remotes: Vec<String> = checks.iter().map(|(r, _)| r.clone()).collect();
        let digests = super::transfer::remote_sha256(&session, &remotes, params.sudo)
            .await
            .map_err(|e| {
                StepError::failed(format!("cannot check the copies of {host}:{src}: {e}"))
            })?;
        if let Some(digests) = digests {
            for (remote, digest) in &checks {
                if digests.get(remote) != Some(digest) {
                    return Err(StepError::failed(format!(
                        "the copy of {host}:{remote} differs from it (sha256): it changed while it was read?"
                    )));
                }
            }
            outputs.verified = true;
        }
        Ok(outputs)
    }
}

/// Writes a downloaded file through the safe replacement every local edit uses.
async fn write_local(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let content = content.to_vec();
    crate::core::safe_file::edit_locked(path, move |real| {
        crate::core::safe_file::replace_file(real, &content, Some(mode))
    })
    .await?
}
