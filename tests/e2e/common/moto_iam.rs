//! A policy `flow policy` printed, as moto's IAM mode (moto 5.2) checks it. moto says of
//! itself (moto/iam/access_control.py) that its IAM is partial; read there and tried:
//! - only S3 requests are checked against a resource (the bucket, or bucket/key). Every
//!   other service checks a request as one on `*`, which no ARN matches — so those
//!   statements are given `*` here, and their ARNs go unchecked (a `?` in an ARN, as a
//!   secret's `-??????`, would even crash moto's matcher: it becomes a regex);
//! - S3 requests are checked as `s3:<operation>` rather than as the IAM action AWS checks:
//!   ListObjectsV2 and HeadBucket where AWS wants s3:ListBucket, DeleteObjects on the bucket
//!   where AWS wants s3:DeleteObject on each key;
//! - conditions are not evaluated on a user's policy;
//! - actions a call implies (ec2:CreateTags for RunInstances' tags), calls AWS makes on the
//!   caller's behalf (kms:…, CloudFormation resolving `{{resolve:…}}`) and iam:PassRole are
//!   not checked at all.
//!
//! The action names stay those `flow policy` printed; only what moto calls them is added.

use serde_json::{Value, json};

/// The policy in moto's terms (see the module's notes).
pub fn in_motos_terms(policy: &Value) -> Value {
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .expect("Statement")
        .iter()
        .map(|statement| {
            let actions = strings(&statement["Action"]);
            let mut statement = statement.clone();
            if actions.iter().all(|a| a.starts_with("s3:")) {
                let mut resources = strings(&statement["Resource"]);
                let mut moto_actions = actions.clone();
                for action in &actions {
                    match action.as_str() {
                        "s3:ListBucket" => {
                            moto_actions.extend(["s3:ListObjectsV2".into(), "s3:HeadBucket".into()])
                        }
                        "s3:DeleteObject" => {
                            moto_actions.push("s3:DeleteObjects".into());
                            // The bucket of each key: where moto checks DeleteObjects.
                            let buckets: Vec<String> = resources
                                .iter()
                                .filter_map(|r| {
                                    r.split_once('/').map(|(bucket, _)| bucket.to_string())
                                })
                                .collect();
                            resources.extend(buckets);
                        }
                        _ => {}
                    }
                }
                statement["Action"] = json!(moto_actions);
                statement["Resource"] = json!(resources);
            } else {
                statement["Resource"] = json!("*");
            }
            statement
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// Every action of the policy, once each, in order.
pub fn actions(policy: &Value) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for statement in policy["Statement"].as_array().expect("Statement") {
        for action in strings(&statement["Action"]) {
            if !all.contains(&action) {
                all.push(action);
            }
        }
    }
    all
}

/// The policy without `action` (a statement left with none goes).
pub fn without(policy: &Value, action: &str) -> Value {
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .expect("Statement")
        .iter()
        .filter_map(|statement| {
            let left: Vec<String> = strings(&statement["Action"])
                .into_iter()
                .filter(|a| a != action)
                .collect();
            (!left.is_empty()).then(|| {
                let mut statement = statement.clone();
                statement["Action"] = json!(left);
                statement
            })
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}
