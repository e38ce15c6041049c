//! A reader that stops early (`flow schema | head`) is not an error: flow exits quietly, with
//! no panic message on the terminal.

use crate::common::flow_bin;
use std::io::Read;
use std::process::{Command, Stdio};

/// Runs flow with `args`, reads the first bytes of its output and closes the pipe, as `head`
/// does; returns flow's exit code and its stderr.
fn read_the_start_of(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(flow_bin())
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flow");
    let mut first = [0u8; 16];
    let mut stdout = child.stdout.take().expect("stdout");
    stdout
        .read_exact(&mut first)
        .expect("the start of the output");
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    (child.wait().expect("flow ends").code(), stderr)
}

#[test]
fn flow_schema_and_steps_as_json_end_quietly_when_the_reader_stops() {
    // Both print far more than a pipe holds, so flow is still writing when the pipe closes.
    for args in [&["schema"][..], &["--output", "json", "steps"][..]] {
        let (code, stderr) = read_the_start_of(args);
        assert_eq!(code, Some(0), "flow {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "flow {args:?}: {stderr}");
        assert_eq!(stderr, "", "flow {args:?}");
    }
}
