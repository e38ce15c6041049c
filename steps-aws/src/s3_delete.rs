//! `s3.delete`: deletes named keys, or the objects under a prefix except the newest
//! `keep_latest` — the retention of a backup bucket. The plan lists exactly the keys.

use crate::iam::{Arns, listing_under, wider_because, with_reason};
use crate::target::{AwsTarget, aws_error, check_s3_names, clients, list_objects};
use flow_engine::prelude::*;

pub struct S3Delete;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct S3DeleteParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub bucket: Printable,
    /// These keys.
    pub keys: Option<Vec<Printable>>,
    /// Or every object under this prefix…
    pub prefix: Option<Printable>,
    /// …except the newest N (ties on LastModified broken by key).
    pub keep_latest: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct S3DeleteOutputs {
    /// The keys deleted.
    pub deleted: Vec<String>,
    /// The keys kept (with `prefix`).
    pub kept: Vec<String>,
}

impl S3DeleteParams {
    /// (to delete, to keep), from the bucket as it is now.
    async fn choose(
        &self,
        client: &aws_sdk_s3::Client,
    ) -> Result<(Vec<String>, Vec<String>), StepError> {
        match (&self.keys, &self.prefix) {
            (Some(keys), None) => Ok((keys.iter().map(|k| k.0.clone()).collect(), Vec::new())),
            (None, Some(prefix)) => {
                let mut objects: Vec<(i64, String)> =
                    list_objects(client, &self.bucket, Some(&**prefix))
                        .await?
                        .into_iter()
                        .map(|o| (o.secs, o.key))
                        .collect();
                // Newest first; a tie on the second is broken by key (the later name is newer,
                // as with timestamped names).
                objects.sort_by(|a, b| b.cmp(a));
                let keep = self.keep_latest.unwrap_or(0) as usize;
                let kept = objects.iter().take(keep).map(|o| o.1.clone()).collect();
                let deleted = objects.iter().skip(keep).map(|o| o.1.clone()).collect();
                Ok((deleted, kept))
            }
            _ => Err(StepError::failed(
                "give `keys`, or `prefix` (with `keep_latest`), not both",
            )),
        }
    }
}

impl StepType for S3Delete {
    const NAME: &'static str = "s3.delete";
    const SUMMARY: &'static str = "Delete S3 objects: named keys, or a prefix but the newest N";
    const EFFECT: Effect = Effect::Write;
    const EXACTLY_ONE_OF: &'static [&'static [&'static str]] = &[&["keys", "prefix"]];
    // The plan lists exactly the keys: a saved plan deletes those or refuses.
    const PLAN_IS_BINDING: bool = true;
    const EXAMPLE: &'static str = r#"retention:
  type: s3.delete
  with:
    bucket: blot-backups
    prefix: redis/
    keep_latest: 3"#;
    type Params = S3DeleteParams;
    type Outputs = S3DeleteOutputs;

    async fn describe(&self, params: &S3DeleteParams, ctx: &PlanContext) -> Description {
        let target = format!(
            "s3://{}/{}",
            params.bucket,
            params.prefix.as_deref().unwrap_or("")
        );
        if ctx.offline && params.prefix.is_some() {
            return Description::new(Action::Delete, format!("delete under {target}"))
                .detail("not listed: --offline");
        }
        let client = clients(ctx).s3(&params.aws).await;
        match params.choose(&client).await {
            Ok((deleted, kept)) => {
                let mut d = Description::new(
                    Action::Delete,
                    format!("delete {} object(s) of {target}", deleted.len()),
                );
                d.details = deleted.iter().map(|k| format!("- {k}")).collect();
                d.details.extend(kept.iter().map(|k| format!("  keep {k}")));
                d
            }
            Err(e) => Description::new(Action::Delete, format!("delete under {target}"))
                .detail(format!("cannot list it now: {}", e.message())),
        }
    }

    fn permissions(
        &self,
        params: &RenderedParams<S3DeleteParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        let arns = Arns::new(&params.aws, ctx);
        let bucket = wider_because(&[("bucket", Some(&params.bucket))]);
        let mut statements = Vec::new();
        if let Some(prefix) = &params.prefix {
            // The objects under the prefix are listed first (in the plan too).
            let list = Permission::new(["s3:ListBucket"], [arns.bucket(&params.bucket)]);
            statements.push(with_reason(
                listing_under(list, Some(prefix)),
                bucket.clone(),
            ));
            statements.push(with_reason(
                Permission::new(
                    ["s3:DeleteObject"],
                    [arns.object(&params.bucket, &format!("{prefix}*"))],
                ),
                wider_because(&[("bucket", Some(&params.bucket)), ("prefix", Some(prefix))]),
            ));
        }
        if let Some(keys) = &params.keys {
            let mut why = bucket;
            for key in keys {
                why = why.or_else(|| wider_because(&[("keys", Some(key))]));
            }
            statements.push(with_reason(
                Permission::new(
                    ["s3:DeleteObject"],
                    keys.iter().map(|key| arns.object(&params.bucket, key)),
                ),
                why,
            ));
        }
        Ok(Permissions::new(statements))
    }

    async fn apply(
        &self,
        params: S3DeleteParams,
        ctx: &StepContext,
    ) -> Result<S3DeleteOutputs, StepError> {
        check_s3_names(
            &params.bucket,
            params
                .keys
                .iter()
                .flatten()
                .map(|k| &**k)
                .chain(params.prefix.as_deref()),
        )?;
        let client = clients(ctx).s3(&params.aws).await;
        let (deleted, kept) = params.choose(&client).await?;
        for batch in deleted.chunks(1000) {
            let objects = batch
                .iter()
                .map(|k| {
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(k)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StepError::failed(format!("s3 DeleteObjects: {e}")))?;
            let delete = aws_sdk_s3::types::Delete::builder()
                .set_objects(Some(objects))
                .build()
                .map_err(|e| StepError::failed(format!("s3 DeleteObjects: {e}")))?;
            let out = client
                .delete_objects()
                .bucket(&*params.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| aws_error("s3", "DeleteObjects", e))?;
            if let Some(error) = out.errors().first() {
                let code = error.code().unwrap_or("error");
                // Each key is refused on its own, in the answer of a call that succeeded.
                let hint = if crate::iam::is_denial(code, 200) {
                    crate::iam::denial_hint("s3", "DeleteObjects")
                } else {
                    String::new()
                };
                return Err(StepError::failed(format!(
                    "s3 DeleteObjects failed for {}: {code}: {}{hint}",
                    error.key().unwrap_or("?"),
                    error.message().unwrap_or("")
                )));
            }
        }
        Ok(S3DeleteOutputs { deleted, kept })
    }
}
