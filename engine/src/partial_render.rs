//! A text that reads a value known only after apply is rendered around it in a plan:
//! `kubectl cp redis-0:(known after apply: steps.bgsave.rdb_path) ./backups/…` keeps what is
//! known. Each `{{ … }}` whose expression reads an unknown becomes a placeholder, the rest
//! renders as usual; when what is left still reads an unknown (an `{% if %}` or a loop over
//! it), the text cannot be rendered in part and stays unknown whole.

use crate::template::{Reference, Source};

/// Placeholder brackets: private-use characters no template writes or filter changes.
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// What a text with unknowns shows in a plan, and the first unknown it waits for.
pub struct Partial {
    pub shown: String,
    pub waits_for: String,
}

/// Renders `source` around its unknowns, or `None` when it cannot be done in part.
pub fn render_around<E>(
    source: &Source,
    is_unknown: &dyn Fn(&Reference) -> bool,
    render: impl FnOnce(&str) -> Result<String, E>,
) -> Option<Result<Partial, E>> {
    if source.text.contains("{% raw") || source.text.contains(OPEN) {
        return None;
    }
    let mut rewritten = String::with_capacity(source.text.len());
    let mut holes: Vec<String> = Vec::new();
    let mut waits_for = None;
    let mut rest = source.text.as_str();
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let close = closing(&rest[open + 2..])? + open + 2;
        let block = &rest[open + 2..close];
        let inner = block.trim_matches(|c: char| c == '-' || c.is_whitespace());
        let expression = crate::template::expression_source(inner, &source.span)?;
        let before = if trim_next {
            rest[..open].trim_start()
        } else {
            &rest[..open]
        };
        match expression.references.iter().find(|r| is_unknown(r)) {
            Some(reference) => {
                waits_for.get_or_insert_with(|| reference.dotted());
                // `{{-` and `-}}` trim the whitespace around the value, as MiniJinja would.
                rewritten.push_str(if block.starts_with('-') {
                    before.trim_end()
                } else {
                    before
                });
                rewritten.push(OPEN);
                rewritten.push_str(&holes.len().to_string());
                rewritten.push(CLOSE);
                holes.push(if reference.root() == "params" {
                    crate::evaluate::GIVEN_AT_APPLY.to_string()
                } else {
                    shown_expression(inner)
                });
                trim_next = block.ends_with('-');
            }
            None => {
                rewritten.push_str(before);
                rewritten.push_str(&rest[open..close + 2]);
                trim_next = false;
            }
        }
        rest = &rest[close + 2..];
    }
    rewritten.push_str(if trim_next { rest.trim_start() } else { rest });
    let waits_for = waits_for?;
    let left = crate::template::text_references(&rewritten, &source.span)?;
    if left.iter().any(is_unknown) {
        return None;
    }
    match render(&rewritten) {
        // A value that itself holds a placeholder character would be mistaken for a hole
        // (and a secret holding one cut apart, unmasked): then the text stays unknown whole.
        Ok(text) if placeholders_intact(&text, holes.len()) => Some(Ok(Partial {
            shown: fill(&text, &holes),
            waits_for,
        })),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Whether a rendered text holds each placeholder once and no other placeholder character.
fn placeholders_intact(text: &str, holes: usize) -> bool {
    text.matches(OPEN).count() == holes
        && text.matches(CLOSE).count() == holes
        && (0..holes).all(|n| text.matches(&format!("{OPEN}{n}{CLOSE}")).count() == 1)
}

/// The offset of the `}}` that closes an expression: outside string literals and brackets
/// (`{{ {'a': {'b': 1}} }}` closes at the last `}}`).
pub fn closing(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    crate::code_scan::code_positions(text)
        .find(|&(i, depth)| depth == 0 && bytes[i] == b'}' && bytes.get(i + 1) == Some(&b'}'))
        .map(|(i, _)| i)
}

/// How a placeholder reads: the expression, without a shell `| quote` that changes nothing
/// about what it waits for.
pub fn shown_expression(inner: &str) -> String {
    let inner = inner.trim();
    let bare = inner
        .strip_suffix("quote")
        .map(str::trim_end)
        .and_then(|s| s.strip_suffix('|'))
        .map(str::trim_end)
        .unwrap_or(inner);
    format!("(known after apply: {bare})")
}

fn fill(text: &str, holes: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(OPEN) {
        out.push_str(&rest[..open]);
        let after = &rest[open + OPEN.len_utf8()..];
        let Some(close) = after.find(CLOSE) else {
            rest = after;
            continue;
        };
        let hole = after[..close]
            .parse::<usize>()
            .ok()
            .and_then(|n| holes.get(n));
        out.push_str(hole.map_or("(known after apply)", String::as_str));
        rest = &after[close + CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SourceFile, Span};

    fn source(text: &str) -> Source {
        let span = Span::new(&SourceFile::new("t.yaml", text), 1, 1, 1);
        Source {
            text: text.into(),
            references: crate::template::text_references(text, &span).unwrap(),
            span,
        }
    }

    fn around(text: &str) -> Option<String> {
        let unknown = |r: &Reference| r.step() == Some("bgsave");
        let render =
            |t: &str| -> Result<String, ()> { Ok(t.replace("{{ params.pod }}", "redis-0")) };
        render_around(&source(text), &unknown, render).map(|r| r.unwrap().shown)
    }

    #[test]
    fn only_the_unknown_part_is_marked() {
        assert_eq!(
            around("kubectl cp {{ params.pod }}:{{ steps.bgsave.rdb_path | quote }} ./b")
                .as_deref(),
            Some("kubectl cp redis-0:(known after apply: steps.bgsave.rdb_path) ./b")
        );
        assert_eq!(
            around("n={{ steps.bgsave.keys | length }}").as_deref(),
            Some("n=(known after apply: steps.bgsave.keys | length)")
        );
    }

    #[test]
    fn brackets_and_whitespace_control_are_honoured() {
        assert_eq!(
            around("p-{{ {'a': {'b': steps.bgsave.x}} }}-q").as_deref(),
            Some("p-(known after apply: {'a': {'b': steps.bgsave.x}})-q")
        );
        assert_eq!(
            around("A  {{- steps.bgsave.x -}}  B").as_deref(),
            Some("A(known after apply: steps.bgsave.x)B")
        );
    }

    #[test]
    fn a_value_holding_a_placeholder_character_keeps_the_text_unknown() {
        let unknown = |r: &Reference| r.step() == Some("bgsave");
        let render = |_: &str| -> Result<String, ()> { Ok("x\u{E000}0\u{E001}\u{E000}".into()) };
        assert!(
            render_around(
                &source("{{ params.a }}{{ steps.bgsave.x }}"),
                &unknown,
                render
            )
            .is_none()
        );
    }

    #[test]
    fn an_unknown_that_steers_the_template_keeps_it_unknown() {
        assert_eq!(around("{% if steps.bgsave.ok %}a{% endif %}"), None);
        assert_eq!(around("{{ params.pod }}"), None);
    }
}
