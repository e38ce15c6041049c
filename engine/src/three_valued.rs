//! Conditions in a plan are three-valued: a `when` that reads a value known only after apply
//! may still be decided — `false and unknown` is false, `true or unknown` is true — so the
//! plan shows the step skipped (or run) instead of "only if". The expression is split at its
//! top-level `or`, `and` and `not` (Jinja's precedence: `or` < `and` < `not` < the rest);
//! each operand is evaluated on its own, unknown when it reads an unknown.

use crate::code_scan::code_positions;

/// A condition's boolean skeleton; the leaves are expressions MiniJinja evaluates.
#[derive(Debug, PartialEq)]
pub enum Bool<'a> {
    Leaf(&'a str),
    Not(Box<Bool<'a>>),
    And(Vec<Bool<'a>>),
    Or(Vec<Bool<'a>>),
}

pub fn parse(text: &str) -> Bool<'_> {
    let text = text.trim();
    // `a if c else b` binds loosest of all: splitting inside it would change its meaning.
    if words_at_top(text).any(|(_, w)| w == "if") {
        return Bool::Leaf(text);
    }
    let parts = split_at_word(text, "or");
    if parts.len() > 1 {
        return Bool::Or(parts.into_iter().map(parse_and).collect());
    }
    parse_and(text)
}

fn parse_and(text: &str) -> Bool<'_> {
    let parts = split_at_word(text, "and");
    if parts.len() > 1 {
        return Bool::And(parts.into_iter().map(parse_not).collect());
    }
    parse_not(text)
}

fn parse_not(text: &str) -> Bool<'_> {
    let text = text.trim();
    if let Some((0, "not")) = words_at_top(text).next() {
        return Bool::Not(Box::new(parse_not(&text[3..])));
    }
    match enclosed(text) {
        Some(inner) => parse(inner),
        None => Bool::Leaf(text),
    }
}

/// Decides a condition from its leaves (`None`: not known before apply). Operands are taken
/// left to right as Jinja does; one that fails after an unknown is unknown too, since apply
/// may never evaluate it.
pub fn decide<E>(
    tree: &Bool,
    leaf: &mut dyn FnMut(&str) -> Result<Option<bool>, E>,
) -> Result<Option<bool>, E> {
    match tree {
        Bool::Leaf(text) => leaf(text),
        Bool::Not(inner) => Ok(decide(inner, leaf)?.map(|b| !b)),
        Bool::And(parts) => fold(parts, false, leaf),
        Bool::Or(parts) => fold(parts, true, leaf),
    }
}

/// `and` (deciding = false) or `or` (deciding = true): one deciding operand decides.
fn fold<E>(
    parts: &[Bool],
    deciding: bool,
    leaf: &mut dyn FnMut(&str) -> Result<Option<bool>, E>,
) -> Result<Option<bool>, E> {
    let mut unknown = false;
    for part in parts {
        match decide(part, leaf) {
            Ok(Some(b)) if b == deciding => return Ok(Some(deciding)),
            Ok(Some(_)) => {}
            Ok(None) => unknown = true,
            Err(_) if unknown => {}
            Err(e) => return Err(e),
        }
    }
    Ok(if unknown { None } else { Some(!deciding) })
}

/// Conditions that must all hold, as one readable expression: a condition with a top-level
/// `or` (or `if`) is bracketed, so `[A or B, C]` reads `(A or B) and C`.
pub fn all_of<'a>(conditions: impl IntoIterator<Item = &'a str>) -> String {
    let conditions: Vec<&str> = conditions.into_iter().map(str::trim).collect();
    if conditions.len() == 1 {
        return conditions[0].to_string();
    }
    conditions
        .iter()
        .map(|c| {
            if words_at_top(c).any(|(_, w)| w == "or" || w == "if") {
                format!("({c})")
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The text inside brackets that enclose the whole of it: `(a or b)` → `a or b`.
fn enclosed(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    // `(a) and (b)` starts and ends with brackets that are not one pair.
    let closes_early = code_positions(text)
        .any(|(i, depth)| depth <= 1 && i + 1 < text.len() && text.as_bytes()[i] == b')');
    (!closes_early).then_some(inner)
}

/// The parts of a text between its top-level occurrences of a keyword.
fn split_at_word<'a>(text: &'a str, word: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (at, w) in words_at_top(text) {
        if w == word {
            parts.push(&text[start..at]);
            start = at + w.len();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Words (identifiers and keywords) outside brackets and string literals, with offsets.
fn words_at_top(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    code_positions(text).filter_map(move |(i, depth)| {
        let starts =
            is_word(bytes[i]) && (i == 0 || !(is_word(bytes[i - 1]) || bytes[i - 1] == b'.'));
        if depth != 0 || !starts {
            return None;
        }
        let end = (i..bytes.len())
            .find(|&j| !is_word(bytes[j]))
            .unwrap_or(bytes.len());
        Some((i, &text[i..end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, unknown: &str) -> Option<bool> {
        let tree = parse(text);
        decide::<()>(&tree, &mut |leaf| {
            Ok(match leaf.trim() {
                l if l == unknown => None,
                "t" => Some(true),
                "f" => Some(false),
                other => panic!("leaf {other:?}"),
            })
        })
        .unwrap()
    }

    #[test]
    fn false_and_unknown_is_false_and_true_or_unknown_is_true() {
        assert_eq!(eval("f and u", "u"), Some(false));
        assert_eq!(eval("u and f", "u"), Some(false));
        assert_eq!(eval("t and u", "u"), None);
        assert_eq!(eval("u or t", "u"), Some(true));
        assert_eq!(eval("f or u", "u"), None);
        assert_eq!(eval("not u", "u"), None);
        assert_eq!(eval("not (f or u) or t", "u"), Some(true));
        assert_eq!(eval("(t or u) and not t", "u"), Some(false));
    }

    #[test]
    fn keywords_inside_strings_brackets_and_names_do_not_split() {
        assert_eq!(parse("x == 'a or b'"), Bool::Leaf("x == 'a or b'"));
        assert_eq!(parse("f(a and b)"), Bool::Leaf("f(a and b)"));
        assert_eq!(parse("steps.x.and_more"), Bool::Leaf("steps.x.and_more"));
        assert_eq!(
            parse("a if b and c else d"),
            Bool::Leaf("a if b and c else d")
        );
        assert_eq!(parse("a not in b"), Bool::Leaf("a not in b"));
        assert_eq!(
            parse("(a) and (b)"),
            Bool::And(vec![Bool::Leaf("a"), Bool::Leaf("b")])
        );
    }

    #[test]
    fn a_list_of_conditions_reads_as_written() {
        assert_eq!(all_of(["a or b", "c"]), "(a or b) and c");
        assert_eq!(all_of(["a or b"]), "a or b");
        assert_eq!(all_of(["x == 'a or b'", "c"]), "x == 'a or b' and c");
    }
}
