//! On a terminal, `choose` shows its options as a list and `confirm` shows its table and asks.
//! The terminal is a real pseudo-terminal from util-linux `script`; each answer is typed only
//! after its prompt has appeared on screen.

use crate::common::pty::Terminal;

const PLAYBOOK: &str = r#"flow: 1
steps:
  pick:
    type: choose
    with:
      prompt: Which backup?
      options: [daily/a.rdb, daily/b.rdb, daily/c.rdb]
      default: daily/a.rdb
  ok:
    type: confirm
    with:
      message: "Restore {{ steps.pick.value }}?"
      show: [{ key: daily/b.rdb, size: 2048 }]
    undo:
      type: file.write
      with: { path: undo.txt, content: undone }
  restore:
    type: file.write
    with: { path: restored.txt, content: "{{ steps.pick.value }}" }
finally:
  after:
    type: file.write
    with: { path: finally.txt, content: "ok {{ steps.ok.status }}" }
"#;

#[test]
fn choose_lists_options_and_confirm_shows_its_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("playbook.yaml"), PLAYBOOK).expect("write");
    let mut terminal = Terminal::start(dir.path(), "apply playbook.yaml");
    terminal.wait_for("daily/c.rdb");
    terminal.answer("Which backup?", "\x1b[B\r");
    terminal.wait_for("size");
    terminal.answer("Restore daily/b.rdb?", "y\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("2048"),
        "the `show` table was not printed:\n{screen}"
    );
    assert!(screen.contains("approved (terminal, by "), "{screen}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("restored.txt")).expect("restored.txt"),
        "daily/b.rdb"
    );
    assert!(!dir.path().join("undo.txt").exists());
}

#[test]
fn declining_on_the_terminal_runs_undo_and_finally_and_exits_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("playbook.yaml"), PLAYBOOK).expect("write");
    let mut terminal = Terminal::start(dir.path(), "apply playbook.yaml");
    terminal.answer("Which backup?", "\r");
    terminal.answer("Restore daily/a.rdb?", "n\r");
    let (code, screen) = terminal.finish();
    assert_eq!(code, 3, "{screen}");
    assert!(
        !dir.path().join("restored.txt").exists(),
        "a declined run went on:\n{screen}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("finally.txt")).expect("finally ran"),
        "ok declined"
    );
    assert!(screen.contains("declined"), "{screen}");
}
