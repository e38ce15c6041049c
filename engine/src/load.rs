//! YAML nodes to the playbook model: every key, type and step type is checked here, each
//! problem reported at its place. References between steps are checked next, by `analyze`.

use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::param::{self, ParamSpec};
use crate::playbook::{Body, Check, Condition, Playbook, Retry, Step};
use crate::registry::Registry;
use crate::secret_outputs::SecretOutputs;
use crate::source::{SourceFile, Span};
use crate::step_type::Effect;
use crate::template::{self, Tmpl};
use crate::yaml::{Key, Node, NodeValue};
use indexmap::IndexMap;
use sha2::Digest as _;
use std::sync::Arc;

const TOP_LEVEL: &[&str] = &[
    "flow",
    "name",
    "description",
    "params",
    "defaults",
    "steps",
    "finally",
    "outputs",
];
const STEP_FIELDS: &[&str] = &[
    "type",
    "name",
    "with",
    "needs",
    "when",
    "for_each",
    "concurrency",
    "retry",
    "timeout",
    "continue_on_error",
    "confirm",
    "effect",
    "undo",
    "secret",
    "secret_outputs",
];
const RETRY_FIELDS: &[&str] = &["attempts", "delay", "backoff", "max_delay", "until"];
const UNDO_FIELDS: &[&str] = &["type", "with"];

/// Loads and checks a playbook file (everything but references between steps).
pub fn load_file(
    path: &std::path::Path,
    registry: &Registry,
) -> Result<(Playbook, Vec<Diagnostic>), Vec<Diagnostic>> {
    let bytes =
        crate::regular_file::read(path, crate::regular_file::INPUT_TEXT_LIMIT).map_err(|e| {
            vec![Diagnostic::error(
                None,
                format!("cannot read playbook {}: {e}", path.display()),
            )]
        })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            // Point at the first byte that is not UTF-8.
            let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
            let prefix = String::from_utf8_lossy(valid);
            let line = prefix.matches('\n').count() + 1;
            let col = prefix.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            let file =
                SourceFile::new(path, String::from_utf8_lossy(error.as_bytes()).into_owned());
            let span = Span::new(&file, line, col, 1);
            return Err(vec![
                Diagnostic::error(Some(&span), "the playbook is not valid UTF-8 text")
                    .with_help("save it as UTF-8"),
            ]);
        }
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    load_source(SourceFile::new(absolute, text), registry)
}

/// Loads a playbook from text already read; returns the model and its warnings.
pub fn load_source(
    file: Arc<SourceFile>,
    registry: &Registry,
) -> Result<(Playbook, Vec<Diagnostic>), Vec<Diagnostic>> {
    let root = crate::yaml::parse(&file).map_err(|d| vec![d])?;
    let mut loader = Loader {
        registry,
        diags: Diagnostics::default(),
        defaults: IndexMap::new(),
    };
    let playbook = loader.playbook(&file, &root);
    let (errors, warnings): (Vec<_>, Vec<_>) = dedupe(loader.diags.items)
        .into_iter()
        .partition(Diagnostic::is_error);
    match playbook {
        Some(p) if errors.is_empty() => Ok((p, warnings)),
        _ => Err(errors.into_iter().chain(warnings).collect()),
    }
}

struct Loader<'r> {
    registry: &'r Registry,
    diags: Diagnostics,
    defaults: IndexMap<String, Node>,
}

impl Loader<'_> {
    fn unknown_keys(&mut self, entries: &[(Key, Node)], allowed: &[&str], what: &str) {
        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                let mut d = Diagnostic::error(
                    Some(&key.span),
                    format!("unknown field `{}` in {what}", key.name),
                );
                d = match did_you_mean(&key.name, allowed.iter().copied()) {
                    Some(hint) => d.with_help(hint),
                    None => d.with_help(format!("accepted fields: {}", allowed.join(", "))),
                };
                self.diags.push(d);
            }
        }
    }

    fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
        match &node.value {
            NodeValue::Map(entries) => Some(entries),
            NodeValue::Null => Some(&[]),
            _ => {
                self.diags.error(
                    Some(&node.span),
                    format!("{what} must be a mapping, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            NodeValue::Str(s) => Some(s.clone()),
            _ => {
                self.diags.error(
                    Some(&node.span),
                    format!("{what} must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.value {
            NodeValue::Bool(b) => Some(b),
            _ => {
                self.diags.error(
                    Some(&node.span),
                    format!("{what} must be true or false, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<std::time::Duration> {
        let parsed = match &node.value {
            NodeValue::Str(s) => crate::duration::parse_duration(s),
            NodeValue::Int(i) if *i >= 0 => Ok(std::time::Duration::from_secs(*i as u64)),
            NodeValue::Float(f) if *f >= 0.0 => Ok(std::time::Duration::from_secs_f64(*f)),
            _ => Err(format!(
                "expected a duration like 30s, 5m or 1h, found {}",
                node.kind()
            )),
        };
        parsed
            .map_err(|m| self.diags.error(Some(&node.span), format!("{what}: {m}")))
            .ok()
    }

    fn compile(&mut self, node: &Node) -> Option<Tmpl> {
        template::compile(node).map_err(|d| self.diags.push(d)).ok()
    }

    fn condition(&mut self, node: &Node) -> Option<Condition> {
        let text = match &node.value {
            NodeValue::Str(s) => s.trim().to_string(),
            _ => node.to_json().to_string(),
        };
        let expr = template::compile_condition(node)
            .map_err(|d| self.diags.push(d))
            .ok()?;
        Some(Condition {
            text,
            expr,
            checks: Vec::new(),
        })
    }

    /// `when`: an expression, a list of checks (all must hold; each an expression or
    /// `{ if: expr, reason: text }`), or one `{ if, reason }`.
    fn when(&mut self, node: &Node) -> Option<Condition> {
        let items: Vec<&Node> = match &node.value {
            NodeValue::List(items) => items.iter().collect(),
            NodeValue::Map(_) => vec![node],
            _ => return self.condition(node),
        };
        if items.is_empty() {
            self.diags
                .error(Some(&node.span), "`when` lists no condition".to_string());
            return None;
        }
        let mut checks = Vec::new();
        let mut failed = false;
        for item in items {
            let (cond, reason) = match &item.value {
                NodeValue::Map(entries) => {
                    for (k, _) in entries {
                        if k.name != "if" && k.name != "reason" {
                            self.diags.error(
                                Some(&k.span),
                                format!(
                                    "unknown key `{}` in a `when` check (expected `if` and `reason`)",
                                    k.name
                                ),
                            );
                            failed = true;
                        }
                    }
                    let Some(cond) = item.get("if") else {
                        self.diags.error(
                            Some(&item.span),
                            "a `when` check needs `if: <expression>`".to_string(),
                        );
                        failed = true;
                        continue;
                    };
                    (cond, item.get("reason"))
                }
                _ => (item, None),
            };
            let Some(cond) = self.condition(cond) else {
                failed = true;
                continue;
            };
            let reason = match reason.map(template::compile) {
                Some(Ok(r)) => Some(r),
                Some(Err(d)) => {
                    self.diags.push(d);
                    failed = true;
                    continue;
                }
                None => None,
            };
            checks.push(Check {
                text: cond.text,
                expr: cond.expr,
                reason,
            });
        }
        if failed {
            return None;
        }
        let text = crate::three_valued::all_of(checks.iter().map(|c| c.text.as_str()));
        let mut all = Vec::new();
        for check in &checks {
            all.push(check.expr.clone());
            all.extend(check.reason.clone());
        }
        Some(Condition {
            text,
            expr: Tmpl::List(all),
            checks,
        })
    }

    fn playbook(&mut self, file: &Arc<SourceFile>, root: &Node) -> Option<Playbook> {
        if matches!(root.value, NodeValue::Null) {
            self.diags.push(
                Diagnostic::error(Some(&root.span), "the playbook is empty")
                    .with_help("a playbook starts with `flow: 1` and has `steps:`"),
            );
            return None;
        }
        let Some(entries) = root.as_map() else {
            self.diags.push(
                Diagnostic::error(
                    Some(&root.span),
                    format!(
                        "a playbook is a mapping with `flow: 1`, `steps:` and more; found {}",
                        root.kind()
                    ),
                )
                .with_help("start the file with `flow: 1`"),
            );
            return None;
        };
        self.unknown_keys(entries, TOP_LEVEL, "the playbook");
        match root.get("flow") {
            None => self.diags.push(
                Diagnostic::error(Some(&root.span), "missing `flow: 1` (the format version)")
                    .with_help("add `flow: 1` as the first line"),
            ),
            Some(v) if matches!(v.value, NodeValue::Int(1)) => {}
            Some(v) if v.as_str() == Some("1") => self.diags.push(
                Diagnostic::error(
                    Some(&v.span),
                    "`flow` is the number 1, not the string \"1\"",
                )
                .with_help("write `flow: 1` without quotes"),
            ),
            Some(v) => self.diags.push(Diagnostic::error(
                Some(&v.span),
                format!(
                    "unsupported format version `{}`: this flow reads `flow: 1`",
                    crate::evaluate::display_value(&v.to_json())
                ),
            )),
        }
        let name = root
            .get("name")
            .and_then(|n| self.string(n, "`name`"))
            .unwrap_or_else(|| {
                file.path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
        let description = root
            .get("description")
            .and_then(|n| self.string(n, "`description`"));
        let params = root
            .get("params")
            .map(|n| self.params(n))
            .unwrap_or_default();
        if let Some(defaults) = root.get("defaults") {
            self.collect_defaults(defaults);
        }
        let mut steps = Vec::new();
        let misspelt_steps = entries
            .iter()
            .any(|(k, _)| k.name != "steps" && strsim::jaro_winkler(&k.name, "steps") > 0.8);
        match root.get("steps") {
            // A misspelt `steps:` was reported above; saying it is missing too is noise.
            None if misspelt_steps => {}
            None => self.diags.push(Diagnostic::error(
                Some(&root.span),
                "the playbook has no `steps:`",
            )),
            Some(node) => {
                if let Some(entries) = self.map(node, "`steps`") {
                    if entries.is_empty() {
                        self.diags.error(
                            Some(&node.span),
                            "`steps` is empty: a playbook needs at least one step",
                        );
                    }
                    self.steps(entries, false, &mut steps);
                }
            }
        }
        if let Some(node) = root.get("finally")
            && let Some(entries) = self.map(node, "`finally`")
        {
            self.steps(entries, true, &mut steps);
        }
        let mut outputs = Vec::new();
        if let Some(node) = root.get("outputs")
            && let Some(entries) = self.map(node, "`outputs`")
        {
            for (key, value) in entries {
                if let Some(t) = self.compile(value) {
                    outputs.push((key.name.clone(), key.span.clone(), t));
                }
            }
        }
        let hash = sha2::Sha256::digest(file.text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = file
            .path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        let ids = steps.iter().map(|s| (s.id.clone(), s.index)).collect();
        Some(Playbook {
            ids,
            file: Arc::clone(file),
            dir,
            hash,
            name,
            description,
            params,
            steps,
            outputs,
        })
    }

    fn params(&mut self, node: &Node) -> IndexMap<String, ParamSpec> {
        let mut out = IndexMap::new();
        let Some(entries) = self.map(node, "`params`") else {
            return out;
        };
        for (key, value) in entries {
            if !is_identifier(&key.name) {
                self.diags.error(
                    Some(&key.span),
                    format!(
                        "param name `{}` must match ^[a-z_][a-z0-9_]*$ (it is used as `params.{}`)",
                        key.name, key.name
                    ),
                );
                continue;
            }
            if let Some(spec) = param::parse_spec(&key.name, &key.span, value, &mut self.diags) {
                out.insert(key.name.clone(), spec);
            }
        }
        out
    }

    fn collect_defaults(&mut self, node: &Node) {
        let Some(entries) = self.map(node, "`defaults`") else {
            return;
        };
        let keys = self.registry.defaults_keys();
        for (key, value) in entries {
            if !keys.contains(&key.name) {
                let mut d = Diagnostic::error(
                    Some(&key.span),
                    format!("unknown defaults key `{}`", key.name),
                );
                d = d.with_help(
                    did_you_mean(&key.name, keys.iter().map(String::as_str))
                        .unwrap_or_else(|| format!("`defaults` takes: {}", keys.join(", "))),
                );
                self.diags.push(d);
                continue;
            }
            let Some(settings) = self.map(value, &format!("`defaults.{}`", key.name)) else {
                continue;
            };
            // Only what the key's blocks or steps take: `defaults.ssh.command` would otherwise
            // be merged into every `ssh.exec` as its command.
            let schema = self.registry.defaults_schema(&key.name);
            let allowed: Vec<&str> = schema
                .get("properties")
                .and_then(|p| p.as_object())
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut valid = true;
            for (setting, _) in settings {
                if !allowed.contains(&setting.name.as_str()) {
                    valid = false;
                    let d = Diagnostic::error(
                        Some(&setting.span),
                        format!("`defaults.{}` takes no `{}`", key.name, setting.name),
                    );
                    self.diags.push(d.with_help(
                        did_you_mean(&setting.name, allowed.iter().copied()).unwrap_or_else(|| {
                            format!("`defaults.{}` takes: {}", key.name, allowed.join(", "))
                        }),
                    ));
                }
            }
            if valid {
                self.defaults.insert(key.name.clone(), value.clone());
            }
        }
    }

    fn steps(&mut self, entries: &[(Key, Node)], finally: bool, out: &mut Vec<Step>) {
        let mut seen: std::collections::HashMap<String, usize> = out
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        for (key, node) in entries {
            if !is_step_id(&key.name) {
                self.diags.push(
                    Diagnostic::error(
                        Some(&key.span),
                        format!(
                            "invalid step id `{}`: ids match ^[a-z][a-z0-9_]*$",
                            key.name
                        ),
                    )
                    .with_help(format!("for example `{}`", suggest_id(&key.name))),
                );
                continue;
            }
            if let Some(first) = seen.get(&key.name).map(|i| &out[*i]) {
                self.diags.push(Diagnostic::error(
                    Some(&key.span),
                    format!(
                        "duplicate step id `{}`: already used at {}",
                        key.name,
                        first.span.location()
                    ),
                ));
                continue;
            }
            if let Some(step) = self.step(key, node, finally, out.len()) {
                seen.insert(step.id.clone(), out.len());
                out.push(step);
            }
        }
    }

    fn step(&mut self, key: &Key, node: &Node, finally: bool, index: usize) -> Option<Step> {
        let id = &key.name;
        let what = format!("step `{id}`");
        let entries = match &node.value {
            NodeValue::Map(e) => e,
            _ => {
                self.diags.push(
                    Diagnostic::error(
                        Some(&node.span),
                        format!(
                            "{what} must be a mapping with `type:`, found {}",
                            node.kind()
                        ),
                    )
                    .with_help("write `id: { type: log, with: { message: hi } }`"),
                );
                return None;
            }
        };
        self.unknown_keys(entries, STEP_FIELDS, &what);
        let errors_before = self.diags.items.len();
        let effect_override = node.get("effect").and_then(|n| match n.as_str() {
            Some("read") => Some((Effect::Read, n.span.clone())),
            Some("write") => Some((Effect::Write, n.span.clone())),
            _ => {
                self.diags.error(
                    Some(&n.span),
                    format!("`effect` of {what} must be `read` or `write`"),
                );
                None
            }
        });
        // Not `?`: the step's other fields are checked too, so every mistake shows at once.
        let body = self.body(
            id,
            &format!("step `{id}`"),
            &key.span,
            node,
            effect_override,
        );
        let name = node
            .get("name")
            .and_then(|n| self.string(n, &format!("`name` of {what}")));
        let needs = node.get("needs").and_then(|n| self.needs(n, &what));
        let when = node.get("when").and_then(|n| self.when(n));
        let for_each = node.get("for_each").and_then(|n| self.for_each(n, &what));
        let concurrency = match node.get("concurrency") {
            None => 1,
            Some(n) => match n.value {
                NodeValue::Int(c) if c >= 1 => {
                    if for_each.is_none() {
                        self.diags.error(
                            Some(&n.span),
                            format!("`concurrency` of {what} only applies with `for_each`"),
                        );
                    }
                    c as usize
                }
                _ => {
                    let found = match n.value {
                        NodeValue::Int(c) => c.to_string(),
                        _ => n.kind().to_string(),
                    };
                    self.diags.error(Some(&n.span), format!("`concurrency` of {what} must be a whole number of at least 1, found {found}"));
                    1
                }
            },
        };
        let retry = node.get("retry").and_then(|n| self.retry(n, &what));
        let timeout = node.get("timeout").and_then(|n| {
            let timeout = self.duration(n, &format!("`timeout` of {what}"))?;
            if timeout.is_zero() {
                self.diags.error(
                    Some(&n.span),
                    format!("`timeout` of {what} must be more than 0s"),
                );
            }
            Some(timeout)
        });
        let continue_on_error = node
            .get("continue_on_error")
            .and_then(|n| self.boolean(n, &format!("`continue_on_error` of {what}")))
            .unwrap_or(false);
        let confirm = node.get("confirm").and_then(|n| {
            if !matches!(n.value, NodeValue::Str(_)) {
                self.diags.error(
                    Some(&n.span),
                    format!(
                        "`confirm` of {what} must be the message to ask, found {}",
                        n.kind()
                    ),
                );
                return None;
            }
            self.compile(n)
        });
        let undo = node.get("undo").and_then(|n| {
            let entries = self.map(n, &format!("`undo` of {what}"))?;
            self.unknown_keys(entries, UNDO_FIELDS, &format!("`undo` of {what}"));
            if n.get("type").is_none() {
                self.diags
                    .error(Some(&n.span), format!("`undo` of {what} needs a `type`"));
                return None;
            }
            self.body(id, &format!("step `{id}`, undo"), &n.span, n, None)
        });
        let secret_outputs = self.secret_outputs(node, body.as_ref(), &what);
        if self.diags.items[errors_before..]
            .iter()
            .any(Diagnostic::is_error)
        {
            return None;
        }
        let body = body?;
        Some(Step {
            id: id.clone(),
            span: key.span.clone(),
            index,
            finally,
            name,
            body,
            needs,
            when,
            for_each,
            concurrency,
            retry,
            timeout,
            continue_on_error,
            confirm,
            undo,
            secret_outputs,
        })
    }

    /// `secret: true` or `secret_outputs: [names]`: each name an output of the step's type.
    fn secret_outputs(&mut self, node: &Node, body: Option<&Body>, what: &str) -> SecretOutputs {
        let all = node
            .get("secret")
            .and_then(|n| self.boolean(n, &format!("`secret` of {what}")))
            .unwrap_or(false);
        let Some(list) = node.get("secret_outputs") else {
            return if all {
                SecretOutputs::All
            } else {
                SecretOutputs::None
            };
        };
        if all {
            self.diags.push(
                Diagnostic::error(
                    Some(&list.span),
                    format!("{what} has `secret: true`, which makes every output secret: `secret_outputs` would add nothing"),
                )
                .with_help("keep one of the two"),
            );
            return SecretOutputs::All;
        }
        let NodeValue::List(items) = &list.value else {
            self.diags.push(
                Diagnostic::error(
                    Some(&list.span),
                    format!(
                        "`secret_outputs` of {what} must be a list of output names, found {}",
                        list.kind()
                    ),
                )
                .with_help("for example `secret_outputs: [stdout]`"),
            );
            return SecretOutputs::None;
        };
        let outputs: Vec<String> = body
            .map(|b| b.step_type.meta().outputs.clone())
            .unwrap_or_default();
        let mut names = Vec::new();
        for item in items {
            let Some(name) = self.string(item, &format!("an entry of `secret_outputs` of {what}"))
            else {
                continue;
            };
            if let Some(body) = body
                && !outputs.contains(&name)
            {
                let d = Diagnostic::error(
                    Some(&item.span),
                    format!("{what}: `{}` has no output `{name}`", body.type_name),
                );
                self.diags.push(
                    match did_you_mean(&name, outputs.iter().map(String::as_str)) {
                        Some(hint) => d.with_help(hint),
                        None if outputs.is_empty() => {
                            d.with_help(format!("`{}` has no outputs", body.type_name))
                        }
                        None => d.with_help(format!("its outputs: {}", outputs.join(", "))),
                    },
                );
                continue;
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        SecretOutputs::Named(names)
    }

    /// `type` + `with` (with defaults merged under it), checked against the type's schema.
    fn body(
        &mut self,
        id: &str,
        label: &str,
        id_span: &Span,
        node: &Node,
        effect_override: Option<(Effect, Span)>,
    ) -> Option<Body> {
        let Some(type_node) = node.get("type") else {
            self.diags.push(
                Diagnostic::error(Some(id_span), format!("step `{id}` has no `type`"))
                    .with_help("`flow steps` lists the step types"),
            );
            return None;
        };
        let type_name = self.string(type_node, &format!("`type` of step `{id}`"))?;
        let Some(step_type) = self.registry.get(&type_name).cloned() else {
            let d = Diagnostic::error(
                Some(&type_node.span),
                format!("unknown step type `{type_name}`"),
            );
            self.diags
                .push(match did_you_mean(&type_name, self.registry.names()) {
                    Some(hint) => d.with_help(hint),
                    None => d.with_help("`flow steps` lists the step types"),
                });
            return None;
        };
        let meta = step_type.meta();
        let mut effect = meta.effect;
        if let Some((over, span)) = effect_override.clone() {
            if meta.effect_overridable {
                effect = over;
            } else {
                self.diags.error(Some(&span), format!("step type `{type_name}` always has effect `{}`; `effect:` is only for generic types like `exec`", meta.effect.as_str()));
            }
        }
        let mut with_node = node.get("with").cloned().unwrap_or(Node {
            span: node.span.clone(),
            value: NodeValue::Map(Vec::new()),
        });
        crate::schema::merge_defaults(
            &mut with_node,
            &meta.params_schema,
            meta.defaults,
            &self.defaults,
        );
        let mut problems = Vec::new();
        crate::schema::check(&with_node, &meta.params_schema, "with", &mut problems);
        for group in meta.exactly_one_of {
            let given: Vec<&str> = group
                .iter()
                .copied()
                .filter(|f| with_node.get(f).is_some())
                .collect();
            let names = group
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(" or ");
            match given.len() {
                1 => {}
                0 => problems.push(Diagnostic::error(
                    Some(&with_node.span),
                    format!("`with` needs {names}"),
                )),
                _ => {
                    let second = with_node
                        .as_map()
                        .and_then(|m| {
                            m.iter()
                                .filter(|(k, _)| given.contains(&k.name.as_str()))
                                .nth(1)
                        })
                        .map(|(k, _)| k.span.clone());
                    problems.push(Diagnostic::error(
                        second.as_ref(),
                        format!("`with` takes only one of {names}"),
                    ));
                }
            }
        }
        let failed = problems.iter().any(Diagnostic::is_error);
        for d in problems {
            self.diags.push(d.clone_with_context(label));
        }
        self.shell_warnings(id, &with_node);
        let with = self.compile_with(&with_node, &meta.expression_fields, &meta.deferred_fields)?;
        let deferred = self.deferred(&with_node, &meta.deferred_fields);
        (!failed).then(|| Body {
            type_name,
            step_type,
            span: type_node.span.clone(),
            with,
            effect,
            effect_overridden: effect_override.is_some(),
            deferred,
        })
    }

    /// Compiles `with`; fields that hold bare expressions become `{ expression, value }`.
    /// Checks the deferred expressions of `with` (syntax here, references in `analyze`).
    fn deferred(
        &mut self,
        with: &Node,
        fields: &[(String, Vec<String>)],
    ) -> Vec<(crate::template::Source, Vec<String>)> {
        let mut out = Vec::new();
        for (field, names) in fields {
            if let Some(node) = with.get(field)
                && let Some(Tmpl::Expr(source)) = template::compile_condition(node)
                    .map_err(|d| self.diags.push(d))
                    .ok()
            {
                out.push((source, names.clone()));
            }
        }
        out
    }

    fn compile_with(
        &mut self,
        with: &Node,
        expression_fields: &[String],
        deferred_fields: &[(String, Vec<String>)],
    ) -> Option<Tmpl> {
        let entries = match &with.value {
            NodeValue::Map(entries)
                if !expression_fields.is_empty() || !deferred_fields.is_empty() =>
            {
                entries
            }
            _ => return self.compile(with),
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            // A deferred expression stays text: the step evaluates it (see `deferred`).
            if deferred_fields.iter().any(|(field, _)| *field == key.name) {
                out.push((key.name.clone(), Tmpl::Literal(value.to_json())));
                continue;
            }
            let compiled = if expression_fields.contains(&key.name) {
                match &value.value {
                    NodeValue::List(items) => Tmpl::List(
                        items
                            .iter()
                            .map(|i| self.expression(i))
                            .collect::<Option<_>>()?,
                    ),
                    _ => self.expression(value)?,
                }
            } else {
                self.compile(value)?
            };
            out.push((key.name.clone(), compiled));
        }
        Some(Tmpl::Map(out))
    }

    fn expression(&mut self, node: &Node) -> Option<Tmpl> {
        let condition = self.condition(node)?;
        Some(Tmpl::Map(vec![
            (
                "expression".into(),
                Tmpl::Literal(serde_json::Value::String(condition.text)),
            ),
            ("value".into(), condition.expr),
        ]))
    }

    /// Warns when a `shell:` or `command:` string interpolates a value without `| quote`.
    fn shell_warnings(&mut self, id: &str, with: &Node) {
        let Some(entries) = with.as_map() else { return };
        for (key, value) in entries {
            match (key.name.as_str(), &value.value) {
                // A whole argv from one expression (`command: "{{ params.stop }}"`, a list)
                // goes to no shell: each element is one argument, whatever it holds.
                ("command", NodeValue::Str(text)) if is_one_expression(text) => {}
                ("shell" | "command", NodeValue::Str(_)) => {
                    self.unquoted(id, &format!("with.{}", key.name), value)
                }
                // An argv that hands a script to a shell: `[sh, -c, "…{{ x }}…"]`.
                ("command", NodeValue::List(items)) => {
                    let shell = items
                        .first()
                        .and_then(Node::as_str)
                        .map(|p| p.rsplit('/').next().unwrap_or(p));
                    if matches!(shell, Some("sh" | "bash" | "dash" | "zsh" | "ksh" | "ash"))
                        && let Some(at) = items.iter().position(|i| i.as_str() == Some("-c"))
                        && let Some(script) = items.get(at + 1)
                    {
                        self.unquoted(id, &format!("with.command[{}]", at + 1), script);
                    }
                }
                _ => {}
            }
        }
    }

    /// Warns for each `{{ … }}` in a shell script that does not end in `| quote`.
    fn unquoted(&mut self, id: &str, field: &str, value: &Node) {
        let Some(text) = value.as_str() else { return };
        let mut rest = 0;
        while let Some(start) = text[rest..].find("{{").map(|i| i + rest) {
            let end = text[start..]
                .find("}}")
                .map(|i| i + start + 2)
                .unwrap_or(text.len());
            let expr = &text[start..end];
            if !expr.contains("quote") {
                let span = value.inner_span(text[..start].chars().count(), expr.chars().count());
                self.diags.push(
                    Diagnostic::warning(Some(&span), format!("step `{id}`: `{field}` interpolates `{expr}` without `| quote`: a value with spaces or `;` would change the command"))
                        .with_help(format!("write `{} | quote }}}}`", expr.trim_end_matches("}}").trim_end())),
                );
            }
            rest = end;
        }
    }

    /// `for_each`: a bare expression (`params.hosts`, `{{ … }}` allowed) or a literal list.
    fn for_each(&mut self, node: &Node, what: &str) -> Option<Tmpl> {
        match &node.value {
            NodeValue::Str(_) => self.condition(node).map(|c| c.expr),
            NodeValue::List(_) => self.compile(node),
            _ => {
                self.diags.error(
                    Some(&node.span),
                    format!(
                        "`for_each` of {what} must give a list, found {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    fn needs(&mut self, node: &Node, what: &str) -> Option<Vec<(String, Span)>> {
        let items: Vec<&Node> = match &node.value {
            NodeValue::List(items) => items.iter().collect(),
            NodeValue::Str(_) => vec![node],
            _ => {
                self.diags.error(
                    Some(&node.span),
                    format!(
                        "`needs` of {what} must be a list of step ids, found {}",
                        node.kind()
                    ),
                );
                return None;
            }
        };
        let mut out = Vec::new();
        for item in items {
            if let Some(id) = self.string(item, &format!("an entry of `needs` of {what}")) {
                out.push((id, item.span.clone()));
            }
        }
        Some(out)
    }

    fn retry(&mut self, node: &Node, what: &str) -> Option<Retry> {
        let entries = self.map(node, &format!("`retry` of {what}"))?;
        self.unknown_keys(entries, RETRY_FIELDS, &format!("`retry` of {what}"));
        let attempts = match node.get("attempts") {
            None => 3,
            Some(n) => match n.value {
                NodeValue::Int(a) if (1..=10_000).contains(&a) => a as u32,
                _ => {
                    self.diags.error(
                        Some(&n.span),
                        format!(
                            "`retry.attempts` of {what} must be a whole number from 1 to 10000"
                        ),
                    );
                    return None;
                }
            },
        };
        let delay = node
            .get("delay")
            .and_then(|n| self.duration(n, "`retry.delay`"))
            .unwrap_or(std::time::Duration::from_secs(1));
        let backoff = match node.get("backoff") {
            None => 1.0,
            Some(n) => match n.value {
                NodeValue::Int(b) if b >= 1 => b as f64,
                NodeValue::Float(b) if b >= 1.0 => b,
                _ => {
                    self.diags.error(
                        Some(&n.span),
                        format!("`retry.backoff` of {what} must be a number of at least 1"),
                    );
                    1.0
                }
            },
        };
        let max_delay = node
            .get("max_delay")
            .and_then(|n| self.duration(n, "`retry.max_delay`"));
        let until = node.get("until").and_then(|n| self.condition(n));
        Some(Retry {
            attempts,
            delay,
            backoff,
            max_delay,
            until,
        })
    }
}

impl Diagnostic {
    /// Prefixes the message with what it is about (`step `a``, `step `a`, undo`).
    fn clone_with_context(&self, label: &str) -> Diagnostic {
        let mut d = self.clone();
        d.message = format!("{label}: {}", d.message);
        d
    }
}

/// One report per place: a mistake in `defaults` is checked under every step and every block it
/// is merged into (`with.left.x`, `with.right.x`), but is one mistake.
fn dedupe(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = std::collections::HashSet::new();
    let field_path = regex::Regex::new(r"`with(?:\.[^`]*)?\.([^`.]+)`").expect("a valid regex");
    diagnostics
        .into_iter()
        .filter(|d| {
            let what = d
                .message
                .split_once("`: ")
                .filter(|(label, _)| label.starts_with("step `"))
                .map_or(d.message.as_str(), |(_, rest)| rest);
            let what = field_path.replace_all(what, "`$1`");
            seen.insert((d.span.as_ref().map(|s| s.location()), what.into_owned()))
        })
        .collect()
}

fn is_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn suggest_id(id: &str) -> String {
    let mut out: String = id
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "step_");
    }
    out
}

/// Whether `text` is exactly one `{{ … }}` (a typed value, not text with values in it).
fn is_one_expression(text: &str) -> bool {
    let text = text.trim();
    text.starts_with("{{") && text.ends_with("}}") && text[2..text.len() - 2].find("}}").is_none()
}
