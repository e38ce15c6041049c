//! Templated values of a playbook, compiled once at load time.
//!
//! A string holding `{{ … }}` becomes a template; a string that is exactly one `{{ expr }}`
//! becomes an expression whose value keeps its type. Each template remembers the variables it
//! reads (`steps.launch.private_ip`), which is what static checks, the graph and the plan's
//! "known after apply" all work from.

use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::yaml::{Node, NodeValue};
use minijinja::Environment;
use serde_json::Value;
use std::sync::OnceLock;

/// One variable path a template reads, e.g. `steps.backups.objects` or `params.bucket`.
#[derive(Debug, Clone)]
pub struct Reference {
    pub path: Vec<String>,
    pub span: Span,
}

impl Reference {
    pub fn root(&self) -> &str {
        &self.path[0]
    }

    /// For `steps.X…`, the step id X.
    pub fn step(&self) -> Option<&str> {
        (self.path[0] == "steps").then(|| self.path.get(1).map(String::as_str))?
    }

    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// A piece of template source and what it reads.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    pub span: Span,
    pub references: Vec<Reference>,
}

/// A value of the playbook after compilation: literal data, or templates inside it.
#[derive(Debug, Clone)]
pub enum Tmpl {
    Literal(Value),
    /// The whole string is one `{{ expr }}`: evaluates to a typed value.
    Expr(Source),
    /// Text with `{{ }}` or `{% %}` inside: renders to a string.
    Text(Source),
    List(Vec<Tmpl>),
    Map(Vec<(String, Tmpl)>),
}

impl Tmpl {
    /// Every template source inside this value.
    pub fn sources(&self) -> Vec<&Source> {
        let mut out = Vec::new();
        self.collect_sources(&mut out);
        out
    }

    fn collect_sources<'a>(&'a self, out: &mut Vec<&'a Source>) {
        match self {
            Tmpl::Literal(_) => {}
            Tmpl::Expr(source) | Tmpl::Text(source) => out.push(source),
            Tmpl::List(items) => items.iter().for_each(|i| i.collect_sources(out)),
            Tmpl::Map(entries) => entries.iter().for_each(|(_, v)| v.collect_sources(out)),
        }
    }

    pub fn references(&self) -> impl Iterator<Item = &Reference> {
        self.sources().into_iter().flat_map(|s| s.references.iter())
    }
}

/// An environment used only to parse templates at load time (no run data needed).
fn syntax_env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        crate::template_env::build_environment(crate::template_env::TemplateSettings {
            now: jiff::Timestamp::UNIX_EPOCH,
            playbook_dir: std::path::PathBuf::from("."),
        })
    })
}

/// Compiles a node into a `Tmpl`, checking template syntax.
pub fn compile(node: &Node) -> Result<Tmpl, Diagnostic> {
    Ok(match &node.value {
        NodeValue::Str(text) if text.contains(DYNAMIC_REFERENCE) && !text.contains("{% raw") => {
            Tmpl::Text(compile_text_source(
                node,
                &literal_dynamic_references(text),
            )?)
        }
        NodeValue::Str(text) if text.contains("{{") || text.contains("{%") => {
            match whole_expression(text) {
                Some(expr) => Tmpl::Expr(compile_expression_source(node, expr)?),
                None => Tmpl::Text(compile_text_source(node, text)?),
            }
        }
        NodeValue::List(items) => Tmpl::List(items.iter().map(compile).collect::<Result<_, _>>()?),
        NodeValue::Map(entries) => Tmpl::Map(
            entries
                .iter()
                .map(|(k, v)| {
                    if k.name.contains("{{") || k.name.contains("{%") {
                        return Err(Diagnostic::error(
                            Some(&k.span),
                            format!(
                                "mapping keys are not templated: `{}` would be used as written",
                                k.name
                            ),
                        ));
                    }
                    Ok((k.name.clone(), compile(v)?))
                })
                .collect::<Result<_, Diagnostic>>()?,
        ),
        _ => Tmpl::Literal(node.to_json()),
    })
}

/// How a CloudFormation dynamic reference starts: `{{resolve:secretsmanager:name}}`.
const DYNAMIC_REFERENCE: &str = "{{resolve:";

/// Text with each CloudFormation dynamic reference (`{{resolve:…}}`, no space after the
/// braces: never a valid expression) kept as written: its braces become literal text, and
/// what is inside stays a template (`{{resolve:ssm:{{ params.name }}}}` names a param).
fn literal_dynamic_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(start) = rest.find(DYNAMIC_REFERENCE) {
        let inner = &rest[start + DYNAMIC_REFERENCE.len()..];
        // The `}}` that closes the reference: nested `{{ … }}` are templates inside it.
        let mut depth = 1;
        let mut end = None;
        let mut i = 0;
        while i + 1 < inner.len() {
            match &inner.as_bytes()[i..i + 2] {
                b"{{" => {
                    depth += 1;
                    i += 2;
                }
                b"}}" => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
        let Some(end) = end else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str("{% raw %}{{resolve:{% endraw %}");
        out.push_str(&inner[..end]);
        out.push_str("{% raw %}}}{% endraw %}");
        rest = &inner[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Compiles a bare expression (`when`, `retry.until`, `assert.that`); `{{ }}` around it is
/// allowed. A boolean literal stays a literal.
pub fn compile_condition(node: &Node) -> Result<Tmpl, Diagnostic> {
    match &node.value {
        NodeValue::Str(text) => {
            let expr = whole_expression(text).unwrap_or(text);
            Ok(Tmpl::Expr(compile_expression_source(node, expr)?))
        }
        NodeValue::Bool(_) => Ok(Tmpl::Literal(node.to_json())),
        _ => Err(Diagnostic::error(
            Some(&node.span),
            format!(
                "expected an expression (a string like `steps.check.passed`), found {}",
                node.kind()
            ),
        )),
    }
}

/// An expression as written, without `{{ }}` around it if it has them.
pub fn strip_braces(text: &str) -> &str {
    whole_expression(text).unwrap_or(text).trim()
}

/// `Some(inner)` when the text is exactly one `{{ expr }}` and nothing else.
fn whole_expression(text: &str) -> Option<&str> {
    let body = text.trim().strip_prefix("{{")?;
    // The `}}` that closes it, past any `}}` of a literal inside (`{{ [{'a': {'b': 1}}] }}`).
    let end = crate::partial_render::closing(body)?;
    if end + 2 != body.len() {
        return None;
    }
    let inner = &body[..end];
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    (!inner.contains("{%")).then_some(inner)
}

/// Most filters one template may chain: MiniJinja compiles and runs a chain by recursing
/// once per filter, and a chain of thousands would overflow the stack (an abort, no message).
const MAX_FILTERS: usize = 1000;

fn too_many_filters(node: &Node, text: &str) -> Result<(), Diagnostic> {
    let filters = text.bytes().filter(|b| *b == b'|').count();
    if filters > MAX_FILTERS {
        return Err(Diagnostic::error(
            Some(&node.span),
            format!(
                "this template has {filters} filters (`|`); flow allows {MAX_FILTERS} in one template"
            ),
        ));
    }
    Ok(())
}

fn compile_expression_source(node: &Node, expr: &str) -> Result<Source, Diagnostic> {
    let text = node.as_str().unwrap_or(expr);
    too_many_filters(node, text)?;
    let offset = text.find(expr.trim()).unwrap_or(0);
    let compiled = syntax_env()
        .compile_expression(expr)
        .map_err(|e| syntax_error(node, text, offset, &e))?;
    let mut vars = compiled.undeclared_variables(true);
    vars.extend(unreported_paths(expr, true));
    check_filters(node, text, offset, expr, true)?;
    Ok(Source {
        text: expr.trim().to_string(),
        span: node.span.clone(),
        references: references(node, text, vars),
    })
}

fn compile_text_source(node: &Node, text: &str) -> Result<Source, Diagnostic> {
    too_many_filters(node, text)?;
    let template = syntax_env()
        .template_from_str(text)
        .map_err(|e| syntax_error(node, text, 0, &e))?;
    let mut vars = template.undeclared_variables(true);
    vars.extend(unreported_paths(text, false));
    check_filters(node, text, 0, text, false)?;
    Ok(Source {
        text: text.to_string(),
        span: node.span.clone(),
        references: references(node, text, vars),
    })
}

fn syntax_error(node: &Node, text: &str, offset: usize, error: &minijinja::Error) -> Diagnostic {
    let span = match error.range() {
        Some(range) => {
            let chars = text[..(offset + range.start).min(text.len())]
                .chars()
                .count();
            node.inner_span(chars, range.len())
        }
        None => node.span.clone(),
    };
    let detail = error.detail().unwrap_or("invalid syntax");
    Diagnostic::error(Some(&span), format!("template syntax error: {detail}"))
}

/// Turns MiniJinja's set of variable paths into references with a span pointing at each one.
fn references(node: &Node, text: &str, vars: std::collections::HashSet<String>) -> Vec<Reference> {
    let mut refs: Vec<Reference> = vars
        .into_iter()
        .filter(|v| !crate::template_env::FUNCTIONS.contains(&v.as_str()))
        .map(|dotted| {
            let span = match text.find(&dotted) {
                Some(at) => node.inner_span(text[..at].chars().count(), dotted.chars().count()),
                None => node.span.clone(),
            };
            Reference {
                path: dotted.split('.').map(str::to_string).collect(),
                span,
            }
        })
        .collect();
    refs.sort_by_key(|r| (r.span.line, r.span.col));
    refs
}

/// Rejects filters and tests the environment does not have: MiniJinja only notices them when
/// the template runs, which would be after earlier steps have changed things.
fn check_filters(
    node: &Node,
    text: &str,
    offset: usize,
    source: &str,
    whole_expression: bool,
) -> Result<(), Diagnostic> {
    for (kind, name, at) in filters_and_tests(source, whole_expression) {
        if !exists(kind, &name) {
            let chars = text[..(offset + at).min(text.len())].chars().count();
            let span = node.inner_span(chars, name.chars().count());
            return Err(Diagnostic::error(Some(&span), format!("unknown {kind} `{name}`"))
                .with_help("flow adds quote, to_json, from_json, to_yaml, b64encode, b64decode, sha256, basename, dirname, regex_replace, strftime and duration to MiniJinja's own filters"));
        }
    }
    Ok(())
}

/// Whether the environment has a filter (or test) of that name, by trying it once.
fn exists(kind: &str, name: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static KNOWN: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let key = format!("{kind} {name}");
    let cache = KNOWN.get_or_init(Default::default);
    if let Some(known) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return *known;
    }
    let probe = if kind == "filter" {
        format!("none | {name}")
    } else {
        format!("none is {name}")
    };
    let missing = if kind == "filter" {
        minijinja::ErrorKind::UnknownFilter
    } else {
        minijinja::ErrorKind::UnknownTest
    };
    let found = match syntax_env().compile_expression(&probe) {
        Ok(expression) => !matches!(expression.eval(()), Err(e) if e.kind() == missing),
        Err(e) => e.kind() != missing,
    };
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, found);
    found
}

/// The filters (`| name`) and tests (`is name`) used in template code, with byte offsets;
/// string literals and, in text templates, everything outside `{{ }}`/`{% %}` are skipped.
fn filters_and_tests(source: &str, whole_expression: bool) -> Vec<(&'static str, String, usize)> {
    let bytes = source.as_bytes();
    let mut found = Vec::new();
    let mut in_code = whole_expression;
    let mut i = 0;
    let identifier = |from: usize| {
        let start = from + source[from..].len() - source[from..].trim_start().len();
        let end = source[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(source.len(), |e| start + e);
        (start, &source[start..end])
    };
    while i < bytes.len() {
        if !whole_expression && !in_code {
            if bytes[i..].starts_with(b"{{") || bytes[i..].starts_with(b"{%") {
                in_code = true;
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        match bytes[i] {
            b'\'' | b'"' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'}' | b'%' if !whole_expression && bytes.get(i + 1) == Some(&b'}') => {
                in_code = false;
                i += 2;
            }
            b'|' => {
                let (start, name) = identifier(i + 1);
                if !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) {
                    found.push(("filter", name.to_string(), start));
                }
                i += 1;
            }
            b'i' if bytes[i..].starts_with(b"is ")
                && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')) =>
            {
                let (mut start, mut name) = identifier(i + 2);
                if name == "not" {
                    (start, name) = identifier(start + 3);
                }
                if !name.is_empty() {
                    found.push(("test", name.to_string(), start));
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    found
}

/// A piece of an expression compiled on its own (an operand of a condition, one `{{ }}` of a
/// text), with what it reads; `None` when it does not compile alone.
pub fn expression_source(text: &str, span: &Span) -> Option<Source> {
    let compiled = syntax_env().compile_expression(text).ok()?;
    let mut vars = compiled.undeclared_variables(true);
    vars.extend(unreported_paths(text, true));
    Some(Source {
        text: text.trim().to_string(),
        span: span.clone(),
        references: all_at(vars, span),
    })
}

/// The references of a whole text template, or `None` when it does not compile.
pub fn text_references(text: &str, span: &Span) -> Option<Vec<Reference>> {
    let template = syntax_env().template_from_str(text).ok()?;
    let mut vars = template.undeclared_variables(true);
    vars.extend(unreported_paths(text, false));
    Some(all_at(vars, span))
}

/// The `params.…` and `steps.…` paths the code of a template names, where MiniJinja leaves
/// some out of the variables it says a template reads: the base of a slice
/// (`params.pw[:6]`, `steps.a.b[1:]`). Without them a step would neither wait for the step
/// whose output it slices nor be checked against it, and a slice of a secret would not count
/// as reading one. Only code counts: not string literals, nor the text around `{{ }}`.
fn unreported_paths(text: &str, whole_expression: bool) -> Vec<String> {
    static PATH: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?:^|[^A-Za-z0-9_.])((?:params|steps)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
            .expect("a valid regex")
    });
    let code = if whole_expression {
        literals_blanked(text)
    } else {
        code_blocks(text)
            .into_iter()
            .map(literals_blanked)
            .collect::<Vec<_>>()
            .join(" ")
    };
    PATH.captures_iter(&code)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
        .collect()
}

/// The code of each `{{ … }}` and `{% … %}` of a text (not inside `{% raw %}`).
fn code_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{").into_iter().chain(rest.find("{%")).min() {
        let inner = &rest[open + 2..];
        let closer = if rest[open..].starts_with("{{") {
            b'}'
        } else {
            b'%'
        };
        let bytes = inner.as_bytes();
        let Some(end) = crate::code_scan::code_positions(inner)
            .find(|&(i, depth)| depth == 0 && bytes[i] == closer && bytes.get(i + 1) == Some(&b'}'))
            .map(|(i, _)| i)
        else {
            break;
        };
        let block = &inner[..end];
        rest = &inner[end + 2..];
        if closer == b'%' && block.trim_matches(|c: char| c == '-' || c.is_whitespace()) == "raw" {
            match rest.find("endraw") {
                Some(at) => rest = &rest[at..],
                None => break,
            }
            continue;
        }
        blocks.push(block);
    }
    blocks
}

/// Code with its string literals replaced by spaces.
fn literals_blanked(code: &str) -> String {
    let mut out = vec![b' '; code.len()];
    for (i, _) in crate::code_scan::code_positions(code) {
        out[i] = code.as_bytes()[i];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Variable paths as references, all at one span (a piece compiled on its own).
fn all_at(vars: std::collections::HashSet<String>, span: &Span) -> Vec<Reference> {
    vars.into_iter()
        .filter(|v| !crate::template_env::FUNCTIONS.contains(&v.as_str()))
        .map(|dotted| Reference {
            path: dotted.split('.').map(str::to_string).collect(),
            span: span.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    fn paths(text: &str) -> Vec<String> {
        let file = SourceFile::new("t.yaml", format!("k: {text:?}\n"));
        let root = crate::yaml::parse(&file).expect("yaml");
        let node = root.get("k").expect("k");
        let mut found: Vec<String> = compile(node)
            .expect("compiles")
            .references()
            .map(Reference::dotted)
            .collect();
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn the_base_of_a_slice_is_read() {
        assert_eq!(paths("{{ params.pw[:6] }}"), ["params.pw"]);
        assert_eq!(
            paths("a {{ steps.x.stdout[1:] ~ 'params.no' }} {% if params.f[::2] %}y{% endif %}"),
            ["params.f", "steps.x.stdout"]
        );
        assert_eq!(
            paths("{% raw %}{{ params.no[:1] }}{% endraw %}"),
            Vec::<String>::new()
        );
    }
}
