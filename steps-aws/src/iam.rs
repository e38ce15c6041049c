//! IAM as the AWS step types speak it: the ARNs their declared permissions name (`flow
//! policy`), and the IAM action behind an API call, for the message when AWS refuses one.

use crate::target::AwsTarget;
use flow_engine::permission::{is_partly_unknown, pattern, unknown_parts};
use flow_engine::prelude::*;

/// Where a step's calls go, as ARNs name it: partition, region (the AWS block's, else `*`)
/// and account (`flow policy --account`, else `*`).
pub struct Arns {
    partition: &'static str,
    region: String,
    account: String,
}

impl Arns {
    pub fn new(aws: &AwsTarget, ctx: &PermissionContext) -> Self {
        let region = aws
            .region
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map(|r| pattern(Some(r)))
            .unwrap_or_else(|| "*".to_string());
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        Self {
            partition,
            region,
            account: ctx.account.clone(),
        }
    }

    /// The permissions of a step that acts on one named thing: `actions` on the ARN `arn`
    /// makes of `value` (the step's `field`), with a note when `value` is not all known.
    pub fn one(
        &self,
        actions: &[&str],
        arn: fn(&Arns, &str) -> String,
        field: &str,
        value: &str,
    ) -> Permissions {
        Permissions::new(vec![with_reason(
            Permission::new(actions.iter().copied(), [arn(self, value)]),
            wider_because(&[(field, Some(value))]),
        )])
    }

    /// The region ARNs name (`*` when the AWS block has none).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`.
    pub fn regional(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }

    /// A resource AWS owns (a CloudFormation transform): `aws` in the account's place.
    pub fn aws_owned(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:aws:{resource}",
            self.partition, self.region
        )
    }

    /// An EC2 resource of this account (`instance/*`, `security-group/sg-…`).
    pub fn ec2(&self, resource: &str) -> String {
        self.regional("ec2", resource)
    }

    /// An AMI: images belong to no account in their ARN (Amazon's, the marketplace's, yours).
    pub fn image(&self, id: Option<&str>) -> String {
        format!(
            "arn:{}:ec2:{}::image/{}",
            self.partition,
            self.region,
            pattern(id)
        )
    }

    /// A bucket: S3 ARNs name neither region nor account.
    pub fn bucket(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{}", self.partition, pattern(Some(bucket)))
    }

    /// An object, or the objects whose keys match `key` (`daily/*`).
    pub fn object(&self, bucket: &str, key: &str) -> String {
        format!("{}/{}", self.bucket(bucket), pattern(Some(key)))
    }

    /// A secret by name or ARN. IAM sees a secret's full ARN, which ends in `-` and six
    /// random characters: a name matches it as `NAME-??????`.
    pub fn secret(&self, name: &str) -> String {
        let name = pattern(Some(name));
        if name.starts_with("arn:") {
            let full = name
                .rsplit_once('-')
                .is_some_and(|(_, suffix)| suffix.len() == 6);
            return if full { name } else { format!("{name}-??????") };
        }
        if name.ends_with('*') {
            return self.regional("secretsmanager", &format!("secret:{name}"));
        }
        self.regional("secretsmanager", &format!("secret:{name}-??????"))
    }

    /// An SSM parameter by name (`/blot/redis/endpoint` → `parameter/blot/redis/endpoint`)
    /// or ARN.
    pub fn parameter(&self, name: &str) -> String {
        let name = pattern(Some(name));
        if name.starts_with("arn:") {
            return name;
        }
        let name = name.strip_prefix('/').unwrap_or(&name);
        self.regional("ssm", &format!("parameter/{name}"))
    }

    /// A log group, as IAM names it for the calls on its events.
    pub fn log_group(&self, name: &str) -> String {
        self.regional("logs", &format!("log-group:{}:*", pattern(Some(name))))
    }

    /// A stack by name (any of its ids) or by ARN.
    pub fn stack(&self, name: &str) -> String {
        let name = pattern(Some(name));
        if name.starts_with("arn:") {
            return name;
        }
        self.regional("cloudformation", &format!("stack/{name}/*"))
    }

    /// A KMS key by id or ARN; an alias (`alias/x`) is known to IAM only as its key: any.
    pub fn kms_key(&self, id: &str) -> String {
        let id = pattern(Some(id));
        if id.starts_with("arn:") && id.contains(":key/") {
            return id;
        }
        if id.starts_with("alias/") || id.contains(":alias/") {
            return self.regional("kms", "key/*");
        }
        self.regional("kms", &format!("key/{id}"))
    }
}

/// A note for a statement whose resources are wider than the playbook: which of the given
/// fields hold a value known only after apply (`key` ← `steps.pick.value`), or are not given
/// at all.
pub fn wider_because(fields: &[(&str, Option<&str>)]) -> Option<String> {
    let mut reasons = Vec::new();
    for (field, value) in fields {
        match value {
            None => reasons.push(format!("`{field}` is not given")),
            Some(text) if is_partly_unknown(text) => reasons.push(format!(
                "`{field}` depends on {}",
                unknown_parts(text)
                    .iter()
                    .map(|part| format!("`{part}`"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
            Some(_) => {}
        }
    }
    (!reasons.is_empty()).then(|| format!("{}: `*` in its place", reasons.join("; ")))
}

/// The permission, with the note saying why it is wider than the playbook, if it is.
pub fn with_reason(permission: Permission, why: Option<String>) -> Permission {
    match (why, &permission.note) {
        (None, _) => permission,
        (Some(why), None) => permission.note(why),
        (Some(why), Some(note)) => {
            let note = format!("{note}; {why}");
            permission.note(note)
        }
    }
}

/// `s3:ListBucket` narrowed to listing under `prefix` (IAM's `s3:prefix` is the request's
/// prefix exactly; a prefix known only in part is matched as a pattern).
pub fn listing_under(list: Permission, prefix: Option<&str>) -> Permission {
    match prefix.filter(|p| !p.is_empty()) {
        None => list,
        Some(prefix) if is_partly_unknown(prefix) => {
            list.condition("StringLike", "s3:prefix", pattern(Some(prefix)))
        }
        Some(prefix) => list.condition("StringEquals", "s3:prefix", prefix),
    }
}

/// Why a statement's resource is `*`: the calls take no resource ARN.
pub const UNSCOPED_DESCRIBE: &str =
    "EC2's Describe calls take no resource ARN: IAM allows them on `*` only";

/// The IAM action that allows an API call (a few S3 calls are allowed by another's name).
pub fn iam_action(service: &str, operation: &str) -> String {
    let action = match (service, operation) {
        ("s3", "ListObjectsV2" | "HeadBucket") => "ListBucket",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "DeleteObjects") => "DeleteObject",
        (_, operation) => operation,
    };
    format!("{service}:{action}")
}

/// Whether an AWS error code is IAM's refusal — or, for an answer without a code (a HEAD's
/// bare 403, `error` here), its HTTP status.
pub fn is_denial(code: &str, status: u16) -> bool {
    matches!(
        code,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "Forbidden"
    ) || (code == "error" && status == 403)
}

/// The error code in an answer the SDK could not read as its protocol's (XML where JSON was
/// expected): `<Code>…</Code>` or JSON's `__type`.
pub fn code_in(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if let Some((_, rest)) = text.split_once("<Code>") {
        return rest
            .split_once("</Code>")
            .map(|(code, _)| code.trim().to_string());
    }
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let kind = value.get("__type")?.as_str()?;
    Some(kind.rsplit('#').next().unwrap_or(kind).to_string())
}

/// What a refused call adds to its message: the IAM action it needs.
pub fn denial_hint(service: &str, operation: &str) -> String {
    format!(
        "; it needs IAM permission `{}` (`flow policy PLAYBOOK` prints all a playbook needs)",
        iam_action(service, operation)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arns(region: Option<&str>, account: &str) -> Arns {
        Arns::new(
            &AwsTarget {
                region: region.map(str::to_string),
                ..Default::default()
            },
            &PermissionContext {
                account: account.into(),
            },
        )
    }

    #[test]
    fn arns_name_what_is_known() {
        let a = arns(Some("us-west-2"), "123456789012");
        assert_eq!(a.bucket("b"), "arn:aws:s3:::b");
        assert_eq!(
            a.object("b", "daily/(known after apply: steps.pick.value)"),
            "arn:aws:s3:::b/daily/*"
        );
        assert_eq!(
            a.secret("app/db"),
            "arn:aws:secretsmanager:us-west-2:123456789012:secret:app/db-??????"
        );
        assert_eq!(
            a.parameter("/app/endpoint"),
            "arn:aws:ssm:us-west-2:123456789012:parameter/app/endpoint"
        );
        assert_eq!(
            a.log_group("/aws/lambda/api"),
            "arn:aws:logs:us-west-2:123456789012:log-group:/aws/lambda/api:*"
        );
        assert_eq!(
            a.stack("net"),
            "arn:aws:cloudformation:us-west-2:123456789012:stack/net/*"
        );
        assert_eq!(a.image(None), "arn:aws:ec2:us-west-2::image/*");
        let any = arns(None, "*");
        assert_eq!(any.ec2("instance/*"), "arn:aws:ec2:*:*:instance/*");
        assert_eq!(
            arns(Some("cn-north-1"), "*").bucket("b"),
            "arn:aws-cn:s3:::b"
        );
    }

    #[test]
    fn a_secret_arn_is_taken_as_given_when_whole() {
        let a = arns(Some("eu-north-1"), "*");
        let full = "arn:aws:secretsmanager:eu-north-1:1:secret:x-AbCdEf";
        assert_eq!(a.secret(full), full);
        assert_eq!(
            a.secret("arn:aws:secretsmanager:eu-north-1:1:secret:x"),
            "arn:aws:secretsmanager:eu-north-1:1:secret:x-??????"
        );
        assert_eq!(
            a.secret("(known after apply: steps.s.outputs.Name)"),
            "arn:aws:secretsmanager:eu-north-1:*:secret:*"
        );
    }

    #[test]
    fn a_refusal_is_told_from_other_403s() {
        assert!(is_denial("AccessDenied", 403));
        assert!(is_denial("error", 403));
        assert!(!is_denial("SignatureDoesNotMatch", 403));
        assert_eq!(
            code_in(b"<ErrorResponse><Errors><Error><Code>AccessDenied</Code></Error></Errors></ErrorResponse>").as_deref(),
            Some("AccessDenied")
        );
        assert_eq!(
            code_in(br#"{"__type": "com.amazonaws#AccessDeniedException"}"#).as_deref(),
            Some("AccessDeniedException")
        );
    }

    #[test]
    fn s3_calls_are_allowed_by_their_iam_names() {
        assert_eq!(iam_action("s3", "ListObjectsV2"), "s3:ListBucket");
        assert_eq!(iam_action("s3", "DeleteObjects"), "s3:DeleteObject");
        assert_eq!(iam_action("ec2", "RunInstances"), "ec2:RunInstances");
    }
}
