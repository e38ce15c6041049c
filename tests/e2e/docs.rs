//! The documentation stays true: the committed schema is what `flow schema` prints, every
//! playbook in the README validates, and every shipped playbook validates.

use crate::common::flow_bin;
use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn committed_schema_is_current() {
    let output = Command::new(flow_bin())
        .arg("schema")
        .output()
        .expect("run flow schema");
    assert!(output.status.success());
    let committed = std::fs::read_to_string(repo().join("schemas/playbook.schema.json"))
        .expect("schemas/playbook.schema.json");
    assert!(
        committed == String::from_utf8_lossy(&output.stdout),
        "schemas/playbook.schema.json is stale: run `cargo run -q -- schema > schemas/playbook.schema.json`"
    );
}

/// The YAML blocks of the README that are whole playbooks (they start with `flow: 1`).
fn readme_playbooks() -> Vec<(usize, String)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in readme.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some((number + 2, String::new())),
            (Some(_), "```") => {
                let (start, text) = current.take().expect("open block");
                if text
                    .trim_start()
                    .lines()
                    .find(|l| !l.starts_with('#'))
                    .is_some_and(|l| l.starts_with("flow: 1"))
                {
                    blocks.push((start, text));
                }
            }
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_readme_playbook_validates() {
    let blocks = readme_playbooks();
    assert!(
        blocks.len() >= 3,
        "expected several playbook examples in the README, found {}",
        blocks.len()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut failures = Vec::new();
    for (line, text) in blocks {
        let path = dir.path().join(format!("readme-line-{line}.yaml"));
        std::fs::write(&path, &text).expect("write example");
        let output = Command::new(flow_bin())
            .args(["validate", path.to_str().expect("utf-8 path")])
            .output()
            .expect("run flow");
        if !output.status.success() {
            failures.push(format!(
                "README.md line {line}:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "README examples that do not validate:\n{}",
        failures.join("\n")
    );
}

/// Every playbook under `playbooks/`.
fn shipped_playbooks() -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![repo().join("playbooks")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read playbooks dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                // `infra/` beside a playbook holds its sample CloudFormation templates, `ci/`
                // the CI workflow that runs it: not playbooks.
                if !path.ends_with("infra") && !path.ends_with("ci") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// What an editor sees: the committed schema, checked by an independent validator (the
/// `jsonschema` crate, not flow's own checker), accepts every shipped playbook and README
/// example — templates where typed values go included — and still rejects wrong ones.
#[test]
fn editor_schema_accepts_every_shipped_playbook_and_readme_example() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schemas/playbook.schema.json")).expect("schema"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let mut documents: Vec<(String, String)> = shipped_playbooks()
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read playbook");
            (p.display().to_string(), text)
        })
        .collect();
    documents.extend(
        readme_playbooks()
            .into_iter()
            .map(|(line, text)| (format!("README.md line {line}"), text)),
    );
    assert!(
        documents.len() > 8,
        "too few documents: {}",
        documents.len()
    );
    let to_json = |name: &str, text: &str| {
        let file = flow_engine::source::SourceFile::new(name, text);
        flow_engine::yaml::parse(&file)
            .unwrap_or_else(|d| panic!("{name}: {}", d.render()))
            .to_json()
    };
    let mut failures = Vec::new();
    for (name, text) in &documents {
        let errors: Vec<String> = validator
            .iter_errors(&to_json(name, text))
            .map(|e| format!("  {} at {}", e, e.instance_path()))
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{name}:\n{}", errors.join("\n")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // A test that cannot fail is no test: a wrong type and an unknown field are still red.
    for wrong in [
        "flow: 1\nsteps:\n  a: { type: files.prune, with: { dir: x, keep_latest: many } }\n",
        "flow: 1\nsteps:\n  a: { type: log, with: { mesage: hi } }\n",
        "flow: 1\ndefaults: { log: { message: hi } }\nsteps:\n  a: { type: log }\n",
    ] {
        assert!(
            !validator.is_valid(&to_json("wrong.yaml", wrong)),
            "the schema accepts a wrong playbook:\n{wrong}"
        );
    }
}

#[test]
fn every_shipped_playbook_validates() {
    let mut failures = Vec::new();
    let mut count = 0;
    let mut stack = vec![repo().join("playbooks")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read playbooks dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                // `infra/` beside a playbook holds its sample CloudFormation templates, `ci/`
                // the CI workflow that runs it: not playbooks.
                if !path.ends_with("infra") && !path.ends_with("ci") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                count += 1;
                let output = Command::new(flow_bin())
                    .arg("validate")
                    .arg(&path)
                    .output()
                    .expect("run flow");
                if !output.status.success() {
                    failures.push(format!(
                        "{}:\n{}",
                        path.display(),
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
            }
        }
    }
    assert!(count > 0, "no playbooks found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [
        "validate",
        "plan",
        "apply",
        "graph",
        "steps",
        "schema",
        "serve",
        "completions",
    ] {
        let output = Command::new(flow_bin())
            .args([command, "--help"])
            .output()
            .expect("run flow");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{command} --help failed");
        assert!(
            text.contains("Example"),
            "`flow {command} --help` has no example:\n{text}"
        );
    }
}

#[test]
fn steps_catalogue_lists_every_core_type_and_pages_one() {
    let output = Command::new(flow_bin())
        .arg("steps")
        .output()
        .expect("run flow");
    let text = String::from_utf8_lossy(&output.stdout);
    for name in [
        "exec",
        "confirm",
        "choose",
        "assert",
        "log",
        "sleep",
        "file.write",
        "envfile.set",
    ] {
        assert!(text.contains(name), "`flow steps` lacks {name}:\n{text}");
    }
    let output = Command::new(flow_bin())
        .args(["steps", "exec"])
        .output()
        .expect("run flow");
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(
        page.contains("command")
            && page.contains("ok_codes")
            && page.contains("stdout")
            && page.contains("Example:"),
        "{page}"
    );
    let output = Command::new(flow_bin())
        .args(["steps", "exek"])
        .output()
        .expect("run flow");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("did you mean `exec`?"));
}

#[test]
fn completions_are_generated() {
    let output = Command::new(flow_bin())
        .args(["completions", "bash"])
        .output()
        .expect("run flow");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("validate"));
}
