//! `redis.info`: INFO, parsed, with the figures a health check reads by hand.

use super::{Connections, RedisTarget, info_text, reply};
use flow_engine::prelude::*;
use indexmap::IndexMap;
use serde_json::Value;

pub struct Info;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct InfoParams {
    #[serde(flatten)]
    pub target: RedisTarget,
    /// INFO sections to return in `info` (default: all); the other outputs are always filled.
    pub sections: Option<Vec<String>>,
    /// How many PINGs measure the round-trip latency (default 10; 0: none).
    pub pings: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct InfoOutputs {
    /// Every field, by section: `info.memory.used_memory`.
    pub info: IndexMap<String, IndexMap<String, Value>>,
    /// `master` or `slave`.
    pub role: String,
    pub dbsize: i64,
    /// Bytes.
    pub used_memory: i64,
    /// Bytes: the most used since the server started.
    pub used_memory_peak: i64,
    /// Bytes; 0 means no limit.
    pub maxmemory: i64,
    /// `used_memory` as a percentage of `maxmemory`; null without a limit.
    pub used_memory_percent: Option<f64>,
    /// What the server evicts when full: `allkeys-lru`, `noeviction`, …
    pub maxmemory_policy: String,
    /// Round-trip time of a PING from here, in milliseconds: the median of `pings` PINGs.
    pub latency_p50_ms: Option<f64>,
    /// The slowest of those PINGs, in milliseconds.
    pub latency_max_ms: Option<f64>,
    /// Per database: `{ db0: { keys, expires, avg_ttl } }`.
    pub keyspace: IndexMap<String, Value>,
    pub connected_clients: i64,
    pub blocked_clients: i64,
    /// keyspace_hits / (hits + misses), or null before any lookup.
    pub keyspace_hit_ratio: Option<f64>,
    pub rdb_last_save_time: i64,
    pub aof_enabled: bool,
}

/// INFO of every section, parsed.
pub async fn read_info(
    connections: &Connections,
    target: &RedisTarget,
) -> Result<IndexMap<String, IndexMap<String, Value>>, StepError> {
    let text = connections
        .query(target, redis::cmd("INFO").arg("everything"))
        .await?;
    Ok(info_text::parse(&reply::as_text(&text).unwrap_or_default()))
}

/// Round trips of `count` PINGs, one after the other, in milliseconds, sorted.
async fn ping_times(
    connections: &Connections,
    target: &RedisTarget,
    count: u32,
) -> Result<Vec<f64>, StepError> {
    let mut times = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let began = std::time::Instant::now();
        connections.query(target, &redis::cmd("PING")).await?;
        times.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

impl StepType for Info {
    const NAME: &'static str = "redis.info";
    const SUMMARY: &'static str =
        "Read INFO (parsed) and the usual health figures of a Redis server";
    const EFFECT: Effect = Effect::Read;
    const EXAMPLE: &'static str = r#"health:
  type: redis.info
  with:
    url: redis://127.0.0.1:6379
    sections: [server, memory, replication]"#;
    type Params = InfoParams;
    type Outputs = InfoOutputs;

    async fn describe(&self, params: &InfoParams, _: &PlanContext) -> Description {
        Description::new(Action::Read, format!("INFO on {}", params.target.display()))
    }

    async fn apply(&self, params: InfoParams, ctx: &StepContext) -> Result<InfoOutputs, StepError> {
        let connections = super::connections(ctx);
        let all = read_info(&connections, &params.target).await?;
        let dbsize = reply::as_int(
            &connections
                .query(&params.target, &redis::cmd("DBSIZE"))
                .await?,
        )
        .unwrap_or(0);
        let int = |name: &str| {
            info_text::field(&all, name)
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let times = ping_times(&connections, &params.target, params.pings.unwrap_or(10)).await?;
        let rounded = |ms: f64| (ms * 1000.0).round() / 1000.0;
        let used_memory = int("used_memory");
        let maxmemory = int("maxmemory");
        let hits = int("keyspace_hits") as f64;
        let misses = int("keyspace_misses") as f64;
        let info = match &params.sections {
            None => all.clone(),
            Some(wanted) => {
                let wanted: Vec<String> = wanted.iter().map(|s| s.to_lowercase()).collect();
                all.iter()
                    .filter(|(name, _)| wanted.contains(name))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }
        };
        Ok(InfoOutputs {
            role: info_text::field(&all, "role")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            dbsize,
            used_memory,
            used_memory_peak: int("used_memory_peak"),
            maxmemory,
            used_memory_percent: (maxmemory > 0)
                .then(|| (used_memory as f64 * 10000.0 / maxmemory as f64).round() / 100.0),
            maxmemory_policy: info_text::field(&all, "maxmemory_policy")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            latency_p50_ms: times.get(times.len() / 2).copied().map(rounded),
            latency_max_ms: times.last().copied().map(rounded),
            keyspace: all.get("keyspace").cloned().unwrap_or_default(),
            connected_clients: int("connected_clients"),
            blocked_clients: int("blocked_clients"),
            keyspace_hit_ratio: (hits + misses > 0.0).then(|| hits / (hits + misses)),
            rdb_last_save_time: int("rdb_last_save_time"),
            aof_enabled: int("aof_enabled") == 1,
            info,
        })
    }
}
