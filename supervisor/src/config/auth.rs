//! `[auth]`: the bearer tokens and the per-token rate limit.

use serde::{Deserialize, Serialize};

use super::{invalid, redacted, ConfigError};

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer token every route but `/health` requires (`ISOLATE_AUTH_TOKEN`). Empty: no auth.
    #[serde(serialize_with = "redacted")]
    pub token: Option<String>,
    /// A separate token for `GET /status`; when set, only it opens `/status`. Unset: `/status`
    /// takes `auth.token` like every other route.
    #[serde(serialize_with = "redacted")]
    pub admin_token: Option<String>,
    /// Requests per minute per token (burst of the same size); 0 disables. Default 60.
    /// Applies only when a token is set.
    pub rate_limit_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token: None,
            admin_token: None,
            rate_limit_per_minute: 60,
        }
    }
}

impl AuthConfig {
    /// Rejects values that cannot work, naming the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.token.as_ref().is_some_and(|t| t.len() < 8) {
            return Err(invalid("auth.token", "must be at least 8 characters"));
        }
        if self.admin_token.as_ref().is_some_and(|t| t.len() < 8) {
            return Err(invalid("auth.admin_token", "must be at least 8 characters"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn bad_values_name_their_key() {
        for key in ["token", "admin_token"] {
            let err = Config::from_toml(&format!("[auth]\n{key} = \"7 chars\""))
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid configuration: auth.{key} must be at least 8 characters")
            );
        }
    }
}
