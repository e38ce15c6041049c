//! The MiniJinja environment every template of a run is rendered in: strict about undefined
//! values, with flow's filters and functions (DESIGN §3).

use base64::Engine as _;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};
use sha2::Digest as _;
use std::path::PathBuf;
use std::sync::Arc;

/// Names a template may use without them being variables of the context.
pub const FUNCTIONS: &[&str] = &["now", "read_file", "range", "dict", "namespace", "debug"];

/// What the environment's functions need from the run: a fixed `now()` and the playbook folder
/// for `read_file`.
#[derive(Clone, Debug)]
pub struct TemplateSettings {
    pub now: jiff::Timestamp,
    pub playbook_dir: PathBuf,
}

/// How much work one template may do (MiniJinja's fuel): about that many operations, or 64
/// bytes of data per unit (about 128 MB). Runbook templates use thousands; a loop that never
/// ends, or one that doubles a string, stops here with an error instead of hanging the run or
/// exhausting memory (in about a second). Each template renders with its own budget.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

pub fn build_environment(settings: TemplateSettings) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    // `content: "line\n"` keeps its newline, as it does without a template.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build();
    if let Ok(syntax) = syntax {
        env.set_syntax(syntax);
    }
    // Python's string and list methods (`.startswith()`, `.strip()`, `.split()`), which
    // operators coming from Ansible write without thinking.
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_filter("quote", |value: String| shell_quote(&value));
    env.add_filter("to_json", to_json);
    env.add_filter("from_json", |text: String| -> Result<Value, Error> {
        let parsed: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("from_json: {e}")))?;
        Ok(Value::from(minijinja::value::Serde(&parsed)))
    });
    env.add_filter("to_yaml", |value: Value| -> Result<String, Error> {
        let json = serde_json::to_value(&value)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("to_yaml: {e}")))?;
        Ok(crate::yaml_emit::to_yaml(&json))
    });
    env.add_filter("b64encode", |text: String| {
        base64::engine::general_purpose::STANDARD.encode(text)
    });
    env.add_filter("b64decode", |text: String| -> Result<String, Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("b64decode: {e}")))?;
        String::from_utf8(bytes).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                "b64decode: the decoded bytes are not UTF-8",
            )
        })
    });
    env.add_filter("sha256", |text: String| {
        let digest = sha2::Sha256::digest(text.as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    env.add_filter("basename", |path: String| {
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string()
    });
    env.add_filter("dirname", |path: String| {
        let trimmed = path.trim_end_matches('/');
        match trimmed.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => trimmed[..i].to_string(),
            None => String::new(),
        }
    });
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("strftime", strftime);
    env.add_filter("duration", |text: String| -> Result<Value, Error> {
        crate::duration::parse_duration(&text)
            .map(|d| {
                let seconds = d.as_secs_f64();
                // Whole seconds stay an integer: `'12h' | duration` is 43200, not 43200.0.
                if seconds.fract() == 0.0 {
                    Value::from(seconds as i64)
                } else {
                    Value::from(seconds)
                }
            })
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("duration: {e}")))
    });
    let now = settings.now.to_string();
    env.add_function("now", move || now.clone());
    let dir = Arc::new(settings.playbook_dir);
    env.add_function("read_file", move |path: String| -> Result<String, Error> {
        read_file(&dir.join(&path))
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("read_file: {e}")))
    });
    env
}

/// The most `read_file()` reads: templates take keys, certificates and config snippets from
/// files, not data sets.
pub const READ_FILE_MAX_BYTES: u64 = 16 << 20;

/// Reads a regular file of at most `READ_FILE_MAX_BYTES` as UTF-8 text (a FIFO or a device
/// is refused, see `regular_file`).
fn read_file(path: &std::path::Path) -> Result<String, String> {
    crate::regular_file::read_text(path, READ_FILE_MAX_BYTES).map_err(|e| {
        let shown = path.display();
        match e {
            crate::regular_file::ReadError::NotRegular(_) => {
                format!("cannot read {shown}: {e}; read_file reads regular files only")
            }
            e => format!("cannot read {shown}: {e}"),
        }
    })
}

/// POSIX shell quoting: the value survives `sh -c` as one word, whatever it contains.
pub fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

fn to_json(value: Value, pretty: Option<bool>) -> Result<String, Error> {
    let result = if pretty.unwrap_or(false) {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    };
    result.map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("to_json: {e}")))
}

fn regex_replace(text: String, pattern: String, replacement: String) -> Result<String, Error> {
    let regex = regex::Regex::new(&pattern).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("regex_replace: bad pattern: {e}"),
        )
    })?;
    Ok(regex.replace_all(&text, replacement.as_str()).into_owned())
}

/// Formats a timestamp (RFC 3339 text or Unix seconds) with a strftime format, in UTC.
fn strftime(value: Value, format: String) -> Result<String, Error> {
    let bad = |what: String| Error::new(ErrorKind::InvalidOperation, format!("strftime: {what}"));
    let timestamp = if let Some(text) = value.as_str() {
        text.parse::<jiff::Timestamp>()
            .map_err(|e| bad(format!("`{text}` is not a timestamp: {e}")))?
    } else if let Ok(seconds) = i64::try_from(value.clone()) {
        jiff::Timestamp::from_second(seconds).map_err(|e| bad(e.to_string()))?
    } else {
        return Err(bad(format!("expected a timestamp, got {value}")));
    };
    let zoned = timestamp.to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(format.as_str(), &zoned).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_makes_one_shell_word() {
        assert_eq!(shell_quote("plain"), "plain");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
    }
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    fn render(template: &str) -> Result<String, String> {
        // Written once: tests run in parallel, and a rewrite (truncate, then write) could be
        // read half-done by another test's `read_file`.
        static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        let dir = DIR
            .get_or_init(|| {
                let dir = std::env::temp_dir().join(format!("flow-filters-{}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("note.txt"), "from a file").unwrap();
                dir
            })
            .clone();
        let env = build_environment(TemplateSettings {
            now: "2026-11-23T02:17:58Z".parse().unwrap(),
            playbook_dir: dir,
        });
        env.render_str(
            template,
            minijinja::context! { data => minijinja::context! { a => 1 }, secret => "s3cr3t" },
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn flow_filters_work() {
        assert_eq!(render("{{ \"a b\" | quote }}").unwrap(), "'a b'");
        assert_eq!(render("{{ data | to_json }}").unwrap(), r#"{"a":1}"#);
        assert_eq!(
            render("{{ ('{\"x\": [1, 2]}' | from_json).x[1] }}").unwrap(),
            "2"
        );
        assert_eq!(render("{{ data | to_yaml }}").unwrap(), "a: 1\n");
        assert_eq!(render("{{ 'hi' | b64encode }}").unwrap(), "aGk=");
        assert_eq!(render("{{ 'aGk=' | b64decode }}").unwrap(), "hi");
        assert_eq!(
            render("{{ 'abc' | sha256 }}").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            render("{{ '/var/lib/redis/dump.rdb' | basename }}").unwrap(),
            "dump.rdb"
        );
        assert_eq!(
            render("{{ '/var/lib/redis/dump.rdb' | dirname }}").unwrap(),
            "/var/lib/redis"
        );
        assert_eq!(
            render("{{ 'daily/2026-11-22.rdb' | regex_replace('[^0-9]', '') }}").unwrap(),
            "20261122"
        );
        assert_eq!(render("{{ now() }}").unwrap(), "2026-11-23T02:17:58Z");
        assert_eq!(
            render("{{ now() | strftime('%Y%m%d-%H%M') }}").unwrap(),
            "20261123-0217"
        );
        assert_eq!(
            render("{{ 1700000000 | strftime('%Y-%m-%d') }}").unwrap(),
            "2023-11-14"
        );

        assert_eq!(
            render("{{ read_file('note.txt') }}").unwrap(),
            "from a file"
        );
        assert_eq!(render("{{ '12h' | duration }}").unwrap(), "43200");
        assert_eq!(render("{{ '1.5s' | duration }}").unwrap(), "1.5");
        assert_eq!(
            render("{{ 'i-1'.startswith('i-') }} {{ ' x '.strip() }}").unwrap(),
            "True x"
        );
        assert_eq!(render("{{ 'line' }}\n").unwrap(), "line\n");
    }

    #[test]
    fn strict_mode_rejects_undefined_values() {
        assert!(render("{{ missing }}").is_err());
        assert!(render("{{ data.b }}").is_err());
        assert!(render("{{ 'x' | b64decode }}").is_err());
        assert!(
            render("{{ read_file('nope.txt') }}")
                .unwrap_err()
                .contains("read_file")
        );
        assert!(
            render("{{ 'x' | regex_replace('(', '') }}")
                .unwrap_err()
                .contains("bad pattern")
        );
    }

    /// Renders `template` on another thread: a read that blocks fails the test instead of
    /// hanging it.
    fn render_within_seconds(template: &'static str) -> Result<String, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(render(template));
        });
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("rendering `{template}` did not finish within 5 s"))
    }

    #[test]
    fn read_file_refuses_a_fifo_instead_of_waiting_for_a_writer() {
        let fifo = std::env::temp_dir().join(format!("flow-filters-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
        let template: &'static str =
            Box::leak(format!("{{{{ read_file('{}') }}}}", fifo.display()).into_boxed_str());
        let error = render_within_seconds(template).unwrap_err();
        let _ = std::fs::remove_file(&fifo);
        assert!(error.contains("FIFO"), "{error}");
        assert!(error.contains(&fifo.display().to_string()), "{error}");
    }

    #[test]
    fn read_file_refuses_devices_like_dev_zero() {
        let error = render_within_seconds("{{ read_file('/dev/zero') }}").unwrap_err();
        assert!(
            error.contains("/dev/zero") && error.contains("character device"),
            "{error}"
        );
    }

    #[test]
    fn read_file_refuses_a_file_over_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.txt");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(READ_FILE_MAX_BYTES + 1).unwrap();
        let template: &'static str = Box::leak(
            format!("{{{{ read_file('{}') | length }}}}", big.display()).into_boxed_str(),
        );
        let error = render_within_seconds(template).unwrap_err();
        assert!(
            error.contains("big.txt") && error.contains("16 MiB"),
            "{error}"
        );
        file.set_len(1000).unwrap();
        assert_eq!(render_within_seconds(template).unwrap(), "1000");
    }
}
