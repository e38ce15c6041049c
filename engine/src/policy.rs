//! The least-privilege IAM policy of a playbook: each step's permissions, gathered by walking
//! the steps as `flow plan --offline` does — a `when` known to be false leaves its step out,
//! a `for_each` gives each element's, an `undo` is rendered with its step's outputs unknown,
//! `finally` steps come last — then one statement group (`Sid`) per step.
//!
//! A value made of the run's clock or id (`backups/{{ now() | strftime('%Y%m%d') }}/`) is not
//! known before the run either: each `with` is rendered by two runners that differ in nothing
//! else, and where the two renders differ, the value is unknown.

use crate::evaluate::{RenderError, SHOWN_KEY, UNKNOWN_KEY, When, find_unknown, unknown};
use crate::permission::{Permission, PermissionContext, Permissions};
use crate::playbook::Body;
use crate::run::{Runner, Scope};
use crate::template::Reference;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// The permissions of one step's body (or its `undo`), merged over its elements.
#[derive(Debug, Clone)]
pub struct StepPermissions {
    /// The step id, with ` (undo)` for its undo.
    pub step: String,
    pub type_name: String,
    /// The `Sid` its statements carry (numbered after the first).
    pub sid: String,
    pub permissions: Permissions,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Steps with permissions, in execution order.
    pub steps: Vec<StepPermissions>,
    /// Steps left out, with the reason (a `when` known to be false).
    pub skipped: Vec<(String, String)>,
    /// Steps whose permissions cannot be told, with why.
    pub failed: Vec<(String, String)>,
    /// Params without a value that steps with permissions read: the policy covers any value.
    pub unknown_params: std::collections::BTreeSet<String>,
}

impl Runner {
    /// Every step's permissions. `other` is a runner of the same playbook and params at
    /// another moment, with another run id; `unknown_params` are params without a value
    /// (required ones not given): whatever they will be, the policy covers it.
    pub(crate) fn gather_permissions(
        &self,
        other: &Runner,
        unknown_params: &HashSet<String>,
        ctx: &PermissionContext,
    ) -> Gathered {
        let mut gathered = Gathered::default();
        // Offline, no step's outputs are known: a step joins this set once walked (a skipped
        // one is known: skipped).
        let mut unknown_steps: HashSet<String> = HashSet::new();
        let order: Vec<usize> = self.checked.walk_order().collect();
        for index in order {
            let step = self.step(index);
            let walked = {
                let is_unknown =
                    |r: &Reference| unknown_reference(r, &unknown_steps, unknown_params);
                self.walk_step(index, &is_unknown)
            };
            let scopes = match walked {
                Walk::Skip(reason) => {
                    let entry = json!({ "status": "skipped", "reason": reason.clone() });
                    self.table.set(&step.id, &entry);
                    other.table.set(&step.id, &entry);
                    gathered.skipped.push((step.id.clone(), reason));
                    continue;
                }
                Walk::Failed(why) => {
                    gathered.failed.push((step.id.clone(), why));
                    unknown_steps.insert(step.id.clone());
                    continue;
                }
                Walk::Elements(scopes) => scopes,
            };
            let own = {
                let is_unknown =
                    |r: &Reference| unknown_reference(r, &unknown_steps, unknown_params);
                self.body_permissions(other, &step.body, &scopes, &is_unknown, ctx)
            };
            // An undo reads its own step's outputs: unknown, like every step walked.
            unknown_steps.insert(step.id.clone());
            let undo = step.undo.as_ref().map(|undo| {
                let is_unknown =
                    |r: &Reference| unknown_reference(r, &unknown_steps, unknown_params);
                self.body_permissions(other, undo, &scopes, &is_unknown, ctx)
            });
            let mut bodies = vec![(step.id.clone(), false, &step.body, own)];
            if let (Some(body), Some(undo)) = (&step.undo, undo) {
                bodies.push((format!("{} (undo)", step.id), true, body, undo));
            }
            for (name, is_undo, body, result) in bodies {
                match result {
                    Ok(permissions) if permissions.is_empty() => {}
                    Ok(permissions) => {
                        gathered.unknown_params.extend(
                            body.with
                                .references()
                                .filter(|r| r.root() == "params")
                                .filter_map(|r| r.path.get(1))
                                .filter(|name| unknown_params.contains(*name))
                                .cloned(),
                        );
                        gathered.steps.push(StepPermissions {
                            sid: sid(&step.id, is_undo, &body.type_name),
                            step: name,
                            type_name: body.type_name.clone(),
                            permissions: merged(permissions),
                        });
                    }
                    Err(why) => gathered.failed.push((name, why)),
                }
            }
        }
        unique_sids(&mut gathered.steps);
        gathered
    }

    /// Whether the step runs (as far as the plan can tell) and with which elements.
    fn walk_step(&self, index: usize, is_unknown: &(dyn Fn(&Reference) -> bool + Sync)) -> Walk {
        let step = self.step(index);
        let playbook = &self.checked.playbook;
        if let Some(reason) = crate::skip_propagation::skipped_need(
            playbook,
            &self.checked.needed[index],
            &self.table,
        ) {
            return Walk::Skip(reason);
        }
        let plain = Scope::default();
        if let Some(when) = &step.when {
            match self.evaluator(&plain, is_unknown).when(when) {
                Ok(When::Skip(reason)) => return Walk::Skip(reason),
                Ok(When::Run | When::Unknown(_)) => {}
                Err(error) => return skip_or_fail("when", error),
            }
        }
        let Some(for_each) = &step.for_each else {
            return Walk::Elements(vec![plain]);
        };
        match self.evaluator(&plain, is_unknown).render(for_each) {
            Ok(Value::Array(items)) => Walk::Elements(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| Scope {
                        item: Some((item, i)),
                        result: None,
                    })
                    .collect(),
            ),
            // Elements not known yet: one element standing for all of them.
            Ok(other) if find_unknown(&other).is_some() => Walk::Elements(vec![Scope {
                item: Some((unknown("item"), 0)),
                result: None,
            }]),
            Ok(other) => Walk::Failed(format!(
                "`for_each` must give a list, got {}",
                crate::evaluate::display_value(&other)
            )),
            Err(error) => skip_or_fail("for_each", error),
        }
    }

    /// A body's permissions over every element, rendered with `with`'s unknowns — those of
    /// the playbook, and what differs from `other`'s render.
    fn body_permissions(
        &self,
        other: &Runner,
        body: &Body,
        scopes: &[Scope],
        is_unknown: &(dyn Fn(&Reference) -> bool + Sync),
        ctx: &PermissionContext,
    ) -> Result<Permissions, String> {
        let mut all = Permissions::default();
        for scope in scopes {
            let rendered = self
                .render_with(body, &self.evaluator(scope, is_unknown))
                .and_then(|params| {
                    let then = other.render_with(body, &other.evaluator(scope, is_unknown))?;
                    Ok(common(&params, &then))
                });
            let params = match rendered {
                Ok(params) => params,
                // What it reads was skipped: so would it be.
                Err(RenderError { skip: Some(_), .. }) => continue,
                Err(error) => return Err(format!("`with`: {error}")),
            };
            let permissions = body.step_type.permissions_json(&params, ctx)?;
            all.statements.extend(permissions.statements);
            for note in permissions.notes {
                if !all.notes.contains(&note) {
                    all.notes.push(note);
                }
            }
        }
        Ok(all)
    }
}

/// What a value depends on when it differs between two runs.
const OF_THE_RUN: &str = "now() or run.id";

/// What two renders of one value by runners at different moments with different run ids
/// have in common: where they differ, the value depends on the run, and is unknown.
fn common(a: &Value, b: &Value) -> Value {
    match (a, b) {
        _ if a == b => a.clone(),
        (Value::String(_), Value::String(_)) => common_text(a, b),
        (Value::Object(x), Value::Object(y))
            if x.contains_key(UNKNOWN_KEY) || y.contains_key(UNKNOWN_KEY) =>
        {
            common_text(a, b)
        }
        (Value::Object(x), Value::Object(y)) if x.keys().eq(y.keys()) => Value::Object(
            x.iter()
                .zip(y.values())
                .map(|((key, a), b)| (key.clone(), common(a, b)))
                .collect(),
        ),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            Value::Array(x.iter().zip(y).map(|(a, b)| common(a, b)).collect())
        }
        _ => unknown(OF_THE_RUN),
    }
}

/// Two texts as one: what they start and end with alike, the middle unknown.
fn common_text(a: &Value, b: &Value) -> Value {
    let a: Vec<char> = crate::evaluate::display_value(a).chars().collect();
    let b: Vec<char> = crate::evaluate::display_value(b).chars().collect();
    let start = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - start;
    let end = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    let shown: String = a[..start]
        .iter()
        .chain(
            format!("(known after apply: {OF_THE_RUN})")
                .chars()
                .collect::<Vec<_>>()
                .iter(),
        )
        .chain(&a[a.len() - end..])
        .collect();
    json!({ UNKNOWN_KEY: OF_THE_RUN, SHOWN_KEY: shown })
}

enum Walk {
    Elements(Vec<Scope>),
    Skip(String),
    Failed(String),
}

fn skip_or_fail(field: &str, error: RenderError) -> Walk {
    match error.skip {
        Some(reason) => Walk::Skip(reason),
        None => Walk::Failed(format!("`{field}`: {error}")),
    }
}

fn unknown_reference(
    reference: &Reference,
    unknown_steps: &HashSet<String>,
    unknown_params: &HashSet<String>,
) -> bool {
    match reference.root() {
        "steps" => reference
            .step()
            .is_some_and(|id| unknown_steps.contains(id)),
        "params" => reference
            .path
            .get(1)
            .is_some_and(|name| unknown_params.contains(name)),
        _ => false,
    }
}

/// A `Sid` names the step (IAM takes letters and digits only): `launch` of `ec2.run` is
/// `LaunchEc2Run`, its undo `LaunchUndoEc2Terminate`.
fn sid(step: &str, undo: bool, type_name: &str) -> String {
    let camel = |text: &str| -> String {
        text.split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|part| !part.is_empty())
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    format!(
        "{}{}{}",
        camel(step),
        if undo { "Undo" } else { "" },
        camel(type_name)
    )
}

/// Two steps whose `Sid`s would read the same (`a_b` and `ab_`): the later is numbered.
fn unique_sids(steps: &mut [StepPermissions]) {
    let mut taken: HashSet<String> = HashSet::new();
    for step in steps.iter_mut() {
        let statements = step.permissions.statements.len();
        let names = |base: &str| -> Vec<String> {
            (0..statements)
                .map(|i| match i {
                    0 => base.to_string(),
                    n => format!("{base}{}", n + 1),
                })
                .collect()
        };
        let mut base = step.sid.clone();
        let mut n = 1;
        while names(&base).iter().any(|s| taken.contains(s)) {
            n += 1;
            base = format!("{}N{n}", step.sid);
        }
        taken.extend(names(&base));
        step.sid = base;
    }
}

/// One step's statements, merged: the same actions under the same condition on several
/// resources (a `for_each` over keys) are one statement, and so are several actions on the
/// same resources; a resource of `*` covers every other.
fn merged(permissions: Permissions) -> Permissions {
    let tidy = |mut p: Permission| {
        dedup(&mut p.actions);
        dedup(&mut p.resources);
        if p.is_unbounded() {
            p.resources = vec!["*".to_string()];
        }
        p
    };
    let mut by_actions: Vec<Permission> = Vec::new();
    for p in permissions.statements.into_iter().map(tidy) {
        let mut actions = p.actions.clone();
        actions.sort();
        match by_actions.iter_mut().find(|q| {
            let mut theirs = q.actions.clone();
            theirs.sort();
            theirs == actions && q.condition == p.condition
        }) {
            Some(q) => {
                q.resources.extend(p.resources);
                q.note = q.note.take().or(p.note);
            }
            None => by_actions.push(p),
        }
    }
    let mut by_resources: Vec<Permission> = Vec::new();
    for p in by_actions.into_iter().map(tidy) {
        match by_resources
            .iter_mut()
            .find(|q| q.resources == p.resources && q.condition == p.condition)
        {
            Some(q) => {
                q.actions.extend(p.actions);
                q.note = q.note.take().or(p.note);
            }
            None => by_resources.push(p),
        }
    }
    Permissions {
        statements: by_resources.into_iter().map(tidy).collect(),
        notes: permissions.notes,
    }
}

fn dedup(items: &mut Vec<String>) {
    let mut seen = HashSet::new();
    items.retain(|item| seen.insert(item.clone()));
}

/// The IAM policy document: each step's statements under its `Sid`.
pub fn document(steps: &[StepPermissions]) -> Value {
    let statements: Vec<Value> = steps
        .iter()
        .flat_map(|step| {
            step.permissions
                .statements
                .iter()
                .enumerate()
                .map(|(i, p)| statement(&numbered(&step.sid, i), p))
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The `Sid` of a step's statement `i` (from 0).
pub fn numbered(sid: &str, i: usize) -> String {
    match i {
        0 => sid.to_string(),
        n => format!("{sid}{}", n + 1),
    }
}

fn statement(sid: &str, p: &Permission) -> Value {
    let mut statement = Map::new();
    statement.insert("Sid".into(), json!(sid));
    statement.insert("Effect".into(), json!("Allow"));
    statement.insert("Action".into(), json!(p.actions));
    statement.insert("Resource".into(), json!(p.resources));
    if let Some(condition) = &p.condition {
        statement.insert("Condition".into(), condition.clone());
    }
    Value::Object(statement)
}

/// The document as people read it: each statement's fields on lines of their own, a list or
/// condition on one line when it fits.
pub fn pretty(document: &Value) -> String {
    let mut out = String::new();
    write_pretty(document, 0, 0, &mut out);
    out
}

/// Inside a statement (depth 3 on), what fits in this width stays on one line.
const WIDTH: usize = 100;

fn write_pretty(value: &Value, indent: usize, depth: usize, out: &mut String) {
    let compact = compact(value);
    let pad = |n: usize| " ".repeat(n);
    let column = out.len() - out.rfind('\n').map_or(0, |i| i + 1);
    match value {
        Value::Object(map) if !map.is_empty() && (depth < 3 || column + compact.len() > WIDTH) => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(&format!("{}{}: ", pad(indent + 2), json!(key)));
                write_pretty(item, indent + 2, depth + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{}}}", pad(indent)));
        }
        Value::Array(items)
            if !items.is_empty() && (depth < 3 || column + compact.len() > WIDTH) =>
        {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad(indent + 2));
                write_pretty(item, indent + 2, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{}]", pad(indent)));
        }
        _ => out.push_str(&compact),
    }
}

/// One line, with a space after each `:` and `,` between items.
fn compact(value: &Value) -> String {
    match value {
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", json!(k), compact(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(compact).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// The size IAM counts (no whitespace), for the limits of a policy.
pub fn iam_size(document: &Value) -> usize {
    serde_json::to_string(document)
        .map(|text| text.chars().filter(|c| !c.is_whitespace()).count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_differs_between_two_runs_is_unknown() {
        let a = json!({ "key": "backups/19870605/x", "n": 1, "same": ["a"], "ids": ["r-0000"] });
        let b = json!({ "key": "backups/20101128/x", "n": 2, "same": ["a"], "ids": ["r-ffff"] });
        let both = crate::evaluate::unknowns_as_text(&common(&a, &b));
        assert_eq!(
            both,
            json!({
                "key": "backups/(known after apply: now() or run.id)/x",
                "n": "(known after apply: now() or run.id)",
                "same": ["a"],
                "ids": ["r-(known after apply: now() or run.id)"],
            })
        );
    }

    #[test]
    fn a_policy_reads_one_field_a_line() {
        let document = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "A",
                "Action": ["s3:ListBucket"],
                "Condition": { "StringEquals": { "s3:prefix": "daily/" } },
                "Resource": ["arn:aws:s3:::a-bucket-with-a-name-long-enough/to-need-a-line-of-its-own/xxxxxxxxxxxxx", "arn:aws:s3:::b"]
            }]
        });
        assert_eq!(
            pretty(&document),
            r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "A",
      "Action": ["s3:ListBucket"],
      "Condition": {"StringEquals": {"s3:prefix": "daily/"}},
      "Resource": [
        "arn:aws:s3:::a-bucket-with-a-name-long-enough/to-need-a-line-of-its-own/xxxxxxxxxxxxx",
        "arn:aws:s3:::b"
      ]
    }
  ]
}"#
        );
        let back: Value = serde_json::from_str(&pretty(&document)).unwrap();
        assert_eq!(back, document);
    }

    #[test]
    fn sids_name_the_step_and_its_type() {
        assert_eq!(sid("launch", false, "ec2.run"), "LaunchEc2Run");
        assert_eq!(
            sid("launch", true, "ec2.terminate"),
            "LaunchUndoEc2Terminate"
        );
        assert_eq!(sid("kv_mode", false, "logs.search"), "KvModeLogsSearch");
    }

    #[test]
    fn sids_that_would_repeat_are_told_apart() {
        let step = |sid: &str, n: usize| StepPermissions {
            step: sid.into(),
            type_name: "s3.get".into(),
            sid: sid.into(),
            permissions: Permissions::new(vec![Permission::new(["s3:GetObject"], ["*"]); n]),
        };
        let mut steps = vec![step("AB", 2), step("AB2", 1), step("AB", 1)];
        unique_sids(&mut steps);
        let sids: Vec<String> = document(&steps)["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(sids, ["AB", "AB2", "AB2N2", "ABN2"]);
    }

    #[test]
    fn statements_of_elements_merge() {
        let get = |key: &str| Permission::new(["s3:GetObject"], [format!("arn:aws:s3:::b/{key}")]);
        let merged = merged(Permissions::new(vec![
            get("a"),
            get("b"),
            get("a"),
            Permission::new(["s3:PutObject"], ["arn:aws:s3:::b/a", "arn:aws:s3:::b/b"]),
            Permission::new(["ec2:DescribeInstances"], ["*", "arn:x"]),
        ]));
        assert_eq!(
            merged.statements,
            vec![
                Permission::new(
                    ["s3:GetObject", "s3:PutObject"],
                    ["arn:aws:s3:::b/a", "arn:aws:s3:::b/b"]
                ),
                Permission::new(["ec2:DescribeInstances"], ["*"]),
            ]
        );
    }
}
