//! Secrets in every form they take once printed — JSON-escaped, shell-quoted inside a larger
//! argument, a number, a password inside a URL written loosely, a line of a params file, a
//! playbook default, Python's `repr`, `printf %q`, `shlex.quote`, HTML entities, SQL quotes,
//! and what a template derives from one (a slice, reversed, hex, base64) — stay out of every
//! channel flow writes to: the terminal (plain), `-v`, `--output json`, the run journal,
//! `flow show`, `flow runs`, the saved plan, the GitHub step summary and `flow serve`. And what params and commands print reaches people with its control
//! characters shown, never sent.

use crate::common::channels::Channels;
use crate::common::read;
use crate::common::run::flow;
use serde_json::Value;

/// A secret that equals a field name of the events (`status`, `stdout`) or a value the
/// events use (`succeeded`) is masked where steps print it; the event keeps its shape.
#[test]
fn a_secret_equal_to_an_event_field_or_status_is_masked_not_leaked() {
    for pin in ["status", "succeeded", "stdout"] {
        let channels = Channels::of(
            r#"flow: 1
params:
  pin: { type: string, secret: true }
steps:
  tell:
    type: exec
    with: { shell: 'echo "pin is $P"', env: { P: "{{ params.pin }}" } }
outputs:
  said: "{{ steps.tell.stdout }}"
"#,
            &["-p", &format!("pin={pin}")],
            &[],
        );
        channels.lack(&format!("pin is {pin}"));
        let events = channels.events();
        let finished = events
            .iter()
            .find(|e| e["event"] == "step_finished" && e["step"] == "tell")
            .unwrap_or_else(|| panic!("no step_finished of `tell`: {events:?}"));
        assert_eq!(finished["status"], "succeeded", "{finished}");
        assert_eq!(finished["outputs"]["stdout"], "pin is ***", "{finished}");
        let end = events.last().expect("events");
        assert_eq!(end["event"], "run_finished");
        assert_eq!(end["outputs"]["said"], "pin is ***", "{end}");
    }
}

/// `Kx7q"Wz\Lm'Np-Pässwörd`: printed JSON-escaped by a tool (`P\u00e4ssw\u00f6rd`,
/// `Kx7q\"Wz\\Lm`), by `to_json`, and shell-quoted inside a larger argument in plan lines and
/// failure messages (`'--password=Kx7q"Wz\Lm'\''Np-…'`).
#[test]
fn a_json_escaped_or_shell_quoted_secret_is_masked_in_every_channel() {
    let secret = "Kx7q\"Wz\\Lm'Np-Pässwörd";
    let ascii_json = "Kx7q\\\"Wz\\\\Lm'Np-P\\u00e4ssw\\u00f6rd";
    let channels = Channels::of(
        r#"flow: 1
params:
  pw: { type: string, secret: true, env: TEST_FLOW_PW }
steps:
  probe:
    type: exec
    effect: read
    with: { shell: 'printf "{\"pw\": \"%s\"}\n" "$TEST_FLOW_ESCAPED"' }
  as_json:
    type: exec
    with: { command: [echo, "{{ params.pw | to_json }}"] }
  login:
    type: exec
    with: { command: [sh, -c, 'echo denied >&2; exit 3', login, "--password={{ params.pw }}"] }
outputs:
  probe: "{{ steps.probe.stdout }}"
"#,
        &[],
        &[("TEST_FLOW_PW", secret), ("TEST_FLOW_ESCAPED", ascii_json)],
    );
    for fragment in ["Kx7q", "Np-P", "sswö", "ssw\\u00f6", "Wz\\"] {
        channels.lack(fragment);
    }
    // Still readable: the masked forms are there.
    let plain = channels.channel("apply");
    assert!(plain.contains("'--password=***'"), "{plain}");
    let verbose = channels.channel("apply -v");
    assert!(verbose.contains(r#"probe: {"pw": "***"}"#), "{verbose}");
}

/// A param not declared secret holding a URL with a password — base64 (`/ ? #` in it), or
/// under a mistyped scheme — is a secret; and when it fails its pattern, choices or type,
/// the error shows the URL with `***` for the password.
#[test]
fn a_url_password_fails_its_checks_without_being_printed() {
    let playbook = r#"flow: 1
params:
  url: { type: string, pattern: "^redis://[a-z0-9.]+:[0-9]+$", required: false }
  env_name: { type: string, choices: [dev, prod], required: false }
  port: { type: integer, required: false }
steps:
  a: { type: log, with: { message: "ok" } }
"#;
    for password in ["Plain-Pw-7731", "Zq/8+Kp?w#T1==", "Mistyped-Pw-42"] {
        let url = if password.starts_with("Mistyped") {
            format!("redis//:{password}@10.0.0.5:6379")
        } else {
            format!("redis://:{password}@10.0.0.5:6379/0")
        };
        for param in ["url", "env_name", "port"] {
            for output in ["human", "json"] {
                let dir = tempfile::tempdir().expect("temp dir");
                std::fs::write(dir.path().join("playbook.yaml"), playbook).expect("playbook");
                let ran = flow(
                    dir.path(),
                    &[
                        "--output",
                        output,
                        "plan",
                        "playbook.yaml",
                        "-p",
                        &format!("{param}={url}"),
                    ],
                    &[("GITHUB_ACTIONS", "true")],
                );
                ran.code(2);
                assert!(!ran.both().contains(password), "{}", ran.context());
                assert!(ran.stderr.contains(":***@10.0.0.5"), "{}", ran.context());
            }
        }
    }
}

#[test]
fn a_url_password_with_slashes_or_a_mistyped_scheme_is_masked_in_every_channel() {
    let channels = Channels::of(
        r#"flow: 1
params:
  cache: { type: string }
  broker: { type: string }
  hosts: { type: list }
steps:
  say:
    type: log
    with: { message: "cache {{ params.cache }} broker {{ params.broker }} hosts {{ params.hosts }}" }
  ping:
    type: exec
    with: { command: [echo, "{{ params.cache }}", "{{ params.broker }}"] }
"#,
        &[
            "-p",
            "cache=redis://:Zq/8+Kp?w#T1==@127.0.0.1:6379/0",
            "-p",
            "broker=redis//:Mistyped-Pw-42@10.0.0.9:6379",
            "-p",
            "hosts=[redis://:List-Pw-3191@10.0.0.7]",
        ],
        &[],
    );
    for fragment in ["Zq/8", "Kp?w", "Mistyped-Pw", "List-Pw-3191"] {
        channels.lack(fragment);
    }
}

/// A params file with a syntax error next to a secret: the diagnostic points at the line,
/// which shows the secret's value as `***`.
#[test]
fn a_params_file_syntax_error_does_not_print_the_secrets_line() {
    let playbook = r#"flow: 1
params:
  pw: { type: string, secret: true }
  region: { type: string, default: eu }
steps:
  a: { type: log, with: { message: "ok" } }
"#;
    let files = [
        "pw: \"S3cret-Line-99\nregion: eu\n",
        "pw: S3cret-Line-99: bad\n",
        "pw: [S3cret-Line-99\n",
        "region: eu\npw: |\n  S3cret-Line-99\n bad: [\n",
        "{pw: S3cret-Line-99, region: eu\n",
        "pw: 'S3cret-Line-99\n  S3cret-Line-99'\nregion: [\n",
    ];
    for file in files {
        for output in ["human", "json"] {
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::write(dir.path().join("playbook.yaml"), playbook).expect("playbook");
            std::fs::write(dir.path().join("prod.yaml"), file).expect("params file");
            let ran = flow(
                dir.path(),
                &[
                    "--output",
                    output,
                    "plan",
                    "playbook.yaml",
                    "--params-file",
                    "prod.yaml",
                ],
                &[("GITHUB_ACTIONS", "true")],
            );
            ran.code(2);
            assert!(
                !ran.both().contains("S3cret-Line"),
                "{file:?}\n{}",
                ran.context()
            );
            assert!(ran.stderr.contains("prod.yaml:"), "{}", ran.context());
        }
    }
    // The line is still shown, with the value masked.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("playbook.yaml"), playbook).expect("playbook");
    std::fs::write(dir.path().join("prod.yaml"), files[1]).expect("params file");
    let ran = flow(
        dir.path(),
        &["plan", "playbook.yaml", "--params-file", "prod.yaml"],
        &[],
    );
    assert!(ran.stderr.contains("1 | pw: ***"), "{}", ran.context());
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The attack from the issue, replayed: every 4-digit PIN hashed the way a plan file would
/// let anyone test it (the plan id is in the file, the outputs are in the preview with the
/// PIN masked). No guess may match: the fingerprint is keyed with the state dir's plan key.
#[test]
fn a_saved_plans_fingerprint_does_not_let_the_plan_file_test_guesses_at_a_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        r#"flow: 1
params:
  pin: { type: string, secret: true }
steps:
  probe:
    type: exec
    effect: read
    with: { shell: 'echo "pin=$PIN"', env: { PIN: "{{ params.pin }}" } }
  use:
    type: exec
    with: { command: [true] }
"#,
    )
    .expect("playbook");
    flow(
        dir.path(),
        &[
            "plan",
            "playbook.yaml",
            "-p",
            "pin=4831",
            "--out",
            "plan.json",
        ],
        &[],
    )
    .code(0);
    let text = read(&dir.path().join("plan.json"));
    let plan: Value = serde_json::from_str(&text).expect("plan.json");
    let plan_id = plan["plan_id"].as_str().expect("plan_id");
    let read_step = &plan["reads"]["probe"];
    let fingerprint = read_step["sha256"].as_str().expect("sha256");
    let preview: Vec<&str> = read_step["preview"]
        .as_array()
        .expect("preview")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let masked = preview.join("\n");
    assert!(masked.contains("pin=***"), "{text}");
    for guess in 0..10_000 {
        let guess = format!("{guess:04}");
        let outputs: Value =
            serde_json::from_str(&masked.replace("***", &guess)).expect("preview is JSON");
        let canonical = serde_json::to_string(&outputs).expect("json");
        assert_ne!(
            sha256_hex(&format!("{plan_id}\n{canonical}")),
            fingerprint,
            "the plan file gives the PIN away: {guess}"
        );
    }
    // The key lives in the state dir, readable by its owner only, and is not in the plan.
    let key_path = dir.path().join(".flow/plan-key");
    let key = read(&key_path);
    assert!(key.trim().len() >= 64, "{key}");
    assert!(!text.contains(key.trim()));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&key_path)
        .expect("plan-key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The plan applies with its state dir, and a changed PIN is still drift.
    flow(dir.path(), &["apply", "plan.json", "-p", "pin=4831"], &[]).code(0);
    let moved = flow(dir.path(), &["apply", "plan.json", "-p", "pin=4832"], &[]);
    moved
        .code(2)
        .stderr_has("step `probe` reads something else now");
    // Elsewhere, without the key, apply says why it cannot check.
    let other = flow(
        dir.path(),
        &[
            "--state-dir",
            "elsewhere",
            "apply",
            "plan.json",
            "-p",
            "pin=4831",
        ],
        &[],
    );
    other.code(2).stderr_has("plan-key");
}

/// A secret param's `default`, written in the playbook, is a secret too: when `-p` overrides
/// it, the playbook text the plan keeps, and the diff of a changed playbook, mask it.
#[test]
fn a_secret_params_default_is_masked_when_p_overrides_it() {
    let playbook = r#"flow: 1
params:
  pw: { type: string, secret: true, default: "Default-Pw-5150" }
steps:
  probe:
    type: exec
    effect: read
    with: { command: [echo, checked] }
  login:
    type: exec
    with: { command: [echo, "{{ params.pw }}"] }
"#;
    let channels = Channels::of(playbook, &["-p", "pw=Given-Pw-8086"], &[]);
    channels.lack("Default-Pw-5150").lack("Given-Pw-8086");
    let saved = read(&channels.path("plan.json"));
    assert!(saved.contains("default: \\\"***\\\""), "{saved}");
    // The playbook changes next to the default: the diff flow prints masks it.
    std::fs::write(
        channels.path("playbook.yaml"),
        playbook.replace("steps:", "# edited\nsteps:"),
    )
    .expect("edit");
    let ran = flow(
        channels.dir.path(),
        &["apply", "plan.json", "-p", "pw=Given-Pw-8086"],
        &[],
    );
    ran.code(2).stderr_has("+ # edited");
    assert!(!ran.both().contains("Default-Pw-5150"), "{}", ran.context());
}

/// Control characters (ESC, BEL, CR) from params and command output are shown as pictures in
/// the human views, never sent; a line break inside a failure or a value never starts a line
/// of its own, so it cannot start a GitHub Actions command (`::error …`). JSON keeps them as
/// JSON escapes.
#[test]
fn control_characters_and_line_breaks_are_shown_not_sent() {
    let label = "red\u{1b}[31m\u{7}\r\n::warning::forged-by-a-param";
    let channels = Channels::of(
        r#"flow: 1
params:
  label: { type: string }
steps:
  noisy:
    type: exec
    continue_on_error: true
    with:
      shell: 'printf "bell\a esc\033[2J cr\rover\n"; printf "first\n::error::forged-by-stderr\n" >&2; exit 1'
  say:
    type: log
    with: { message: "label {{ params.label }}" }
  fail:
    type: exec
    with: { shell: 'printf "one\n::error::forged-by-a-failure\n" >&2; exit 2' }
outputs:
  label: "{{ params.label }}"
"#,
        &["-p", &format!("label={label}")],
        &[],
    );
    for (channel, text) in &channels.seen {
        // JSON and the journal keep them escaped; a web page is no log GitHub reads.
        if channel.contains("json")
            || channel == "journal"
            || channel == "saved plan"
            || channel.starts_with("flow serve")
        {
            continue;
        }
        for c in ['\u{1b}', '\u{7}', '\r'] {
            assert!(!text.contains(c), "{channel} sends {c:?}:\n{text}");
        }
        for line in text.lines() {
            assert!(
                !line.trim_start().starts_with("::"),
                "{channel} has a line GitHub would run: {line:?}\n{text}"
            );
        }
    }
    let verbose = channels.channel("apply -v");
    assert!(verbose.contains("bell␇ esc␛[2J cr␍over"), "{verbose}");
    // JSON stays JSON: the characters are there, escaped.
    let events = channels.events();
    let line = events
        .iter()
        .find(|e| e["event"] == "step_output" && e["step"] == "noisy" && e["stream"] == "stdout")
        .expect("a line of `noisy`");
    assert!(
        line["line"].as_str().unwrap_or("").contains('\u{1b}'),
        "{line}"
    );
    // No raw control character reaches the journal or the saved plan either.
    for channel in ["journal", "saved plan"] {
        assert!(!channels.channel(channel).contains('\u{1b}'));
    }
}

/// A diagnostic quoting a value with control characters and a line break: shown, and no line
/// of stderr but flow's own annotation starts with `::`.
#[test]
fn a_diagnostic_quoting_a_value_never_starts_a_forged_annotation() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        "flow: 1\nparams:\n  n: { type: integer }\nsteps:\n  a: { type: log, with: { message: ok } }\n",
    )
    .expect("playbook");
    let ran = flow(
        dir.path(),
        &[
            "plan",
            "playbook.yaml",
            "-p",
            "n=1\u{1b}[2J\n::error::forged",
        ],
        &[("GITHUB_ACTIONS", "true")],
    );
    ran.code(2);
    assert!(!ran.stderr.contains('\u{1b}'), "{}", ran.context());
    for line in ran.stderr.lines() {
        assert!(
            !line.trim_start().starts_with("::error::forged"),
            "{}",
            ran.context()
        );
    }
    assert!(
        ran.stderr.contains("::error::param `n`"),
        "{}",
        ran.context()
    );
}

/// An integer secret is a number where a template keeps its type (`{{ params.pin }}`) or a
/// command's JSON holds it: masked there too.
#[test]
fn an_integer_secret_is_masked_where_it_is_a_number() {
    let channels = Channels::of(
        r#"flow: 1
params:
  pin: { type: integer, secret: true }
steps:
  lookup:
    type: exec
    with:
      shell: 'echo "{\"pin\": $PIN}"'
      env: { PIN: "{{ params.pin }}" }
      parse: json
outputs:
  pin: "{{ params.pin }}"
  found: "{{ steps.lookup.json }}"
"#,
        &["-p", "pin=918273645"],
        &[],
    );
    channels.lack("918273645");
}

/// `-p pw:hunter2` — a secret typed with the wrong separator — is an error that does not echo
/// the value.
#[test]
fn a_secret_given_with_the_wrong_separator_is_not_echoed() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        "flow: 1\nparams:\n  pw: { type: string, secret: true }\nsteps:\n  a: { type: log, with: { message: ok } }\n",
    )
    .expect("playbook");
    for output in ["human", "json"] {
        let ran = flow(
            dir.path(),
            &[
                "--output",
                output,
                "plan",
                "playbook.yaml",
                "-p",
                "pw:Typo-Secret-77",
            ],
            &[],
        );
        ran.code(2).stderr_has("expected NAME=VALUE");
        assert!(!ran.both().contains("Typo-Secret"), "{}", ran.context());
    }
}

/// A password written in the playbook (a Redis block's `password:`) is masked in the saved
/// plan's text and in the diff `flow apply PLAN.json` prints when the playbook changed.
#[test]
fn a_password_written_in_the_playbook_stays_out_of_the_drift_diff() {
    let playbook = r#"flow: 1
defaults:
  redis: { url: "redis://127.0.0.1:1", password: "Literal-Pw-4242" }
steps:
  flush:
    type: redis.command
    effect: write
    with: { command: [FLUSHALL] }
"#;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("playbook.yaml"), playbook).expect("playbook");
    flow(
        dir.path(),
        &["plan", "playbook.yaml", "--out", "plan.json"],
        &[],
    )
    .code(0);
    assert!(!read(&dir.path().join("plan.json")).contains("Literal-Pw"));
    std::fs::write(
        dir.path().join("playbook.yaml"),
        playbook.replace("steps:", "# edited\nsteps:"),
    )
    .expect("edit");
    let ran = flow(dir.path(), &["apply", "plan.json"], &[]);
    ran.code(2).stderr_has("+ # edited");
    assert!(!ran.both().contains("Literal-Pw"), "{}", ran.context());
}

/// On a terminal (the live view), what a command prints and a failure's lines are shown with
/// their control characters as pictures; the failure's second line starts with `│`.
#[test]
fn the_live_view_shows_control_characters_instead_of_sending_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("playbook.yaml"),
        r#"flow: 1
steps:
  noisy:
    type: exec
    with: { shell: 'printf "bell\a esc\033[31m|red\n"' }
  say:
    type: log
    with: { message: "said {{ steps.noisy.stdout }}" }
  fail:
    type: exec
    with: { shell: 'printf "one\n::error::forged-on-a-terminal\n" >&2; exit 2' }
"#,
    )
    .expect("playbook");
    let terminal = crate::common::pty::Terminal::start(dir.path(), "apply playbook.yaml");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("said bell␇ esc␛[31m|red"), "{screen}");
    assert!(!screen.contains("\u{1b}[31m|red"), "{screen:?}");
    assert!(!screen.contains('\u{7}'), "{screen:?}");
    assert!(
        screen.contains("│ ::error::forged-on-a-terminal"),
        "{screen}"
    );
    assert!(
        !screen.contains("\n::error") && !screen.contains("\r::error"),
        "{screen:?}"
    );
}

/// `echo "$TOKEN" | base64` encodes the secret with a newline after it: masked too.
#[test]
fn a_secret_base64_encoded_with_echos_newline_is_masked() {
    let out = crate::common::Flow::new()
        .playbook(
            "flow: 1\nparams:\n  token: { type: string, secret: true }\nsteps:\n  enc:\n    type: exec\n    with: { shell: \"echo \\\"$TOK\\\" | base64\", env: { TOK: \"{{ params.token }}\" } }\n",
        )
        .args(&["apply", "playbook.yaml", "-p", "token=s3cr3tT0ken", "-v"])
        .run();
    out.code(0);
    assert!(!out.both().contains("czNjcjN0VDBrZW4K"), "{}", out.both());
    assert!(out.both().contains("***"));
}

/// A secret as a URL carries it (`%3C`, `+` for a space) and as HTML shows it (`&lt;`) is
/// masked too: `flow serve` shows what steps print in a page.
#[test]
fn a_url_encoded_or_html_escaped_secret_is_masked_in_every_channel() {
    let channels = Channels::of(
        r#"flow: 1
params:
  pw: { type: string, secret: true, env: TEST_FLOW_PW }
steps:
  forms:
    type: exec
    effect: read
    with: { command: [python3, -c, "import sys, urllib.parse, html; s = sys.argv[1]; print(urllib.parse.quote(s), urllib.parse.quote_plus(s), html.escape(s))", "{{ params.pw }}"] }
"#,
        &[],
        &[("TEST_FLOW_PW", "my secret<pass>\"x'y")],
    );
    for fragment in ["my%20secret", "my+secret", "secret&lt;pass", "%3Cpass"] {
        channels.lack(fragment);
    }
}

/// What tools print when they escape a secret their own way: Python's `repr` and `ascii`
/// (`Rq8\'Zt"Wm\\ …`, `P\xe4`), `shlex.quote` (`'Rq8'"'"'Zt…'`, also inside a larger
/// argument), HTML with `&#39;`/`&#34;` or without quotes escaped, SQL's doubled quotes, and
/// bash's `printf %q` (`Rq8\'Zt\"Wm\\\ Lx…`).
#[test]
fn a_secret_escaped_by_python_shlex_html_sql_or_printf_q_is_masked_in_every_channel() {
    let script = r#"import os, shlex, html
s = os.environ["PW"]
print("repr", repr(s))
print("ascii", ascii(s))
print("shlex", shlex.quote(s), shlex.quote("--password=" + s))
print("html", html.escape(s, quote=False), s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;"))
print("sql", "'" + s.replace("'", "''") + "'")
"#;
    let channels = Channels::of(
        &format!(
            r#"flow: 1
params:
  pw: {{ type: string, secret: true, env: TEST_FLOW_PW }}
  plain: {{ type: string, secret: true, env: TEST_FLOW_PLAIN }}
steps:
  python:
    type: exec
    effect: read
    with:
      command: [python3, -c, {script}]
      env: {{ PW: "{{{{ params.pw }}}}" }}
  printf_q:
    type: exec
    effect: read
    with:
      command: [bash, -c, 'printf "%q\n" "$PW"']
      env: {{ PW: "{{{{ params.plain }}}}" }}
"#,
            script = serde_json::to_string(script).expect("json")
        ),
        &[],
        &[
            ("TEST_FLOW_PW", "Rq8'Zt\"Wm\\ Lx/<Pä>-91"),
            ("TEST_FLOW_PLAIN", "Qd4'Hs\"Yn\\ Jc<Bv>!k-3"),
        ],
    );
    // Every form starts with the secret's first characters, escaped or not.
    channels.lack("Rq8").lack("Qd4").lack("Lx/");
    let verbose = channels.channel("apply -v");
    for shown in [
        "repr '***'",
        "ascii '***'",
        "shlex '***' '--password=***'",
        "html *** ***",
        "sql '***'",
    ] {
        assert!(verbose.contains(shown), "{shown}:\n{verbose}");
    }
}

/// What a template derives from a secret — a slice, the text reversed, base64 of it with
/// something added, a digest — is a secret too; a number derived from it (`| length`) is not.
#[test]
fn what_a_template_derives_from_a_secret_is_masked_in_every_channel() {
    let channels = Channels::of(
        r#"flow: 1
params:
  pw: { type: string, secret: true }
steps:
  derive:
    type: exec
    with:
      command: [echo, "{{ params.pw[:6] }}", "{{ params.pw | reverse }}", "{{ ('x' ~ params.pw) | b64encode }}", "{{ params.pw[::-1] | upper }}"]
  say:
    type: log
    with: { message: "head {{ params.pw[2:9] }} sum {{ params.pw | sha256 }} n={{ params.pw | length }}" }
outputs:
  slice: "{{ params.pw[3:10] }}"
"#,
        &["-p", "pw=Tq7Vx9Kp2Lm5wZr8"],
        &[],
    );
    for derived in [
        "Tq7Vx9",
        "8rZw5mL2pK9xV7qT",
        "eFRxN1Z4OUtwMkxtNXdacjg=",
        "8RZW5ML2PK9XV7QT",
        "7Vx9Kp2",
        "abe61e67cb15f5d5e60a1e505c77b6f5ccb1347a227de38b1839504d72acc367",
        "Vx9Kp2L",
    ] {
        channels.lack(derived);
    }
    let verbose = channels.channel("apply -v");
    assert!(verbose.contains("head *** sum *** n=16"), "{verbose}");
}
