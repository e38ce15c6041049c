//! `redis.command`: one command. Whether it is a read (runs during plan) or a write is the
//! server's own answer (COMMAND INFO flags), unless the step says `effect:`.

use super::{RedisTarget, reply};
use flow_engine::prelude::*;
use std::collections::HashMap;

/// Commands the server does not flag `readonly` that only look: they may run during plan.
/// (Flag-less is not enough: PUBLISH and EVAL carry no `write` flag either.)
const HARMLESS: &[&str] = &[
    "PING", "ECHO", "INFO", "TIME", "LASTSAVE", "ROLE", "COMMAND",
];

/// Commands every Redis flags `readonly`: what the plan goes by when the server cannot be
/// asked, so that a health check against a server that is down is a read that failed, not a
/// write.
const KNOWN_READS: &[&str] = &[
    "GET",
    "MGET",
    "STRLEN",
    "GETRANGE",
    "EXISTS",
    "TYPE",
    "TTL",
    "PTTL",
    "DBSIZE",
    "KEYS",
    "SCAN",
    "HGET",
    "HMGET",
    "HGETALL",
    "HKEYS",
    "HVALS",
    "HLEN",
    "HEXISTS",
    "HSCAN",
    "LLEN",
    "LRANGE",
    "LINDEX",
    "SCARD",
    "SMEMBERS",
    "SISMEMBER",
    "SSCAN",
    "ZCARD",
    "ZRANGE",
    "ZSCORE",
    "ZRANK",
    "ZSCAN",
    "ZCOUNT",
    "XLEN",
    "XRANGE",
    "XINFO",
    "OBJECT",
    "DUMP",
    "RANDOMKEY",
    "BITCOUNT",
    "GETBIT",
];

/// Commands every Redis flags `readonly` that still change something, so never run during
/// plan: PFCOUNT may rewrite its key (it caches the count in the HyperLogLog and replicates
/// that: Redis marks it `may_replicate`, a flag COMMAND INFO hides), TOUCH is there to change
/// the keys' last access time (what eviction goes by).
const READONLY_BUT_CHANGES: &[&str] = &["PFCOUNT", "TOUCH"];

/// Subcommands that only look, of commands that also change things (so that the server flags
/// neither `readonly`): what a health check or an incident reads (seed 001).
const HARMLESS_SUBCOMMANDS: &[(&str, &str)] = &[
    ("SLOWLOG", "GET"),
    ("SLOWLOG", "LEN"),
    ("CONFIG", "GET"),
    ("CLIENT", "LIST"),
    ("CLIENT", "INFO"),
    ("CLIENT", "GETNAME"),
    ("CLIENT", "ID"),
    ("MEMORY", "USAGE"),
    ("MEMORY", "STATS"),
    ("MEMORY", "DOCTOR"),
    ("LATENCY", "LATEST"),
    ("LATENCY", "HISTORY"),
    ("LATENCY", "DOCTOR"),
    ("LATENCY", "GRAPH"),
    ("ACL", "WHOAMI"),
    ("OBJECT", "ENCODING"),
    ("OBJECT", "FREQ"),
    ("OBJECT", "IDLETIME"),
];

/// CONFIG GET names whose values are credentials: masked wherever the reply goes.
const SECRET_CONFIG: &[&str] = &["requirepass", "masterauth"];

pub struct Command;

/// What a run learned about commands: asked once per run, forgotten when it ends (the server
/// may be upgraded between two runs).
#[derive(Default)]
pub struct CommandFacts {
    /// (target, command name) → read-only?
    read_only: tokio::sync::Mutex<HashMap<(String, String), bool>>,
    /// Why the server could not be asked, by target: the plan says so next to the line.
    unreachable: tokio::sync::Mutex<HashMap<String, String>>,
}

impl Resource for CommandFacts {}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CommandParams {
    #[serde(flatten)]
    pub target: RedisTarget,
    /// The command and its arguments: `[SET, "session:1", "{}"]`.
    #[schemars(length(min = 1))]
    pub command: Vec<Text>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommandOutputs {
    /// The reply as data: text, integers, lists, mappings; null for nil.
    pub reply: serde_json::Value,
}

impl CommandParams {
    fn name(&self) -> String {
        self.command
            .first()
            .map(|c| c.0.to_uppercase())
            .unwrap_or_default()
    }

    /// Whether this is a subcommand known to only look (`SLOWLOG GET`, `CONFIG GET`, …).
    fn harmless_subcommand(&self) -> bool {
        let sub = self
            .command
            .get(1)
            .map(|c| c.0.to_uppercase())
            .unwrap_or_default();
        let name = self.name();
        HARMLESS_SUBCOMMANDS
            .iter()
            .any(|(n, s)| *n == name && *s == sub)
    }

    fn shown(&self) -> String {
        self.command
            .iter()
            .map(|a| flow_engine::template_env::shell_quote(&a.0))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd(&self.command[0].0);
        for arg in &self.command[1..] {
            cmd.arg(&arg.0);
        }
        cmd
    }
}

impl StepType for Command {
    const NAME: &'static str = "redis.command";
    const SUMMARY: &'static str =
        "Run one Redis command (a read runs during plan, as the server's COMMAND INFO says)";
    const EFFECT: Effect = Effect::Write;
    const EFFECT_OVERRIDABLE: bool = true;
    const EXAMPLE: &'static str = r#"ping:
  type: redis.command
  with:
    url: redis://127.0.0.1:6379
    command: [PING]
count_sessions:
  type: redis.command
  with:
    url: redis://127.0.0.1:6379
    command: [DBSIZE]"#;
    type Params = CommandParams;
    type Outputs = CommandOutputs;

    async fn describe(&self, params: &CommandParams, ctx: &PlanContext) -> Description {
        let action = if matches!(
            params.name().as_str(),
            "SHUTDOWN" | "FLUSHALL" | "FLUSHDB" | "DEL" | "UNLINK"
        ) {
            Action::Delete
        } else {
            Action::Change
        };
        let line = Description::new(
            action,
            format!("{} on {}", params.shown(), params.target.display()),
        );
        let facts = ctx.resource::<CommandFacts>();
        match facts.unreachable.lock().await.get(&params.target.display()) {
            Some(why) => line.detail(format!(
                "shown as a write: could not ask the server whether it only reads ({why})"
            )),
            None => line,
        }
    }

    async fn effect_for(&self, params: &CommandParams, ctx: &PlanContext) -> Option<Effect> {
        let name = params.name();
        if READONLY_BUT_CHANGES.contains(&name.as_str()) {
            return Some(Effect::Write);
        }
        // Commands every Redis reads only need no question to the server (and no server: a
        // plan of a PING on an instance not launched yet is a read).
        if params.harmless_subcommand()
            || HARMLESS.contains(&name.as_str())
            || KNOWN_READS.contains(&name.as_str())
        {
            return Some(Effect::Read);
        }
        let connections = super::connections(ctx);
        if ctx.offline {
            return None;
        }
        let facts = ctx.resource::<CommandFacts>();
        let key = (params.target.display(), name.clone());
        if let Some(read_only) = facts.read_only.lock().await.get(&key) {
            return Some(if *read_only {
                Effect::Read
            } else {
                Effect::Write
            });
        }
        let info = match connections
            .query(&params.target, redis::cmd("COMMAND").arg("INFO").arg(&name))
            .await
        {
            Ok(info) => info,
            Err(error) => {
                facts
                    .unreachable
                    .lock()
                    .await
                    .insert(params.target.display(), error.message().to_string());
                return None;
            }
        };
        // COMMAND INFO → [[name, arity, [flags…], …]]; an unknown command → [nil].
        let flags = match info {
            redis::Value::Array(entries) => match entries.into_iter().next()? {
                redis::Value::Array(fields) => fields.into_iter().nth(2)?,
                _ => return None,
            },
            _ => return None,
        };
        let flagged_readonly = match flags {
            redis::Value::Array(flags) | redis::Value::Set(flags) => flags
                .iter()
                .any(|f| reply::as_text(f).is_some_and(|t| t.eq_ignore_ascii_case("readonly"))),
            _ => false,
        };
        let read_only = flagged_readonly || HARMLESS.contains(&name.as_str());
        facts.read_only.lock().await.insert(key, read_only);
        Some(if read_only {
            Effect::Read
        } else {
            Effect::Write
        })
    }

    async fn apply(
        &self,
        params: CommandParams,
        ctx: &StepContext,
    ) -> Result<CommandOutputs, StepError> {
        let connections = super::connections(ctx);
        let cmd = params.cmd();
        if params.name() == "SHUTDOWN" {
            // The server exits and the connection drops: that is the success.
            let mut connection = connections.get(&params.target).await?;
            let result = connections
                .timed(&params.target, &mut connection, &cmd)
                .await?;
            connections.forget(&params.target).await;
            return match result {
                Err(error) if super::target::is_disconnect(&error) => Ok(CommandOutputs {
                    reply: serde_json::Value::Null,
                }),
                Err(error) => Err(StepError::failed(format!(
                    "SHUTDOWN on {} failed: {error}",
                    params.target.display()
                ))),
                Ok(value) => Ok(CommandOutputs {
                    reply: reply::to_json(value),
                }),
            };
        }
        let value = connections.query(&params.target, &cmd).await?;
        let reply = reply::to_json(value);
        if params.name() == "CONFIG" {
            learn_config_secrets(ctx, &reply);
        }
        Ok(CommandOutputs { reply })
    }
}

/// A CONFIG GET reply (`[name, value, …]` or a mapping) that holds a password: the password
/// becomes a secret of the run, masked in everything flow prints.
fn learn_config_secrets(ctx: &StepContext, reply: &serde_json::Value) {
    if let serde_json::Value::Object(map) = reply::pairs_to_map(reply.clone()) {
        for (name, value) in map {
            if SECRET_CONFIG.contains(&name.to_lowercase().as_str())
                && value.as_str().is_some_and(|v| !v.is_empty())
            {
                ctx.add_secret(&value);
            }
        }
    }
}
