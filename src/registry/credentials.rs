//! HTTP basic credentials on the registry's API, as Confluent's clients send them: when any
//! user is configured, writes (POST, PUT, DELETE) need a known user and password, and so do
//! reads unless `registry.open_reads`. 401 (with `WWW-Authenticate`) for none, 403 for wrong
//! ones, each with a Confluent `{error_code, message}` body.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::confluent_json;
use super::RegistryConfig;
use crate::access::{basic_credentials, SecretDigest};

/// One user allowed to call the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryUser {
    /// User name.
    pub user: String,
    /// SHA-256 of the password (`eventfold hash-secret`).
    pub password_sha256: SecretDigest,
}

#[derive(Debug)]
struct Policy {
    users: Vec<RegistryUser>,
    open_reads: bool,
}

/// `router` behind the credentials of `config` (unchanged when no user is configured).
pub fn require_credentials(router: Router, config: &RegistryConfig) -> Router {
    if config.basic_auth.is_empty() {
        return router;
    }
    let policy = Arc::new(Policy {
        users: config.basic_auth.clone(),
        open_reads: config.open_reads,
    });
    router.layer(axum::middleware::from_fn_with_state(policy, check))
}

async fn check(State(policy): State<Arc<Policy>>, request: Request, next: Next) -> Response {
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    if read && policy.open_reads {
        return next.run(request).await;
    }
    let Some((user, password)) = basic_credentials(request.headers()) else {
        let mut response = refusal(
            StatusCode::UNAUTHORIZED,
            40101,
            "this request needs HTTP basic credentials",
        );
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"eventfold-registry\""),
        );
        return response;
    };
    let presented = SecretDigest::of(password.as_bytes());
    let mut known = false;
    for entry in &policy.users {
        known |= entry.password_sha256.equals_in_constant_time(&presented) && entry.user == user;
    }
    if known {
        next.run(request).await
    } else {
        refusal(
            StatusCode::FORBIDDEN,
            40301,
            "the user or password is not known",
        )
    }
}

fn refusal(status: StatusCode, error_code: u32, message: &str) -> Response {
    let mut response = confluent_json(&json!({"error_code": error_code, "message": message}));
    *response.status_mut() = status;
    response.into_response()
}
