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
    /// Bytes; 0 means no limit.
    pub maxmemory: i64,
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
            used_memory: int("used_memory"),
            maxmemory: int("maxmemory"),
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
