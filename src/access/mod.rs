//! Access control shared by every HTTP stage: secrets that never print, SHA-256 digests of
//! keys and passwords compared in constant time, credentials read from request headers, and
//! per-app token buckets.

mod credentials;
mod digest;
mod rate;
mod secret;

pub use credentials::{basic_credentials, bearer_token, query_token};
pub use digest::{DigestError, SecretDigest};
pub use rate::TokenBucket;
pub use secret::Secret;
