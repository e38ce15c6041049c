//! `redis.compare`: two Redis servers side by side — ping, dbsize, keyspace, role, memory,
//! persistence, and a sample of keys compared by type, expiry and a digest of the value —
//! as after a restore, the copy beside production.

use super::info::read_info;
use super::{Connections, RedisTarget, info_text, reply};
use flow_engine::prelude::*;
use serde_json::{Value, json};
use sha2::Digest as _;

pub struct Compare;

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// Both answer PONG.
    Ping,
    /// Same number of keys (within `tolerance`).
    Dbsize,
    /// Same keys and expiring keys per database (within `tolerance`).
    Keyspace,
    /// Same replication role.
    Role,
    /// used_memory within `tolerance`.
    Memory,
    /// Same persistence settings (AOF on/off, RDB save status).
    Persistence,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareParams {
    /// One side: a Redis block (`url`, `password`, …).
    pub left: RedisTarget,
    /// The other side.
    pub right: RedisTarget,
    /// Names for the two columns (default: left, right).
    pub labels: Option<[String; 2]>,
    /// What to compare (default: ping, dbsize, keyspace, role).
    pub checks: Option<Vec<Check>>,
    /// Compare N random keys of the left side by type, expiry and value digest.
    pub sample_keys: Option<u32>,
    /// How far counts and memory may differ: `1%`, or an absolute number (default: 0).
    pub tolerance: Option<Text>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CompareOutputs {
    /// Whether every check matched.
    pub equal: bool,
    /// One row per check: `{ check, left, right, match }`.
    pub rows: Vec<Value>,
}

/// How far two numbers may differ.
#[derive(Clone, Copy)]
enum Tolerance {
    Percent(f64),
    Absolute(f64),
}

impl Tolerance {
    fn parse(text: Option<&Text>) -> Result<Self, String> {
        let Some(Text(text)) = text else {
            return Ok(Tolerance::Absolute(0.0));
        };
        let parsed = match text.trim().strip_suffix('%') {
            Some(percent) => percent.trim().parse().map(Tolerance::Percent),
            None => text.trim().parse().map(Tolerance::Absolute),
        };
        parsed.map_err(|_| format!("`tolerance` must be like `1%` or `10`, got `{text}`"))
    }

    fn allows(self, left: f64, right: f64) -> bool {
        let difference = (left - right).abs();
        match self {
            Tolerance::Absolute(limit) => difference <= limit,
            Tolerance::Percent(percent) => {
                difference <= left.abs().max(right.abs()) * percent / 100.0
            }
        }
    }
}

fn row(check: &str, left: impl Into<Value>, right: impl Into<Value>, matches: bool) -> Value {
    json!({ "check": check, "left": left.into(), "right": right.into(), "match": matches })
}

impl Compare {
    /// A digest of a key: its type, whether it expires, and a hash of its value.
    async fn key_digest(
        &self,
        connections: &Connections,
        target: &RedisTarget,
        key: &str,
    ) -> Result<(String, bool, String), StepError> {
        let kind = reply::as_text(
            &connections
                .query(target, redis::cmd("TYPE").arg(key))
                .await?,
        )
        .unwrap_or_default();
        let ttl = reply::as_int(
            &connections
                .query(target, redis::cmd("PTTL").arg(key))
                .await?,
        )
        .unwrap_or(-2);
        let mut value = match kind.as_str() {
            "string" => reply::to_json(
                connections
                    .query(target, redis::cmd("GET").arg(key))
                    .await?,
            ),
            "hash" => reply::to_json(
                connections
                    .query(target, redis::cmd("HGETALL").arg(key))
                    .await?,
            ),
            "list" => reply::to_json(
                connections
                    .query(target, redis::cmd("LRANGE").arg(key).arg(0).arg(-1))
                    .await?,
            ),
            "set" => reply::to_json(
                connections
                    .query(target, redis::cmd("SMEMBERS").arg(key))
                    .await?,
            ),
            "zset" => reply::to_json(
                connections
                    .query(
                        target,
                        redis::cmd("ZRANGE")
                            .arg(key)
                            .arg(0)
                            .arg(-1)
                            .arg("WITHSCORES"),
                    )
                    .await?,
            ),
            "stream" => reply::to_json(
                connections
                    .query(target, redis::cmd("XRANGE").arg(key).arg("-").arg("+"))
                    .await?,
            ),
            _ => Value::Null,
        };
        if kind == "set"
            && let Value::Array(members) = &mut value
        {
            members.sort_by_key(|m| m.to_string());
        }
        if kind == "hash"
            && let Value::Array(fields) = &value
        {
            let mut pairs: Vec<(String, String)> = fields
                .chunks(2)
                .map(|p| {
                    (
                        p[0].to_string(),
                        p.get(1).map(Value::to_string).unwrap_or_default(),
                    )
                })
                .collect();
            pairs.sort();
            value = json!(pairs);
        }
        let digest = sha2::Sha256::digest(value.to_string().as_bytes());
        let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Ok((kind, ttl >= 0, short))
    }

    async fn sample(
        &self,
        connections: &Connections,
        params: &CompareParams,
        count: u32,
        rows: &mut Vec<Value>,
    ) -> Result<(), StepError> {
        let mut keys: Vec<String> = Vec::new();
        for _ in 0..count.saturating_mul(3) {
            if keys.len() as u32 >= count {
                break;
            }
            match reply::as_text(
                &connections
                    .query(&params.left, &redis::cmd("RANDOMKEY"))
                    .await?,
            ) {
                Some(key) if !keys.contains(&key) => keys.push(key),
                Some(_) => {}
                None => break,
            }
        }
        keys.sort();
        let mut same = 0;
        for key in &keys {
            let left = self.key_digest(connections, &params.left, key).await?;
            let right = self.key_digest(connections, &params.right, key).await?;
            if left == right {
                same += 1;
            } else {
                let show = |(kind, expires, digest): &(String, bool, String)| {
                    if kind == "none" {
                        "missing".to_string()
                    } else {
                        format!(
                            "{kind}{} {digest}",
                            if *expires { " (expires)" } else { "" }
                        )
                    }
                };
                rows.push(row(&format!("key {key}"), show(&left), show(&right), false));
            }
        }
        rows.push(row(
            "sample keys",
            format!("{} sampled", keys.len()),
            format!("{same} identical"),
            same == keys.len(),
        ));
        Ok(())
    }
}

impl StepType for Compare {
    const NAME: &'static str = "redis.compare";
    const SUMMARY: &'static str =
        "Compare two Redis servers side by side (counts, keyspace, role, sampled keys)";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"compare:
  type: redis.compare
  with:
    left: { url: redis://10.0.0.5:6379 }
    right: { url: "redis://{{ steps.launch.private_ip }}:6379" }
    labels: [production, restored]
    sample_keys: 20
    tolerance: 1%"#;
    type Params = CompareParams;
    type Outputs = CompareOutputs;

    async fn describe(&self, params: &CompareParams, _: &PlanContext) -> Description {
        Description::new(
            Action::Read,
            format!(
                "compare {} with {}",
                params.left.display(),
                params.right.display()
            ),
        )
    }

    async fn apply(
        &self,
        params: CompareParams,
        ctx: &StepContext,
    ) -> Result<CompareOutputs, StepError> {
        let connections = super::connections(ctx);
        let tolerance = Tolerance::parse(params.tolerance.as_ref()).map_err(StepError::Failed)?;
        let checks = params
            .checks
            .clone()
            .unwrap_or_else(|| vec![Check::Ping, Check::Dbsize, Check::Keyspace, Check::Role]);
        let (left, right) = (
            read_info(&connections, &params.left).await?,
            read_info(&connections, &params.right).await?,
        );
        let field = |info: &indexmap::IndexMap<String, indexmap::IndexMap<String, Value>>,
                     name: &str| {
            info_text::field(info, name).cloned().unwrap_or(Value::Null)
        };
        let number = |v: &Value| v.as_f64().unwrap_or(0.0);
        let mut rows = Vec::new();
        for check in &checks {
            match check {
                Check::Ping => {
                    let l = reply::as_text(
                        &connections.query(&params.left, &redis::cmd("PING")).await?,
                    )
                    .unwrap_or_default();
                    let r = reply::as_text(
                        &connections
                            .query(&params.right, &redis::cmd("PING"))
                            .await?,
                    )
                    .unwrap_or_default();
                    rows.push(row(
                        "ping",
                        l.clone(),
                        r.clone(),
                        l == "PONG" && r == "PONG",
                    ));
                }
                Check::Dbsize => {
                    let l = reply::as_int(
                        &connections
                            .query(&params.left, &redis::cmd("DBSIZE"))
                            .await?,
                    )
                    .unwrap_or(0);
                    let r = reply::as_int(
                        &connections
                            .query(&params.right, &redis::cmd("DBSIZE"))
                            .await?,
                    )
                    .unwrap_or(0);
                    rows.push(row("dbsize", l, r, tolerance.allows(l as f64, r as f64)));
                }
                Check::Keyspace => {
                    let l = left.get("keyspace").cloned().unwrap_or_default();
                    let r = right.get("keyspace").cloned().unwrap_or_default();
                    let mut dbs: Vec<&String> = l.keys().chain(r.keys()).collect();
                    dbs.sort();
                    dbs.dedup();
                    for db in dbs {
                        let lv = l
                            .get(db)
                            .cloned()
                            .unwrap_or(json!({ "keys": 0, "expires": 0 }));
                        let rv = r
                            .get(db)
                            .cloned()
                            .unwrap_or(json!({ "keys": 0, "expires": 0 }));
                        let matches = ["keys", "expires"]
                            .iter()
                            .all(|k| tolerance.allows(number(&lv[*k]), number(&rv[*k])));
                        let show =
                            |v: &Value| format!("keys={} expires={}", v["keys"], v["expires"]);
                        rows.push(row(
                            &format!("keyspace {db}"),
                            show(&lv),
                            show(&rv),
                            matches,
                        ));
                    }
                }
                Check::Role => {
                    let (l, r) = (field(&left, "role"), field(&right, "role"));
                    rows.push(row("role", l.clone(), r.clone(), l == r));
                }
                Check::Memory => {
                    let (l, r) = (field(&left, "used_memory"), field(&right, "used_memory"));
                    let shown = |v: &Value, info| {
                        field(info, "used_memory_human")
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    };
                    rows.push(row(
                        "used_memory",
                        shown(&l, &left),
                        shown(&r, &right),
                        tolerance.allows(number(&l), number(&r)),
                    ));
                }
                Check::Persistence => {
                    for name in ["aof_enabled", "rdb_last_bgsave_status"] {
                        let (l, r) = (field(&left, name), field(&right, name));
                        rows.push(row(name, l.clone(), r.clone(), l == r));
                    }
                }
            }
        }
        if let Some(count) = params.sample_keys.filter(|c| *c > 0) {
            self.sample(&connections, &params, count, &mut rows).await?;
        }
        let equal = rows.iter().all(|r| r["match"] == json!(true));
        let [left_label, right_label] = params
            .labels
            .clone()
            .unwrap_or_else(|| ["left".into(), "right".into()]);
        let mut table = vec![vec![
            "check".to_string(),
            format!("{left_label} ({})", params.left.display()),
            format!("{right_label} ({})", params.right.display()),
            "match".into(),
        ]];
        for r in &rows {
            let cell = |v: &Value| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            };
            table.push(vec![
                cell(&r["check"]),
                cell(&r["left"]),
                cell(&r["right"]),
                if r["match"] == json!(true) {
                    "✔".into()
                } else {
                    "✘".into()
                },
            ]);
        }
        for line in flow_engine::table::render_rows(&table, true).lines() {
            ctx.output("log", line);
        }
        Ok(CompareOutputs { equal, rows })
    }
}
