//! The AWS block every AWS step type takes (`region`, `profile`, `endpoint_url`,
//! `call_timeout`; settable under `defaults: { aws: … }`), the clients of a run — created
//! lazily, once per (service, block), as a run resource — and AWS errors in one line.
//!
//! An endpoint is not trusted to end what it sends: each call has a deadline, retries
//! included (`call_timeout`), each answer is read up to [`ANSWER_LIMIT`], and a download,
//! which streams to disk and may be large, must keep a pace (see [`Pace`]).

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::primitives::SdkBody;
use flow_engine::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
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
    /// How long one AWS call may take, its retries included (default 2m). An upload gets
    /// more by its size; a download fails when less than 64 KiB came in that long.
    pub call_timeout: Option<FlowDuration>,
}

/// How long a call may take unless `call_timeout` says otherwise.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The most flow reads of one answer that is not a download. AWS's largest (a page of a
/// listing, a template, a batch of log events) are a few MiB; an endpoint that never stops
/// sending must not fill memory.
pub const ANSWER_LIMIT: usize = 64 << 20;

/// The slowest an upload may go before its call times out: its deadline is the call's, plus
/// its size at this rate.
const UPLOAD_FLOOR_BYTES_PER_SEC: u64 = 256 << 10;

/// A download must bring at least this much in each `call_timeout`.
const DOWNLOAD_FLOOR_BYTES: u64 = 64 << 10;

impl AwsTarget {
    /// The deadline of one call, retries included.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout.map_or(DEFAULT_CALL_TIMEOUT, |t| t.0)
    }

    /// The SDK's timeouts for a call with this deadline: 10 s to connect, 30 s (at most the
    /// deadline) to the first byte of an answer, half the deadline per attempt, so a second
    /// attempt fits.
    fn timeouts(&self, deadline: Duration) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10).min(deadline))
            .read_timeout(Duration::from_secs(30).min(deadline))
            .operation_attempt_timeout(deadline / 2)
            .operation_timeout(deadline)
            .build()
    }

    /// The S3 config of an upload of `bytes`: the call's deadline, plus the time the bytes
    /// take at [`UPLOAD_FLOOR_BYTES_PER_SEC`].
    pub fn upload_config(&self, bytes: u64) -> aws_sdk_s3::config::Builder {
        let deadline =
            self.call_timeout() + Duration::from_secs(bytes / UPLOAD_FLOOR_BYTES_PER_SEC) * 2;
        aws_sdk_s3::config::Builder::default().timeout_config(self.timeouts(deadline))
    }
}

/// Keeps a download moving: each piece must come within the block's `call_timeout`, and
/// each such span must bring at least [`DOWNLOAD_FLOOR_BYTES`] (an endpoint sending a byte
/// a second never finishes, and never stops either); and never more than the answer said
/// it holds.
pub struct Pace {
    span: Duration,
    started: Instant,
    in_span: u64,
    total: u64,
    announced: Option<u64>,
}

impl Pace {
    pub fn new(target: &AwsTarget, announced: Option<u64>) -> Self {
        Pace {
            span: target.call_timeout(),
            started: Instant::now(),
            in_span: 0,
            total: 0,
            announced,
        }
    }

    /// How long to wait for the next piece: until the span ends while it still owes
    /// [`DOWNLOAD_FLOOR_BYTES`], else a whole span.
    pub fn wait(&self) -> Duration {
        if self.in_span >= DOWNLOAD_FLOOR_BYTES {
            self.span
        } else {
            self.span.saturating_sub(self.started.elapsed())
        }
    }

    /// Counts a piece of `len` bytes; why the download must stop, if it must.
    pub fn step(&mut self, len: usize) -> Result<(), String> {
        self.total += len as u64;
        self.in_span += len as u64;
        if let Some(announced) = self.announced
            && self.total > announced
        {
            return Err(format!(
                "the endpoint sent more than the {announced} bytes it announced"
            ));
        }
        if self.started.elapsed() >= self.span {
            if self.in_span < DOWNLOAD_FLOOR_BYTES {
                return Err(self.stalled());
            }
            self.started = Instant::now();
            self.in_span = 0;
        }
        Ok(())
    }

    /// Why a download must stop when [`wait`](Self::wait) passed without a piece.
    pub fn stalled(&self) -> String {
        if self.in_span >= DOWNLOAD_FLOOR_BYTES {
            return format!(
                "nothing came for {}",
                flow_engine::duration::format_duration(self.span)
            );
        }
        format!(
            "the download stalled: {} bytes in the last {} (flow needs at least {} KiB in each              `call_timeout`)",
            self.in_span,
            flow_engine::duration::format_duration(self.span),
            DOWNLOAD_FLOOR_BYTES >> 10
        )
    }
}

/// Reads every answer but a download's up to [`ANSWER_LIMIT`].
#[derive(Debug)]
struct BoundedAnswers;

/// The error of an answer cut at [`ANSWER_LIMIT`].
#[derive(Debug)]
struct AnswerTooLarge;

impl std::fmt::Display for AnswerTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the endpoint's answer is larger than {} MiB, the most flow reads of one (not an AWS answer?)",
            ANSWER_LIMIT >> 20
        )
    }
}

impl std::error::Error for AnswerTooLarge {}

impl Intercept for BoundedAnswers {
    fn name(&self) -> &'static str {
        "flow-bounded-answers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use http_body_util::BodyExt as _;
        // A download streams to disk, held to its `Pace`.
        if cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .is_some_and(|m| m.name() == "GetObject")
        {
            return Ok(());
        }
        let response = context.response_mut();
        let body = response.take_body();
        let limited = http_body_util::Limited::new(body, ANSWER_LIMIT).map_err(
            |e| -> aws_smithy_runtime_api::box_error::BoxError {
                if e.is::<http_body_util::LengthLimitError>() {
                    Box::new(AnswerTooLarge)
                } else {
                    e
                }
            },
        );
        *response.body_mut() = SdkBody::from_body_1_x(limited);
        Ok(())
    }
}

/// A client of the SDK crate `$sdk` from an `SdkConfig`, its answers bounded
/// ([`BoundedAnswers`]): every service's client is made the same way.
macro_rules! bounded {
    ($sdk:ident, $config:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                .interceptor(BoundedAnswers)
                .build(),
        )
    };
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
        // An endpoint that accepts and never answers, or answers a byte a second, must not
        // hold a run forever.
        let timeouts = target.timeouts(target.call_timeout());
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
                    .interceptor(BoundedAnswers)
                    .build(),
            )
        })
        .await
    }

    pub async fn secrets(&self, target: &AwsTarget) -> aws_sdk_secretsmanager::Client {
        self.client(&self.secrets, target, |c| {
            bounded!(aws_sdk_secretsmanager, c)
        })
        .await
    }

    pub async fn ssm(&self, target: &AwsTarget) -> aws_sdk_ssm::Client {
        self.client(&self.ssm, target, |c| bounded!(aws_sdk_ssm, c))
            .await
    }

    pub async fn ec2(&self, target: &AwsTarget) -> aws_sdk_ec2::Client {
        self.client(&self.ec2, target, |c| bounded!(aws_sdk_ec2, c))
            .await
    }

    pub async fn cloudformation(&self, target: &AwsTarget) -> aws_sdk_cloudformation::Client {
        self.client(&self.cloudformation, target, |c| {
            bounded!(aws_sdk_cloudformation, c)
        })
        .await
    }

    pub async fn logs(&self, target: &AwsTarget) -> aws_sdk_cloudwatchlogs::Client {
        self.client(&self.logs, target, |c| bounded!(aws_sdk_cloudwatchlogs, c))
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
/// answer, a stand-in that does not implement the call), or what came instead of an AWS
/// answer (an HTML page, an answer too large).
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
            let raw = service_error.raw();
            let headers = raw.headers();
            let request = inner
                .meta()
                .extra("aws_request_id")
                .or_else(|| headers.get("x-amz-request-id"))
                .or_else(|| headers.get("x-amzn-requestid"))
                .map(|id| format!(" (request id {id})"))
                .unwrap_or_default();
            let status = raw.status().as_u16();
            // A HEAD is refused with a bare 403: no code, no text, no body.
            let bare_refusal = status == 403 && raw.body().bytes().is_none_or(|b| b.is_empty());
            // A refusal in a format the SDK does not read for this service (a stand-in
            // answering a JSON service in XML): its code, read by hand.
            let code = inner.code().map(str::to_string).or_else(|| {
                (status == 403)
                    .then(|| raw.body().bytes().and_then(crate::iam::code_in))
                    .flatten()
            });
            match code.as_deref() {
                Some(code) if crate::iam::is_denial(code, status) => {
                    let text = inner
                        .message()
                        .filter(|t| !t.is_empty())
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default();
                    let hint = crate::iam::denial_hint(service, operation);
                    format!("{what} failed: {code}{text}{request}{hint}")
                }
                None if bare_refusal => {
                    let hint = crate::iam::denial_hint(service, operation);
                    format!("{what} failed: Forbidden (HTTP 403){request}{hint}")
                }
                Some(code) => format!(
                    "{what} failed: {code}: {}{request}",
                    inner.message().unwrap_or("")
                ),
                None if status >= 500 => format!(
                    "{what} failed: the endpoint answered HTTP {status} without an AWS error (a stand-in that does not implement this call?){request}"
                ),
                None => format!(
                    "{what} failed: the endpoint answered HTTP {status} with {}, not an AWS answer (a proxy, or not an AWS endpoint?){request}",
                    what_came(headers.get("content-type"), raw.body().bytes())
                ),
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
            } else if matches!(other, SdkError::TimeoutError(_)) || all.contains("timed out") {
                format!(
                    "{what}: the endpoint did not answer in time ({last}; flow waits 10 s to connect, 30 s for the first byte of an answer, and `call_timeout` (default 2m) for the whole call, retries included)"
                )
            } else if matches!(other, SdkError::ResponseError(_)) {
                format!("{what}: the endpoint's answer could not be read: {last}")
            } else {
                format!("{what} could not reach AWS: {last}")
            }
        }
    };
    StepError::failed(message)
}

/// What an endpoint sent instead of an AWS answer, in a few words: `an empty answer`, `an
/// HTML page ("Sign in")`, or the start of the text — never the page itself.
fn what_came(content_type: Option<&str>, body: Option<&[u8]>) -> String {
    let text = String::from_utf8_lossy(body.unwrap_or_default());
    let text = text.trim();
    if text.is_empty() {
        return "an empty answer".into();
    }
    let lower = text.to_ascii_lowercase();
    let html = content_type.is_some_and(|t| t.contains("html"))
        || lower.starts_with("<!doctype html")
        || lower.starts_with("<html");
    if html {
        let title = lower
            .find("<title>")
            .map(|start| start + "<title>".len())
            .and_then(|start| Some((start, start + lower[start..].find("</title>")?)))
            .map(|(start, end)| short(&text[start..end]))
            .filter(|t| !t.is_empty());
        return match title {
            Some(title) => format!("an HTML page (\"{title}\")"),
            None => "an HTML page".into(),
        };
    }
    let kind = content_type.map(|t| format!("{t} ")).unwrap_or_default();
    format!("{kind}`{}`", short(text))
}

/// At most 60 characters of `text` on one line, control characters escaped.
fn short(text: &str) -> String {
    let line: String = text
        .trim()
        .chars()
        .take(60)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.trim().chars().count() > 60 {
        format!("{line}…")
    } else {
        line
    }
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
