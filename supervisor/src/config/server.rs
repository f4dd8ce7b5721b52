//! `[server]`: the HTTP listener's address, body limits, timeouts and accepted `Host` names.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind (`ISOLATE_HOST`). Default `127.0.0.1`: only this machine can connect.
    pub host: String,
    /// Port to bind (`ISOLATE_PORT`). Default 5900; 0 picks a free port (printed at start).
    pub port: u16,
    /// Largest request body in bytes; larger ones get 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// HTTP threads. Default: the number of CPUs (at most 4).
    pub http_threads: Option<usize>,
    /// Longest time to receive a whole request body, from the end of the headers; slower
    /// bodies get 408. Default 30 s.
    pub body_timeout_ms: u64,
    /// Longest time an answer may wait for the client to read it (no progress at all on the
    /// connection) before the connection is closed. Default 10 s.
    pub write_timeout_ms: u64,
    /// Host names accepted in the `Host` header besides IP addresses and `localhost` (for a
    /// reverse proxy or a name in /etc/hosts); `"*"` accepts any. Default none: a page that
    /// rebinds its own name to this address is refused.
    pub allowed_hosts: Vec<String>,
    /// On SIGTERM or SIGINT: how long requests in flight may still run once the listener is
    /// closed, before they are cut off and every worker is stopped. Rounded up to whole
    /// seconds. Default 10 s (below the systemd unit's `TimeoutStopSec=15s`).
    pub shutdown_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 5900,
            max_body_bytes: 1 << 20,
            http_threads: None,
            body_timeout_ms: 30_000,
            write_timeout_ms: 10_000,
            allowed_hosts: Vec::new(),
            shutdown_timeout_ms: 10_000,
        }
    }
}

impl ServerConfig {
    /// [`ServerConfig::shutdown_timeout_ms`] in whole seconds, rounded up (actix-web's unit).
    pub fn shutdown_timeout_secs(&self) -> u64 {
        self.shutdown_timeout_ms.div_ceil(1000)
    }

    /// Rejects values that cannot work, naming the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.host.parse::<std::net::IpAddr>().is_err() && self.host != "localhost" {
            return Err(invalid(
                "server.host",
                format!("must be an IP address, got {:?}", self.host),
            ));
        }
        if self.max_body_bytes < 64 {
            return Err(invalid("server.max_body_bytes", "must be at least 64"));
        }
        if self.http_threads == Some(0) {
            return Err(invalid("server.http_threads", "must be at least 1"));
        }
        if !(100..=3_600_000).contains(&self.body_timeout_ms) {
            return Err(invalid(
                "server.body_timeout_ms",
                "must be between 100 and 3600000",
            ));
        }
        if !(100..=3_600_000).contains(&self.write_timeout_ms) {
            return Err(invalid(
                "server.write_timeout_ms",
                "must be between 100 and 3600000",
            ));
        }
        if self.shutdown_timeout_ms > 3_600_000 {
            return Err(invalid(
                "server.shutdown_timeout_ms",
                "must be at most 3600000",
            ));
        }
        for h in &self.allowed_hosts {
            let name_like = h == "*"
                || (!h.is_empty()
                    && h.len() <= 253
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
            if !name_like {
                return Err(invalid(
                    "server.allowed_hosts",
                    format!("{h:?} is not a host name (no scheme, port or path; \"*\" for any)"),
                ));
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
        for (toml, message) in [
            (
                "[server]\nhost = \"example.com\"",
                "server.host must be an IP address, got \"example.com\"",
            ),
            ("[server]\nmax_body_bytes = 63", "server.max_body_bytes must be at least 64"),
            ("[server]\nhttp_threads = 0", "server.http_threads must be at least 1"),
            (
                "[server]\nbody_timeout_ms = 99",
                "server.body_timeout_ms must be between 100 and 3600000",
            ),
            (
                "[server]\nwrite_timeout_ms = 3600001",
                "server.write_timeout_ms must be between 100 and 3600000",
            ),
            (
                "[server]\nshutdown_timeout_ms = 3600001",
                "server.shutdown_timeout_ms must be at most 3600000",
            ),
            (
                "[server]\nallowed_hosts = [\"proxy.example:8080\"]",
                "server.allowed_hosts \"proxy.example:8080\" is not a host name (no scheme, port or path; \"*\" for any)",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap().validate().unwrap_err();
            assert_eq!(err.to_string(), format!("invalid configuration: {message}"));
        }
        Config::from_toml(
            "[server]\nhost = \"localhost\"\nallowed_hosts = [\"*\", \"isolate.internal\"]",
        )
        .unwrap()
        .validate()
        .unwrap();
    }
}
