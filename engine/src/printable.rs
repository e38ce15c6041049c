//! Text from outside flow — params, command output, files — made safe for the human views:
//! a control character (an escape sequence, a bell, a carriage return that overwrites the
//! line) is shown, never sent to the terminal or a CI log; and a line break inside a value
//! never starts a line of its own that a log reader could take for a command (GitHub Actions
//! runs `::error …` or `::add-mask::` found at the start of a line, after any spaces).
//! JSON output and the journal need none of this: JSON escapes them itself.

use std::borrow::Cow;

/// Starts every line after the first of a multi-line message in the human views: not a
/// space, so that no line of the message can begin a workflow command.
pub const CONTINUATION: &str = "    │ ";

/// What a character looks like once printed, when it is a control character: C0 controls and
/// DEL as their Unicode pictures (`␛` `␇` `␍` `␊` `␀`, one character each, so columns stay
/// aligned), C1 controls (U+0080–U+009F: some terminals read U+009B as `ESC [`) as `�`.
fn picture(c: char) -> Option<char> {
    match c {
        '\u{7f}' => Some('\u{2421}'),
        c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32),
        '\u{80}'..='\u{9f}' => Some('\u{fffd}'),
        _ => None,
    }
}

fn shown(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| !keep(c) && picture(c).is_some()) {
        return Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| match picture(c) {
            Some(p) if !keep(c) => p,
            _ => c,
        })
        .collect::<String>()
        .into()
}

/// One line: every control character shown as a picture — line breaks too; tabs stay.
pub fn line(text: &str) -> Cow<'_, str> {
    shown(text, |c| c == '\t')
}

/// Text whose line breaks are meant (a table, a question): other control characters shown.
pub fn block(text: &str) -> Cow<'_, str> {
    shown(text, |c| c == '\t' || c == '\n')
}

/// A message that may span lines (an error with the last lines of stderr): control
/// characters shown, and each line after the first starting with `continuation`.
pub fn lines<'a>(text: &'a str, continuation: &str) -> Cow<'a, str> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if !text.contains('\n') {
        return line(text);
    }
    text.split('\n')
        .map(|l| line(l.strip_suffix('\r').unwrap_or(l)))
        .collect::<Vec<_>>()
        .join(&format!("\n{continuation}"))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(line("a\u{1b}[2Jb\u{7}c\rd"), "a␛[2Jb␇c␍d");
        assert_eq!(line("a\nb\tc"), "a␊b\tc");
        assert_eq!(line("\u{9b}31m"), "\u{fffd}31m");
        assert!(matches!(line("plain text é"), Cow::Borrowed(_)));
        assert_eq!(block("a\nb\u{1b}"), "a\nb␛");
    }

    #[test]
    fn no_line_of_a_message_starts_a_workflow_command() {
        let shown = lines("failed: x\n::error::pwned\r\n  ::add-mask::y", "  │ ");
        for l in shown.lines() {
            assert!(!l.trim_start().starts_with("::"), "{shown}");
        }
        assert_eq!(lines("one line\n", "  │ "), "one line");
    }
}
