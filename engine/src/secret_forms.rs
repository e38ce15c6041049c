//! The forms a secret takes once something prints it: as written; JSON-escaped; quoted for a
//! shell (POSIX `'it'\''s'`, Python's `shlex.quote` `'it'"'"'s'`, bash's `printf %q`
//! `it\'s` and `$'…'`); as Python's `repr` and `ascii` write it; with SQL's doubled quotes;
//! upper- and lower-cased; base64-encoded; URL-encoded; HTML-escaped the ways common
//! libraries do it; and, for a multi-line secret (a key), line by line. The masker hides each.

/// Every form of `secret`, sorted, without duplicates.
pub fn forms(secret: &str) -> Vec<String> {
    let mut written = vec![secret.to_string()];
    for (ascii, upper) in [(false, false), (true, false), (true, true)] {
        let escaped = json_escaped(secret, ascii, upper);
        if escaped.contains('/') {
            written.push(escaped.replace('/', "\\/"));
        }
        written.push(escaped);
    }
    // Python's `repr` (and `ascii`) inside single quotes, which escape `'`, or inside double
    // quotes, which it picks when the text holds a `'` and no `"`; and MySQL's `\'`.
    for ascii in [false, true] {
        for escape_apostrophe in [false, true] {
            written.push(python_escaped(secret, ascii, escape_apostrophe));
        }
    }
    // SQL (and single-quoted YAML, and CSV) double the quote.
    written.push(secret.replace('\'', "''"));
    written.push(secret.replace('"', "\"\""));
    let mut out = written.clone();
    // Each of those inside a single-quoted shell word, as a larger argument shows it
    // (`'--password=it'\''s'`), POSIX-style or as Python's `shlex.quote` writes it.
    for form in written.iter().filter(|form| form.contains('\'')) {
        out.push(form.replace('\'', r"'\''"));
        out.push(form.replace('\'', r#"'"'"'"#));
    }
    let quoted = crate::template_env::shell_quote(secret);
    if quoted != secret {
        out.push(quoted);
    }
    out.push(bash_printf_q(secret));
    if secret.len() >= 4 {
        // As `| upper` and `| lower` print it.
        out.push(secret.to_uppercase());
        out.push(secret.to_lowercase());
        use base64::Engine as _;
        out.push(base64::engine::general_purpose::STANDARD.encode(secret));
        // As `echo "$SECRET" | base64` prints it: with the newline echo adds.
        out.push(base64::engine::general_purpose::STANDARD.encode(format!("{secret}\n")));
    }
    // As a URL or a form carries it (`urlencode`, Python's `quote`/`quote_plus`, a browser),
    // and as HTML shows it.
    for (safe, plus) in [("", false), ("/", false), ("", true)] {
        out.push(percent_encoded(secret, safe, plus));
    }
    for html in HTML_ESCAPES {
        out.push(html_escaped(secret, html));
    }
    if secret.contains('\n') {
        out.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= 4)
                .flat_map(|line| {
                    [
                        line.to_string(),
                        json_escaped(line, false, false),
                        json_escaped(line, true, false),
                    ]
                }),
        );
    }
    out.retain(|form| !form.is_empty());
    out.sort();
    out.dedup();
    out
}

/// A secret as a JSON string holds it, without the quotes: `Ab\"c\\d`; with `ascii`, every
/// character beyond ASCII escaped too (`P\u00e4ssw\u00f6rd`, as Python's `json.dumps`
/// writes it), in lowercase or uppercase hex.
fn json_escaped(secret: &str, ascii: bool, upper: bool) -> String {
    let mut out = String::with_capacity(secret.len() + 8);
    let unit = |u: u16, out: &mut String| {
        if upper {
            out.push_str(&format!("\\u{u:04X}"));
        } else {
            out.push_str(&format!("\\u{u:04x}"));
        }
    };
    for c in secret.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => unit(c as u16, &mut out),
            c if ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    unit(*u, &mut out);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A secret as Python's `repr` writes it, without the quotes: `\\`, `\n`, `\t`, `\r`, other
/// control characters as `\xNN`; with `escape_apostrophe`, `'` as `\'` (single quotes around
/// it); with `ascii` (Python's `ascii()`), every character beyond ASCII as `\xNN`, `\uNNNN`
/// or `\UNNNNNNNN`.
fn python_escaped(secret: &str, ascii: bool, escape_apostrophe: bool) -> String {
    let mut out = String::with_capacity(secret.len() + 8);
    for c in secret.chars() {
        let code = c as u32;
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' if escape_apostrophe => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ if code < 0x20 || code == 0x7f || (0x80..0xa0).contains(&code) => {
                out.push_str(&format!("\\x{code:02x}"))
            }
            _ if ascii && code >= 0x80 => out.push_str(&match code {
                0..=0xff => format!("\\x{code:02x}"),
                0x100..=0xffff => format!("\\u{code:04x}"),
                _ => format!("\\U{code:08x}"),
            }),
            c => out.push(c),
        }
    }
    out
}

/// A secret as bash's `printf %q` writes it: each character a shell treats specially behind
/// a backslash (`it\'s\ ok`), or, when it holds a control character, as `$'…'` with C escapes.
fn bash_printf_q(secret: &str) -> String {
    if secret.chars().any(|c| c.is_ascii_control()) {
        let mut out = String::from("$'");
        for c in secret.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{b}' => out.push_str("\\v"),
                '\u{c}' => out.push_str("\\f"),
                '\u{1b}' => out.push_str("\\E"),
                c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    let mut out = String::with_capacity(secret.len() * 2);
    for (i, c) in secret.chars().enumerate() {
        if " '\"\\|&;()<>!{}*[]?^$`,".contains(c) || (i == 0 && (c == '~' || c == '#')) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `secret` percent-encoded, keeping letters, digits, `-_.~` and `safe`; `plus`: a space as
/// `+`, as in a form.
fn percent_encoded(secret: &str, safe: &str, plus: bool) -> String {
    let mut out = String::with_capacity(secret.len() * 3);
    for byte in secret.bytes() {
        match byte {
            b' ' if plus => out.push('+'),
            b if b.is_ascii_alphanumeric()
                || b"-_.~".contains(&b)
                || safe.as_bytes().contains(&b) =>
            {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// How one library escapes HTML: `&`, `<` and `>` always; then `"`, `'` and `/` as it writes
/// them (unchanged where it leaves them).
struct HtmlEscape {
    quote: &'static str,
    apostrophe: &'static str,
    slash: &'static str,
}

const HTML_ESCAPES: &[HtmlEscape] = &[
    // Python's `html.escape`, and the OWASP rule without the slash.
    HtmlEscape {
        quote: "&quot;",
        apostrophe: "&#x27;",
        slash: "/",
    },
    // lodash, Ruby's CGI, and most templates.
    HtmlEscape {
        quote: "&quot;",
        apostrophe: "&#39;",
        slash: "/",
    },
    // MarkupSafe (Jinja2, Flask) and Go's `html.EscapeString`.
    HtmlEscape {
        quote: "&#34;",
        apostrophe: "&#39;",
        slash: "/",
    },
    // PHP's `htmlspecialchars` with ENT_QUOTES, and with ENT_HTML5.
    HtmlEscape {
        quote: "&quot;",
        apostrophe: "&#039;",
        slash: "/",
    },
    HtmlEscape {
        quote: "&quot;",
        apostrophe: "&apos;",
        slash: "/",
    },
    // MiniJinja's `escape`, which escapes the slash too.
    HtmlEscape {
        quote: "&quot;",
        apostrophe: "&#x27;",
        slash: "&#x2f;",
    },
    // Python's `html.escape(quote=False)`: text, not an attribute.
    HtmlEscape {
        quote: "\"",
        apostrophe: "'",
        slash: "/",
    },
];

fn html_escaped(secret: &str, how: &HtmlEscape) -> String {
    let mut out = String::with_capacity(secret.len());
    for c in secret.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str(how.quote),
            '\'' => out.push_str(how.apostrophe),
            '/' => out.push_str(how.slash),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(secret: &str, form: &str) -> bool {
        forms(secret).iter().any(|f| f == form)
    }

    #[test]
    fn python_repr_and_ascii() {
        // repr("it's\"x\\") == 'it\'s"x\\\\'
        assert!(has("it's\"x\\", r#"it\'s"x\\"#));
        // repr("it's") == "it's" (double quotes, nothing escaped); ascii("Pässwörd")
        assert!(has("Pässwörd", r"P\xe4ssw\xf6rd"));
        assert!(has("a\u{1b}b", r"a\x1bb"));
        assert!(has("a€b", r"a\u20acb"));
    }

    #[test]
    fn shell_quoting_of_every_kind() {
        // Inside the quotes of a larger argument, and whole.
        assert!(has("it's ok", r#"it'"'"'s ok"#));
        assert!(has("it's ok", r"it'\''s ok"));
        assert!(has("it's ok", r"'it'\''s ok'"));
        assert!(has("it's ok", r"it\'s\ ok"));
        assert!(has("~tab\there", r"$'~tab\there'"));
        assert!(has("~home#1", r"\~home#1"));
    }

    #[test]
    fn html_and_sql() {
        assert!(has("a\"b'c/d", "a&#34;b&#39;c/d"));
        assert!(has("a\"b'c/d", "a&quot;b&#x27;c&#x2f;d"));
        assert!(has("a\"b'c/d", "a&quot;b&apos;c/d"));
        assert!(has("a\"b'c/d", "a&quot;b&#039;c/d"));
        assert!(has("it's", "it''s"));
        assert!(has("say \"x\"", "say \"\"x\"\""));
    }
}
