//! The routes, all `GET` (nothing here changes anything), and the headers every answer
//! carries. Journal reads are blocking file IO, so they run off the async threads.

use crate::model::{self, NotFound};
use crate::pages;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone)]
pub struct App {
    pub state_dir: Arc<PathBuf>,
}

pub fn router(app: App, token: crate::auth::Token) -> Router {
    Router::new()
        .route("/", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/events", get(run_events))
        .route("/runs/{id}/steps/{step}", get(step_page))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{id}", get(api_run))
        .fallback(unknown_path)
        .with_state(app)
        .layer(middleware::from_fn(safety_headers))
        .layer(middleware::from_fn_with_state(token, crate::auth::check))
}

/// Runs `work` on a blocking thread; a panic there (none is expected) is a 500, not a crash.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    // At most two journals read at once (one per core here): each read of a long journal
    // holds tens of MB, and a crowd of requests must not multiply that.
    static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let Ok(Ok(_permit)) =
        tokio::time::timeout(std::time::Duration::from_secs(30), READS.acquire()).await
    else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "503: flow serve is busy reading other journals; try again\n",
        )
            .into_response());
    };
    tokio::task::spawn_blocking(work).await.map_err(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "500: reading the journal failed\n",
        )
            .into_response()
    })
}

fn not_found_page(why: NotFound) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::not_found::render(&why.0)),
    )
        .into_response()
}

fn not_found_json(why: NotFound) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "error": why.0 })),
    )
        .into_response()
}

async fn unknown_path(request: Request) -> Response {
    let why = NotFound(format!("nothing at {}", request.uri().path()));
    if request.uri().path().starts_with("/api/") {
        not_found_json(why)
    } else {
        not_found_page(why)
    }
}

async fn runs_page(State(app): State<App>) -> Response {
    let state_dir = app.state_dir;
    match blocking(move || {
        let runs = model::runs(&state_dir);
        pages::runs::render(&state_dir, &runs)
    })
    .await
    {
        Ok(html) => Html(html).into_response(),
        Err(response) => response,
    }
}

/// The run with its events, or why there is none.
async fn load(app: &App, id: String) -> Result<model::RunDetail, Response> {
    let state_dir = Arc::clone(&app.state_dir);
    blocking(move || {
        let record = model::find(&state_dir, &id)?;
        let (events, journal) = model::events(&state_dir, &record);
        Ok(model::detail(&state_dir, &record, &events, &journal))
    })
    .await?
    .map_err(not_found_page)
}

#[derive(Deserialize)]
struct RunQuery {
    part: Option<String>,
}

async fn run_page(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Response {
    let run = match load(&app, id).await {
        Ok(run) => run,
        Err(response) => return response,
    };
    if query.part.as_deref() == Some("live") {
        return Html(pages::run::live_part(&run)).into_response();
    }
    let now = flow_engine::event::timestamp_now();
    Html(pages::run::render(&run, &now)).into_response()
}

async fn step_page(State(app): State<App>, Path((id, step)): Path<(String, String)>) -> Response {
    let state_dir = Arc::clone(&app.state_dir);
    let found = blocking(move || {
        let record = model::find(&state_dir, &id)?;
        let (events, journal) = model::events(&state_dir, &record);
        let run = model::detail(&state_dir, &record, &events, &journal);
        let Some(view) = run.steps.iter().find(|s| s.id == step).cloned() else {
            return Err(NotFound(format!(
                "run {} has no step `{step}`",
                record.run_id
            )));
        };
        let (lines, more) = model::output_of(&events, &step, pages::step::LINES_SHOWN);
        Ok(pages::step::render(&run, &view, &lines, more))
    })
    .await;
    match found {
        Ok(Ok(html)) => Html(html).into_response(),
        Ok(Err(why)) => not_found_page(why),
        Err(response) => response,
    }
}

async fn run_events(State(app): State<App>, Path(id): Path<String>) -> Response {
    let state_dir = (*app.state_dir).clone();
    match blocking(move || crate::live::follow(state_dir, id)).await {
        Ok(Ok(sse)) => sse.into_response(),
        Ok(Err(why)) => not_found_page(why),
        Err(response) => response,
    }
}

async fn api_runs(State(app): State<App>) -> Response {
    let state_dir = app.state_dir;
    match blocking(move || model::runs(&state_dir)).await {
        Ok(runs) => Json(runs).into_response(),
        Err(response) => response,
    }
}

async fn api_run(State(app): State<App>, Path(id): Path<String>) -> Response {
    let state_dir = Arc::clone(&app.state_dir);
    let found = blocking(move || {
        let record = model::find(&state_dir, &id)?;
        let (events, journal) = model::events(&state_dir, &record);
        Ok::<_, NotFound>(model::detail(&state_dir, &record, &events, &journal))
    })
    .await;
    match found {
        Ok(Ok(run)) => Json(run).into_response(),
        Ok(Err(why)) => not_found_json(why),
        Err(response) => response,
    }
}

/// Nothing cached (a run changes), nothing loaded from elsewhere, no framing by other sites.
async fn safety_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
