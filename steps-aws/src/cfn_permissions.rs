//! What a `cfn.deploy` needs besides its own calls: CloudFormation acts on the template with
//! the caller's rights (no service role is passed), so the policy names the macros it runs
//! (`Transform`), the secrets and parameters its `{{resolve:…}}` references read, and — as a
//! note, since no table of every resource type's actions is kept — the resource types it
//! creates.

use crate::iam::Arns;
use flow_engine::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// The template's `Transform`s and resource types, read from its text; `None` when it is
/// neither YAML nor JSON (CloudFormation says what is wrong when the deploy runs).
pub struct TemplateFacts {
    pub transforms: Vec<String>,
    pub resource_types: BTreeSet<String>,
}

pub fn template_facts(path: &str, body: &str) -> Option<TemplateFacts> {
    let file = flow_engine::source::SourceFile::new(std::path::Path::new(path), body);
    let template = flow_engine::yaml::parse(&file).ok()?.to_json();
    let transforms = match template.get("Transform") {
        Some(Value::String(name)) => vec![name.clone()],
        Some(Value::Array(names)) => names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let resource_types = template
        .get("Resources")
        .and_then(Value::as_object)
        .map(|resources| {
            resources
                .values()
                .filter_map(|r| r.get("Type").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(TemplateFacts {
        transforms,
        resource_types,
    })
}

/// CreateChangeSet runs a template's macros: AWS's own (`AWS::Serverless-2016-10-31`), or
/// the account's.
pub fn transforms(arns: &Arns, names: &[String]) -> Option<Permission> {
    (!names.is_empty()).then(|| {
        Permission::new(
            ["cloudformation:CreateChangeSet"],
            names.iter().map(|name| match name.strip_prefix("AWS::") {
                Some(name) => arns.aws_owned("cloudformation", &format!("transform/{name}")),
                None => arns.regional("cloudformation", &format!("transform/{name}")),
            }),
        )
    })
}

/// The reads CloudFormation makes for the `{{resolve:secretsmanager:…}}` and
/// `{{resolve:ssm:…}}` / `{{resolve:ssm-secure:…}}` references in `texts` (parameter values,
/// the template).
pub fn dynamic_references(arns: &Arns, texts: &[&str]) -> Vec<Permission> {
    let mut secrets = Vec::new();
    let mut parameters = Vec::new();
    for text in texts {
        for (kind, id) in references(text) {
            match kind {
                Kind::Secret => secrets.push(arns.secret(&id)),
                Kind::Parameter => parameters.push(arns.parameter(&id)),
            }
        }
    }
    let note = "CloudFormation resolves `{{resolve:…}}` references with the caller's rights";
    let mut permissions = Vec::new();
    if !secrets.is_empty() {
        permissions.push(Permission::new(["secretsmanager:GetSecretValue"], secrets).note(note));
    }
    if !parameters.is_empty() {
        permissions.push(Permission::new(["ssm:GetParameters"], parameters).note(note));
    }
    permissions
}

#[derive(Debug, PartialEq)]
enum Kind {
    Secret,
    Parameter,
}

/// Each reference of `text`: what it reads and its name (or ARN), with a `${…}` of the
/// template's own as `*`.
fn references(text: &str) -> Vec<(Kind, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{resolve:") {
        rest = &rest[start + "{{resolve:".len()..];
        let end = rest.find("}}").unwrap_or(rest.len());
        let reference = &rest[..end];
        let (kind, id) = if let Some(id) = reference.strip_prefix("secretsmanager:") {
            // An ARN has colons of its own: `arn:aws:secretsmanager:r:a:secret:name-AbCdEf`.
            let parts = if id.starts_with("arn:") { 7 } else { 1 };
            let id: Vec<&str> = id.splitn(parts + 1, ':').take(parts).collect();
            (Kind::Secret, id.join(":"))
        } else if let Some(id) = reference
            .strip_prefix("ssm-secure:")
            .or_else(|| reference.strip_prefix("ssm:"))
        {
            (
                Kind::Parameter,
                id.split(':').next().unwrap_or_default().to_string(),
            )
        } else {
            continue;
        };
        found.push((kind, template_variables_as_wildcards(&id)));
    }
    found
}

fn template_variables_as_wildcards(id: &str) -> String {
    let mut out = String::new();
    let mut rest = id;
    while let Some(open) = rest.find("${") {
        out.push_str(&rest[..open]);
        out.push('*');
        rest = rest[open..]
            .find('}')
            .map_or("", |close| &rest[open + close + 1..]);
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_what_they_read() {
        assert_eq!(
            references("{{resolve:secretsmanager:app/redis/auth}}"),
            vec![(Kind::Secret, "app/redis/auth".to_string())]
        );
        assert_eq!(
            references(
                "a {{resolve:secretsmanager:arn:aws:secretsmanager:eu-north-1:1:secret:x-AbCdEf:SecretString:authToken}} b {{resolve:ssm-secure:/db/pw:3}} {{resolve:ssm:/app/${Env}/url}}"
            ),
            vec![
                (
                    Kind::Secret,
                    "arn:aws:secretsmanager:eu-north-1:1:secret:x-AbCdEf".to_string()
                ),
                (Kind::Parameter, "/db/pw".to_string()),
                (Kind::Parameter, "/app/*/url".to_string()),
            ]
        );
        assert!(references("{{ params.x }} {{resolve:other:y}}").is_empty());
    }

    #[test]
    fn a_template_tells_its_transforms_and_resource_types() {
        let facts = template_facts(
            "t.yaml",
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Q: { Type: AWS::SQS::Queue }\n  F: { Type: AWS::Serverless::Function }\n",
        )
        .unwrap();
        assert_eq!(facts.transforms, ["AWS::Serverless-2016-10-31"]);
        assert_eq!(
            facts.resource_types.into_iter().collect::<Vec<_>>(),
            ["AWS::SQS::Queue", "AWS::Serverless::Function"]
        );
    }
}
