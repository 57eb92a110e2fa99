//! The OpenAPI 3.1 document, assembled from the `#[utoipa::path]` of every route as the
//! routers are merged, and served at `GET /api/openapi.json` (open to all: it is the same
//! for every deployment).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard",
        description = "Jobs, schedules, realtime, files, webhooks and audit logs for a Railway project, over HTTP. Errors are RFC 9457 problem documents.",
    ),
    modifiers(&ApiKey),
    components(schemas(super::problem::Problem)),
    tags(
        (name = "operations", description = "Health, metrics and this document"),
        (name = "jobs", description = "Background jobs: enqueue, state, cancel, retry, queues and dead jobs"),
        (name = "schedules", description = "Cron schedules: next and last runs, manual trigger"),
        (name = "files", description = "File storage: streaming upload, download with ranges, signed URLs"),
        (name = "audit", description = "The audit log: filtered listing and NDJSON export"),
        (name = "events", description = "Application events: send one or a batch; read an event and its deliveries"),
        (name = "databases", description = "The platform database registry: register, change and check databases"),
        (name = "webhooks", description = "Webhook endpoints, secret rotation, the delivery log, replay and recovery"),
        (name = "keys", description = "Scoped API keys: make, list and revoke"),
    ),
)]
pub struct ApiDoc;

struct ApiKey;

impl Modify for ApiKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "An API key (`sy_<prefix>_<secret>`) or the admin token. Each operation names \
             the one scope it needs; the admin token holds every scope."
                .into(),
        );
        components.add_security_scheme(super::auth::SCHEME, SecurityScheme::Http(scheme));
        let mut upload = Http::new(HttpAuthScheme::Bearer);
        upload.description = Some(
            "An upload token (`syu_…`) from `POST /api/v1/files/upload-tokens`, for \
             browsers: in this header or as `?token=`. It opens only the upload routes."
                .into(),
        );
        components.add_security_scheme(super::auth::UPLOAD_SCHEME, SecurityScheme::Http(upload));
    }
}

/// The document as served, rendered once.
#[derive(Clone)]
pub struct Document(Arc<Vec<u8>>);

impl Document {
    pub fn new(mut doc: utoipa::openapi::OpenApi) -> Self {
        doc.info.version = crate::VERSION.to_owned();
        unique_operation_ids(&mut doc);
        Self(Arc::new(
            serde_json::to_vec_pretty(&doc).unwrap_or_default(),
        ))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Operation ids come from handler names, which repeat across resources (`list`,
/// `create`); a client generator needs each once. A repeated id gets its operation's tag
/// in front (`files_list`, `keys_list`); a unique one stays as it is.
fn unique_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    for item in doc.paths.paths.values() {
        let operations = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
        for id in operations
            .into_iter()
            .flatten()
            .filter_map(|op| op.operation_id.clone())
        {
            *seen.entry(id).or_default() += 1;
        }
    }
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            let Some(id) = op.operation_id.clone() else {
                continue;
            };
            if seen.get(&id).copied().unwrap_or(0) > 1 {
                let tag = op.tags.iter().flatten().next().cloned().unwrap_or_default();
                op.operation_id = Some(format!("{tag}_{id}"));
            }
        }
    }
}

/// `GET /api/openapi.json`; the caller adds the admin gate.
pub fn router(document: Document) -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(serve).with_state(document))
}

async fn serve(State(document): State<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.0.as_ref().clone(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_has_an_id_of_its_own() {
        let doc: serde_json::Value = serde_json::from_str(&super::super::document_json()).unwrap();
        let mut ids = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                ids.push(operation["operationId"].as_str().unwrap().to_owned());
            }
        }
        let count = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), count, "repeated operation ids");
        assert!(ids.contains(&"files_list".to_owned()), "{ids:?}");
    }
}
