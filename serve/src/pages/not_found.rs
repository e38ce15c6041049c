//! The page for an unknown or ambiguous run, an unknown step, or any other path.

use crate::html::{escape, page};

pub fn render(message: &str) -> String {
    page(
        "Not found",
        &format!(
            "<h1>Not found</h1><p>{}</p><p><a href=\"/\">All runs</a></p>",
            escape(message)
        ),
        false,
    )
}
