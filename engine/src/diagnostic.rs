//! Errors and warnings about a playbook, rendered as `file:line:col`, the source line and a
//! caret, the way compilers print them.

use crate::printable;
use crate::source::Span;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a playbook or its params.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
    /// Whether to print the source line under the location (not when it holds a secret).
    pub snippet: bool,
}

impl Diagnostic {
    pub fn error(span: Option<&Span>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            span: span.cloned(),
            help: None,
            snippet: true,
        }
    }

    pub fn warning(span: Option<&Span>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(span, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `error: message`, then ` --> file:line:col`, the line and a caret under the span.
    pub fn render(&self) -> String {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // A value quoted in a message (a param, a line of a file) may hold control characters
        // or line breaks: shown, never sent to the terminal or the CI log.
        let message = shorten(&self.message);
        let mut out = format!(
            "{label}: {}\n",
            printable::lines(&message, printable::CONTINUATION)
        );
        if let Some(span) = &self.span {
            let _ = writeln!(out, "  --> {}", span.location());
            if let Some(line) = span.file.line_text(span.line).filter(|_| self.snippet) {
                let (text, caret_col) = snippet_window(line, span.col - 1);
                let gutter = span.line.to_string();
                let pad = " ".repeat(gutter.len());
                let caret_pad: String = text
                    .chars()
                    .take(caret_col)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let avail = text.chars().count().saturating_sub(caret_col).max(1);
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{gutter} | {text}");
                let _ = writeln!(
                    out,
                    "{pad} | {caret_pad}{}",
                    "^".repeat(span.len.min(avail))
                );
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(
                out,
                "  = help: {}",
                printable::lines(help, printable::CONTINUATION)
            );
        }
        out
    }

    /// The diagnostic as a JSON event, for `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "event": "diagnostic",
            "severity": if self.is_error() { "error" } else { "warning" },
            "message": self.message,
            "file": self.span.as_ref().map(|s| s.file.display_path()),
            "line": self.span.as_ref().map(|s| s.line),
            "col": self.span.as_ref().map(|s| s.col),
            "help": self.help,
        })
    }

    /// A GitHub Actions workflow command that annotates the file in the pull request view.
    pub fn github_annotation(&self) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // The escapes of GitHub's workflow commands: data, and property values.
        // Line breaks are escaped (`%0A`), other control characters shown as pictures.
        let data = |text: &str| {
            printable::block(text)
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
        };
        let property = |text: &str| data(text).replace(':', "%3A").replace(',', "%2C");
        let message = data(&shorten(&self.message));
        match &self.span {
            Some(span) => format!(
                "::{kind} file={},line={},col={}::{message}",
                property(&span.file.display_path()),
                span.line,
                span.col
            ),
            None => format!("::{kind}::{message}"),
        }
    }
}

/// Messages longer than this (in characters) lose their middle when printed: they quote
/// what was written, and what was written can be a megabyte long.
pub const MAX_MESSAGE_CHARS: usize = 400;

fn shorten(message: &str) -> std::borrow::Cow<'_, str> {
    let total = message.chars().count();
    if total <= MAX_MESSAGE_CHARS {
        return message.into();
    }
    let tail = MAX_MESSAGE_CHARS / 4;
    let head: String = message.chars().take(MAX_MESSAGE_CHARS - tail).collect();
    let end: String = message.chars().skip(total - tail).collect();
    format!("{head}…{end}").into()
}

/// Source lines longer than this (in characters) are cut around the caret.
pub const MAX_SNIPPET_CHARS: usize = 200;

/// The part of a source line to show, and the caret's column (0-based, in characters) in
/// it: the whole line when it is short; otherwise `MAX_SNIPPET_CHARS` characters around the
/// caret, with `…` where the line was cut (a minified or generated file can have one line of
/// megabytes).
fn snippet_window(line: &str, caret: usize) -> (std::borrow::Cow<'_, str>, usize) {
    let total = line.chars().count();
    if total <= MAX_SNIPPET_CHARS {
        return (visible(line.into()), caret);
    }
    let from = caret
        .saturating_sub(MAX_SNIPPET_CHARS / 2)
        .min(total - MAX_SNIPPET_CHARS);
    let to = from + MAX_SNIPPET_CHARS;
    let byte = |chars: usize| {
        line.char_indices()
            .nth(chars)
            .map_or(line.len(), |(i, _)| i)
    };
    let (start, end) = (byte(from), byte(to));
    let mut text = String::with_capacity(end - start + 8);
    if from > 0 {
        text.push('…');
    }
    text.push_str(&line[start..end]);
    if to < total {
        text.push('…');
    }
    (visible(text.into()), caret - from + usize::from(from > 0))
}

/// Control characters (a NUL, an escape sequence) shown as their Unicode pictures (`␀`,
/// `␛`), one character each so the caret stays aligned, instead of reaching the terminal.
fn visible(text: std::borrow::Cow<'_, str>) -> std::borrow::Cow<'_, str> {
    match printable::line(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(shown) => shown.into(),
    }
}

/// A did-you-mean suggestion: the closest candidate by edit distance, when it is close.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    // No name flow knows is this long, and strsim's Jaro takes seconds on a megabyte.
    if word.len() > 256 {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// The set of problems found so far; stages keep going after an error so that the user sees
/// every problem at once.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn error(&mut self, span: Option<&Span>, message: impl Into<String>) {
        self.push(Diagnostic::error(span, message));
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    /// The source line and the caret line of a rendered diagnostic.
    fn snippet(line: &str, col: usize, len: usize) -> (String, String) {
        let file = SourceFile::new("f.yaml", format!("flow: 1\n{line}\n"));
        let span = Span::new(&file, 2, col, len);
        let out = Diagnostic::error(Some(&span), "bad").render();
        let lines: Vec<&str> = out.lines().collect();
        let strip = |l: &str| l.split_once(" | ").map(|(_, t)| t.to_string()).unwrap();
        (strip(lines[3]), strip(lines[4]))
    }

    /// The character under the first caret.
    fn under_caret(text: &str, carets: &str) -> char {
        let at = carets.chars().take_while(|c| *c != '^').count();
        text.chars().nth(at).unwrap()
    }

    #[test]
    fn a_long_source_line_is_cut_around_the_caret_which_stays_aligned() {
        let line = format!("{}X{}", "a".repeat(10_000), "b".repeat(10_000));
        let (text, carets) = snippet(&line, 10_001, 3);
        assert!(text.chars().count() <= MAX_SNIPPET_CHARS + 2, "{text}");
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        assert_eq!(under_caret(&text, &carets), 'X');
        assert_eq!(carets.trim(), "^^^");
    }

    #[test]
    fn a_long_line_is_cut_at_one_end_only_when_the_caret_is_near_the_other() {
        let line = format!("key: X{}", "b".repeat(5_000));
        let (text, carets) = snippet(&line, 6, 1);
        assert!(!text.starts_with('…') && text.ends_with('…'), "{text}");
        assert_eq!(under_caret(&text, &carets), 'X');

        let line = format!("{}é: X", "é".repeat(5_000));
        let (text, carets) = snippet(&line, 5_004, 1);
        assert!(text.starts_with('…') && !text.ends_with('…'), "{text}");
        assert_eq!(under_caret(&text, &carets), 'X');
    }

    #[test]
    fn a_long_message_loses_its_middle() {
        let file = SourceFile::new("f.yaml", "flow: 1\n");
        let span = Span::new(&file, 1, 1, 1);
        let message = format!("unknown step type `{}`", "a".repeat(1_000_000));
        let out = Diagnostic::error(Some(&span), message).render();
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with("error: unknown step type `aaa"),
            "{first}"
        );
        assert!(first.ends_with("aaa`") && first.contains('…'), "{first}");
        assert!(first.chars().count() <= MAX_MESSAGE_CHARS + 10, "{first}");
    }

    #[test]
    fn control_characters_in_a_source_line_are_shown_as_pictures() {
        let (text, carets) = snippet("    with: { message: \"a\0b\u{1b}[2J\" }", 24, 1);
        assert_eq!(text, "    with: { message: \"a␀b␛[2J\" }");
        assert_eq!(under_caret(&text, &carets), '␀');
    }

    #[test]
    fn a_megabyte_word_gets_no_did_you_mean_and_takes_no_time() {
        let started = std::time::Instant::now();
        let word = format!("log{}", "a".repeat(1_000_000));
        assert_eq!(did_you_mean(&word, ["log", "exec", "envfile.set"]), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(
            did_you_mean("exce", ["log", "exec"]).as_deref(),
            Some("did you mean `exec`?")
        );
    }

    #[test]
    fn a_short_source_line_is_shown_whole() {
        let (text, carets) = snippet("  type: lgo", 9, 3);
        assert_eq!(text, "  type: lgo");
        assert_eq!(carets, "        ^^^");
    }
}
