//! `ApiError` as a gRPC status: the matching code, the message, and a google.rpc.ErrorInfo
//! in the details whose `reason` is the stable error code.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::ApiError;

pub fn to_status(e: ApiError) -> Status {
    let code = match e.status.as_u16() {
        // A failed compare-and-set: the standard code for "re-read and retry".
        409 if e.code == "version_conflict" => Code::Aborted,
        400 | 413 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        405 => Code::Unimplemented,
        409 => Code::AlreadyExists,
        422 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        _ => Code::Internal,
    };
    let details = ErrorDetails::with_error_info(e.code, "tern", std::collections::HashMap::<String, String>::new());
    Status::with_error_details(code, e.message, details)
}

/// The stable code carried by a status from Tern (for clients and tests).
pub fn error_code(status: &Status) -> Option<String> {
    status.get_error_details().error_info().map(|i| i.reason.clone())
}
