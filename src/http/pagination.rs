//! Cursor pagination, as every listing takes it: `limit` (1 to 200, 50 when absent) and
//! the `cursor` a previous page returned as `next_cursor`.

use serde::Deserialize;
use utoipa::IntoParams;

use super::problem::ApiError;
use crate::invalid::Invalid;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 200; 50 when absent.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A listing's page size: 50 when absent, else 1 to 200.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Invalid::new("limit", "must be between 1 and 200").into());
    }
    Ok(limit)
}
