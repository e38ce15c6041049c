//! `s3.get`: downloads an object to a local file, streamed, verifying its sha256 — the one
//! given, or the one `s3.put` recorded. A mismatch fails and leaves no file at the destination.

use crate::iam::{Arns, wider_because, with_reason};
use crate::s3_put::hex;
use crate::target::{AwsTarget, Pace, aws_error, check_s3_names, clients};
use flow_engine::prelude::*;
use flow_steps::core::safe_file::{self, NewMode, Replacement};
use sha2::Digest as _;
use std::io::Write as _;

pub struct S3Get;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct S3GetParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub bucket: Printable,
    pub key: Printable,
    /// Where the file goes (relative to where flow runs).
    pub path: String,
    /// The sha256 (hex) the object must have (default: its recorded `sha256` metadata, if any).
    pub sha256: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct S3GetOutputs {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Whether the copy was checked against a known sha256.
    pub verified: bool,
}

impl StepType for S3Get {
    const NAME: &'static str = "s3.get";
    const SUMMARY: &'static str =
        "Download an S3 object to a file (streamed), verifying its sha256";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"fetch:
  type: s3.get
  with:
    bucket: blot-backups
    key: "{{ steps.backups.latest.key }}"
    path: restore/dump.tar.gz"#;
    type Params = S3GetParams;
    type Outputs = S3GetOutputs;

    async fn describe(&self, params: &S3GetParams, ctx: &PlanContext) -> Description {
        let d = Description::new(
            Action::Create,
            format!(
                "download s3://{}/{} to {}",
                params.bucket, params.key, params.path
            ),
        );
        let destination = ctx.resolve_path(&params.path);
        match safe_file::resolve_symlinks(&destination)
            .and_then(|real| safe_file::check_regular(&real))
        {
            Err(e) => d.detail(format!("will fail: {e}")),
            Ok(()) => d,
        }
    }

    fn permissions(
        &self,
        params: &RenderedParams<S3GetParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        let arns = Arns::new(&params.aws, ctx);
        let get = Permission::new(["s3:GetObject"], [arns.object(&params.bucket, &params.key)]);
        Ok(Permissions::new(vec![with_reason(
            get,
            wider_because(&[("bucket", Some(&params.bucket)), ("key", Some(&params.key))]),
        )]))
    }

    async fn apply(
        &self,
        params: S3GetParams,
        ctx: &StepContext,
    ) -> Result<S3GetOutputs, StepError> {
        check_s3_names(&params.bucket, [&*params.key])?;
        let destination = ctx.resolve_path(&params.path);
        if let Some(parent) = destination.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StepError::failed(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let cannot_write =
            |e: std::io::Error| StepError::failed(format!("cannot write {}: {e}", params.path));
        // The safe-file rules: a symlink followed, a device or FIFO refused (before anything is
        // downloaded), the old file's owner and mode kept, and nothing at the destination until
        // the copy is whole and checked.
        let mut copy = Replacement::begin(&destination, NewMode::Default).map_err(cannot_write)?;
        let client = clients(ctx).s3(&params.aws).await;
        let object = client
            .get_object()
            .bucket(&*params.bucket)
            .key(&*params.key)
            .send()
            .await
            .map_err(|e| aws_error("s3", "GetObject", e))?;
        let expected = params
            .sha256
            .clone()
            .or_else(|| object.metadata().and_then(|m| m.get("sha256")).cloned());
        let mut pace = Pace::new(
            &params.aws,
            object.content_length().and_then(|n| u64::try_from(n).ok()),
        );
        let broke_off = |why: String| {
            StepError::failed(format!(
                "s3 GetObject: the download broke off: {why}; nothing was written to {}",
                params.path
            ))
        };
        let mut body = object.body;
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        loop {
            let chunk = match tokio::time::timeout(pace.wait(), body.try_next()).await {
                Err(_) => return Err(broke_off(pace.stalled())),
                Ok(Err(e)) => return Err(broke_off(e.to_string())),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => chunk,
            };
            pace.step(chunk.len()).map_err(broke_off)?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
            copy.file().write_all(&chunk).map_err(cannot_write)?;
        }
        let sha256 = hex(&hasher.finalize());
        if let Some(expected) = &expected
            && !expected.eq_ignore_ascii_case(&sha256)
        {
            return Err(StepError::failed(format!(
                "s3://{}/{} does not match its sha256 (expected {expected}, got {sha256}): nothing was written to {}",
                params.bucket, params.key, params.path
            )));
        }
        copy.commit().await.map_err(cannot_write)?;
        Ok(S3GetOutputs {
            path: destination.display().to_string(),
            size,
            sha256,
            verified: expected.is_some(),
        })
    }
}
