//! `flow serve`: a read-only web view of the run journal — the runs, one run with its steps,
//! graph, approvals and outputs, a step's output, and a running run updating live. It reads
//! nothing but the state dir, so it shows only what the journal holds (masked as it is).
//!
//! One concept per file: `accept` (connections, with their limits), `routes` (what answers which path), `model` (a run as the pages
//! and the JSON see it), `pages/*` (the HTML), `svg_graph` (the picture), `live` (following
//! a run), `auth` (the token), `html` (escaping and the frame).

mod accept;
mod auth;
mod html;
mod live;
mod model;
mod pages;
mod routes;
mod svg_graph;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

/// The default `--listen`: this machine only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8484";

pub struct Options {
    pub state_dir: PathBuf,
    /// `host:port`; a non-loopback address needs a token.
    pub listen: String,
    /// From `--token` or `FLOW_SERVE_TOKEN`.
    pub token: Option<String>,
}

/// Serves until Ctrl-C (exit 0); a bad address or a port in use is one line and exit 2.
pub fn serve(options: Options) -> i32 {
    const INVALID: i32 = 2;
    let listener = match TcpListener::bind(&options.listen) {
        Ok(listener) => listener,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (is another flow serve running? pass --listen 127.0.0.1:PORT)"
            } else {
                ""
            };
            eprintln!(
                "error: flow serve cannot listen on {}: {e}{hint}",
                options.listen
            );
            return INVALID;
        }
    };
    let address: SocketAddr = match listener.local_addr() {
        Ok(address) => address,
        Err(e) => {
            eprintln!("error: flow serve cannot listen on {}: {e}", options.listen);
            return INVALID;
        }
    };
    // Off loopback, everyone on the network could read the runs: a token is a must.
    let given = options.token.filter(|t| !t.is_empty());
    if let Some(token) = &given
        && let Err(why) = auth::usable(token)
    {
        eprintln!("error: flow serve cannot use that token: {why}");
        return INVALID;
    }
    let (token, shown) = match given {
        Some(token) => (Some(token), String::new()),
        None if address.ip().is_loopback() => (None, String::new()),
        None => match auth::generate() {
            Ok(token) => (Some(token.clone()), format!("?token={token}")),
            Err(e) => {
                eprintln!("error: flow serve cannot make a token: {e}; pass --token");
                return INVALID;
            }
        },
    };
    if listener.set_nonblocking(true).is_err() {
        eprintln!("error: flow serve cannot listen on {address}");
        return INVALID;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: flow serve cannot start: {e}");
            return INVALID;
        }
    };
    let app = routes::App {
        state_dir: Arc::new(options.state_dir.clone()),
    };
    let router = routes::router(app, auth::Token(token.map(Arc::from)));
    let guarded = if shown.is_empty() && address.ip().is_loopback() {
        ""
    } else if shown.is_empty() {
        "; token required"
    } else {
        "; token generated for this start"
    };
    // 0.0.0.0 is where it listens, not an address a browser can open.
    let url = if address.ip().is_unspecified() {
        format!(
            "http://127.0.0.1:{}/{shown} (listening on {address})",
            address.port()
        )
    } else {
        format!("http://{address}/{shown}")
    };
    println!(
        "flow serve: {url} (state dir {}{guarded}) — Ctrl-C stops",
        options.state_dir.display()
    );
    let code = runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("error: flow serve cannot listen on {address}: {e}");
                return INVALID;
            }
        };
        // Ctrl-C (or a TERM) stops at once: a live page's stream would keep a graceful
        // shutdown waiting for ever.
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        tokio::select! {
            () = accept::serve(listener, router) => 0,
            () = stop => 0,
        }
    });
    // Journal reads still running (a huge file, a stuck disk) are not waited for.
    runtime.shutdown_background();
    code
}
