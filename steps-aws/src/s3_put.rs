//! `s3.put`: uploads a local file, streamed, recording its sha256 in the object's metadata so
//! `s3.get` can verify the copy it brings back.

use crate::iam::{Arns, wider_because, with_reason};
use crate::target::{AwsTarget, aws_error, check_s3_names, clients};
use flow_engine::prelude::*;
use sha2::Digest as _;
use tokio::io::AsyncReadExt;

pub struct S3Put;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct S3PutParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub bucket: String,
    pub key: String,
    /// The local file (relative to where flow runs).
    pub path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct S3PutOutputs {
    pub etag: String,
    pub size: u64,
    /// The file's sha256 (hex), also stored as the object's `sha256` metadata.
    pub sha256: String,
}

/// The sha256 of a file, read in chunks (never whole in memory), and its size.
pub async fn file_sha256(path: &std::path::Path) -> std::io::Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl StepType for S3Put {
    const NAME: &'static str = "s3.put";
    const SUMMARY: &'static str = "Upload a file to S3 (streamed), recording its sha256";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"upload:
  type: s3.put
  with:
    bucket: blot-backups
    key: "redis/{{ run.id }}.tar.gz"
    path: backup.tar.gz"#;
    type Params = S3PutParams;
    type Outputs = S3PutOutputs;

    async fn describe(&self, params: &S3PutParams, _: &PlanContext) -> Description {
        let size = if flow_engine::evaluate::mentions_unknown(&params.path) {
            "size known after apply".to_string()
        } else {
            std::fs::metadata(&params.path)
                .map(|m| format!("{} bytes", m.len()))
                .unwrap_or_else(|e| format!("will fail: {e}"))
        };
        Description::new(
            Action::Create,
            format!(
                "upload {} to s3://{}/{}",
                params.path, params.bucket, params.key
            ),
        )
        .detail(size)
    }

    fn permissions(
        &self,
        params: &RenderedParams<S3PutParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        let arns = Arns::new(&params.aws, ctx);
        let put = Permission::new(["s3:PutObject"], [arns.object(&params.bucket, &params.key)]);
        Ok(Permissions::new(vec![with_reason(
            put,
            wider_because(&[("bucket", Some(&params.bucket)), ("key", Some(&params.key))]),
        )]))
    }

    async fn apply(
        &self,
        params: S3PutParams,
        ctx: &StepContext,
    ) -> Result<S3PutOutputs, StepError> {
        let path = ctx.resolve_path(&params.path);
        let (sha256, size) = file_sha256(&path)
            .await
            .map_err(|e| StepError::failed(format!("cannot read {}: {e}", params.path)))?;
        let body = aws_sdk_s3::primitives::ByteStream::from_path(&path)
            .await
            .map_err(|e| StepError::failed(format!("cannot read {}: {e}", params.path)))?;
        check_s3_names(&params.bucket, [params.key.as_str()])?;
        let client = clients(ctx).s3(&params.aws).await;
        let put = client
            .put_object()
            .bucket(&params.bucket)
            .key(&params.key)
            .metadata("sha256", &sha256)
            .body(body)
            .send()
            .await
            .map_err(|e| aws_error("s3", "PutObject", e))?;
        Ok(S3PutOutputs {
            etag: put
                .e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
            size,
            sha256,
        })
    }
}
