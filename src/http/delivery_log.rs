//! A page of the webhook delivery log, as the webhooks routes (an endpoint's deliveries)
//! and the events routes (an event's deliveries) both answer it.

use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::problem::ApiError;
use crate::invalid::Invalid;
use crate::webhooks::deliveries::{self, Delivery, Filter};

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

impl DeliveryPage {
    /// The deliveries `filter` wants, newest first; a cursor this API did not hand out is
    /// a 422 naming `cursor`.
    pub async fn read(
        db: &PgPool,
        filter: &Filter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<axum::Json<Self>, ApiError> {
        let page = deliveries::list(db, filter, limit, cursor)
            .await?
            .map_err(|bad| Invalid::new("cursor", bad.to_string()))?;
        Ok(axum::Json(Self {
            deliveries: page.deliveries,
            next_cursor: page.next_cursor,
        }))
    }
}
