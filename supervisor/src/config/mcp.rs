//! `[mcp]`: the MCP server's HTTP transport at `/mcp` (see [`crate::mcp`]).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The `[mcp]` section of the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Serve MCP over streamable HTTP at `/mcp` (behind the API's authentication). Default
    /// `true`. The stdio transport (`isolate-service mcp`) does not depend on it.
    pub enabled: bool,
    /// The most MCP sessions open at once over HTTP; an `initialize` beyond it answers 503.
    /// Default 64. A session ends when its client deletes it or after 5 minutes without a
    /// request.
    pub max_sessions: usize,
    /// `Host` values `/mcp` accepts besides `localhost`, `127.0.0.1`, `::1` and
    /// `server.host` (a defence against DNS rebinding): the names a reverse proxy or remote
    /// clients use to reach the service, with or without `:port`. `["*"]` accepts any.
    pub allowed_hosts: Vec<String>,
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            enabled: true,
            max_sessions: 64,
            allowed_hosts: Vec::new(),
        }
    }
}

impl McpConfig {
    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_sessions == 0 {
            return Err(ConfigError::Invalid {
                key: "mcp.max_sessions".into(),
                problem: "must be at least 1".into(),
            });
        }
        if let Some(bad) = self
            .allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains(['/', ' ', '@']))
        {
            return Err(ConfigError::Invalid {
                key: "mcp.allowed_hosts".into(),
                problem: format!("{bad:?} is not a host name or host:port"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn bad_values_name_their_key() {
        for (toml, message) in [
            (
                "[mcp]\nmax_sessions = 0",
                "mcp.max_sessions must be at least 1",
            ),
            (
                "[mcp]\nallowed_hosts = [\"https://a.example\"]",
                "mcp.allowed_hosts \"https://a.example\" is not a host name or host:port",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap().validate().unwrap_err();
            assert_eq!(err.to_string(), format!("invalid configuration: {message}"));
        }
    }
}
