//! `s3.list`: the objects under a prefix, newest first by default, with the latest one —
//! "which backup do we restore?" as a read that runs during plan.

use crate::iam::{Arns, listing_under, wider_because, with_reason};
use crate::target::{AwsTarget, Listed, check_s3_names, clients, list_objects};
use flow_engine::prelude::*;
use serde_json::{Value, json};

pub struct S3List;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Newest first (ties broken by key, last first).
    #[default]
    Newest,
    /// Oldest first (ties broken by key).
    Oldest,
    /// By key.
    Key,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct S3ListParams {
    #[serde(flatten)]
    pub aws: AwsTarget,
    pub bucket: Printable,
    /// Only keys that start with this.
    pub prefix: Option<Printable>,
    /// `newest` (default), `oldest` or `key`.
    #[serde(default)]
    pub sort: Sort,
    /// At most this many objects in `objects` (after sorting).
    pub limit: Option<u32>,
    /// A bucket that does not exist gives an empty listing and `bucket_exists: false`
    /// instead of failing (default false).
    #[serde(default)]
    pub allow_missing_bucket: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct S3ListOutputs {
    /// `{ key, size, last_modified }` per object, sorted.
    pub objects: Vec<Value>,
    /// How many objects matched (before `limit`).
    pub count: usize,
    /// The newest object, or null when there is none.
    pub latest: Value,
    /// Whether the bucket exists (false only with `allow_missing_bucket`).
    pub bucket_exists: bool,
}

impl StepType for S3List {
    const NAME: &'static str = "s3.list";
    const SUMMARY: &'static str = "List the objects of a bucket under a prefix, newest first";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"backups:
  type: s3.list
  with:
    bucket: blot-backups
    prefix: redis/
    limit: 10"#;
    type Params = S3ListParams;
    type Outputs = S3ListOutputs;

    async fn describe(&self, params: &S3ListParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Read,
            format!(
                "list s3://{}/{}",
                params.bucket,
                params.prefix.as_deref().unwrap_or("")
            ),
        )
    }

    fn permissions(
        &self,
        params: &RenderedParams<S3ListParams>,
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let params = &params.typed()?;
        let arns = Arns::new(&params.aws, ctx);
        let list = Permission::new(["s3:ListBucket"], [arns.bucket(&params.bucket)]);
        let list = if params.allow_missing_bucket {
            // HeadBucket sends no prefix: only a ListBucket without the condition allows it.
            list.note("`allow_missing_bucket` asks HeadBucket first, which IAM allows with s3:ListBucket on the whole bucket: not narrowed to `prefix`")
        } else {
            listing_under(list, params.prefix.as_deref())
        };
        Ok(Permissions::new(vec![with_reason(
            list,
            wider_because(&[("bucket", Some(&params.bucket))]),
        )]))
    }

    async fn apply(
        &self,
        params: S3ListParams,
        ctx: &StepContext,
    ) -> Result<S3ListOutputs, StepError> {
        check_s3_names(&params.bucket, params.prefix.as_deref())?;
        let client = clients(ctx).s3(&params.aws).await;
        if params.allow_missing_bucket {
            let head = client.head_bucket().bucket(&*params.bucket).send().await;
            if let Err(e) = head {
                let missing = e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if missing {
                    return Ok(S3ListOutputs {
                        objects: Vec::new(),
                        count: 0,
                        latest: Value::Null,
                        bucket_exists: false,
                    });
                }
                return Err(crate::target::aws_error("s3", "HeadBucket", e));
            }
        }
        let mut objects = list_objects(&client, &params.bucket, params.prefix.as_deref()).await?;
        // LastModified has one-second precision: a tie is broken by key.
        match params.sort {
            Sort::Newest => objects.sort_by(|a, b| (b.secs, &b.key).cmp(&(a.secs, &a.key))),
            Sort::Oldest => objects.sort_by(|a, b| (a.secs, &a.key).cmp(&(b.secs, &b.key))),
            Sort::Key => objects.sort_by(|a, b| a.key.cmp(&b.key)),
        }
        let as_json =
            |o: &Listed| json!({ "key": o.key, "size": o.size, "last_modified": o.last_modified });
        let latest = objects
            .iter()
            .max_by(|a, b| (a.secs, &a.key).cmp(&(b.secs, &b.key)))
            .map(as_json)
            .unwrap_or(Value::Null);
        let count = objects.len();
        let limit = params.limit.map(|l| l as usize).unwrap_or(usize::MAX);
        print_table(ctx, &objects[..objects.len().min(limit)], count);
        Ok(S3ListOutputs {
            objects: objects.iter().take(limit).map(as_json).collect(),
            count,
            latest,
            bucket_exists: true,
        })
    }
}

/// The listing as the operator reads it: at most 20 rows, and how many more there are.
fn print_table(ctx: &StepContext, shown: &[Listed], count: usize) {
    if count == 0 {
        ctx.output("log", "no objects");
        return;
    }
    let mut rows = vec![vec![
        "key".to_string(),
        "size".to_string(),
        "last modified".to_string(),
    ]];
    rows.extend(
        shown
            .iter()
            .take(20)
            .map(|o| vec![o.key.clone(), o.size.to_string(), o.last_modified.clone()]),
    );
    ctx.table(&rows);
    if count > rows.len() - 1 {
        ctx.output("log", &format!("… {} objects in all", count));
    }
}
