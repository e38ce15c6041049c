//! Everything flow writes for one playbook, channel by channel — the terminal (plain, `-v`,
//! `--output json`), plans (plain, JSON, saved), `flow show` and `flow runs`, the state dir,
//! the GitHub step summary, and `flow serve` (pages and JSON API) — for "never shown" checks.
#![allow(dead_code)]

use super::run::{flow, run_dirs};
use super::{read, read_tree};
use serde_json::Value;
use std::path::Path;

/// What flow wrote, channel by channel, for one playbook and its params.
pub struct Channels {
    pub dir: tempfile::TempDir,
    pub seen: Vec<(String, String)>,
}

impl Channels {
    /// Runs the playbook through every channel: `apply` plain (under GitHub Actions, with a
    /// step summary file), `-v` and `--output json`; `plan` plain, JSON and saved; then
    /// `flow show` (human and JSON) of each run and `flow runs`, reads the state dir (but for
    /// `except` files, by name), and asks `flow serve` for every page and answer it has.
    pub fn of(playbook: &str, params: &[&str], env: &[(&str, &str)]) -> Channels {
        Self::of_except(playbook, params, env, &[])
    }

    pub fn of_except(
        playbook: &str,
        params: &[&str],
        env: &[(&str, &str)],
        except: &[&str],
    ) -> Channels {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("playbook.yaml"), playbook).expect("playbook");
        let summary = dir.path().join("step-summary.md");
        let summary_path = summary.display().to_string();
        let mut github = env.to_vec();
        github.push(("GITHUB_ACTIONS", "true"));
        github.push(("GITHUB_STEP_SUMMARY", &summary_path));
        let mut seen = Vec::new();
        let mut run = |name: &str, args: &[&str], env: &[(&str, &str)]| {
            let mut all = args.to_vec();
            all.extend_from_slice(params);
            let ran = flow(dir.path(), &all, env);
            seen.push((name.to_string(), ran.context()));
        };
        run("apply", &["apply", "playbook.yaml", "--yes"], &github);
        run("apply -v", &["apply", "playbook.yaml", "--yes", "-v"], env);
        run(
            "apply --output json",
            &["--output", "json", "apply", "playbook.yaml", "--yes"],
            env,
        );
        run(
            "plan",
            &["plan", "playbook.yaml", "--out", "plan.json"],
            env,
        );
        run(
            "plan --output json",
            &["--output", "json", "plan", "playbook.yaml"],
            env,
        );
        let state = dir.path().join(".flow");
        let ids: Vec<String> = run_dirs(&state)
            .iter()
            .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for id in &ids {
            for (name, args) in [
                ("flow show", vec!["show", id.as_str()]),
                (
                    "flow show --output json",
                    vec!["--output", "json", "show", id],
                ),
            ] {
                seen.push((name.to_string(), flow(dir.path(), &args, &[]).context()));
            }
        }
        seen.push((
            "flow runs".to_string(),
            flow(dir.path(), &["runs"], &[]).context(),
        ));
        seen.push(("journal".to_string(), read_tree_except(&state, except)));
        seen.push((
            "saved plan".to_string(),
            read(&dir.path().join("plan.json")),
        ));
        seen.push(("GitHub step summary".to_string(), read(&summary)));
        seen.extend(served(&state, &ids, playbook));
        Channels { dir, seen }
    }

    /// Fails naming the channel that shows `needle`.
    pub fn lack(&self, needle: &str) -> &Self {
        for (channel, text) in &self.seen {
            assert!(
                !text.contains(needle),
                "{channel} shows {needle:?}:\n{text}"
            );
        }
        self
    }

    pub fn channel(&self, name: &str) -> &str {
        self.seen
            .iter()
            .find(|(channel, _)| channel == name)
            .map(|(_, text)| text.as_str())
            .unwrap_or_else(|| panic!("no channel {name}"))
    }

    /// The JSON events `apply --output json` printed (every line must parse).
    pub fn events(&self) -> Vec<Value> {
        let text = self.channel("apply --output json");
        let stdout = text
            .split("--- stdout ---\n")
            .nth(1)
            .and_then(|rest| rest.split("\n--- stderr ---").next())
            .unwrap_or("");
        stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{text}"))
            })
            .collect()
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// Every file under `dir` but those named in `except`, concatenated.
fn read_tree_except(dir: &Path, except: &[&str]) -> String {
    if except.is_empty() {
        return read_tree(dir);
    }
    let mut text = String::new();
    for path in super::run::walk(dir) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if path.is_file() && !except.iter().any(|e| Some(e.to_string()) == name) {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).unwrap_or_default(),
            ));
        }
    }
    text
}

/// What `flow serve` shows of the runs: the list, each run and each of its steps, as pages
/// and as JSON.
fn served(state: &Path, ids: &[String], playbook: &str) -> Vec<(String, String)> {
    let server = super::serve::Server::start(state, "127.0.0.1", &[], &[]);
    let mut seen = vec![
        ("flow serve /".to_string(), server.get("/").body),
        (
            "flow serve /api/runs".to_string(),
            server.get("/api/runs").body,
        ),
    ];
    let steps: Vec<&str> = playbook
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|l| !l.starts_with(' ') && !l.contains(' '))
        .collect();
    for id in ids {
        for path in [format!("/runs/{id}"), format!("/api/runs/{id}")] {
            seen.push((format!("flow serve {path}"), server.get(&path).body));
        }
        for step in &steps {
            let path = format!("/runs/{id}/steps/{step}");
            seen.push((format!("flow serve {path}"), server.get(&path).body));
        }
    }
    seen
}
