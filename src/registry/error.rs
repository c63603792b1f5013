//! The registry's errors, each with the HTTP status and Confluent `error_code` that
//! Confluent's own server sends for it, and the JSON error body clients parse.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A registry request that failed, as Confluent reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// 40401.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// 40402.
    #[error("Version {0} not found.")]
    VersionNotFound(String),
    /// 40403, for a lookup by schema text.
    #[error("Schema not found")]
    SchemaNotFound,
    /// 40403, for a lookup by id.
    #[error("Schema {0} not found")]
    SchemaIdNotFound(u32),
    /// 40404.
    #[error("Subject '{0}' was soft deleted.Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// 40405.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// 40406.
    #[error("Subject '{0}' Version {1} was soft deleted.Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, u32),
    /// 40407.
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, u32),
    /// 40408.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectLevelCompatibilityNotConfigured(String),
    /// 409: the schema breaks the subject's compatibility level.
    #[error("Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]", .messages.join(", "))]
    Incompatible {
        /// The subject.
        subject: String,
        /// Every incompatibility, naming the field path and the rule.
        messages: Vec<String>,
    },
    /// 42201.
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// 42202.
    #[error("The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"")]
    InvalidVersion(String),
    /// 42203.
    #[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
    InvalidCompatibilityLevel,
    /// 400: the body is not the JSON the endpoint takes.
    #[error("{0}")]
    MalformedRequest(String),
    /// 50001.
    #[error("Error in the backend datastore: {0}")]
    Backend(String),
    /// 50002.
    #[error("Operation timed out")]
    Timeout,
}

impl RegistryError {
    /// The HTTP status and the Confluent error code.
    pub fn codes(&self) -> (StatusCode, u32) {
        use RegistryError::*;
        match self {
            SubjectNotFound(_) => (StatusCode::NOT_FOUND, 40401),
            VersionNotFound(_) => (StatusCode::NOT_FOUND, 40402),
            SchemaNotFound | SchemaIdNotFound(_) => (StatusCode::NOT_FOUND, 40403),
            SubjectSoftDeleted(_) => (StatusCode::NOT_FOUND, 40404),
            SubjectNotSoftDeleted(_) => (StatusCode::NOT_FOUND, 40405),
            VersionSoftDeleted(..) => (StatusCode::NOT_FOUND, 40406),
            VersionNotSoftDeleted(..) => (StatusCode::NOT_FOUND, 40407),
            SubjectLevelCompatibilityNotConfigured(_) => (StatusCode::NOT_FOUND, 40408),
            Incompatible { .. } => (StatusCode::CONFLICT, 409),
            InvalidSchema(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
            InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
            InvalidCompatibilityLevel => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
            MalformedRequest(_) => (StatusCode::BAD_REQUEST, 400),
            Backend(_) => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
            Timeout => (StatusCode::INTERNAL_SERVER_ERROR, 50002),
        }
    }
}

/// Confluent's error body.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, error_code) = self.codes();
        let message = match &self {
            RegistryError::Backend(_) => "Error in the backend datastore".to_owned(),
            other => other.to_string(),
        };
        let mut response = (
            status,
            super::api::confluent_json(&ErrorBody {
                error_code,
                message,
            }),
        )
            .into_response();
        response.extensions_mut().insert(self);
        response
    }
}
