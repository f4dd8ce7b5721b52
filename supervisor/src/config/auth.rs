//! `[auth]`: the bearer tokens, the API keys (`[[auth.keys]]`) and the default rate limit.

use serde::{Deserialize, Serialize};

use super::{invalid, redacted, ConfigError};

/// `[auth]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bearer token every route but `/health` requires (`ISOLATE_AUTH_TOKEN`): the key named
    /// `default`, with every scope (every scope but `admin` when `admin_token` is set). Unset,
    /// and no `keys` either: no auth.
    #[serde(serialize_with = "redacted")]
    pub token: Option<String>,
    /// A separate token for `GET /status` and `/metrics`: the key named `admin`, with only the
    /// `admin` scope. Unset: `/status` takes `auth.token` like every other route.
    #[serde(serialize_with = "redacted")]
    pub admin_token: Option<String>,
    /// Requests per minute per key (burst of the same size), for keys that set none of their
    /// own; 0 disables. Default 60. Applies only when a key is configured.
    pub rate_limit_per_minute: u32,
    /// API keys, each with its own policy (`[[auth.keys]]`).
    pub keys: Vec<KeyConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token: None,
            admin_token: None,
            rate_limit_per_minute: 60,
            keys: Vec::new(),
        }
    }
}

/// The route families a key may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `/execute`, `/validate` and `/deno`.
    Execute,
    /// `/wasm/compile` and `/wasm/run`.
    Wasm,
    /// `/mcp`.
    Mcp,
    /// `/status`, `/metrics` and the admin views.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Execute, Scope::Wasm, Scope::Mcp, Scope::Admin];
    /// What a key gets when it names no scopes: every one but `admin`.
    pub const DEFAULT: [Scope; 3] = [Scope::Execute, Scope::Wasm, Scope::Mcp];

    /// The name used in the configuration and in answers.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Execute => "execute",
            Scope::Wasm => "wasm",
            Scope::Mcp => "mcp",
            Scope::Admin => "admin",
        }
    }
}

/// One `[[auth.keys]]` entry: a named key, the hash of its secret and its policy. Every
/// policy field is optional; unset means the service-wide setting.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key's name, as logs, `/status` and metrics show it: 1 to 64 of `A-Z a-z 0-9 _ . -`.
    pub name: String,
    /// SHA-256 of the secret, 64 hex digits (`isolate-service keys new NAME` prints both).
    pub secret_sha256: String,
    /// Route families the key may use; default every one but `admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
    /// Presets the key may run (`minimal`, `compute`, `data`, `agent`); default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presets: Option<Vec<String>>,
    /// The longest timeout the key may ask for, in milliseconds; default `limits.max_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_timeout_ms: Option<u64>,
    /// Requests per minute (burst of the same size); 0 disables; default
    /// `auth.rate_limit_per_minute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// The most executions the key may have running at once; default `workers.max_concurrent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<usize>,
    /// Host patterns that narrow `fetch.allow` for the key's `agent` runs; each must be
    /// covered by `fetch.allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_allow: Option<Vec<String>>,
    /// Executions per UTC day; default unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executions_per_day: Option<u64>,
    /// Worker CPU milliseconds per UTC day; default unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms_per_day: Option<u64>,
}

/// Whether `name` may name a key.
pub fn valid_key_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
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
        let mut names: Vec<&str> = Vec::new();
        if self.token.is_some() {
            names.push("default");
        }
        if self.admin_token.is_some() {
            names.push("admin");
        }
        let mut hashes: Vec<String> = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            let at = |field: &str| format!("auth.keys[{i}].{field}");
            if !valid_key_name(&key.name) {
                return Err(invalid(
                    &at("name"),
                    "must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and '-'",
                ));
            }
            if names.contains(&key.name.as_str()) {
                return Err(invalid(
                    &at("name"),
                    format!(
                        "{:?} names another key (\"default\" is auth.token's, \"admin\" auth.admin_token's)",
                        key.name
                    ),
                ));
            }
            names.push(&key.name);
            let hash = key.secret_sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    &at("secret_sha256"),
                    "must be the SHA-256 of the secret as 64 hex digits (`isolate-service keys new NAME` prints one)",
                ));
            }
            if hashes.contains(&hash) {
                return Err(invalid(
                    &at("secret_sha256"),
                    "is the hash of another key's secret",
                ));
            }
            hashes.push(hash);
            if key.scopes.as_ref().is_some_and(Vec::is_empty) {
                return Err(invalid(&at("scopes"), "must name at least one scope"));
            }
            if let Some(presets) = &key.presets {
                if presets.is_empty() {
                    return Err(invalid(&at("presets"), "must name at least one preset"));
                }
                for p in presets {
                    if isolate_shared::message::Preset::from_name(p).is_none() {
                        return Err(invalid(
                            &at("presets"),
                            format!("names {p:?}, which is not a preset (minimal, compute, data, agent)"),
                        ));
                    }
                }
            }
            if key.max_timeout_ms == Some(0) {
                return Err(invalid(&at("max_timeout_ms"), "must be at least 1"));
            }
            if key.max_concurrent == Some(0) {
                return Err(invalid(&at("max_concurrent"), "must be at least 1"));
            }
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

    #[test]
    fn keys_are_checked_one_by_one() {
        let hash = "a".repeat(64);
        let cases = [
            (
                format!("name = \"no spaces\"\nsecret_sha256 = \"{hash}\""),
                "auth.keys[0].name must be",
            ),
            (
                format!("name = \"k\"\nsecret_sha256 = \"{}\"", "a".repeat(63)),
                "auth.keys[0].secret_sha256 must be",
            ),
            (
                format!("name = \"k\"\nsecret_sha256 = \"{hash}\"\npresets = [\"fast\"]"),
                "auth.keys[0].presets names \"fast\"",
            ),
            (
                format!("name = \"k\"\nsecret_sha256 = \"{hash}\"\nscopes = []"),
                "auth.keys[0].scopes must name",
            ),
            (
                format!("name = \"k\"\nsecret_sha256 = \"{hash}\"\nmax_concurrent = 0"),
                "auth.keys[0].max_concurrent must be",
            ),
        ];
        for (body, expected) in cases {
            let err = Config::from_toml(&format!("[[auth.keys]]\n{body}"))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
        let twice = format!(
            "[[auth.keys]]\nname = \"a\"\nsecret_sha256 = \"{hash}\"\n[[auth.keys]]\nname = \"a\"\nsecret_sha256 = \"{}\"",
            "b".repeat(64)
        );
        let err = Config::from_toml(&twice)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.keys[1].name"), "{err}");
        let same_hash = format!(
            "[[auth.keys]]\nname = \"a\"\nsecret_sha256 = \"{hash}\"\n[[auth.keys]]\nname = \"b\"\nsecret_sha256 = \"{}\"",
            "A".repeat(64)
        );
        let err = Config::from_toml(&same_hash)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.keys[1].secret_sha256 is the hash of another"),
            "{err}"
        );
        let reserved = format!(
            "[auth]\ntoken = \"12345678\"\n[[auth.keys]]\nname = \"default\"\nsecret_sha256 = \"{hash}\""
        );
        let err = Config::from_toml(&reserved)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("names another key"), "{err}");
        let unknown =
            format!("[[auth.keys]]\nname = \"a\"\nsecret_sha256 = \"{hash}\"\nscope = [\"wasm\"]");
        assert!(Config::from_toml(&unknown).is_err());
        let fine = format!(
            "[[auth.keys]]\nname = \"agent-1\"\nsecret_sha256 = \"{hash}\"\nscopes = [\"execute\", \"mcp\"]\npresets = [\"agent\"]\nmax_timeout_ms = 2000\nrate_limit_per_minute = 10\nmax_concurrent = 2\nexecutions_per_day = 100\ncpu_ms_per_day = 60000"
        );
        Config::from_toml(&fine).unwrap().validate().unwrap();
    }
}
