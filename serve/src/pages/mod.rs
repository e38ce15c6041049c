//! The HTML pages, one per file: the runs, one run (and its live part), one step's output,
//! and the page for what is not there.

pub mod not_found;
pub mod run;
pub mod runs;
pub mod step;

use crate::html::escape;

/// A JSON value pretty-printed for a `<pre>`, cut after `limit` characters.
pub fn json_block(value: &serde_json::Value, limit: usize) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let total = text.chars().count();
    if total <= limit {
        return escape(&text);
    }
    let cut: String = text.chars().take(limit).collect();
    format!(
        "{}\n<span class=\"muted\">… {} more characters</span>",
        escape(&cut),
        total - limit
    )
}
