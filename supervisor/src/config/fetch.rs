//! `[fetch]`: the `agent` preset's egress policy, its limits and the secret headers the
//! service adds (`[[fetch.secret_headers]]`), with their values read from the environment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{invalid, redacted, ConfigError};

/// `[fetch]`: what the `agent` preset's `fetch` may reach. With no `allow_hosts`, every fetch
/// is denied.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Hosts fetch may reach: exact names or IP literals, `*.example.com` (any name below
    /// example.com) or `*` (any host). Default none: every fetch is denied.
    pub allow_hosts: Vec<String>,
    /// URL schemes allowed (`https`, `http`). Default `["https"]`.
    pub allow_schemes: Vec<String>,
    /// Ports allowed. Default empty: the scheme's default port only (443, or 80 for http).
    pub allow_ports: Vec<u16>,
    /// Address ranges (CIDR) allowed although they are loopback, private, link-local or
    /// otherwise special, which are denied by default. Default none.
    pub allow_addresses: Vec<String>,
    /// Fetches per execution (denied ones count too). Default 10.
    pub max_requests: u32,
    /// Largest request body, in bytes. Default 1 MiB.
    pub max_request_body_bytes: u64,
    /// Largest response body, in bytes, enforced while it arrives. Default 1 MiB.
    pub max_response_body_bytes: u64,
    /// Longest time for one fetch (with its redirects), in ms; it never outlasts the
    /// execution's own timeout. Default 5000.
    pub timeout_ms: u64,
    /// Redirects followed per fetch. Default 5.
    pub max_redirects: u32,
    /// Headers the service adds to requests for matching hosts; the code never sees them.
    pub secret_headers: Vec<SecretHeader>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            allow_hosts: Vec::new(),
            allow_schemes: vec!["https".into()],
            allow_ports: Vec::new(),
            allow_addresses: Vec::new(),
            max_requests: 10,
            max_request_body_bytes: 1 << 20,
            max_response_body_bytes: 1 << 20,
            timeout_ms: 5000,
            max_redirects: 5,
            secret_headers: Vec::new(),
        }
    }
}

/// `[[fetch.secret_headers]]`: one header attached to requests for `host`.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretHeader {
    /// The host pattern (as in `allow_hosts`) whose requests get the header.
    pub host: String,
    /// The header name.
    pub name: String,
    /// The value, written in the file.
    #[serde(serialize_with = "redacted")]
    pub value: Option<String>,
    /// The name of an environment variable of the service holding the value (read at start).
    pub value_env: Option<String>,
}

impl std::fmt::Debug for SecretHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHeader")
            .field("host", &self.host)
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .field("value_env", &self.value_env)
            .finish()
    }
}

impl FetchConfig {
    /// Reads the value of every `fetch.secret_headers` entry that names a `value_env`.
    pub(super) fn resolve_secrets(
        &mut self,
        env: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        for s in &mut self.secret_headers {
            let Some(var) = &s.value_env else { continue };
            if s.value.is_some() {
                return Err(invalid(
                    "fetch.secret_headers",
                    format!("the header {:?} has both value and value_env", s.name),
                ));
            }
            match env.get(var) {
                Some(v) if !v.is_empty() => s.value = Some(v.clone()),
                _ => {
                    return Err(invalid(
                        "fetch.secret_headers",
                        format!("the environment variable {var} (value_env of the header {:?}) is unset or empty", s.name),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Rejects values that cannot work, naming the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        use crate::fetch::policy::{Cidr, HostPattern};
        for h in &self.allow_hosts {
            HostPattern::parse(h).map_err(|e| invalid("fetch.allow_hosts", e))?;
        }
        if self.allow_schemes.is_empty() {
            return Err(invalid(
                "fetch.allow_schemes",
                "must name at least one scheme",
            ));
        }
        for s in &self.allow_schemes {
            if !matches!(s.as_str(), "https" | "http") {
                return Err(invalid(
                    "fetch.allow_schemes",
                    format!("may hold only \"https\" and \"http\", got {s:?}"),
                ));
            }
        }
        if self.allow_ports.contains(&0) {
            return Err(invalid("fetch.allow_ports", "must not contain 0"));
        }
        for a in &self.allow_addresses {
            Cidr::parse(a).map_err(|e| invalid("fetch.allow_addresses", e))?;
        }
        let max = isolate_shared::message::FETCH_MAX_BODY_BYTES;
        if self.max_request_body_bytes > max {
            return Err(invalid(
                "fetch.max_request_body_bytes",
                format!("must be at most {max}"),
            ));
        }
        if self.max_response_body_bytes > max {
            return Err(invalid(
                "fetch.max_response_body_bytes",
                format!("must be at most {max}"),
            ));
        }
        if self.max_requests > 1000 {
            return Err(invalid("fetch.max_requests", "must be at most 1000"));
        }
        if self.timeout_ms == 0 {
            return Err(invalid("fetch.timeout_ms", "must be at least 1"));
        }
        if self.max_redirects > 20 {
            return Err(invalid("fetch.max_redirects", "must be at most 20"));
        }
        for s in &self.secret_headers {
            HostPattern::parse(&s.host).map_err(|e| invalid("fetch.secret_headers", e))?;
            if reqwest::header::HeaderName::from_bytes(s.name.trim().as_bytes()).is_err() {
                return Err(invalid(
                    "fetch.secret_headers",
                    format!("{:?} is not a valid header name", s.name),
                ));
            }
            match (&s.value, &s.value_env) {
                (Some(v), _) if reqwest::header::HeaderValue::from_str(v).is_ok() => {}
                (Some(_), _) => {
                    return Err(invalid(
                        "fetch.secret_headers",
                        format!("the value of {:?} is not a valid header value", s.name),
                    ))
                }
                (None, _) => {
                    return Err(invalid(
                        "fetch.secret_headers",
                        format!("the header {:?} needs value or value_env", s.name),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{env, Config};

    #[test]
    fn fetch_settings_are_checked_and_secrets_come_from_the_environment() {
        let c = Config::default();
        assert!(c.fetch.allow_hosts.is_empty(), "deny everything by default");
        assert_eq!(c.fetch.allow_schemes, vec!["https".to_string()]);
        for (toml, key) in [
            ("[fetch]\nallow_hosts = [\"exa mple.com\"]", "fetch.allow_hosts"),
            ("[fetch]\nallow_schemes = [\"ftp\"]", "fetch.allow_schemes"),
            ("[fetch]\nallow_schemes = []", "fetch.allow_schemes"),
            ("[fetch]\nallow_addresses = [\"10.0.0.0/40\"]", "fetch.allow_addresses"),
            ("[fetch]\nmax_response_body_bytes = 1000000000", "fetch.max_response_body_bytes"),
            ("[fetch]\ntimeout_ms = 0", "fetch.timeout_ms"),
            (
                "[[fetch.secret_headers]]\nhost = \"a.example.com\"\nname = \"Authorization\"",
                "fetch.secret_headers",
            ),
            (
                "[[fetch.secret_headers]]\nhost = \"a.example.com\"\nname = \"Bad Name\"\nvalue = \"x\"",
                "fetch.secret_headers",
            ),
        ] {
            let err = Config::from_toml(toml).unwrap().validate().unwrap_err();
            assert!(err.to_string().contains(key), "{toml}: {err}");
        }
        let mut c = Config::from_toml(
            "[[fetch.secret_headers]]\nhost = \"a.example.com\"\nname = \"Authorization\"\nvalue_env = \"API_TOKEN\"",
        )
        .unwrap();
        assert!(c.resolve_secrets(&env(&[])).is_err());
        assert!(c.resolve_secrets(&env(&[("API_TOKEN", "")])).is_err());
        let mut both = c.clone();
        both.fetch.secret_headers[0].value = Some("inline".into());
        let err = both
            .resolve_secrets(&env(&[("API_TOKEN", "x")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("both value and value_env"),
            "{err}"
        );
        c.resolve_secrets(&env(&[("API_TOKEN", "Bearer s3cr3t")]))
            .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.fetch.secret_headers[0].value.as_deref(),
            Some("Bearer s3cr3t")
        );
        assert!(
            !format!("{c:?}").contains("s3cr3t"),
            "secret values never appear in debug output"
        );
    }
}
