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
    pub bucket: Printable,
    pub key: Printable,
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
async fn file_sha256(file: std::fs::File) -> std::io::Result<(String, u64)> {
    let mut file = tokio::fs::File::from_std(file);
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
            flow_engine::regular_file::open(std::path::Path::new(&params.path))
                .map(|(_, meta)| format!("{} bytes", meta.len()))
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
        let cannot_read = |e: &dyn std::fmt::Display| {
            StepError::failed(format!("cannot read {}: {e}", params.path))
        };
        // A FIFO would wait for a writer and `/dev/zero` never ends: regular files only.
        let (file, _) = flow_engine::regular_file::open(&path).map_err(|e| cannot_read(&e))?;
        let (sha256, size) = file_sha256(file).await.map_err(|e| cannot_read(&e))?;
        // Exactly the bytes hashed, however the file changes meanwhile.
        let body = aws_sdk_s3::primitives::ByteStream::read_from()
            .path(&path)
            .length(aws_sdk_s3::primitives::Length::Exact(size))
            .build()
            .await
            .map_err(|e| cannot_read(&e))?;
        check_s3_names(&params.bucket, [&*params.key])?;
        let client = clients(ctx).s3(&params.aws).await;
        let put = client
            .put_object()
            .bucket(&*params.bucket)
            .key(&*params.key)
            .metadata("sha256", &sha256)
            .body(body)
            .customize()
            // The call's deadline, plus time for the bytes to travel.
            .config_override(params.aws.upload_config(size))
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
