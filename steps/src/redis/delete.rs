//! `redis.delete`: the keys matching `pattern` (walked with SCAN, never KEYS) for which
//! `where` holds — an expression over `key`, `value` (parsed JSON when it is JSON), `ttl` and
//! `type`. Plan counts them and shows a sample; apply decides every key before deleting any.

use super::{Connections, RedisTarget, reply};
use flow_engine::prelude::*;
use serde_json::{Map, Value, json};

pub struct Delete;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeleteParams {
    #[serde(flatten)]
    pub target: RedisTarget,
    /// A SCAN pattern: `session:*`.
    pub pattern: String,
    /// Which matching keys to delete: an expression over `key`, `value`, `ttl` (seconds, -1
    /// without expiry) and `type`, e.g. `value.organisationId == params.org`. Default: all.
    #[serde(rename = "where")]
    #[schemars(rename = "where", extend("x-flow-deferred" = ["key", "value", "ttl", "type"]))]
    pub condition: Option<String>,
    /// Keys per SCAN round and per DEL (default 500).
    pub batch: Option<u32>,
    /// Only count and sample the matching keys; delete nothing (the step is then a read, so it
    /// also runs during plan): to show an operator the count before a `confirm`.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteOutputs {
    /// Keys that matched `pattern` and `where`.
    pub matched: u64,
    /// Keys deleted (fewer than matched if some expired meanwhile); 0 with `dry_run`.
    pub deleted: u64,
    /// Up to 20 of the matching keys.
    pub sample: Vec<String>,
}

/// A long delete says how far it got every this many DEL batches.
const PROGRESS_EVERY: usize = 10;

/// How far a delete got; if it is stopped half way (its `timeout`, Ctrl-C), dropping it says
/// how many keys were deleted before.
struct Progress<'a> {
    ctx: &'a StepContext,
    target: String,
    matched: usize,
    deleted: u64,
    finished: bool,
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.ctx.output(
                "log",
                &format!(
                    "stopped after deleting {} of {} matching keys on {}",
                    self.deleted, self.matched, self.target
                ),
            );
        }
    }
}

/// Evaluates `where` through whichever context is at hand.
type Evaluate<'a> = &'a (dyn Fn(&str, &Map<String, Value>) -> Result<Value, String> + Sync);

impl Delete {
    /// Every key matching the pattern and the condition.
    async fn matches(
        &self,
        connections: &Connections,
        params: &DeleteParams,
        evaluate: Evaluate<'_>,
    ) -> Result<Vec<String>, StepError> {
        let target = &params.target;
        let batch = params.batch.unwrap_or(500).max(1);
        let needs_value = params
            .condition
            .as_deref()
            .is_some_and(|c| c.contains("value"));
        let needs_ttl = params
            .condition
            .as_deref()
            .is_some_and(|c| c.contains("ttl"));
        let needs_type = needs_value
            || params
                .condition
                .as_deref()
                .is_some_and(|c| c.contains("type"));
        let mut cursor: u64 = 0;
        let mut matched = Vec::new();
        loop {
            let page = connections
                .query(
                    target,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&params.pattern)
                        .arg("COUNT")
                        .arg(batch),
                )
                .await?;
            let (next, keys) = scan_page(page).ok_or_else(|| {
                StepError::failed(format!(
                    "SCAN on {} gave an unexpected reply",
                    target.display()
                ))
            })?;
            for key in keys {
                let Some(condition) = &params.condition else {
                    matched.push(key);
                    continue;
                };
                let mut names = Map::new();
                names.insert("key".into(), json!(key));
                let kind = if needs_type {
                    self.text(connections, target, redis::cmd("TYPE").arg(&key))
                        .await?
                } else {
                    String::new()
                };
                if needs_type {
                    names.insert("type".into(), json!(kind));
                }
                if needs_ttl {
                    names.insert(
                        "ttl".into(),
                        json!(reply::as_int(
                            &connections
                                .query(target, redis::cmd("TTL").arg(&key))
                                .await?
                        )),
                    );
                }
                if needs_value {
                    names.insert(
                        "value".into(),
                        self.value(connections, target, &key, &kind).await?,
                    );
                }
                let verdict = evaluate(condition, &names).map_err(|e| {
                    StepError::failed(format!(
                        "`where` failed on key `{key}` of {}: {e}",
                        target.display()
                    ))
                })?;
                if flow_engine::evaluate::to_jinja(&verdict).is_true() {
                    matched.push(key);
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        matched.sort();
        matched.dedup();
        Ok(matched)
    }

    async fn text(
        &self,
        connections: &Connections,
        target: &RedisTarget,
        cmd: &redis::Cmd,
    ) -> Result<String, StepError> {
        Ok(reply::as_text(&connections.query(target, cmd).await?).unwrap_or_default())
    }

    /// A string value parsed as JSON when it is JSON; a hash as a mapping; else null.
    async fn value(
        &self,
        connections: &Connections,
        target: &RedisTarget,
        key: &str,
        kind: &str,
    ) -> Result<Value, StepError> {
        Ok(match kind {
            "string" => {
                let text = self
                    .text(connections, target, redis::cmd("GET").arg(key))
                    .await?;
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            }
            "hash" => reply::pairs_to_map(reply::to_json(
                connections
                    .query(target, redis::cmd("HGETALL").arg(key))
                    .await?,
            )),
            _ => Value::Null,
        })
    }
}

fn scan_page(page: redis::Value) -> Option<(u64, Vec<String>)> {
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

impl StepType for Delete {
    const NAME: &'static str = "redis.delete";
    const SUMMARY: &'static str =
        "Delete the keys matching a pattern (SCAN) and a `where` over key, value, ttl and type";
    const EFFECT: Effect = Effect::Write;
    const EXAMPLE: &'static str = r#"purge_org:
  type: redis.delete
  with:
    url: redis://127.0.0.1:6379
    pattern: "session:*"
    where: value is mapping and value.organisationId == params.org"#;
    type Params = DeleteParams;
    type Outputs = DeleteOutputs;

    async fn describe(&self, params: &DeleteParams, ctx: &PlanContext) -> Description {
        let connections = super::connections(ctx);
        let what = match &params.condition {
            Some(condition) => format!(
                "keys matching `{}` where {}",
                params.pattern,
                condition.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            None => format!("keys matching `{}`", params.pattern),
        };
        if ctx.offline {
            let action = if params.dry_run {
                Action::Read
            } else {
                Action::Delete
            };
            let verb = if params.dry_run { "count" } else { "delete" };
            return Description::new(
                action,
                format!("{verb} {what} on {}", params.target.display()),
            )
            .detail("not counted: --offline");
        }
        let evaluate = |e: &str, n: &Map<String, Value>| ctx.evaluate(e, n);
        match self.matches(&connections, params, &evaluate).await {
            Ok(keys) => {
                let (action, verb) = if params.dry_run {
                    (Action::Read, "count")
                } else {
                    (Action::Delete, "delete")
                };
                let mut d = Description::new(
                    action,
                    format!(
                        "{verb} {} {what} on {}",
                        keys.len(),
                        params.target.display()
                    ),
                );
                for key in keys.iter().take(10) {
                    d = d.detail(format!("- {key}"));
                }
                if keys.len() > 10 {
                    d = d.detail(format!("… and {} more", keys.len() - 10));
                }
                d
            }
            // A `where` that fails now will fail at apply: the plan fails. A server out of
            // reach now may be reachable at apply: the plan says so and goes on.
            Err(error) if error.message().contains("`where` failed") => {
                Description::new(Action::Delete, format!("error: {error}"))
            }
            Err(error) => Description::new(
                Action::Delete,
                format!("delete {what} on {}", params.target.display()),
            )
            .detail(format!("cannot count them now: {error}")),
        }
    }

    async fn effect_for(&self, params: &DeleteParams, _: &PlanContext) -> Option<Effect> {
        params.dry_run.then_some(Effect::Read)
    }

    async fn apply(
        &self,
        params: DeleteParams,
        ctx: &StepContext,
    ) -> Result<DeleteOutputs, StepError> {
        let connections = super::connections(ctx);
        let evaluate = |e: &str, n: &Map<String, Value>| ctx.evaluate(e, n);
        let keys = self.matches(&connections, &params, &evaluate).await?;
        let sample: Vec<String> = keys.iter().take(20).cloned().collect();
        if params.dry_run {
            ctx.output(
                "log",
                &format!(
                    "{} keys match on {} (dry run: nothing deleted)",
                    keys.len(),
                    params.target.display()
                ),
            );
            return Ok(DeleteOutputs {
                matched: keys.len() as u64,
                deleted: 0,
                sample,
            });
        }
        let batch = params.batch.unwrap_or(500).max(1) as usize;
        let mut progress = Progress {
            ctx,
            target: params.target.display(),
            matched: keys.len(),
            deleted: 0,
            finished: false,
        };
        let rounds = keys.len().div_ceil(batch);
        for (round, chunk) in keys.chunks(batch).enumerate() {
            let mut del = redis::cmd("DEL");
            for key in chunk {
                del.arg(key);
            }
            match connections.query(&params.target, &del).await {
                Ok(reply) => progress.deleted += reply::as_int(&reply).unwrap_or(0) as u64,
                Err(error) => {
                    progress.finished = true;
                    return Err(StepError::failed(format!(
                        "{}; {} of {} matching keys were deleted before it",
                        error.message(),
                        progress.deleted,
                        progress.matched
                    )));
                }
            }
            if (round + 1) % PROGRESS_EVERY == 0 && round + 1 < rounds {
                ctx.output(
                    "log",
                    &format!(
                        "deleted {} of {} matching keys so far on {}",
                        progress.deleted, progress.matched, progress.target
                    ),
                );
            }
        }
        progress.finished = true;
        let deleted = progress.deleted;
        ctx.output(
            "log",
            &format!(
                "deleted {deleted} of {} matching keys on {}",
                keys.len(),
                params.target.display()
            ),
        );
        Ok(DeleteOutputs {
            sample,
            matched: keys.len() as u64,
            deleted,
        })
    }
}
