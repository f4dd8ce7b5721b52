//! `[log]`: the log level (or tracing filter) and the line format.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug` or `trace`, or a tracing filter (`ISOLATE_LOG_LEVEL`).
    /// Default `info`.
    pub level: String,
    /// `text` (default) or `json` (one JSON object per line).
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

impl LogConfig {
    /// Rejects values that cannot work, naming the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.format.as_str(), "text" | "json") {
            return Err(invalid("log.format", "must be \"text\" or \"json\""));
        }
        let level = self.level.trim().to_ascii_lowercase();
        let plain = matches!(
            level.as_str(),
            "off" | "error" | "warn" | "info" | "debug" | "trace"
        );
        // Anything else must be a filter with at least one `target=level` directive: a lone
        // word such as "loud" would otherwise be read as a target name and log nothing.
        if !plain
            && (!level.contains('=') || tracing_subscriber::EnvFilter::try_new(&level).is_err())
        {
            return Err(invalid(
                "log.level",
                format!("is not a valid level or filter: {:?}", self.level),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config::default();
        c.log.level = "loud".into();
        assert!(c.validate().unwrap_err().to_string().contains("log.level"));
        for ok in ["warn", "DEBUG", "isolate_service=debug,actix_web=warn"] {
            c.log.level = ok.into();
            c.validate().unwrap();
        }
    }
}
