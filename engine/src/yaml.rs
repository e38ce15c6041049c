//! YAML text to a tree of nodes that each remember where they were written.
//!
//! saphyr keeps a span on every node and rejects duplicate keys, which serde_yaml does not;
//! flow converts its tree once into `Node`, the only YAML type the rest of the engine sees.

use crate::diagnostic::Diagnostic;
use crate::source::{SourceFile, Span};
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Node {
    pub span: Span,
    pub value: NodeValue,
}

#[derive(Debug, Clone)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key: always a string in a playbook.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub span: Span,
}

impl Node {
    /// A word for the node's type, as error messages name it.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::List(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    /// Whether the scalar was written in quotes: its text starts one column later.
    pub fn is_quoted(&self) -> bool {
        let line = self.span.file.line_text(self.span.line).unwrap_or("");
        matches!(line.chars().nth(self.span.col - 1), Some('"' | '\''))
    }

    /// The span of the characters `offset..offset+len` of a single-line string scalar, so a
    /// caret can point into a template; falls back to the whole node for multi-line strings.
    pub fn inner_span(&self, offset: usize, len: usize) -> Span {
        let Some(text) = self.as_str() else {
            return self.span.clone();
        };
        let line = self.span.file.line_text(self.span.line).unwrap_or("");
        let quote = usize::from(self.is_quoted());
        let start = self.span.col - 1 + quote;
        let on_one_line = !text.contains('\n')
            && line
                .chars()
                .skip(start)
                .collect::<String>()
                .starts_with(text);
        if on_one_line {
            return self.span.shifted(quote + offset, len);
        }
        // Block scalars, multi-line and escaped strings: find the text in the node's lines,
        // starting where the line breaks before it say it should be.
        let needle: String = text.chars().skip(offset).take(len).collect();
        let block = matches!(line.chars().nth(self.span.col - 1), Some('|' | '>'));
        let breaks_before = text.chars().take(offset).filter(|c| *c == '\n').count();
        let expected = self.span.line + usize::from(block) + breaks_before;
        let last_line = self.span.line + text.len() + 1;
        let candidates = (expected..=last_line).chain(self.span.line..expected);
        for number in candidates {
            let Some(source) = self.span.file.line_text(number) else {
                continue;
            };
            let from = if number == self.span.line {
                self.span.col - 1
            } else {
                0
            };
            let skipped: String = source.chars().skip(from).collect();
            if !needle.trim().is_empty()
                && let Some(at) = skipped.find(needle.as_str())
            {
                let col = from + skipped[..at].chars().count() + 1;
                return Span::new(&self.span.file, number, col, len);
            }
        }
        self.span.clone()
    }

    /// The node as plain JSON data, for defaults, params files and literals.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::List(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses one YAML document. An empty file is an empty mapping's worth of nothing: `Null`.
pub fn parse(file: &Arc<SourceFile>) -> Result<Node, Diagnostic> {
    let docs = MarkedYaml::load_from_str(&file.text).map_err(|error| {
        let mark = error.marker();
        let span = Span::new(file, mark.line(), mark.col() + 1, 1);
        if error.info() == "duplicated key in mapping" {
            let line = file.line_text(mark.line()).unwrap_or("");
            let key: String = line
                .chars()
                .skip(mark.col())
                .take_while(|c| *c != ':')
                .collect();
            let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
            let span = Span::new(file, mark.line(), mark.col() + 1, key.chars().count());
            return Diagnostic::error(
                Some(&span),
                format!("duplicate key `{key}`: each key may appear once in a mapping"),
            )
            .with_help("YAML would silently keep only the last one; remove or rename one of them");
        }
        let (message, help) = match error.info() {
            "simple key expect ':'" => (
                "expected `:` after a key",
                "is the line above missing a `:`, or indented wrongly?",
            ),
            "invalid indentation" => (
                "invalid indentation",
                "check this line's indentation, and for an unclosed `[`, `{` or quote above it",
            ),
            other => (other, ""),
        };
        let d = Diagnostic::error(Some(&span), format!("invalid YAML: {message}"));
        if help.is_empty() {
            d
        } else {
            d.with_help(help)
        }
    })?;
    match docs.len() {
        0 => Ok(Node {
            span: Span::new(file, 1, 1, 1),
            value: NodeValue::Null,
        }),
        1 => convert(file, docs.into_iter().next().expect("one document")),
        _ => {
            let span = span_of(file, &docs[1]);
            Err(Diagnostic::error(
                Some(&span),
                "a playbook is one YAML document; found another one after the first ended",
            ))
        }
    }
}

fn span_of(file: &Arc<SourceFile>, node: &MarkedYaml<'_>) -> Span {
    let start = node.span.start;
    let end = node.span.end;
    let len = if end.line() == start.line() {
        end.col().saturating_sub(start.col())
    } else {
        1
    };
    Span::new(file, start.line(), start.col() + 1, len)
}

fn convert(file: &Arc<SourceFile>, node: MarkedYaml<'_>) -> Result<Node, Diagnostic> {
    let span = span_of(file, &node);
    let value = match node.data {
        YamlData::Value(scalar) => match scalar {
            Scalar::Null => NodeValue::Null,
            Scalar::Boolean(b) => NodeValue::Bool(b),
            Scalar::Integer(i) => NodeValue::Int(i),
            Scalar::FloatingPoint(f) => NodeValue::Float(f.into_inner()),
            Scalar::String(s) => NodeValue::Str(s.into_owned()),
        },
        YamlData::Representation(text, ..) => NodeValue::Str(text.into_owned()),
        YamlData::Sequence(items) => NodeValue::List(
            items
                .into_iter()
                .map(|item| convert(file, item))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Mapping(entries) => {
            let mut out = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let key_span = span_of(file, &key);
                let name = match key.data {
                    YamlData::Value(Scalar::String(s)) => s.into_owned(),
                    YamlData::Value(Scalar::Integer(i)) => i.to_string(),
                    YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
                    _ => {
                        return Err(Diagnostic::error(
                            Some(&key_span),
                            "mapping keys must be plain strings",
                        ));
                    }
                };
                let key_span = Span::new(file, key_span.line, key_span.col, name.chars().count());
                if name == "<<" {
                    return Err(Diagnostic::error(
                        Some(&key_span),
                        "YAML merge keys (`<<`) are not supported",
                    )
                    .with_help("use `defaults:` to share values between steps"));
                }
                out.push((
                    Key {
                        name,
                        span: key_span,
                    },
                    convert(file, value)?,
                ));
            }
            NodeValue::Map(out)
        }
        YamlData::Tagged(_, inner) => return convert(file, *inner),
        YamlData::Alias(_) => {
            return Err(Diagnostic::error(
                Some(&span),
                "YAML aliases (`*name`) are not supported in playbooks; use `defaults` to share values",
            ));
        }
        YamlData::BadValue => {
            return Err(Diagnostic::error(
                Some(&span),
                "this value cannot be read: YAML tags like `!!binary` are not supported in playbooks",
            ));
        }
    };
    Ok(Node { span, value })
}
