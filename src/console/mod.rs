//! The web console at `/console`: pages over the API for queues, jobs, schedules, files,
//! realtime, instances, webhooks and audit, with a sign-in that trades a key for an
//! HttpOnly session cookie. Its assets are compiled into the binary.
//!
//! Nothing lives here yet: the feature lands with the console. It sits on the HTTP floor
//! beside `http`: it may use the edge's shared pieces (`http::problem`, `http::context`,
//! `http::auth`, `http::views`) and the domains, and exposes `router()` for `app serve`
//! and `app dev` to merge. It never imports a route module, and no module below HTTP
//! imports it.
