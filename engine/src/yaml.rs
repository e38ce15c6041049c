//! YAML text to a tree of nodes that each remember where they were written.
//!
//! saphyr keeps a span on every node and rejects duplicate keys, which serde_yaml does not;
//! flow converts its tree once into `Node`, the only YAML type the rest of the engine sees.

use crate::diagnostic::Diagnostic;
use crate::source::{SourceFile, Span};
use saphyr::{MarkedYaml, Scalar, ScanError, YamlData, YamlLoader};
use saphyr_parser::{Event, Parser, Span as ParserSpan, SpannedEventReceiver};
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

/// How deeply lists and mappings may nest. Deeper input is refused with its location: the
/// recursive stages after parsing (conversion, schema checks, templates) stay far from the
/// end of the stack, and no playbook needs more.
pub const MAX_DEPTH: usize = 256;
/// How many nodes aliases (`*name`) may add to a document, all aliases together.
pub const MAX_ALIAS_NODES: usize = 100_000;
/// How many bytes of scalar text aliases may add to a document, all aliases together: a
/// small anchor aliased a few times is fine, a 2 MB anchor aliased 5 000 times is a bomb.
pub const MAX_ALIAS_BYTES: usize = 4 << 20;

/// Parses one YAML document. An empty file is an empty mapping's worth of nothing: `Null`.
pub fn parse(file: &Arc<SourceFile>) -> Result<Node, Diagnostic> {
    if let Some(at) = file.text.find('\0') {
        // saphyr takes a NUL for the end of the input and reports "unexpected end of stream".
        let line = file.text[..at].matches('\n').count() + 1;
        let line_start = file.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let col = file.text[line_start..at].chars().count() + 1;
        let span = Span::new(file, line, col, 1);
        return Err(Diagnostic::error(
            Some(&span),
            "the file contains a NUL byte (\\0), which YAML text cannot contain",
        )
        .with_help("is this a binary file, or UTF-16 text? save it as UTF-8 text"));
    }
    let docs = load(file)?;
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

/// saphyr's parser, driven event by event into saphyr's loader, with the limits checked on
/// each event before the loader sees it.
///
/// saphyr's own entry point (`load_from_str` → `Parser::load`) recurses once per nesting
/// level (`load_node` → `load_sequence` → `load_node` …) and overflowed the stack at about
/// 1 400 levels of `- - - …`; its event iterator is a state machine with its stacks on the
/// heap (tested to 100 000 levels on a 64 KiB stack), so iterating it here and refusing the
/// first node deeper than `MAX_DEPTH` keeps every later, recursive stage shallow: the
/// loader's tree, its alias size count, its drop, and `convert` below. The loader clones an
/// anchor's subtree for each alias and only bounds the node count, so the bytes an alias
/// adds are counted here too, before the clone is made.
fn load<'input>(file: &'input Arc<SourceFile>) -> Result<Vec<MarkedYaml<'input>>, Diagnostic> {
    let mut loader: YamlLoader<'input, MarkedYaml<'input>> = YamlLoader::default();
    let mut limits = Limits::default();
    for event in Parser::new_from_str(&file.text) {
        let (event, span) = event.map_err(|error| scan_error(file, &error))?;
        limits.check(file, &event, &span)?;
        loader.on_event(event, span);
        if let Some(error) = loader.error() {
            return Err(scan_error(file, error));
        }
    }
    Ok(loader.into_documents())
}

/// What a node amounts to once its aliases are expanded.
#[derive(Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
    /// Levels of lists and mappings in it (0 for a scalar).
    height: usize,
}

impl Size {
    fn add_child(&mut self, child: Size) {
        self.nodes = self.nodes.saturating_add(child.nodes);
        self.bytes = self.bytes.saturating_add(child.bytes);
        self.height = self.height.max(child.height + 1);
    }
}

#[derive(Default)]
struct Limits {
    /// The lists and mappings being read, outermost first, with their anchor id (0: none).
    open: Vec<(usize, Size)>,
    anchors: std::collections::HashMap<usize, Size>,
    alias_nodes: usize,
    alias_bytes: usize,
}

impl Limits {
    fn check(
        &mut self,
        file: &Arc<SourceFile>,
        event: &Event<'_>,
        span: &ParserSpan,
    ) -> Result<(), Diagnostic> {
        let here = || Span::new(file, span.start.line(), span.start.col() + 1, 1);
        let too_deep = || {
            Diagnostic::error(
                Some(&here()),
                format!("lists and mappings are nested more than {MAX_DEPTH} levels deep here"),
            )
            .with_help(format!("flow reads at most {MAX_DEPTH} levels of nesting"))
        };
        match event {
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.open.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                let size = Size {
                    nodes: 1,
                    bytes: 0,
                    height: 0,
                };
                self.open.push((*anchor, size));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, size)) = self.open.pop() {
                    self.finish(anchor, size);
                }
            }
            Event::Scalar(text, _, anchor, _) => {
                let size = Size {
                    nodes: 1,
                    bytes: text.len(),
                    height: 0,
                };
                self.finish(*anchor, size);
            }
            Event::Alias(anchor) => {
                // An unknown anchor is the parser's error, reported before this event, so
                // an anchor not known here is one still being read: the alias is inside it.
                let Some(size) = self.anchors.get(anchor).copied() else {
                    return Err(Diagnostic::error(
                        Some(&here()),
                        "this alias (`*name`) is inside the value its anchor names: it would never end",
                    ));
                };
                if self.open.len() + size.height > MAX_DEPTH {
                    return Err(too_deep());
                }
                self.alias_nodes = self.alias_nodes.saturating_add(size.nodes);
                self.alias_bytes = self.alias_bytes.saturating_add(size.bytes);
                let what = if self.alias_nodes > MAX_ALIAS_NODES {
                    format!("{MAX_ALIAS_NODES} nodes")
                } else if self.alias_bytes > MAX_ALIAS_BYTES {
                    format!("{} MiB of text", MAX_ALIAS_BYTES >> 20)
                } else {
                    self.finish(0, size);
                    return Ok(());
                };
                return Err(Diagnostic::error(
                    Some(&here()),
                    format!("YAML aliases (`*name`) expand to more than {what} here; refusing what looks like an alias bomb"),
                )
                .with_help("write the value out, or share it with `defaults:`"));
            }
            _ => {}
        }
        Ok(())
    }

    /// A node is complete: remember its size under its anchor, and add it to its parent.
    fn finish(&mut self, anchor: usize, size: Size) {
        if anchor > 0 {
            self.anchors.insert(anchor, size);
        }
        if let Some((_, parent)) = self.open.last_mut() {
            parent.add_child(size);
        }
    }
}

fn scan_error(file: &Arc<SourceFile>, error: &ScanError) -> Diagnostic {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Node, Diagnostic> {
        parse(&SourceFile::new("t.yaml", text))
    }

    /// The error's message and `line:col`.
    fn error(text: &str) -> (String, String) {
        let d = parse_text(text).expect_err("an error");
        let span = d.span.expect("a location");
        (d.message, format!("{}:{}", span.line, span.col))
    }

    fn depth(node: &Node) -> usize {
        match &node.value {
            NodeValue::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            NodeValue::Map(entries) => 1 + entries.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn nesting_up_to_the_limit_is_read_and_one_level_more_is_refused_where_it_starts() {
        let node = parse_text(&format!("{}x\n", "- ".repeat(MAX_DEPTH))).unwrap();
        assert_eq!(depth(&node), MAX_DEPTH);
        let (message, at) = error(&format!("{}x\n", "- ".repeat(MAX_DEPTH + 1)));
        assert!(message.contains("nested more than 256 levels"), "{message}");
        assert_eq!(at, format!("1:{}", 2 * MAX_DEPTH + 1));
    }

    #[test]
    fn deep_block_sequences_are_refused_without_overflowing_the_stack() {
        let (message, at) = error(&format!("a:\n  {}x\n", "- ".repeat(100_000)));
        assert!(message.contains("nested more than 256 levels"), "{message}");
        assert_eq!(at, format!("2:{}", 3 + 2 * (MAX_DEPTH - 1)));
    }

    #[test]
    fn deep_block_mappings_are_refused_without_overflowing_the_stack() {
        let text: String = (0..2_000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        let (message, at) = error(&format!("{text}{}v\n", " ".repeat(2_000)));
        assert!(message.contains("nested more than 256 levels"), "{message}");
        assert_eq!(at, format!("{}:{}", MAX_DEPTH + 1, MAX_DEPTH + 1));
    }

    #[test]
    fn an_alias_that_would_nest_too_deeply_is_refused_at_the_alias() {
        // 200 levels under `a`, aliased 60 levels under `b`: 1 + 60 + 200 levels.
        let anchor = format!("a: &deep\n  {}x\n", "- ".repeat(200));
        let alias = format!("b:\n  {}*deep\n", "- ".repeat(60));
        let (message, at) = error(&format!("{anchor}{alias}"));
        assert!(message.contains("nested more than 256 levels"), "{message}");
        assert_eq!(at, format!("4:{}", 3 + 2 * 60));
        // The same alias 50 levels down stays within the limit.
        let alias = format!("b:\n  {}*deep\n", "- ".repeat(50));
        assert!(parse_text(&format!("{anchor}{alias}")).is_ok());
    }

    #[test]
    fn aliases_may_not_amplify_a_big_scalar_past_the_byte_budget() {
        let big = "A".repeat(1 << 20);
        let aliases: String = (0..100).map(|_| "  - *big\n").collect();
        let (message, at) = error(&format!("a: &big {big}\nb:\n{aliases}"));
        assert!(message.contains("more than 4 MiB of text"), "{message}");
        // The fifth alias makes 5 MiB.
        assert_eq!(at, "7:5");
    }

    #[test]
    fn aliases_within_the_budgets_are_expanded() {
        let aliases: String = (0..1_000).map(|_| "  - *small\n").collect();
        let node = parse_text(&format!("a: &small {{ x: [1, 2] }}\nb:\n{aliases}")).unwrap();
        let b = node.get("b").unwrap();
        assert!(matches!(&b.value, NodeValue::List(items) if items.len() == 1_000));
    }

    #[test]
    fn an_alias_inside_its_own_anchor_is_refused_at_the_alias() {
        let (message, at) = error("a: &x { b: [1, *x] }\n");
        assert!(
            message.contains("inside the value its anchor names"),
            "{message}"
        );
        assert_eq!(at, "1:16");
    }

    #[test]
    fn a_nul_byte_is_named_with_its_location() {
        let (message, at) = error("flow: 1\nname: \"a\0b\"\n");
        assert!(message.contains("NUL byte"), "{message}");
        assert_eq!(at, "2:9");
    }
}
