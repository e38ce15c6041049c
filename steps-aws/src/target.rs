//! The AWS block every AWS step type takes (`region`, `profile`, `endpoint_url`; settable under
//! `defaults: { aws: … }`), the clients of a run — created lazily, once per (service, block),
//! as a run resource — and AWS errors in one line.

use aws_config::BehaviorVersion;
use flow_engine::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// An AWS connection block: merges `defaults.aws` wherever it appears.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[schemars(extend("x-flow-defaults" = "aws"))]
pub struct AwsTarget {
    /// The region (default: the SDK's own chain: `AWS_REGION`, the profile).
    pub region: Option<String>,
    /// A profile of ~/.aws/config (SSO and `credential_process` profiles work).
    pub profile: Option<String>,
    /// Another endpoint (a stand-in such as moto or LocalStack); default: the SDK's own
    /// (`AWS_ENDPOINT_URL`), else AWS.
    pub endpoint_url: Option<String>,
}

/// The SDK configurations and clients of a run, one per (service, block).
#[derive(Default)]
pub struct AwsClients {
    configs: Mutex<HashMap<AwsTarget, aws_config::SdkConfig>>,
    s3: Mutex<HashMap<AwsTarget, aws_sdk_s3::Client>>,
    secrets: Mutex<HashMap<AwsTarget, aws_sdk_secretsmanager::Client>>,
    ssm: Mutex<HashMap<AwsTarget, aws_sdk_ssm::Client>>,
    ec2: Mutex<HashMap<AwsTarget, aws_sdk_ec2::Client>>,
    cloudformation: Mutex<HashMap<AwsTarget, aws_sdk_cloudformation::Client>>,
    logs: Mutex<HashMap<AwsTarget, aws_sdk_cloudwatchlogs::Client>>,
}

impl Resource for AwsClients {}

impl AwsClients {
    async fn config(&self, target: &AwsTarget) -> aws_config::SdkConfig {
        let mut configs = self.configs.lock().await;
        if let Some(config) = configs.get(target) {
            return config.clone();
        }
        // An endpoint that accepts and never answers must not hold a run forever: 10 s to
        // connect, 30 s to the first byte of an answer (a large download then streams on).
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .read_timeout(std::time::Duration::from_secs(30))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts);
        // An empty setting (a CI template's `endpoint_url: ""`) means "not set".
        let given = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
        if let Some(region) = given(&target.region) {
            loader = loader.region(aws_config::Region::new(region));
        }
        if let Some(profile) = given(&target.profile) {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = given(&target.endpoint_url) {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        configs.insert(target.clone(), config.clone());
        config
    }

    /// The client of `cache` for `target`, made from the block's SDK config on first use.
    async fn client<C: Clone>(
        &self,
        cache: &Mutex<HashMap<AwsTarget, C>>,
        target: &AwsTarget,
        make: impl FnOnce(&aws_config::SdkConfig) -> C,
    ) -> C {
        if let Some(client) = cache.lock().await.get(target) {
            return client.clone();
        }
        let client = make(&self.config(target).await);
        cache.lock().await.insert(target.clone(), client.clone());
        client
    }

    /// The run's S3 client for `target` (path-style addressing when an endpoint is set: a
    /// stand-in on 127.0.0.1 has no `bucket.host` names).
    pub async fn s3(&self, target: &AwsTarget) -> aws_sdk_s3::Client {
        let explicit = target
            .endpoint_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty());
        self.client(&self.s3, target, |config| {
            let path_style = explicit || config.endpoint_url().is_some();
            aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(config)
                    .force_path_style(path_style)
                    .build(),
            )
        })
        .await
    }

    pub async fn secrets(&self, target: &AwsTarget) -> aws_sdk_secretsmanager::Client {
        self.client(&self.secrets, target, aws_sdk_secretsmanager::Client::new)
            .await
    }

    pub async fn ssm(&self, target: &AwsTarget) -> aws_sdk_ssm::Client {
        self.client(&self.ssm, target, aws_sdk_ssm::Client::new)
            .await
    }

    pub async fn ec2(&self, target: &AwsTarget) -> aws_sdk_ec2::Client {
        self.client(&self.ec2, target, aws_sdk_ec2::Client::new)
            .await
    }

    pub async fn cloudformation(&self, target: &AwsTarget) -> aws_sdk_cloudformation::Client {
        self.client(
            &self.cloudformation,
            target,
            aws_sdk_cloudformation::Client::new,
        )
        .await
    }

    pub async fn logs(&self, target: &AwsTarget) -> aws_sdk_cloudwatchlogs::Client {
        self.client(&self.logs, target, aws_sdk_cloudwatchlogs::Client::new)
            .await
    }
}

/// Environment variables of the AWS SDK that are set but empty mean "not set": CI templates
/// often write `AWS_ENDPOINT_URL: ""`, and the SDK would take the empty text as a URL (and
/// stop on it). Call before any thread starts.
pub fn forget_empty_settings() {
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
    ] {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            // SAFETY: called from `main` before the runtime or any other thread exists.
            unsafe { std::env::remove_var(name) };
        }
    }
}

/// The run's AWS clients.
pub fn clients(ctx: &PlanContext) -> Arc<AwsClients> {
    ctx.resource::<AwsClients>()
}

/// One line for an AWS error: service, operation, error code, message, request id — or, when
/// the call never reached AWS, why (no credentials, no region, an endpoint that does not
/// answer, a stand-in that does not implement the call).
pub fn aws_error<E>(
    service: &str,
    operation: &str,
    error: aws_sdk_s3::error::SdkError<E>,
) -> StepError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let what = format!("{service} {operation}");
    let message = match &error {
        SdkError::ServiceError(service_error) => {
            let inner = service_error.err();
            let code = inner.code().unwrap_or("error");
            let text = inner.message().unwrap_or("");
            let headers = service_error.raw().headers();
            let request = inner
                .meta()
                .extra("aws_request_id")
                .or_else(|| headers.get("x-amz-request-id"))
                .or_else(|| headers.get("x-amzn-requestid"))
                .map(|id| format!(" (request id {id})"))
                .unwrap_or_default();
            let status = service_error.raw().status().as_u16();
            if crate::iam::is_denial(code, status) {
                // A HEAD is refused with a bare 403: no code, no text.
                let code = if code == "error" {
                    "Forbidden (HTTP 403)"
                } else {
                    code
                };
                let text = if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                };
                let hint = crate::iam::denial_hint(service, operation);
                format!("{what} failed: {code}{text}{request}{hint}")
            } else if code == "error" && status >= 500 {
                format!(
                    "{what} failed: the endpoint answered HTTP {status} without an AWS error (a stand-in that does not implement this call?){request}"
                )
            } else {
                format!("{what} failed: {code}: {text}{request}")
            }
        }
        // A 403 whose body the SDK cannot read (a stand-in answering a JSON service in XML):
        // its code, read by hand, tells a refusal from, say, a bad signature.
        other
            if other
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 403) =>
        {
            let code = other
                .raw_response()
                .and_then(|r| r.body().bytes())
                .and_then(crate::iam::code_in)
                .unwrap_or_else(|| "error".to_string());
            let hint = if crate::iam::is_denial(&code, 403) {
                crate::iam::denial_hint(service, operation)
            } else {
                String::new()
            };
            let code = if code == "error" { "Forbidden" } else { &code };
            format!("{what} failed: {code} (HTTP 403){hint}")
        }
        other => {
            // The causes, outermost first, each in its own words (not the debug dump that
            // DisplayErrorContext ends with).
            let mut causes: Vec<String> = Vec::new();
            let mut cause: Option<&dyn std::error::Error> = Some(other);
            while let Some(error) = cause {
                causes.push(error.to_string());
                cause = error.source();
            }
            let all = causes.join(": ");
            let last = causes.last().cloned().unwrap_or_default();
            if all.contains("no credentials")
                || all.contains("loading credentials")
                || all.contains("credentials provider")
                || all.contains("CredentialsNotLoaded")
            {
                format!(
                    "{what}: no AWS credentials: the standard chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, credential_process, the instance role) found none (last: {last})"
                )
            } else if all.to_lowercase().contains("missing")
                && all.to_lowercase().contains("region")
            {
                format!("{what}: no AWS region: set `region` in the AWS block, or AWS_REGION")
            } else if all.contains("timed out") {
                format!(
                    "{what}: the endpoint did not answer in time ({last}; flow waits 10 s to connect and 30 s for an answer, 3 attempts)"
                )
            } else {
                format!("{what} could not reach AWS: {last}")
            }
        }
    };
    StepError::failed(message)
}

/// S3 refuses keys over 1024 bytes and bucket names over 63 characters; flow says so before
/// the SDK is handed a URL it cannot build.
pub fn check_s3_names<'a>(
    bucket: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<(), StepError> {
    if bucket.is_empty() || bucket.len() > 63 {
        return Err(StepError::failed(format!(
            "`bucket` is {} characters: S3 bucket names have 3 to 63",
            bucket.chars().count()
        )));
    }
    for key in keys {
        if key.len() > 1024 {
            return Err(StepError::failed(format!(
                "a key of {} bytes (starting `{}`): S3 keys have at most 1024",
                key.len(),
                key.chars().take(40).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// An object of a listing: key, size, LastModified (text, and whole seconds for sorting).
pub struct Listed {
    pub key: String,
    pub size: i64,
    pub last_modified: String,
    pub secs: i64,
}

/// Every object under `prefix`, all pages.
pub async fn list_objects(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: Option<&str>,
) -> Result<Vec<Listed>, StepError> {
    check_s3_names(bucket, prefix)?;
    let mut objects = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .set_prefix(prefix.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("s3", "ListObjectsV2", e))?;
        for object in page.contents() {
            let modified = object.last_modified();
            objects.push(Listed {
                key: object.key().unwrap_or_default().to_string(),
                size: object.size().unwrap_or(0),
                last_modified: modified.map(|t| t.to_string()).unwrap_or_default(),
                secs: modified.map(|t| t.secs()).unwrap_or(0),
            });
        }
    }
    Ok(objects)
}
