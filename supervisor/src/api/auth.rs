//! Bearer-token authentication and the per-token rate limit.
//!
//! The token is compared in constant time (SHA-256 of both sides, then `subtle`'s `ct_eq`, so
//! neither the content nor the length leaks through timing). The rate limit is a token bucket
//! per token: `rate_limit_per_minute` requests of burst, refilled at that rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: no token, no rate limit (`/health`, for load balancers and probes).
    Public,
    /// The user token (`auth.token`), charged to the rate limit.
    User,
    /// The admin token (`auth.admin_token`), or the user token when no admin token is set.
    Admin,
}

/// Checks tokens and rate limits. Its tokens and limit can be replaced while it serves
/// ([`Auth::replace`]).
pub struct Auth {
    keys: std::sync::RwLock<Keys>,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

#[derive(Clone, Copy)]
struct Keys {
    token_hash: Option<[u8; 32]>,
    admin_hash: Option<[u8; 32]>,
    per_minute: u32,
}

impl Keys {
    fn new(token: Option<&str>, admin: Option<&str>, per_minute: u32) -> Keys {
        Keys {
            token_hash: token.map(|t| digest(t.as_bytes())),
            admin_hash: admin.map(|t| digest(t.as_bytes())),
            per_minute,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

impl Auth {
    /// `token`: the required bearer token (none: open). `admin`: the token of `/status`, when
    /// it has its own. `per_minute`: 0 disables limiting.
    pub fn new(token: Option<&str>, admin: Option<&str>, per_minute: u32) -> Self {
        Auth {
            keys: std::sync::RwLock::new(Keys::new(token, admin, per_minute)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Puts new tokens and a new limit in force (a reload). Buckets of tokens that stay are
    /// kept; those of tokens that went are dropped.
    pub fn replace(&self, token: Option<&str>, admin: Option<&str>, per_minute: u32) {
        let keys = Keys::new(token, admin, per_minute);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| Some(*k) == keys.token_hash || Some(*k) == keys.admin_hash);
    }

    fn keys(&self) -> Keys {
        *self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether requests need a token.
    pub fn enabled(&self) -> bool {
        self.keys().token_hash.is_some()
    }

    /// Checks the `Authorization` header value against what a route's `access` asks for and
    /// charges the rate limit: nothing for [`Access::Public`], the user token for
    /// [`Access::User`], and for [`Access::Admin`] the admin token when one is set (else the
    /// user token).
    pub fn authorise(&self, access: Access, authorization: Option<&[u8]>) -> Result<(), ApiError> {
        let keys = self.keys();
        match access {
            Access::Public => Ok(()),
            Access::User => self.check_against(keys.token_hash, keys.per_minute, authorization),
            Access::Admin => self.check_against(
                keys.admin_hash.or(keys.token_hash),
                keys.per_minute,
                authorization,
            ),
        }
    }

    fn check_against(
        &self,
        expected: Option<[u8; 32]>,
        per_minute: u32,
        authorization: Option<&[u8]>,
    ) -> Result<(), ApiError> {
        let Some(expected) = expected else {
            return Ok(());
        };
        let presented = authorization
            .and_then(|h| {
                let h = std::str::from_utf8(h).ok()?.trim();
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let presented = digest(presented.as_bytes());
        if !bool::from(presented.ct_eq(&expected)) {
            return Err(ApiError::Forbidden);
        }
        self.charge(presented, per_minute, Instant::now())
    }

    fn charge(&self, key: [u8; 32], per_minute: u32, now: Instant) -> Result<(), ApiError> {
        if per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            last: now,
        });
        b.tokens =
            (b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let retry_after = ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64;
            Err(ApiError::RateLimited { retry_after })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tokens_are_checked() {
        let auth = Auth::new(Some("correct-token"), Some("admin-token"), 0);
        assert!(matches!(
            auth.authorise(Access::User, None),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorise(Access::User, Some(b"Basic abc")),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorise(Access::User, Some(b"Bearer ")),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorise(Access::User, Some(b"Bearer wrong")),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            auth.authorise(Access::User, Some(b"Bearer correct-token-x")),
            Err(ApiError::Forbidden)
        ));
        auth.authorise(Access::User, Some(b"Bearer correct-token"))
            .unwrap();
        auth.authorise(Access::User, Some(b"bearer  correct-token "))
            .unwrap();
        assert!(matches!(
            auth.authorise(Access::Admin, Some(b"Bearer correct-token")),
            Err(ApiError::Forbidden)
        ));
        auth.authorise(Access::Admin, Some(b"Bearer admin-token"))
            .unwrap();
        Auth::new(None, None, 1)
            .authorise(Access::User, None)
            .unwrap();
        Auth::new(Some("t"), Some("a"), 1)
            .authorise(Access::Public, None)
            .unwrap();
    }

    #[test]
    fn the_bucket_refills_at_the_configured_rate() {
        let auth = Auth::new(Some("t0123456"), None, 2);
        let key = digest(b"t0123456");
        let t0 = Instant::now();
        auth.charge(key, 2, t0).unwrap();
        auth.charge(key, 2, t0).unwrap();
        match auth.charge(key, 2, t0) {
            Err(ApiError::RateLimited { retry_after }) => assert_eq!(retry_after, 30),
            other => panic!("{other:?}"),
        }
        auth.charge(key, 2, t0 + Duration::from_secs(31)).unwrap();
    }

    #[test]
    fn replaced_tokens_take_effect_at_once() {
        let auth = Auth::new(Some("old-token-1"), None, 0);
        auth.authorise(Access::User, Some(b"Bearer old-token-1"))
            .unwrap();
        auth.replace(Some("new-token-1"), Some("new-admin-1"), 0);
        assert!(matches!(
            auth.authorise(Access::User, Some(b"Bearer old-token-1")),
            Err(ApiError::Forbidden)
        ));
        auth.authorise(Access::User, Some(b"Bearer new-token-1"))
            .unwrap();
        auth.authorise(Access::Admin, Some(b"Bearer new-admin-1"))
            .unwrap();
        auth.replace(None, None, 0);
        auth.authorise(Access::Admin, None).unwrap();
    }
}
