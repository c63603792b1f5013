//! Credentials presented by a request: a bearer token, a `?token=` query parameter (for the
//! browser's EventSource, which cannot set headers) and HTTP basic user and password.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use base64::Engine;

/// The token of `Authorization: Bearer <token>`.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The value of `token=` in a query string.
pub fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|token| !token.is_empty())
}

/// User and password of `Authorization: Basic base64(user:password)`.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_each_form() {
        assert_eq!(bearer_token(&with_authorization("Bearer t0k")), Some("t0k"));
        assert_eq!(bearer_token(&with_authorization("Basic t0k")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        assert_eq!(query_token(Some("a=1&token=xyz")), Some("xyz"));
        assert_eq!(query_token(Some("token=")), None);
        assert_eq!(
            basic_credentials(&with_authorization("Basic dXNlcjpwYTpzcw==")),
            Some(("user".to_owned(), "pa:ss".to_owned()))
        );
        assert_eq!(
            basic_credentials(&with_authorization("Bearer dXNlcjpwYXNz")),
            None
        );
    }
}
