//! HTML building blocks: escaping (everything shown comes from the journal, and a step's
//! output or name may hold `<script>`), the page frame, status marks.

/// Text as HTML shows it literally, in element content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (a terminal's colour codes) as pictures, like the terminal pages.
            c if c.is_control() && c != '\n' && c != '\t' => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'))
            }
            c => out.push(c),
        }
    }
    out
}

/// A path segment for a link: run and step ids are plain, but a step id is the journal's
/// text, so anything else is percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/live.js");

/// A whole page: `body` is HTML already escaped; `live` adds the script that follows a run.
pub fn page(title: &str, body: &str, live: bool) -> String {
    let script = if live {
        format!("<script>{SCRIPT}</script>")
    } else {
        String::new()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<title>{} · flow</title><style>{STYLE}</style></head>\
<body><header class=\"top\"><a class=\"brand\" href=\"/\">flow</a><span class=\"muted\">runs</span></header>\
<main>{body}</main>{script}</body></html>\n",
        escape(title)
    )
}

/// The mark the terminal shows for a status: ✔ ✘ ⊘, a spinner glyph while running.
pub fn mark(status: &str) -> &'static str {
    match status {
        "succeeded" => "✔",
        "failed" | "declined" | "interrupted" => "✘",
        "skipped" => "⊘",
        "running" => "⠋",
        "needs_approval" => "?",
        // A step is still applied that should have been reversed: louder than a failure.
        "rollback_incomplete" => "⚠",
        "unfinished" => "!",
        _ => "○",
    }
}

/// A status as a coloured badge: mark and word.
pub fn badge(status: &str, text: &str) -> String {
    format!(
        "<span class=\"badge st-{}\">{} {}</span>",
        escape(status),
        mark(status),
        escape(text)
    )
}

/// `2026-12-02T00:01:16.123Z` as `2026-12-02 00:01:16`, in a `<time>` the script can localise.
pub fn time(at: &str) -> String {
    let short = at
        .get(..19)
        .map(|t| t.replace('T', " "))
        .unwrap_or_else(|| at.to_string());
    format!(
        "<time datetime=\"{}\">{} UTC</time>",
        escape(at),
        escape(&short)
    )
}
