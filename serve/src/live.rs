//! `/runs/<id>/events`: a running run's journal as server-sent events. `events.jsonl` is
//! followed by looking at its length every 200 ms (no file-watching crate): each new whole
//! line that parses is sent as it is (the journal's masked JSON). The stream opens with a
//! `sync` event — what happened between the page and the stream is fetched then — and ends
//! with `end` once no flow holds the run and nothing more was written.

use crate::model::{self, NotFound};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(200);
/// Read at most this much per look, so a burst of output cannot balloon one poll.
const CHUNK: u64 = 1 << 20;
/// A line longer than this (a damaged file) is dropped instead of held.
const LONGEST_LINE: usize = 8 << 20;

struct Follow {
    events: PathBuf,
    run_dir: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    queue: VecDeque<String>,
    synced: bool,
    ended: bool,
}

impl Follow {
    /// New whole lines since the last look.
    fn read_more(&mut self) -> bool {
        if !model::regular_file(&self.events) {
            return false;
        }
        let Ok(mut file) = std::fs::File::open(&self.events) else {
            return false;
        };
        let Ok(length) = file.metadata().map(|m| m.len()) else {
            return false;
        };
        // Replaced or cut short (not what flow does): start over from its end.
        if length < self.offset {
            self.offset = length;
            self.partial.clear();
            return false;
        }
        if length == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return false;
        }
        let mut bytes = Vec::new();
        if file.take(CHUNK).read_to_end(&mut bytes).is_err() {
            return false;
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let mut grew = false;
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim().replace('\r', "");
            // A damaged line is skipped, as the pages skip it.
            if serde_json::from_str::<flow_engine::event::Event>(&text).is_ok() {
                self.queue.push_back(text);
            }
            grew = true;
        }
        if self.partial.len() > LONGEST_LINE {
            self.partial.clear();
        }
        grew || !bytes.is_empty()
    }

    /// `read_more` on a blocking thread: a slow disk holds that thread, not the server.
    async fn look(&mut self) -> bool {
        let mut follow = std::mem::replace(self, Follow::empty());
        match tokio::task::spawn_blocking(move || {
            let grew = follow.read_more();
            (follow, grew)
        })
        .await
        {
            Ok((follow, grew)) => {
                *self = follow;
                grew
            }
            Err(_) => {
                self.ended = true;
                false
            }
        }
    }

    fn empty() -> Self {
        Follow {
            events: PathBuf::new(),
            run_dir: PathBuf::new(),
            offset: 0,
            partial: Vec::new(),
            queue: VecDeque::new(),
            synced: true,
            ended: true,
        }
    }

    async fn next(&mut self) -> Option<SseEvent> {
        if !self.synced {
            self.synced = true;
            return Some(SseEvent::default().event("sync").data("{}"));
        }
        loop {
            if let Some(line) = self.queue.pop_front() {
                return Some(SseEvent::default().data(line));
            }
            if self.ended {
                return None;
            }
            tokio::time::sleep(POLL).await;
            if !self.look().await && !flow_engine::run_lock::in_use(&self.run_dir) {
                // One last look: what the flow wrote just before it let go.
                self.look().await;
                if self.queue.is_empty() {
                    self.ended = true;
                    return Some(SseEvent::default().event("end").data("{}"));
                }
            }
        }
    }
}

/// The stream for the run `id` names.
pub fn follow(
    state_dir: PathBuf,
    id: String,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, NotFound> {
    let record = model::find(&state_dir, &id)?;
    let events = model::events_path(&state_dir, &record);
    let run_dir = flow_engine::journal::runs_dir(&state_dir).join(&record.run_id);
    let offset = std::fs::metadata(&events).map(|m| m.len()).unwrap_or(0);
    let follow = Follow {
        events,
        run_dir,
        offset,
        partial: Vec::new(),
        queue: VecDeque::new(),
        synced: false,
        ended: false,
    };
    let stream = futures_util::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
