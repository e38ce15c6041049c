//! A loaded text file and positions inside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file flow has read: a playbook or a params file. Shared by every span that points into it.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of the start of each line, so a line is found without scanning the file.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Arc::new(Self {
            path: path.into(),
            text,
            line_starts,
        })
    }

    /// The text of line `line` (1-based), without its line break.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        if start > self.text.len() {
            return None;
        }
        let text = &self.text[start..end.max(start)];
        Some(text.strip_suffix('\r').unwrap_or(text))
    }

    pub fn display_path(&self) -> String {
        display_path(&self.path)
    }
}

/// Paths are shown relative to the working directory when they are under it.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// A position in a source file: 1-based line and column (in characters), and a length in
/// characters used to draw the caret.
#[derive(Debug, Clone)]
pub struct Span {
    pub file: Arc<SourceFile>,
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Span {
    pub fn new(file: &Arc<SourceFile>, line: usize, col: usize, len: usize) -> Self {
        Self {
            file: Arc::clone(file),
            line: line.max(1),
            col: col.max(1),
            len: len.max(1),
        }
    }

    /// The same span moved `chars` characters to the right on its line, `len` long.
    pub fn shifted(&self, chars: usize, len: usize) -> Self {
        Self {
            file: Arc::clone(&self.file),
            line: self.line,
            col: self.col + chars,
            len: len.max(1),
        }
    }

    /// `path:line:col`, as editors and CI annotations understand it.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file.display_path(), self.line, self.col)
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}
