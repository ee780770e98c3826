//! The console's static files, embedded in the binary so it works offline: htmx 2 (vendored
//! and uPlot, vendored from npm (`console/package.json`, `npm run vendor`), the stylesheet and
//! the small script of its own.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::PageError;

const HTMX: &[u8] = include_bytes!("../assets/htmx.min.js");
const SCRIPT: &[u8] = include_bytes!("../assets/console.js");
const STYLE: &[u8] = include_bytes!("../assets/console.css");
/// uPlot (vendored from npm like htmx) draws the usage charts.
const UPLOT: &[u8] = include_bytes!("../assets/uPlot.iife.min.js");
const UPLOT_STYLE: &[u8] = include_bytes!("../assets/uPlot.min.css");

pub async fn serve(Path(file): Path<String>) -> Result<Response, PageError> {
    let (body, kind) = match file.as_str() {
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLE, "text/css; charset=utf-8"),
        "uPlot.iife.min.js" => (UPLOT, "text/javascript; charset=utf-8"),
        "uPlot.min.css" => (UPLOT_STYLE, "text/css; charset=utf-8"),
        _ => return Err(PageError::NotFound),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response())
}
