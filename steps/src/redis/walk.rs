//! The key walk behind `redis.delete`: SCAN a pattern page by page and judge every key with
//! `where`. Built to keep up with a session store of millions of keys:
//! - a page's reads (GET, and TTL or TYPE only when `where` reads them) go out in one
//!   pipelined round trip together with the SCAN of the next page;
//! - `where` is compiled once per page and judged over all of its keys; a value is parsed
//!   from JSON once, straight into the template engine's own value;
//! - a value is dropped once judged: only the names of the matching keys are kept.

use super::{Connections, RedisTarget, reply};
use flow_engine::prelude::*;
use minijinja::Value as Jinja;
use minijinja::value::{Enumerator, Object};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a long walk or delete says how far it got: once a second, or every 100 round trips
/// if those come faster (so that a test sees it without waiting on a clock).
pub struct Ticker {
    last: Instant,
    rounds: u32,
}

impl Ticker {
    const INTERVAL: Duration = Duration::from_secs(1);
    const ROUNDS: u32 = 100;

    pub fn new() -> Self {
        Self {
            last: Instant::now(),
            rounds: 0,
        }
    }

    /// Counts a round trip; true when it is time to tell.
    pub fn due(&mut self) -> bool {
        self.rounds += 1;
        if self.rounds >= Self::ROUNDS || self.last.elapsed() >= Self::INTERVAL {
            self.rounds = 0;
            self.last = Instant::now();
            return true;
        }
        false
    }
}

/// One walk: which keys, judged by what.
pub struct Walk<'a> {
    pub connections: &'a Connections,
    pub target: &'a RedisTarget,
    pub pattern: &'a str,
    /// SCAN's COUNT: keys per page, and so per pipelined round trip.
    pub batch: u32,
    pub condition: Option<&'a str>,
}

/// What a walk found.
pub struct Walked {
    /// The matching keys, sorted, each once (SCAN may return a key twice).
    pub matched: Vec<String>,
    /// Keys SCAN returned (duplicates included).
    pub scanned: u64,
}

/// What `where` reads of each key: only that is fetched.
#[derive(Debug, Default, Clone, Copy)]
struct Reads {
    value: bool,
    ttl: bool,
    kind: bool,
}

impl Reads {
    fn per_key(self) -> usize {
        usize::from(self.value) + usize::from(self.ttl) + usize::from(self.kind)
    }
}

/// The names one key offers `where`: `key`, and `value`, `ttl`, `type` when it reads them.
#[derive(Debug)]
struct KeyFacts {
    key: Jinja,
    value: Option<Jinja>,
    ttl: Option<Jinja>,
    kind: Option<Jinja>,
}

impl Object for KeyFacts {
    fn get_value(self: &Arc<Self>, name: &Jinja) -> Option<Jinja> {
        match name.as_str()? {
            "key" => Some(self.key.clone()),
            "value" => self.value.clone(),
            "ttl" => self.ttl.clone(),
            "type" => self.kind.clone(),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["key", "value", "ttl", "type"])
    }
}

/// A string value as `where` sees it: parsed JSON when it is JSON, else the text.
fn parse_value(bytes: &[u8]) -> Jinja {
    serde_json::from_slice::<Jinja>(bytes)
        .unwrap_or_else(|_| Jinja::from(String::from_utf8_lossy(bytes).into_owned()))
}

/// Counts as operators read them: 1 234 567.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

impl Walk<'_> {
    /// Walks every key matching the pattern and keeps those `where` holds for.
    pub async fn run(
        &self,
        ctx: &PlanContext,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Walked, StepError> {
        let reads = match self.condition {
            None => Reads::default(),
            Some(condition) => {
                let names = ctx
                    .names_read(condition)
                    .map_err(|e| StepError::failed(format!("`where` failed to compile: {e}")))?;
                Reads {
                    value: names.contains("value"),
                    ttl: names.contains("ttl"),
                    kind: names.contains("type"),
                }
            }
        };
        let began = Instant::now();
        let mut ticker = Ticker::new();
        let mut total: Option<i64> = None;
        let mut matched = Vec::new();
        let mut scanned: u64 = 0;
        let (mut next, mut keys) = self.scan_page(Err(self.scan(0))).await?;
        loop {
            let more = next != 0;
            let mut pipe = redis::pipe();
            for key in &keys {
                if reads.kind {
                    pipe.cmd("TYPE").arg(key);
                }
                if reads.ttl {
                    pipe.cmd("TTL").arg(key);
                }
                if reads.value {
                    pipe.cmd("GET").arg(key);
                }
            }
            if more {
                pipe.add_command(self.scan(next));
            }
            let mut replies = if pipe.cmd_iter().next().is_some() {
                self.connections.pipeline(self.target, &pipe, true).await?
            } else {
                Vec::new()
            };
            let scan_reply = if more { replies.pop() } else { None };
            scanned += keys.len() as u64;
            self.judge(ctx, reads, keys, replies, &mut matched).await?;
            if ticker.due() {
                if total.is_none() {
                    total = reply::as_int(
                        &self
                            .connections
                            .query(self.target, &redis::cmd("DBSIZE"))
                            .await?,
                    );
                }
                let rate = scanned as f64 / began.elapsed().as_secs_f64().max(0.001);
                progress(&format!(
                    "scanned {} keys{}, {} match ({} keys/s)",
                    grouped(scanned),
                    total
                        .map(|t| format!(" of about {} in the database", grouped(t as u64)))
                        .unwrap_or_default(),
                    grouped(matched.len() as u64),
                    grouped(rate as u64)
                ));
            }
            let Some(scan_reply) = scan_reply else { break };
            (next, keys) = self.scan_page(Ok(scan_reply)).await?;
        }
        matched.sort_unstable();
        matched.dedup();
        Ok(Walked { matched, scanned })
    }

    fn scan(&self, cursor: u64) -> redis::Cmd {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(self.pattern)
            .arg("COUNT")
            .arg(self.batch);
        cmd
    }

    /// A SCAN reply as (next cursor, keys); `Err(cmd)` means the command is still to be sent.
    async fn scan_page(
        &self,
        page: Result<redis::Value, redis::Cmd>,
    ) -> Result<(u64, Vec<String>), StepError> {
        let page = match page {
            Ok(page) => page,
            Err(cmd) => self.connections.query(self.target, &cmd).await?,
        };
        scan_reply(page).ok_or_else(|| {
            StepError::failed(format!(
                "SCAN on {} gave an unexpected reply",
                self.target.display()
            ))
        })
    }

    /// Judges one page's keys with the replies to their reads, adding the matches.
    async fn judge(
        &self,
        ctx: &PlanContext,
        reads: Reads,
        keys: Vec<String>,
        replies: Vec<redis::Value>,
        matched: &mut Vec<String>,
    ) -> Result<(), StepError> {
        let Some(condition) = self.condition else {
            matched.extend(keys);
            return Ok(());
        };
        let per_key = reads.per_key();
        let mut rows = Vec::with_capacity(keys.len());
        // Keys whose GET said WRONGTYPE: a hash is read as a mapping, the rest are null.
        let mut not_strings = Vec::new();
        let mut replies = replies.into_iter();
        for (index, key) in keys.iter().enumerate() {
            let mut facts = KeyFacts {
                key: Jinja::from(key.as_str()),
                value: None,
                ttl: None,
                kind: None,
            };
            if per_key > 0 {
                let mut next = || replies.next().unwrap_or(redis::Value::Nil);
                if reads.kind {
                    facts.kind = Some(Jinja::from(
                        reply::as_text(&next()).unwrap_or_else(|| "none".into()),
                    ));
                }
                if reads.ttl {
                    facts.ttl = Some(Jinja::from(reply::as_int(&next()).unwrap_or(-2)));
                }
                if reads.value {
                    facts.value = Some(match next() {
                        redis::Value::BulkString(bytes) => parse_value(&bytes),
                        redis::Value::ServerError(error) if error.code() == "WRONGTYPE" => {
                            not_strings.push(index);
                            Jinja::from(())
                        }
                        redis::Value::ServerError(error) => {
                            return Err(StepError::failed(format!(
                                "GET {key} on {} failed: {error}",
                                self.target.display()
                            )));
                        }
                        _ => Jinja::from(()),
                    });
                }
            }
            rows.push(facts);
        }
        if !not_strings.is_empty() {
            let mut pipe = redis::pipe();
            for &index in &not_strings {
                pipe.cmd("HGETALL").arg(&keys[index]);
            }
            let hashes = self.connections.pipeline(self.target, &pipe, true).await?;
            for (&index, hash) in not_strings.iter().zip(hashes) {
                if matches!(hash, redis::Value::Array(_) | redis::Value::Map(_)) {
                    let map = reply::pairs_to_map(reply::to_json(hash));
                    rows[index].value = Some(flow_engine::evaluate::to_jinja(&map));
                }
            }
        }
        let rows: Vec<Jinja> = rows.into_iter().map(Jinja::from_object).collect();
        let verdicts = ctx.judge(condition, &rows).map_err(|(index, why)| {
            StepError::failed(format!(
                "`where` failed on key `{}` of {}: {why}",
                keys.get(index).map(String::as_str).unwrap_or("?"),
                self.target.display()
            ))
        })?;
        drop(rows);
        matched.extend(
            keys.into_iter()
                .zip(verdicts)
                .filter_map(|(key, yes)| yes.then_some(key)),
        );
        Ok(())
    }
}

/// `[cursor, [key, …]]` as (cursor, keys).
fn scan_reply(page: redis::Value) -> Option<(u64, Vec<String>)> {
    let redis::Value::Array(mut parts) = page else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let keys = parts.pop()?;
    let cursor = reply::as_int(&parts.pop()?)? as u64;
    let keys = match keys {
        redis::Value::Array(keys) => keys.iter().filter_map(reply::as_text).collect(),
        _ => return None,
    };
    Some((cursor, keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1 000");
        assert_eq!(grouped(1_234_567), "1 234 567");
    }

    #[test]
    fn a_value_is_json_when_it_parses_else_its_text() {
        assert_eq!(
            parse_value(br#"{"a":1}"#).get_attr("a").ok(),
            Some(Jinja::from(1))
        );
        assert_eq!(parse_value(b"not json"), Jinja::from("not json"));
        assert_eq!(parse_value(b"12"), Jinja::from(12));
    }
}
