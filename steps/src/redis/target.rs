//! The Redis block every Redis step type takes (`url`, `password`, `username`,
//! `connect_timeout`, `response_timeout`, `tunnel`, `kubernetes`; settable under
//! `defaults: { redis: … }`), and the connections of a run: one multiplexed connection per
//! target, reused by every step, reopened once if the server went away (after a restart,
//! say). Every command waits for its reply at most `response_timeout`, so a server that stops
//! answering fails the step instead of hanging the run.

use super::kubernetes::KubernetesTarget;
use super::port_forward::PortForward;
use crate::ssh::{Sessions, SshTarget};
use flow_engine::prelude::*;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use std::collections::HashMap;
use std::time::Duration;

/// A Redis connection block: merges `defaults.redis` wherever it appears (at the top of a
/// step's `with`, under `redis.compare`'s `left` and `right`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(extend("x-flow-defaults" = "redis"))]
pub struct RedisTarget {
    /// `redis://[user:password@]host:port/db`, or `rediss://` for TLS.
    pub url: String,
    /// Password (a secret: masked everywhere); overrides one in the URL.
    pub password: Option<Secret>,
    /// ACL user name; overrides one in the URL.
    pub username: Option<String>,
    /// How long to wait for a connection (default 5s).
    pub connect_timeout: Option<FlowDuration>,
    /// How long to wait for the reply to each command (default 30s): a server that stops
    /// answering (paused, stopped, overloaded) fails the step then. Raise it for commands
    /// that take long by design (a blocking `BLPOP`, a `SAVE` of a large dataset).
    pub response_timeout: Option<FlowDuration>,
    /// Reach Redis through an SSH port forward over this host's connection (an SSH block;
    /// `defaults.ssh` applies): the `url`'s host and port are as that host sees them, as
    /// production Redis is usually reachable only from its own host.
    pub tunnel: Option<SshTarget>,
    /// Reach Redis in a Kubernetes pod (`namespace`, `pod` or `selector`, `container`,
    /// `context`) through a `kubectl port-forward` that flow starts, and starts again after
    /// the pod restarts; the `url` names Redis as the pod sees it (`redis://localhost:6379`).
    pub kubernetes: Option<KubernetesTarget>,
}

/// How long a command waits for its reply unless `response_timeout` says otherwise.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisTarget {
    /// The URL without credentials, for messages: `redis://10.0.0.5:6379/0`, and the pod
    /// it is in: `redis://localhost:6379 in october/app=redis`.
    pub fn display(&self) -> String {
        let url = match url_parts(&self.url) {
            Some((scheme, _, rest)) => format!("{scheme}://{rest}"),
            None => self.url.clone(),
        };
        match &self.kubernetes {
            Some(kubernetes) => format!("{url} in {}", kubernetes.display()),
            None => url,
        }
    }

    /// How long a command waits for its reply.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
            .map(|d| d.0)
            .unwrap_or(DEFAULT_RESPONSE_TIMEOUT)
    }

    fn key(&self) -> String {
        format!(
            "{}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
            self.url,
            self.username,
            self.password.as_ref().map(Secret::expose),
            self.tunnel,
            self.kubernetes
        )
    }
}

/// `(scheme, credentials, host/port/db)` of a Redis URL.
fn url_parts(url: &str) -> Option<(&str, Option<&str>, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    Some(match rest.rsplit_once('@') {
        Some((credentials, host)) => (scheme, Some(credentials), host),
        None => (scheme, None, rest),
    })
}

/// An open connection, and the port-forward it goes through (a `kubernetes:` target): the
/// forward lives as long as the connection.
struct Open {
    connection: MultiplexedConnection,
    forward: Option<PortForward>,
}

/// The open connections of a run, by target: a resource of the run, closed when it ends.
#[derive(Default)]
pub struct Connections {
    open: tokio::sync::Mutex<HashMap<String, Open>>,
    /// The run's SSH connections, for tunnels (see `super::connections`).
    sessions: std::sync::OnceLock<std::sync::Arc<Sessions>>,
}

impl Resource for Connections {
    /// Drops every connection (and ends its port-forward), then lets their drivers run once
    /// more so the sockets are closed now rather than when the process exits.
    async fn close(&self) {
        let open = std::mem::take(&mut *self.open.lock().await);
        drop(open);
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }
}

impl Connections {
    /// Gives the connections the run's SSH sessions, which tunnels go through.
    pub fn attach(&self, sessions: impl FnOnce() -> std::sync::Arc<Sessions>) {
        self.sessions.get_or_init(sessions);
    }

    /// The connection to `target`, opened on first use — and opened again when its
    /// port-forward ended (its pod went away): a new forward goes to the pod there is now.
    pub async fn get(&self, target: &RedisTarget) -> Result<MultiplexedConnection, StepError> {
        Ok(self.opened(target).await?.0)
    }

    /// The pod a `kubernetes:` target's connection goes to now (`pod/redis-0`), opening it
    /// if need be.
    pub async fn pod(&self, target: &RedisTarget) -> Result<Option<String>, StepError> {
        Ok(self.opened(target).await?.1)
    }

    /// The connection to `target` and the pod its forward goes to, opened if need be.
    async fn opened(
        &self,
        target: &RedisTarget,
    ) -> Result<(MultiplexedConnection, Option<String>), StepError> {
        let key = target.key();
        let mut open = self.open.lock().await;
        if let Some(existing) = open.get_mut(&key) {
            if existing.forward.as_mut().is_none_or(PortForward::alive) {
                let pod = existing.forward.as_ref().map(|f| f.pod.clone());
                return Ok((existing.connection.clone(), pod));
            }
            open.remove(&key);
        }
        let (connection, forward) = connect(target, self.sessions.get()).await?;
        let pod = forward.as_ref().map(|f| f.pod.clone());
        open.insert(
            key,
            Open {
                connection: connection.clone(),
                forward,
            },
        );
        Ok((connection, pod))
    }

    /// Forgets the connection to `target` (the server went away) and ends its port-forward;
    /// the next `get` reopens.
    pub async fn forget(&self, target: &RedisTarget) {
        self.open.lock().await.remove(&target.key());
    }

    /// Runs a command, reopening the connection once if it was dropped (a restarted server).
    /// No reply within the target's `response_timeout` fails it (and drops the connection,
    /// whose replies can no longer be trusted to come).
    pub async fn query(
        &self,
        target: &RedisTarget,
        command: &redis::Cmd,
    ) -> Result<redis::Value, StepError> {
        let mut connection = self.get(target).await?;
        match self.timed(target, &mut connection, command).await? {
            Err(error) if is_disconnect(&error) => {
                self.forget(target).await;
                let mut connection = self.get(target).await?;
                self.timed(target, &mut connection, command)
                    .await?
                    .map_err(|e| command_error(target, command, &e))
            }
            Err(error) => Err(command_error(target, command, &error)),
            Ok(value) => Ok(value),
        }
    }

    /// Runs a pipeline (many commands, one round trip) as `query` runs one command: each
    /// command's reply in order, a command the server refused as `Value::ServerError` in its
    /// place. A dropped connection is reopened once only when the pipeline holds nothing but
    /// reads (`reads_only`): a write may have run before the drop.
    pub async fn pipeline(
        &self,
        target: &RedisTarget,
        pipeline: &redis::Pipeline,
        reads_only: bool,
    ) -> Result<Vec<redis::Value>, StepError> {
        use redis::aio::ConnectionLike as _;
        let count = pipeline.cmd_iter().count();
        let limit = target.response_timeout();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut connection = self.get(target).await?;
            let sent =
                tokio::time::timeout(limit, connection.req_packed_commands(pipeline, 0, count))
                    .await;
            let first = pipeline.cmd_iter().next();
            let name = first.map(command_name).unwrap_or_default();
            match sent {
                Ok(Ok(replies)) => return Ok(replies),
                Ok(Err(error)) if is_disconnect(&error) && reads_only && attempt == 1 => {
                    self.forget(target).await;
                }
                Ok(Err(error)) => {
                    if is_disconnect(&error) {
                        self.forget(target).await;
                    }
                    return Err(StepError::failed(format!(
                        "{name} (a pipeline of {count} commands) on {} failed: {error}",
                        target.display()
                    )));
                }
                Err(_) => {
                    self.forget(target).await;
                    return Err(StepError::failed(format!(
                        "{name} (a pipeline of {count} commands) on {} got no reply within {} \
                         (response_timeout): the server is not answering (paused, stopped or \
                         overloaded?)",
                        target.display(),
                        flow_engine::duration::format_duration(limit)
                    )));
                }
            }
        }
    }

    /// One command on `connection`, waiting for the reply at most the target's
    /// `response_timeout`: `Ok` with what Redis said, or `Err` when it said nothing in time.
    pub async fn timed(
        &self,
        target: &RedisTarget,
        connection: &mut MultiplexedConnection,
        command: &redis::Cmd,
    ) -> Result<redis::RedisResult<redis::Value>, StepError> {
        let limit = target.response_timeout();
        match tokio::time::timeout(limit, command.query_async(connection)).await {
            Ok(result) => Ok(result),
            Err(_) => {
                self.forget(target).await;
                Err(StepError::failed(format!(
                    "{} on {} got no reply within {} (response_timeout): the server is not \
                     answering (paused, stopped or overloaded?)",
                    command_name(command),
                    target.display(),
                    flow_engine::duration::format_duration(limit)
                )))
            }
        }
    }
}

/// Whether the error means the connection is gone (rather than the server saying no).
pub fn is_disconnect(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

async fn connect(
    target: &RedisTarget,
    sessions: Option<&std::sync::Arc<Sessions>>,
) -> Result<(MultiplexedConnection, Option<PortForward>), StepError> {
    install_tls_provider();
    let shown = target.display();
    let mut info = target.url.as_str().into_connection_info().map_err(|e| {
        StepError::failed(format!(
            "invalid Redis url `{shown}`: {}",
            e.detail().unwrap_or(&e.to_string())
        ))
    })?;
    if let Some(tunnel) = &target.tunnel {
        let sessions = sessions.ok_or_else(|| {
            StepError::failed(format!("{shown}: no SSH connections for the tunnel"))
        })?;
        let local = open_tunnel(tunnel, info.addr(), sessions, &shown).await?;
        info = info.set_addr(redis::ConnectionAddr::Tcp("127.0.0.1".into(), local));
    }
    let timeout = target
        .connect_timeout
        .map(|d| d.0)
        .unwrap_or(Duration::from_secs(5));
    let mut forward = None;
    if let Some(kubernetes) = &target.kubernetes {
        if target.tunnel.is_some() {
            return Err(StepError::failed(format!(
                "{shown}: give `tunnel` or `kubernetes`, not both"
            )));
        }
        let port = pod_port(info.addr(), &shown)?;
        // kubectl looks the pod up, then dials it: give it more than a TCP connect.
        let started = PortForward::start(kubernetes, port, timeout.max(Duration::from_secs(10)))
            .await
            .map_err(|e| StepError::failed(format!("{shown}: {}", e.message())))?;
        info = info.set_addr(redis::ConnectionAddr::Tcp("127.0.0.1".into(), started.port));
        forward = Some(started);
    }
    let mut settings = info.redis_settings().clone();
    if let Some(password) = &target.password {
        settings = settings.set_password(password.expose());
    }
    if let Some(username) = &target.username {
        settings = settings.set_username(username);
    }
    info = info.set_redis_settings(settings);
    let client = redis::Client::open(info)
        .map_err(|e| StepError::failed(format!("invalid Redis target {shown}: {e}")))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(None);
    let connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| {
            let why = if e.kind() == redis::ErrorKind::AuthenticationFailed
                || e.to_string().contains("WRONGPASS")
                || e.to_string().contains("NOAUTH")
            {
                format!(
                    "authentication failed: {}",
                    e.detail().unwrap_or("wrong password or user")
                )
            } else {
                e.to_string()
            };
            StepError::failed(format!("cannot connect to {shown}: {why}"))
        })?;
    Ok((connection, forward))
}

/// The port of a `kubernetes:` target's url, which names Redis as the pod sees it: a
/// port-forward reaches the pod's own ports, nothing else of its network.
fn pod_port(addr: &redis::ConnectionAddr, shown: &str) -> Result<u16, StepError> {
    match addr {
        redis::ConnectionAddr::Tcp(host, port)
            if matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1" | "[::1]") =>
        {
            Ok(*port)
        }
        redis::ConnectionAddr::Tcp(host, _) => Err(StepError::failed(format!(
            "{shown}: with `kubernetes`, the url names Redis as the pod sees it — \
             redis://localhost:PORT — not `{host}` (a port-forward reaches the pod's own ports)"
        ))),
        _ => Err(StepError::failed(format!(
            "{shown}: only redis:// (not TLS or a unix socket) goes through `kubernetes` yet"
        ))),
    }
}

/// Forwards a free local port through `tunnel`'s connection to `addr` as the tunnel's host
/// sees it; the forward lives as long as the connection (closed when the run ends).
async fn open_tunnel(
    tunnel: &SshTarget,
    addr: &redis::ConnectionAddr,
    sessions: &Sessions,
    shown: &str,
) -> Result<u16, StepError> {
    let (host, port) = match addr {
        redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
        _ => {
            return Err(StepError::failed(format!(
                "{shown}: only redis:// (not TLS or a unix socket) goes through a `tunnel` yet"
            )));
        }
    };
    let session = sessions.live(tunnel).await?;
    let local = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| StepError::failed(format!("no free local port for the tunnel: {e}")))?
        .port();
    session
        .request_port_forward(
            openssh::ForwardType::Local,
            (std::net::Ipv4Addr::LOCALHOST, local),
            openssh::Socket::new(host.as_str(), port),
        )
        .await
        .map_err(|e| {
            StepError::failed(format!(
                "cannot forward a port through {} to {host}:{port} for {shown}: {e}",
                tunnel.display()
            ))
        })?;
    Ok(local)
}

/// The command's name, `GET`, for messages.
fn command_name(command: &redis::Cmd) -> String {
    command
        .args_iter()
        .next()
        .map(|a| match a {
            redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).to_uppercase(),
            _ => "SCAN".into(),
        })
        .unwrap_or_default()
}

fn command_error(
    target: &RedisTarget,
    command: &redis::Cmd,
    error: &redis::RedisError,
) -> StepError {
    StepError::failed(format!(
        "{} on {} failed: {error}",
        command_name(command),
        target.display()
    ))
}

/// rustls needs a process-wide crypto provider before the first TLS connection.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> RedisTarget {
        RedisTarget {
            url: url.into(),
            password: None,
            username: None,
            connect_timeout: None,
            response_timeout: None,
            tunnel: None,
            kubernetes: None,
        }
    }

    #[test]
    fn credentials_never_show() {
        let t = target("redis://app:s3cret@10.0.0.5:6379/2");
        assert_eq!(t.display(), "redis://10.0.0.5:6379/2");
    }
}
