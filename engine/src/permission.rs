//! The cloud permissions a step's calls need, as a step type declares them: IAM statements
//! (actions on resources, maybe under a condition), computed from the step's params as `flow
//! plan --offline` renders them. `flow policy` gathers them into one policy document.
//!
//! A value known only after apply reads `(known after apply: …)` in the params: [`pattern`]
//! turns each such part into `*`, so an ARN keeps what is known (`bucket/daily/*`).

use serde_json::{Map, Value};

/// One statement a step needs: `actions` on `resources`, under `condition` if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    /// `service:Action`, e.g. `s3:GetObject`.
    pub actions: Vec<String>,
    /// ARNs (patterns with `*`), or `*`.
    pub resources: Vec<String>,
    /// An IAM `Condition` block (`{ "StringEquals": { "s3:prefix": "daily/" } }`).
    pub condition: Option<Value>,
    /// Why the statement is as wide as it is (a resource of `*`), for the operator.
    pub note: Option<String>,
}

impl Permission {
    pub fn new<A, R>(actions: A, resources: R) -> Self
    where
        A: IntoIterator,
        A::Item: Into<String>,
        R: IntoIterator,
        R::Item: Into<String>,
    {
        Self {
            actions: actions.into_iter().map(Into::into).collect(),
            resources: resources.into_iter().map(Into::into).collect(),
            condition: None,
            note: None,
        }
    }

    /// Adds `operator: { key: value }` to the condition.
    pub fn condition(mut self, operator: &str, key: &str, value: impl Into<Value>) -> Self {
        let condition = self
            .condition
            .get_or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(operators) = condition {
            let keys = operators
                .entry(operator)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(keys) = keys {
                keys.insert(key.to_string(), value.into());
            }
        }
        self
    }

    /// Says why the statement is this wide.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Whether a resource is the whole of `*`.
    pub fn is_unbounded(&self) -> bool {
        self.resources.iter().any(|r| r == "*")
    }
}

/// What a step declares for its params: its statements, and what the operator should know
/// beyond them (permissions flow cannot see from the playbook).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permissions {
    pub statements: Vec<Permission>,
    pub notes: Vec<String>,
}

impl Permissions {
    pub fn new(statements: Vec<Permission>) -> Self {
        Self {
            statements,
            notes: Vec::new(),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.notes.is_empty()
    }
}

/// What `flow policy` knows beyond the params: the account the policy is for.
#[derive(Debug, Clone)]
pub struct PermissionContext {
    /// The account id ARNs name, or `*` (any: `flow policy` without `--account`).
    pub account: String,
}

impl Default for PermissionContext {
    fn default() -> Self {
        Self {
            account: "*".to_string(),
        }
    }
}

const UNKNOWN_OPEN: &str = "(known after apply: ";

/// The text with each part known only after apply as `*` (`daily/(known after apply:
/// steps.pick.value)` → `daily/*`): an ARN pattern that covers whatever the value turns out
/// to be. `None` for a missing value is `*` too.
pub fn pattern(text: Option<&str>) -> String {
    let Some(text) = text else {
        return "*".to_string();
    };
    let text = as_known_after_apply(text);
    let text = text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(UNKNOWN_OPEN) {
        out.push_str(&rest[..open]);
        if !out.ends_with('*') {
            out.push('*');
        }
        rest = after_unknown(&rest[open + UNKNOWN_OPEN.len()..]);
    }
    out.push_str(rest);
    out
}

/// Whether the text holds a part known only after apply.
pub fn is_partly_unknown(text: &str) -> bool {
    crate::evaluate::mentions_unknown(text)
}

/// A param not given (a required one, which `flow policy` covers whatever it will be) reads
/// `(given at apply)`: here it is one more part known only after apply.
fn as_known_after_apply(text: &str) -> String {
    text.replace(
        crate::evaluate::GIVEN_AT_APPLY,
        &format!("{UNKNOWN_OPEN}a param not given)"),
    )
}

/// What the unknown parts of the text wait for (`steps.pick.value`), in order.
pub fn unknown_parts(text: &str) -> Vec<String> {
    let text = as_known_after_apply(text);
    let text = text.as_str();
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find(UNKNOWN_OPEN) {
        let inner = &rest[open + UNKNOWN_OPEN.len()..];
        let after = after_unknown(inner);
        let expression = &inner[..inner.len() - after.len()];
        parts.push(
            expression
                .strip_suffix(')')
                .unwrap_or(expression)
                .to_string(),
        );
        rest = after;
    }
    parts
}

/// What follows the `)` that closes an unknown's text (its expression may hold brackets and
/// quoted text of its own: `steps.x.y | default('a)')`).
fn after_unknown(text: &str) -> &str {
    let mut depth = 1usize;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return &text[i + 1..];
                }
            }
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parts_become_wildcards() {
        assert_eq!(pattern(Some("daily/x.rdb")), "daily/x.rdb");
        assert_eq!(
            pattern(Some("daily/(known after apply: steps.pick.value)")),
            "daily/*"
        );
        assert_eq!(
            pattern(Some(
                "(known after apply: steps.a.b | default('x)'))-(known after apply: c)/k"
            )),
            "*-*/k"
        );
        assert_eq!(
            pattern(Some("(known after apply: a)(known after apply: b)")),
            "*"
        );
        assert_eq!(pattern(None), "*");
        assert_eq!(pattern(Some("(given at apply)-backups")), "*-backups");
        assert!(is_partly_unknown("(given at apply)"));
        assert_eq!(unknown_parts("(given at apply)"), ["a param not given"]);
    }

    #[test]
    fn unknown_parts_name_what_they_wait_for() {
        assert_eq!(
            unknown_parts("a/(known after apply: f(x) | default('(')))-(known after apply: y)"),
            ["f(x) | default('(')", "y"]
        );
        assert!(unknown_parts("plain").is_empty());
    }

    #[test]
    fn conditions_gather_under_their_operator() {
        let p = Permission::new(["s3:ListBucket"], ["arn:aws:s3:::b"])
            .condition("StringEquals", "s3:prefix", "daily/")
            .condition("StringEquals", "s3:delimiter", "/");
        assert_eq!(
            p.condition,
            Some(
                serde_json::json!({ "StringEquals": { "s3:prefix": "daily/", "s3:delimiter": "/" } })
            )
        );
    }
}
