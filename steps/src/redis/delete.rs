//! `redis.delete`: the keys matching `pattern` (walked with SCAN, never KEYS) for which
//! `where` holds — an expression over `key`, `value` (parsed JSON when it is JSON), `ttl` and
//! `type`. Plan counts them and shows a sample; apply decides every key before deleting any.

use super::walk::{self, Walk, Walked};
use super::{RedisTarget, reply};
use flow_engine::prelude::*;

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
    /// Keys per SCAN page (read in one pipelined round trip) and per UNLINK (default 1000).
    pub batch: Option<u32>,
    /// Only count and sample the matching keys; delete nothing (the step is then a read, so it
    /// also runs during plan): to show an operator the count before a `confirm`.
    #[serde(default)]
    pub dry_run: bool,
    /// How many of the matching keys the `sample` output lists: a number (default 20), or
    /// `all` — every one, to print each key as a runbook's loop did (`echo "Deleting $key"`).
    pub sample: Option<SampleSize>,
}

/// A number of keys, or `all`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SampleSize {
    Count(u32),
    All(Every),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    All,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteOutputs {
    /// Keys that matched `pattern` and `where`.
    pub matched: u64,
    /// Keys deleted (fewer than matched if some expired meanwhile); 0 with `dry_run`.
    pub deleted: u64,
    /// Keys the pattern matched (SCAN), before `where`.
    pub scanned: u64,
    /// The first matching keys, sorted: 20, or as many as `sample` says (`all`: every one).
    pub sample: Vec<String>,
}

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

impl Delete {
    /// Every key matching the pattern and the condition, sorted.
    async fn matches(
        &self,
        params: &DeleteParams,
        ctx: &PlanContext,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<Walked, StepError> {
        let connections = super::connections(ctx);
        let walk = Walk {
            connections: &connections,
            target: &params.target,
            pattern: &params.pattern,
            batch: params.batch(),
            condition: params.condition.as_deref(),
        };
        walk.run(ctx, progress).await
    }

    /// Deletes `keys` with UNLINK (freed in the background, so the server does not stall on a
    /// large value), `batch` keys per command. One command per round trip on purpose: the
    /// count of deleted keys stays exact if the server goes away half way. A server older
    /// than Redis 4 (no UNLINK) gets DEL.
    async fn unlink(
        &self,
        params: &DeleteParams,
        ctx: &StepContext,
        keys: &[String],
        progress: &mut Progress<'_>,
    ) -> Result<(), StepError> {
        let connections = super::connections(ctx);
        let mut verb = "UNLINK";
        let mut ticker = walk::Ticker::new();
        for chunk in keys.chunks(params.batch() as usize) {
            let command = |verb: &str| {
                let mut command = redis::cmd(verb);
                for key in chunk {
                    command.arg(key);
                }
                command
            };
            let mut reply = connections.query(&params.target, &command(verb)).await;
            if verb == "UNLINK"
                && let Err(error) = &reply
                && error.message().contains("unknown command")
            {
                verb = "DEL";
                reply = connections.query(&params.target, &command(verb)).await;
            }
            match reply {
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
            if ticker.due() {
                ctx.progress(&format!(
                    "deleted {} of {} matching keys",
                    walk::grouped(progress.deleted),
                    walk::grouped(progress.matched as u64)
                ));
            }
        }
        Ok(())
    }
}

impl DeleteParams {
    fn batch(&self) -> u32 {
        self.batch.unwrap_or(1000).max(1)
    }

    fn sample_size(&self) -> usize {
        match self.sample {
            None => 20,
            Some(SampleSize::Count(count)) => count as usize,
            Some(SampleSize::All(Every::All)) => usize::MAX,
        }
    }
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
        let progress = |line: &str| ctx.progress(line);
        match self.matches(params, ctx, &progress).await {
            Ok(Walked { matched: keys, .. }) => {
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
            Err(error) if error.message().starts_with("`where` failed") => {
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
        let progress = |line: &str| ctx.progress(line);
        let Walked {
            matched: keys,
            scanned,
        } = self.matches(&params, ctx, &progress).await?;
        let sample: Vec<String> = keys.iter().take(params.sample_size()).cloned().collect();
        if params.dry_run {
            ctx.output(
                "log",
                &format!(
                    "{} of {} keys match on {} (dry run: nothing deleted)",
                    keys.len(),
                    scanned,
                    params.target.display()
                ),
            );
            return Ok(DeleteOutputs {
                matched: keys.len() as u64,
                deleted: 0,
                scanned,
                sample,
            });
        }
        let mut progress = Progress {
            ctx,
            target: params.target.display(),
            matched: keys.len(),
            deleted: 0,
            finished: false,
        };
        self.unlink(&params, ctx, &keys, &mut progress).await?;
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
            scanned,
        })
    }
}
