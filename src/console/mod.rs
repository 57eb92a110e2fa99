//! The web console at `/console`: pages over the API for queues, jobs, schedules, files,
//! realtime, instances, webhooks and audit, with a sign-in that trades a key for an
//! HttpOnly session cookie ([`session`]). Its assets are compiled into the binary.
//!
//! It sits on the HTTP floor beside `http`: it uses the edge's shared pieces
//! (`http::problem`, `http::auth`, `http::browser`, `http::limit`) and the domains, and
//! exposes [`router`] for `app serve` and `app dev` to merge with the API's public
//! routes. It never imports a route module, and no module below HTTP imports it.

pub mod assets;
pub mod live;
pub mod session;

use axum::routing::{get, post};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The console's routes; none is part of the API document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/console", get(assets::page))
        .route("/console/", get(assets::page))
        .route("/docs", get(assets::docs))
        .route(assets::ASSETS_PATH, get(assets::asset))
        .route(live::PATH, get(live::live))
        .route(
            session::PATH,
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
}
