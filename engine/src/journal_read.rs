//! Reading a run's `events.jsonl` back: one line at a time (a journal of a chatty run may
//! hold hundreds of MiB; nothing keeps it whole in memory), each line taken lossily (a line
//! cut inside a UTF-8 character by a full disk is one damaged line, not an unreadable
//! journal), and what could not be read said, not skipped in silence: `flow show` reports
//! it and `flow apply --resume` refuses a journal that lost the end of a step.

use crate::event::Event;
use std::io::BufRead;
use std::path::Path;

/// What reading a journal found beside its events.
#[derive(Debug, Default, Clone)]
pub struct Damage {
    /// Lines that are not events, but for a cut one that ends the journal or is followed by
    /// a resume (the record of a crash): their number and why.
    pub unreadable: Vec<(usize, String)>,
    /// Lines cut short where a flow was killed or its disk filled: left out.
    pub cut: Vec<CutLine>,
}

/// A line the journal lost the end of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutLine {
    /// 1-based.
    pub line: usize,
    /// When the line was the end of a step (`step_finished`): the step, as far as the line
    /// goes — its id (with `[element]`), and its status when that was written before the cut.
    pub step_end: Option<(String, Option<String>)>,
}

impl Damage {
    pub fn is_empty(&self) -> bool {
        self.unreadable.is_empty() && self.cut.is_empty()
    }

    /// One line per problem, for people.
    pub fn lines(&self) -> Vec<String> {
        let mut problems: Vec<(usize, String)> = self.unreadable.clone();
        problems.extend(self.cut.iter().map(|cut| {
            let what = match &cut.step_end {
                Some((step, Some(status))) => format!(": the end of step `{step}` ({status})"),
                Some((step, None)) => format!(": the end of step `{step}`"),
                None => String::new(),
            };
            (
                cut.line,
                format!(
                    "cut short (flow was killed, or the disk was full, while writing it){what}"
                ),
            )
        }));
        problems.sort_by_key(|(line, _)| *line);
        problems
            .into_iter()
            .map(|(line, why)| format!("line {line}: {why}"))
            .collect()
    }

    /// Why a resume cannot go on from this journal: a line that is not an event (what it
    /// said is lost: a step it finished would run again), or a step whose end was cut before
    /// it said it failed (it may have succeeded, or its `undo` may have).
    pub fn blocks_resume(&self) -> Option<String> {
        if let Some((line, why)) = self.unreadable.first() {
            return Some(format!("line {line} is not an event of the run ({why})"));
        }
        self.cut.iter().find_map(|cut| match &cut.step_end {
            Some((step, status)) if status.as_deref().is_none_or(|s| s == "succeeded") => {
                Some(format!(
                    "line {} was cut short: the end of step `{step}` — whether it succeeded, and what it returned, is not recorded",
                    cut.line
                ))
            }
            _ => None,
        })
    }
}

/// Reads the events of `path` in order, giving each to `each`; returns what could not be
/// read. An error is a journal that cannot be read at all (missing, not a regular file).
pub fn read_events(
    path: &Path,
    each: impl FnMut(Event),
) -> Result<Damage, crate::regular_file::ReadError> {
    let (file, _) = crate::regular_file::open(path)?;
    read_events_from(std::io::BufReader::with_capacity(1 << 16, file), each)
        .map_err(crate::regular_file::ReadError::Io)
}

/// [`read_events`] from a reader (`flow serve` reads at most so much of a journal).
pub fn read_events_from(
    mut reader: impl BufRead,
    mut each: impl FnMut(Event),
) -> std::io::Result<Damage> {
    let mut damage = Damage::default();
    let mut bytes = Vec::new();
    let mut number = 0usize;
    // A cut line counts as the record of a crash only when the journal ends there or a
    // resume goes on after it; decided at the next line.
    let mut pending_cut: Option<CutLine> = None;
    loop {
        bytes.clear();
        let read = reader.read_until(b'\n', &mut bytes)?;
        if read == 0 {
            break;
        }
        number += 1;
        let text = String::from_utf8_lossy(&bytes);
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Event>(line);
        if let Some(cut) = pending_cut.take() {
            if matches!(parsed, Ok(Event::RunStarted { .. })) {
                damage.cut.push(cut);
            } else {
                damage.unreadable.push((
                    cut.line,
                    "cut short in the middle of the journal".to_string(),
                ));
            }
        }
        match parsed {
            Ok(event) => each(event),
            Err(error) if error.is_eof() => {
                pending_cut = Some(CutLine {
                    line: number,
                    step_end: step_end(line),
                })
            }
            Err(error) => damage.unreadable.push((number, not_an_event(line, &error))),
        }
    }
    damage.cut.extend(pending_cut);
    Ok(damage)
}

/// Why a whole line is not an event: not JSON at all, or JSON this flow does not know.
fn not_an_event(line: &str, error: &serde_json::Error) -> String {
    if serde_json::from_str::<serde_json::Value>(line).is_ok() {
        format!("JSON, but not an event this flow knows: {error}")
    } else {
        format!("not JSON: {error}")
    }
}

/// The step a cut `step_finished` line was about, and its status if the cut came after it —
/// from the start of the line, which flow writes in this order.
fn step_end(line: &str) -> Option<(String, Option<String>)> {
    static START: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        regex::Regex::new(
            r#"^\{"event":"step_finished","step":"((?:[^"\\]|\\.)*)"(?:,"element":(\d+))?(?:,"status":"([a-z_]+)")?"#,
        )
        .expect("a valid regex")
    });
    let found = start.captures(line)?;
    let step = found.get(1)?.as_str().to_string();
    let step = match found.get(2) {
        Some(element) => format!("{step}[{}]", element.as_str()),
        None => step,
    };
    // The status is whole only when the line goes on after its closing quote.
    let status = found
        .get(3)
        .filter(|m| m.end() < line.len())
        .map(|m| m.as_str().to_string());
    Some((step, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(text: &[u8]) -> (Vec<Event>, Damage) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, text).unwrap();
        let mut events = Vec::new();
        let damage = read_events(&path, |e| events.push(e)).unwrap();
        (events, damage)
    }

    const STARTED: &str =
        r#"{"event":"run_started","run_id":"r","playbook":"p","name":"n","mode":"apply","at":"t"}"#;
    const FINISHED: &str = r#"{"event":"step_finished","step":"made","status":"succeeded","duration_ms":1,"attempts":1}"#;

    #[test]
    fn a_line_cut_inside_a_utf8_character_loses_that_line_only() {
        let output = r#"{"event":"step_output","step":"made","stream":"stdout","line":"done ✔"}"#;
        let cut = &output.as_bytes()[..output.len() - 4];
        let text = [STARTED.as_bytes(), b"\n", FINISHED.as_bytes(), b"\n", cut].concat();
        let (events, damage) = journal(&text);
        assert_eq!(events.len(), 2);
        assert!(damage.unreadable.is_empty());
        assert_eq!(damage.cut.len(), 1);
        assert_eq!(
            damage.blocks_resume(),
            None,
            "a cut output line loses nothing"
        );
    }

    #[test]
    fn a_cut_end_of_a_step_blocks_a_resume_unless_it_says_it_failed() {
        let cut = &FINISHED[..FINISHED.len() - 10];
        let (_, damage) = journal(format!("{STARTED}\n{cut}").as_bytes());
        assert_eq!(
            damage.cut[0].step_end,
            Some(("made".into(), Some("succeeded".into())))
        );
        assert!(damage.blocks_resume().unwrap().contains("step `made`"));
        let failed = r#"{"event":"step_finished","step":"made","element":2,"status":"failed","dur"#;
        let (_, damage) = journal(format!("{STARTED}\n{failed}").as_bytes());
        assert_eq!(
            damage.cut[0].step_end,
            Some(("made[2]".into(), Some("failed".into())))
        );
        assert_eq!(damage.blocks_resume(), None);
        let no_status = r#"{"event":"step_finished","step":"made","status":"succ"#;
        let (_, damage) = journal(format!("{STARTED}\n{no_status}").as_bytes());
        assert_eq!(damage.cut[0].step_end, Some(("made".into(), None)));
        assert!(damage.blocks_resume().is_some());
    }

    #[test]
    fn a_cut_line_followed_by_a_resume_is_a_crash_and_garbage_is_damage() {
        let cut = r#"{"event":"step_output","step":"made","stream":"stdout","li"#;
        let text = format!("{STARTED}\n{cut}\n{STARTED}\n{FINISHED}\n");
        let (events, damage) = journal(text.as_bytes());
        assert_eq!(events.len(), 3);
        assert!(damage.unreadable.is_empty(), "{damage:?}");
        let text =
            format!("{STARTED}\n{cut}\n{FINISHED}\n\u{0}\u{0}garbage\n{{\"event\":\"new\"}}\n");
        let (events, damage) = journal(text.as_bytes());
        assert_eq!(events.len(), 2);
        let lines: Vec<usize> = damage.unreadable.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 4, 5]);
        assert!(damage.blocks_resume().unwrap().starts_with("line 2 "));
        assert!(damage.lines()[2].contains("not an event this flow knows"));
    }
}
