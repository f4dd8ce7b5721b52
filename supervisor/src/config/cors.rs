//! `[cors]`: the origins allowed to call the API from a browser (none by default).

use serde::{Deserialize, Serialize};

/// `[cors]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser. Empty (default): no CORS headers at all.
    /// `"*"` allows any origin and must be chosen explicitly.
    pub origins: Vec<String>,
}
