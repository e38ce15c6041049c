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
    /// Compare N random keys of the left side by type, expiry and value digest: a sample
    /// (pipelined, a few round trips whatever the size of the keyspace), its size in the table.
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
    /// The rows that do not match (a sampled key that differs is one of them).
    pub differences: Vec<Value>,
    /// The left side's key count (DBSIZE).
    pub left_keys: i64,
    /// The right side's key count (DBSIZE).
    pub right_keys: i64,
    /// How far the key counts differ, in % of the larger (0 when both are empty).
    pub key_drift_percent: f64,
    /// Keys of the left side sampled (`sample_keys`; every key when there are no more).
    pub sampled: u32,
    /// Of those, how many the right side has.
    pub present: u32,
    /// Of those, how many are identical on the right (type, expiry, value).
    pub identical: u32,
    /// `present` in % of `sampled` (100 when nothing was sampled).
    pub present_percent: f64,
    /// `identical` in % of `sampled` (100 when nothing was sampled).
    pub identical_percent: f64,
    /// By how much the sides differ, in a line: key counts and drift, and the sample.
    pub summary: String,
}

/// What the sample of keys found.
#[derive(Default)]
struct SampleFigures {
    sampled: u32,
    present: u32,
    identical: u32,
}

/// `part` in % of `whole`, to two decimals; 100 when `whole` is 0.
fn percent(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        return 100.0;
    }
    (part / whole * 10_000.0).round() / 100.0
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

/// The command that reads a key's whole value, by type; none for a type without one.
fn value_command(kind: &str, key: &str) -> Option<redis::Cmd> {
    let mut cmd = match kind {
        "string" => redis::cmd("GET"),
        "hash" => redis::cmd("HGETALL"),
        "list" => {
            let mut cmd = redis::cmd("LRANGE");
            cmd.arg(key).arg(0).arg(-1);
            return Some(cmd);
        }
        "set" => redis::cmd("SMEMBERS"),
        "zset" => {
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(key).arg(0).arg(-1).arg("WITHSCORES");
            return Some(cmd);
        }
        "stream" => {
            let mut cmd = redis::cmd("XRANGE");
            cmd.arg(key).arg("-").arg("+");
            return Some(cmd);
        }
        _ => return None,
    };
    cmd.arg(key);
    Some(cmd)
}

/// A short digest of a value: the order a set or hash happens to be stored in is not part of
/// the value.
fn digest(kind: &str, mut value: Value) -> String {
    if kind == "set"
        && let Value::Array(members) = &mut value
    {
        members.sort_by_key(|m| m.to_string());
    }
    if kind == "hash" {
        let mut pairs: Vec<(String, String)> = match &value {
            Value::Array(fields) => fields
                .chunks(2)
                .map(|p| {
                    (
                        p[0].to_string(),
                        p.get(1).map(Value::to_string).unwrap_or_default(),
                    )
                })
                .collect(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (Value::String(k.clone()).to_string(), v.to_string()))
                .collect(),
            _ => Vec::new(),
        };
        pairs.sort();
        value = json!(pairs);
    }
    let digest = sha2::Sha256::digest(value.to_string().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

async fn dbsize(connections: &Connections, target: &RedisTarget) -> Result<i64, StepError> {
    let reply = connections.query(target, &redis::cmd("DBSIZE")).await?;
    Ok(reply::as_int(&reply).unwrap_or(0))
}

/// How many times the sample asks for random keys before it settles for fewer.
const SAMPLE_ROUNDS: usize = 3;

impl Compare {
    /// Each key's type, whether it expires, and a digest of its value: two pipelined round
    /// trips for the whole sample (types and expiries, then values).
    async fn digests(
        &self,
        connections: &Connections,
        target: &RedisTarget,
        keys: &[String],
    ) -> Result<Vec<(String, bool, String)>, StepError> {
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("TYPE").arg(key);
            pipe.cmd("PTTL").arg(key);
        }
        let replies = connections.pipeline(target, &pipe, true).await?;
        let facts: Vec<(String, bool)> = replies
            .chunks(2)
            .map(|pair| {
                (
                    reply::as_text(&pair[0]).unwrap_or_default(),
                    pair.get(1).and_then(reply::as_int).unwrap_or(-2) >= 0,
                )
            })
            .collect();
        let mut pipe = redis::pipe();
        let mut read = Vec::new();
        for (key, (kind, _)) in keys.iter().zip(&facts) {
            let command = value_command(kind, key);
            read.push(command.is_some());
            if let Some(command) = command {
                pipe.add_command(command);
            }
        }
        let mut values = if read.iter().any(|r| *r) {
            connections.pipeline(target, &pipe, true).await?.into_iter()
        } else {
            Vec::new().into_iter()
        };
        Ok(facts
            .into_iter()
            .zip(read)
            .map(|((kind, expires), read)| {
                let value = if read {
                    values.next().map(reply::to_json).unwrap_or(Value::Null)
                } else {
                    Value::Null
                };
                let digest = digest(&kind, value);
                (kind, expires, digest)
            })
            .collect())
    }

    /// Up to `count` distinct random keys of the left side: RANDOMKEY pipelined, a few rounds;
    /// every key (SCAN) when the database holds no more than `count`, so that a small
    /// database is compared whole rather than by chance.
    async fn sample_keys(
        &self,
        connections: &Connections,
        target: &RedisTarget,
        count: u32,
        total: i64,
    ) -> Result<Vec<String>, StepError> {
        let mut keys = std::collections::BTreeSet::new();
        if total <= i64::from(count) {
            let mut cursor = "0".to_string();
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(&cursor).arg("COUNT").arg(1000);
                let reply = connections.query(target, &scan).await?;
                let (next, page) = match reply {
                    redis::Value::Array(parts) if parts.len() == 2 => (
                        reply::as_text(&parts[0]).unwrap_or_else(|| "0".into()),
                        match &parts[1] {
                            redis::Value::Array(page) => {
                                page.iter().filter_map(reply::as_text).collect()
                            }
                            _ => Vec::new(),
                        },
                    ),
                    _ => ("0".to_string(), Vec::new()),
                };
                keys.extend(page);
                // A database that grows while it is walked is cut at the sample's size.
                if next == "0" || keys.len() >= count as usize {
                    break;
                }
                cursor = next;
            }
            return Ok(keys.into_iter().take(count as usize).collect());
        }
        for _ in 0..SAMPLE_ROUNDS {
            let wanted = (count as usize).saturating_sub(keys.len());
            if wanted == 0 {
                break;
            }
            let mut pipe = redis::pipe();
            for _ in 0..wanted {
                pipe.cmd("RANDOMKEY");
            }
            let replies = connections.pipeline(target, &pipe, true).await?;
            let before = keys.len();
            keys.extend(replies.iter().filter_map(reply::as_text));
            // An empty database, or one whose few keys are all in the sample already.
            if keys.len() == before {
                break;
            }
        }
        Ok(keys.into_iter().collect())
    }

    async fn sample(
        &self,
        connections: &Connections,
        params: &CompareParams,
        count: u32,
        total: i64,
        rows: &mut Vec<Value>,
    ) -> Result<SampleFigures, StepError> {
        let keys = self
            .sample_keys(connections, &params.left, count, total)
            .await?;
        let left = self.digests(connections, &params.left, &keys).await?;
        let right = self.digests(connections, &params.right, &keys).await?;
        let mut figures = SampleFigures::default();
        for ((key, left), right) in keys.iter().zip(left).zip(right) {
            // Gone from the left since it was picked (it expired): not part of the sample.
            if left.0 == "none" {
                continue;
            }
            figures.sampled += 1;
            if right.0 != "none" {
                figures.present += 1;
            }
            if left == right {
                figures.identical += 1;
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
            format!("{} of {total} keys sampled", figures.sampled),
            format!(
                "{} present, {} identical",
                figures.present, figures.identical
            ),
            figures.identical == figures.sampled,
        ));
        Ok(figures)
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
        let (left_keys, right_keys) = (
            dbsize(&connections, &params.left).await?,
            dbsize(&connections, &params.right).await?,
        );
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
                    let (l, r) = (left_keys, right_keys);
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
        let figures = match params.sample_keys.filter(|c| *c > 0) {
            Some(count) => {
                self.sample(&connections, &params, count, left_keys, &mut rows)
                    .await?
            }
            None => SampleFigures::default(),
        };
        let differences: Vec<Value> = rows
            .iter()
            .filter(|r| r["match"] != json!(true))
            .cloned()
            .collect();
        let equal = differences.is_empty();
        let larger = left_keys.max(right_keys) as f64;
        let key_drift_percent = if larger == 0.0 {
            0.0
        } else {
            100.0 - percent(left_keys.min(right_keys) as f64, larger)
        };
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
        ctx.table(&table);
        let key_drift_percent = (key_drift_percent * 100.0).round() / 100.0;
        let present_percent = percent(f64::from(figures.present), f64::from(figures.sampled));
        let identical_percent = percent(f64::from(figures.identical), f64::from(figures.sampled));
        let mut summary = format!(
            "{left_label} {left_keys} keys, {right_label} {right_keys} keys (drift {key_drift_percent}%)"
        );
        if params.sample_keys.is_some_and(|c| c > 0) {
            summary.push_str(&format!(
                "; {} keys sampled: {} present ({present_percent}%), {} identical ({identical_percent}%)",
                figures.sampled, figures.present, figures.identical
            ));
        }
        Ok(CompareOutputs {
            equal,
            rows,
            differences,
            left_keys,
            right_keys,
            key_drift_percent,
            sampled: figures.sampled,
            present: figures.present,
            identical: figures.identical,
            present_percent,
            identical_percent,
            summary,
        })
    }
}
