//! `/api/v1/audit`: the audit log, filtered and paged newest first, and exported as NDJSON
//! (one JSON object a line, oldest first) for a time range, streamed as it is read.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::pagination::page_limit;
use super::problem::{ApiError, Problem};
use crate::events::audit::{self, AuditEntry, Filter};
use crate::invalid::Invalid;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
}

/// What to look for; every filter is optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this actor's rows.
    pub actor: Option<String>,
    /// Only actions starting with this, matched literally (`files.` for every file action).
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// From this time on (RFC 3339).
    pub since: Option<String>,
    /// Before this time (RFC 3339).
    pub until: Option<String>,
    /// 1 to 200; 50 when absent. Listing only.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page. Listing only.
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// The filter it asks for, or the field at fault.
    fn filter(&self) -> Result<Filter, Invalid> {
        let time = |field: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| {
                    DateTime::parse_from_rfc3339(text)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| {
                            Invalid::new(field, format!("not an RFC 3339 time ({e}): {text:?}"))
                        })
                })
                .transpose()
        };
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since, until)
            && until <= since
        {
            return Err(Invalid::new("until", "must be later than since"));
        }
        for (field, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("resource_type", &self.resource_type),
            ("resource_id", &self.resource_id),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.is_empty() || v.len() > 256)
            {
                return Err(Invalid::new(field, "must be 1-256 characters"));
            }
        }
        Ok(Filter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            since,
            until,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Audit rows, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    security(("api_key" = ["audit:read"])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit rows", body = AuditPage),
        (status = 422, description = "A bad filter, limit or cursor; `field` names it", body = Problem),
    )
)]
async fn list(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let filter = query.filter()?;
    let limit = page_limit(query.limit)?;
    let page = audit::list(&state.db, &filter, limit, query.cursor.as_deref())
        .await?
        .map_err(|bad| Invalid::new("cursor", bad.to_string()))?;
    Ok(axum::Json(AuditPage {
        entries: page.entries,
        next_cursor: page.next_cursor,
    }))
}

/// Audit rows as NDJSON, oldest first, streamed as they are read: one JSON object a line.
/// A read that fails mid-way cuts the response short, so a complete export ends with a
/// newline after its last row.
#[utoipa::path(
    get,
    path = "/api/v1/audit/export",
    tag = "audit",
    security(("api_key" = ["audit:read"])),
    params(AuditQuery),
    responses(
        (status = 200, description = "One audit row a line", content_type = "application/x-ndjson"),
        (status = 422, description = "A bad filter; `field` names it", body = Problem),
    )
)]
async fn export(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    if query.limit.is_some() || query.cursor.is_some() {
        let field = if query.limit.is_some() {
            "limit"
        } else {
            "cursor"
        };
        return Err(Invalid::new(
            field,
            "an export is not paged; narrow it with since and until",
        )
        .into());
    }
    let filter = query.filter()?;
    let lines = audit::export(state.db.clone(), filter).map(|entry| {
        let entry = entry.inspect_err(|error| {
            tracing::error!(
                error = format!("{error:#}"),
                "the audit export failed mid-way; the response is cut short"
            );
        })?;
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        Ok::<_, anyhow::Error>(Bytes::from(line))
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(lines),
    )
        .into_response())
}
