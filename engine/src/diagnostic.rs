//! Errors and warnings about a playbook, rendered as `file:line:col`, the source line and a
//! caret, the way compilers print them.

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
        let mut out = format!("{label}: {}\n", self.message);
        if let Some(span) = &self.span {
            let _ = writeln!(out, "  --> {}", span.location());
            if let Some(text) = span.file.line_text(span.line).filter(|_| self.snippet) {
                let gutter = span.line.to_string();
                let pad = " ".repeat(gutter.len());
                let caret_pad: String = text
                    .chars()
                    .take(span.col - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let avail = text.chars().count().saturating_sub(span.col - 1).max(1);
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
            let _ = writeln!(out, "  = help: {help}");
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
        let data = |text: &str| {
            text.replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A")
        };
        let property = |text: &str| data(text).replace(':', "%3A").replace(',', "%2C");
        let message = data(&self.message);
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

/// A did-you-mean suggestion: the closest candidate by edit distance, when it is close.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
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
