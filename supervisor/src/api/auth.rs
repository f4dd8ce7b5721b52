//! API keys: who is calling, what their key allows, and what they have used.
//!
//! Every configured key (`[[auth.keys]]`, plus `auth.token` as the key `default` and
//! `auth.admin_token` as the key `admin`) is held as the SHA-256 of its secret. A presented
//! bearer secret is hashed and compared with every key's hash in constant time (`subtle`), with
//! no early exit, so neither which key matched nor how much of it leaks through timing.
//!
//! Per key the [`Auth`] keeps a ledger: the rate-limit bucket (`rate_limit_per_minute` of
//! burst, refilled at that rate), the day's executions and CPU milliseconds against the daily
//! quotas (a UTC day, in memory: a restart starts the day's counts again), and the totals that
//! `/status` and `/metrics` show. Ledgers are kept by key name, so a reload that keeps a name
//! keeps its counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use isolate_shared::message::Preset;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::error::ApiError;
pub use crate::config::Scope;
use crate::config::{AuthConfig, KeyConfig};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: no key, no rate limit (`/health` and the page's files).
    Public,
    /// Any valid key, whatever its scopes (`/stats`, and the 404 answer).
    Any,
    /// A key with this scope.
    Scope(Scope),
}

/// One key and its policy, as a request carries it once authorised.
#[derive(Debug)]
pub struct Key {
    /// Its name, as logs, `/status` and metrics show it.
    pub name: Arc<str>,
    hash: [u8; 32],
    /// The route families it may use.
    pub scopes: Vec<Scope>,
    /// The presets it may run (`None`: all).
    pub presets: Option<Vec<Preset>>,
    /// The longest timeout it may ask for, in milliseconds.
    pub max_timeout_ms: Option<u64>,
    /// Requests per minute; 0: unlimited.
    pub per_minute: u32,
    /// The most executions it may have running at once (`None`: the pool's cap).
    pub max_concurrent: Option<usize>,
    /// Host patterns narrowing `fetch.allow` for its `agent` runs.
    pub fetch_allow: Option<Vec<String>>,
    /// Executions per UTC day.
    pub executions_per_day: Option<u64>,
    /// Worker CPU milliseconds per UTC day.
    pub cpu_ms_per_day: Option<u64>,
}

/// The key a request runs under.
pub type Caller = Arc<Key>;

impl Key {
    fn unlimited(name: &str, hash: [u8; 32], scopes: &[Scope], per_minute: u32) -> Key {
        Key {
            name: name.into(),
            hash,
            scopes: scopes.to_vec(),
            presets: None,
            max_timeout_ms: None,
            per_minute,
            max_concurrent: None,
            fetch_allow: None,
            executions_per_day: None,
            cpu_ms_per_day: None,
        }
    }

    /// The key of a service without authentication (`open`), or of a local transport that has
    /// none (the MCP server on standard input): every scope, no limits.
    pub fn local(name: &str) -> Caller {
        Arc::new(Key::unlimited(name, [0; 32], &Scope::ALL, 0))
    }

    fn from_config(k: &KeyConfig, default_per_minute: u32) -> Key {
        let mut hash = [0u8; 32];
        // Validated as 64 hex digits by the configuration.
        let _ = hex::decode_to_slice(k.secret_sha256.to_ascii_lowercase(), &mut hash);
        Key {
            name: k.name.as_str().into(),
            hash,
            scopes: k.scopes.clone().unwrap_or_else(|| Scope::DEFAULT.to_vec()),
            presets: k
                .presets
                .as_ref()
                .map(|p| p.iter().filter_map(|n| Preset::from_name(n)).collect()),
            max_timeout_ms: k.max_timeout_ms,
            per_minute: k.rate_limit_per_minute.unwrap_or(default_per_minute),
            max_concurrent: k.max_concurrent,
            fetch_allow: k.fetch_allow.clone(),
            executions_per_day: k.executions_per_day,
            cpu_ms_per_day: k.cpu_ms_per_day,
        }
    }

    /// Whether the key holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Refuses a preset outside the key's list.
    pub fn check_preset(&self, preset: Preset) -> Result<(), ApiError> {
        match &self.presets {
            Some(list) if !list.contains(&preset) => Err(ApiError::PolicyDenied(format!(
                "the preset \"{}\" is not among its presets ({})",
                preset.name(),
                list.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
            ))),
            _ => Ok(()),
        }
    }

    /// The timeout a job of this key runs with: `timeout_ms` when within the key's maximum;
    /// the maximum when the timeout was the route's default (`asked` false); refused when the
    /// request asked for more.
    pub fn limit_timeout(&self, timeout_ms: u64, asked: bool) -> Result<u64, ApiError> {
        match self.max_timeout_ms {
            Some(max) if timeout_ms > max => {
                if asked {
                    Err(ApiError::PolicyDenied(format!(
                        "a timeout of {timeout_ms} ms is more than its max_timeout_ms of {max}"
                    )))
                } else {
                    Ok(max)
                }
            }
            _ => Ok(timeout_ms),
        }
    }
}

/// What one execution used, as every answer of an execution reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// CPU milliseconds the worker process spent on the job (measured in the worker; for a
    /// worker killed at its deadline, read from the kernel's accounting of the process).
    pub cpu_ms: f64,
    /// Milliseconds from the request's arrival to its answer.
    pub wall_ms: f64,
    /// The most bytes the job's heap held (the JavaScript runtime's, or the WebAssembly
    /// instance's linear memory).
    pub heap_peak_bytes: u64,
    /// Fetches made (`agent` only).
    pub fetches: u64,
    /// Bytes sent and received by those fetches (request and response bodies).
    pub egress_bytes: u64,
}

impl Usage {
    /// Milliseconds since `started`, to the microsecond.
    pub fn millis_since(started: Instant) -> f64 {
        started.elapsed().as_micros() as f64 / 1e3
    }
}

/// A key's counts since the service started, as `/status` shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Executions answered (any outcome).
    pub executions: u64,
    /// Failed executions by error type.
    pub errors: BTreeMap<&'static str, u64>,
    /// Worker CPU milliseconds.
    pub cpu_ms: f64,
    /// Fetches made.
    pub fetches: u64,
    /// Fetch bytes sent and received.
    pub egress_bytes: u64,
}

#[derive(Default)]
struct Ledger {
    bucket: Option<Bucket>,
    totals: Totals,
    /// The UTC day (days since the epoch) the day's counts below belong to.
    day: u64,
    day_executions: u64,
    day_cpu_ms: f64,
}

impl Ledger {
    fn roll(&mut self, day: u64) {
        if self.day != day {
            self.day = day;
            self.day_executions = 0;
            self.day_cpu_ms = 0.0;
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct KeySet {
    keys: Vec<Caller>,
    /// The key of every request when no key is configured but (perhaps) the admin token: then
    /// only the `admin` scope needs a key, as before keys existed.
    open: Option<Caller>,
}

impl KeySet {
    fn new(config: &AuthConfig) -> KeySet {
        let per_minute = config.rate_limit_per_minute;
        let mut keys = Vec::new();
        if let Some(token) = &config.token {
            let scopes: &[Scope] = if config.admin_token.is_some() {
                &Scope::DEFAULT
            } else {
                &Scope::ALL
            };
            keys.push(Arc::new(Key::unlimited(
                "default",
                digest(token.as_bytes()),
                scopes,
                per_minute,
            )));
        }
        if let Some(token) = &config.admin_token {
            keys.push(Arc::new(Key::unlimited(
                "admin",
                digest(token.as_bytes()),
                &[Scope::Admin],
                per_minute,
            )));
        }
        keys.extend(
            config
                .keys
                .iter()
                .map(|k| Arc::new(Key::from_config(k, per_minute))),
        );
        let admin_only = config.admin_token.is_some() && keys.len() == 1;
        let open = (keys.is_empty() || admin_only).then(|| {
            let scopes: &[Scope] = if admin_only {
                &Scope::DEFAULT
            } else {
                &Scope::ALL
            };
            Arc::new(Key::unlimited("open", [0; 32], scopes, 0))
        });
        KeySet { keys, open }
    }

    /// Every key a request can run under: the configured ones, then `open`.
    fn all(&self) -> impl Iterator<Item = &Caller> {
        self.keys.iter().chain(self.open.iter())
    }
}

/// Checks keys, rate limits and quotas, and keeps each key's ledger. Its keys can be replaced
/// while it serves ([`Auth::replace`]).
pub struct Auth {
    keys: RwLock<Arc<KeySet>>,
    ledgers: Mutex<HashMap<Arc<str>, Ledger>>,
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

/// The SHA-256 of a secret as 64 lowercase hex digits, as `[[auth.keys]]` holds it.
pub fn secret_sha256(secret: &str) -> String {
    hex::encode(digest(secret.as_bytes()))
}

/// A key made by `isolate-service keys new`.
#[derive(Debug)]
pub struct NewKey {
    /// The secret clients send as their bearer token: `isk_` and 32 random bytes in
    /// URL-safe base64.
    pub secret: String,
    /// The `[[auth.keys]]` block holding its name and the secret's SHA-256.
    pub block: String,
}

/// Makes a key named `name` with a secret from the kernel's random source.
pub fn new_key(name: &str) -> Result<NewKey, String> {
    use base64::Engine as _;
    if !crate::config::valid_key_name(name) {
        return Err(format!(
            "{name:?} cannot name a key: use 1 to 64 of A-Z, a-z, 0-9, '_', '.' and '-'"
        ));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot read random bytes: {e}"))?;
    let secret = format!(
        "isk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let block = format!(
        "[[auth.keys]]\nname = \"{name}\"\nsecret_sha256 = \"{}\"\n",
        secret_sha256(&secret)
    );
    Ok(NewKey { secret, block })
}

/// Days since the Unix epoch, and the seconds until the next one starts.
fn utc_day(now: SystemTime) -> (u64, u64) {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    (secs / 86_400, 86_400 - secs % 86_400)
}

/// Midnight UTC at the start of `day`, in ISO 8601.
fn day_start(day: u64) -> String {
    let secs = i64::try_from(day.saturating_mul(86_400)).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

impl Auth {
    /// The keys of `config`.
    pub fn new(config: &AuthConfig) -> Self {
        Auth {
            keys: RwLock::new(Arc::new(KeySet::new(config))),
            ledgers: Mutex::new(HashMap::new()),
        }
    }

    /// Puts the keys of `config` in force (a reload). Requests already authorised keep the key
    /// they were authorised with; ledgers of names that stay are kept (a kept bucket refills at
    /// the new rate, up to the new burst), the rest dropped.
    pub fn replace(&self, config: &AuthConfig) {
        let next = Arc::new(KeySet::new(config));
        let mut ledgers = self.lock();
        ledgers.retain(|name, _| next.all().any(|k| &k.name == name));
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = next;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Ledger>> {
        self.ledgers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether requests need a key (all but those of `/status` and `/metrics` need none when
    /// only `auth.admin_token` is set).
    pub fn enabled(&self) -> bool {
        self.set().open.is_none()
    }

    /// The configured keys' names and scopes, in configuration order.
    pub fn names(&self) -> Vec<(Arc<str>, Vec<Scope>)> {
        self.set()
            .keys
            .iter()
            .map(|k| (Arc::clone(&k.name), k.scopes.clone()))
            .collect()
    }

    /// Checks the `Authorization` header value against what a route's `access` asks for and
    /// charges the key's rate limit. Answers the key the request runs under (none for
    /// [`Access::Public`]).
    pub fn authorise(
        &self,
        access: Access,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Caller>, ApiError> {
        if access == Access::Public {
            return Ok(None);
        }
        let set = self.set();
        if let Some(open) = &set.open {
            if !matches!(access, Access::Scope(scope) if !open.has(scope)) {
                return Ok(Some(Arc::clone(open)));
            }
        }
        let presented = authorization
            .and_then(|h| {
                let h = std::str::from_utf8(h).ok()?.trim();
                let (scheme, token) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let presented = digest(presented.as_bytes());
        // Every key is compared, whichever matches.
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, key) in set.keys.iter().enumerate() {
            let eq = presented.ct_eq(&key.hash);
            index.conditional_assign(&(i as u64), eq);
            found |= eq;
        }
        if !bool::from(found) {
            return Err(ApiError::Forbidden);
        }
        let key = usize::try_from(index)
            .ok()
            .and_then(|i| set.keys.get(i))
            .ok_or(ApiError::Forbidden)?;
        if let Access::Scope(scope) = access {
            if !key.has(scope) {
                return Err(ApiError::ScopeDenied(scope.name()));
            }
        }
        self.charge(key, Instant::now())?;
        Ok(Some(Arc::clone(key)))
    }

    fn charge(&self, key: &Key, now: Instant) -> Result<(), ApiError> {
        if key.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(key.per_minute);
        let rate = capacity / 60.0;
        let mut ledgers = self.lock();
        let ledger = ledgers.entry(Arc::clone(&key.name)).or_default();
        let b = ledger.bucket.get_or_insert(Bucket {
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

    /// Admits one execution of `key` against its daily quotas at `now`, counting it in the
    /// day's executions ([`Auth::refund`] takes it back when it never ran).
    pub fn admit(&self, key: &Key, now: SystemTime) -> Result<(), ApiError> {
        let (day, left) = utc_day(now);
        let mut ledgers = self.lock();
        let ledger = ledgers.entry(Arc::clone(&key.name)).or_default();
        ledger.roll(day);
        let exceeded = |name, limit, used| ApiError::QuotaExceeded {
            name,
            limit,
            used,
            resets_at: day_start(day + 1),
            retry_after: left,
        };
        if let Some(limit) = key.executions_per_day {
            if ledger.day_executions >= limit {
                return Err(exceeded("executions_per_day", limit, ledger.day_executions));
            }
        }
        if let Some(limit) = key.cpu_ms_per_day {
            let used = ledger.day_cpu_ms.floor() as u64;
            if used >= limit {
                return Err(exceeded("cpu_ms_per_day", limit, used));
            }
        }
        ledger.day_executions += 1;
        Ok(())
    }

    /// Takes back an execution [`Auth::admit`] counted that never reached a worker.
    pub fn refund(&self, key: &Key, now: SystemTime) {
        let (day, _) = utc_day(now);
        let mut ledgers = self.lock();
        if let Some(ledger) = ledgers.get_mut(&key.name) {
            if ledger.day == day {
                ledger.day_executions = ledger.day_executions.saturating_sub(1);
            }
        }
    }

    /// Books one answered execution of `key`: its outcome (`None` for success, else the error
    /// type) and what it used, in the totals, the day's CPU and the exported metrics. The
    /// ledger is the one [`Auth::admit`] opened; when a reload has removed the key since, only
    /// the metrics count it.
    pub fn settle(&self, key: &Key, failure: Option<&'static str>, usage: &Usage, now: SystemTime) {
        crate::telemetry::key_execution(&key.name, failure.unwrap_or("ok"), usage.egress_bytes);
        let (day, _) = utc_day(now);
        let mut ledgers = self.lock();
        let Some(ledger) = ledgers.get_mut(&key.name) else {
            return;
        };
        ledger.roll(day);
        ledger.day_cpu_ms += usage.cpu_ms;
        let t = &mut ledger.totals;
        t.executions += 1;
        if let Some(kind) = failure {
            *t.errors.entry(kind).or_default() += 1;
        }
        t.cpu_ms += usage.cpu_ms;
        t.fetches += usage.fetches;
        t.egress_bytes += usage.egress_bytes;
    }

    /// Each configured key's worker CPU milliseconds since the start, for `/metrics`.
    pub fn cpu_totals(&self) -> Vec<(String, f64)> {
        let set = self.set();
        let ledgers = self.lock();
        set.all()
            .map(|k| {
                let ms = ledgers.get(&k.name).map_or(0.0, |l| l.totals.cpu_ms);
                (k.name.to_string(), ms)
            })
            .collect()
    }

    /// Every configured key with its scopes, totals, the day's counts and its quotas, for
    /// `/status`. Never a secret or a hash.
    pub fn report(&self, now: SystemTime) -> Vec<serde_json::Value> {
        let set = self.set();
        let (day, _) = utc_day(now);
        let ledgers = self.lock();
        set.all()
            .map(|k| {
                let ledger = ledgers.get(&k.name);
                let totals = ledger.map(|l| l.totals.clone()).unwrap_or_default();
                let (day_executions, day_cpu_ms) = ledger
                    .filter(|l| l.day == day)
                    .map_or((0, 0.0), |l| (l.day_executions, l.day_cpu_ms));
                serde_json::json!({
                    "name": k.name.as_ref(),
                    "scopes": k.scopes,
                    "presets": k.presets.as_ref().map(|p| p.iter().map(|p| p.name()).collect::<Vec<_>>()),
                    "rateLimitPerMinute": k.per_minute,
                    "maxConcurrent": k.max_concurrent,
                    "maxTimeoutMs": k.max_timeout_ms,
                    "totals": totals,
                    "today": {
                        "executions": day_executions,
                        "cpuMs": day_cpu_ms,
                        "executionsPerDay": k.executions_per_day,
                        "cpuMsPerDay": k.cpu_ms_per_day,
                        "resetsAt": day_start(day + 1),
                    },
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(toml: &str) -> AuthConfig {
        crate::config::Config::from_toml(toml).unwrap().auth
    }

    fn with_token(token: &str, admin: Option<&str>, per_minute: u32) -> AuthConfig {
        AuthConfig {
            token: Some(token.into()),
            admin_token: admin.map(Into::into),
            rate_limit_per_minute: per_minute,
            keys: Vec::new(),
        }
    }

    fn name(r: Result<Option<Caller>, ApiError>) -> String {
        r.unwrap().unwrap().name.to_string()
    }

    #[test]
    fn a_new_key_is_random_and_its_block_configures_it() {
        let a = new_key("agent-7").unwrap();
        let b = new_key("agent-7").unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(
            a.secret.starts_with("isk_") && a.secret.len() == 4 + 43,
            "{}",
            a.secret
        );
        let auth = Auth::new(&config(&a.block));
        let header = format!("Bearer {}", a.secret);
        let key = auth
            .authorise(Access::Scope(Scope::Execute), Some(header.as_bytes()))
            .unwrap()
            .unwrap();
        assert_eq!(&*key.name, "agent-7");
        assert!(!a.block.contains(&a.secret));
        assert!(new_key("no spaces").is_err());
        assert!(new_key("").is_err());
    }

    #[test]
    fn tokens_are_checked() {
        let auth = Auth::new(&with_token("correct-token", Some("admin-token"), 0));
        let user = Access::Scope(Scope::Execute);
        let admin = Access::Scope(Scope::Admin);
        assert!(matches!(
            auth.authorise(user, None),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorise(user, Some(b"Basic abc")),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorise(user, Some(b"Bearer ")),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            auth.authorise(user, Some(b"Bearer wrong")),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            auth.authorise(user, Some(b"Bearer correct-token-x")),
            Err(ApiError::Forbidden)
        ));
        assert_eq!(
            name(auth.authorise(user, Some(b"Bearer correct-token"))),
            "default"
        );
        assert_eq!(
            name(auth.authorise(user, Some(b"bearer  correct-token "))),
            "default"
        );
        assert!(matches!(
            auth.authorise(admin, Some(b"Bearer correct-token")),
            Err(ApiError::ScopeDenied("admin"))
        ));
        assert_eq!(
            name(auth.authorise(admin, Some(b"Bearer admin-token"))),
            "admin"
        );
        assert!(matches!(
            auth.authorise(user, Some(b"Bearer admin-token")),
            Err(ApiError::ScopeDenied("execute"))
        ));
        assert_eq!(
            name(auth.authorise(Access::Any, Some(b"Bearer admin-token"))),
            "admin"
        );
        let open = Auth::new(&AuthConfig::default());
        assert!(!open.enabled());
        assert_eq!(name(open.authorise(admin, None)), "open");
        assert!(auth.authorise(Access::Public, None).unwrap().is_none());
        // Only an admin token: it alone opens /status, and the rest needs no key.
        let admin_only = Auth::new(&AuthConfig {
            admin_token: Some("admin-token".into()),
            ..AuthConfig::default()
        });
        assert_eq!(name(admin_only.authorise(user, None)), "open");
        assert!(matches!(
            admin_only.authorise(admin, None),
            Err(ApiError::Unauthorized)
        ));
        assert_eq!(
            name(admin_only.authorise(admin, Some(b"Bearer admin-token"))),
            "admin"
        );
        // Without an admin token the user token opens everything, as before keys existed.
        let one = Auth::new(&with_token("correct-token", None, 0));
        assert_eq!(
            name(one.authorise(admin, Some(b"Bearer correct-token"))),
            "default"
        );
    }

    #[test]
    fn configured_keys_carry_their_scopes_and_policy() {
        let auth = Auth::new(&config(&format!(
            "[[auth.keys]]\nname = \"ci\"\nsecret_sha256 = \"{}\"\nscopes = [\"wasm\"]\n\
             [[auth.keys]]\nname = \"agent\"\nsecret_sha256 = \"{}\"\npresets = [\"agent\"]\nmax_timeout_ms = 500",
            secret_sha256("ci-secret-1"),
            secret_sha256("agent-secret-1").to_uppercase(),
        )));
        assert!(matches!(
            auth.authorise(Access::Scope(Scope::Execute), Some(b"Bearer ci-secret-1")),
            Err(ApiError::ScopeDenied("execute"))
        ));
        assert_eq!(
            name(auth.authorise(Access::Scope(Scope::Wasm), Some(b"Bearer ci-secret-1"))),
            "ci"
        );
        let agent = auth
            .authorise(
                Access::Scope(Scope::Execute),
                Some(b"Bearer agent-secret-1"),
            )
            .unwrap()
            .unwrap();
        assert_eq!(&*agent.name, "agent");
        assert!(!agent.has(Scope::Admin));
        agent.check_preset(Preset::Agent).unwrap();
        assert!(matches!(
            agent.check_preset(Preset::Compute),
            Err(ApiError::PolicyDenied(m)) if m.contains("\"compute\"")
        ));
        assert_eq!(agent.limit_timeout(400, true).unwrap(), 400);
        assert_eq!(agent.limit_timeout(5000, false).unwrap(), 500);
        assert!(matches!(
            agent.limit_timeout(501, true),
            Err(ApiError::PolicyDenied(m)) if m.contains("max_timeout_ms of 500")
        ));
    }

    #[test]
    fn each_key_has_its_own_bucket_refilled_at_its_rate() {
        let auth = Auth::new(&config(&format!(
            "[auth]\nrate_limit_per_minute = 2\n[[auth.keys]]\nname = \"a\"\nsecret_sha256 = \"{}\"\n\
             [[auth.keys]]\nname = \"b\"\nsecret_sha256 = \"{}\"\nrate_limit_per_minute = 0",
            secret_sha256("secret-a"),
            secret_sha256("secret-b"),
        )));
        let set = auth.set();
        let (a, b) = (&set.keys[0], &set.keys[1]);
        let t0 = Instant::now();
        auth.charge(a, t0).unwrap();
        auth.charge(a, t0).unwrap();
        match auth.charge(a, t0) {
            Err(ApiError::RateLimited { retry_after }) => assert_eq!(retry_after, 30),
            other => panic!("{other:?}"),
        }
        for _ in 0..100 {
            auth.charge(b, t0).unwrap();
        }
        auth.charge(a, t0 + Duration::from_secs(31)).unwrap();
    }

    #[test]
    fn a_daily_quota_is_reached_and_starts_again_at_midnight_utc() {
        let auth = Auth::new(&config(&format!(
            "[[auth.keys]]\nname = \"q\"\nsecret_sha256 = \"{}\"\nexecutions_per_day = 2\ncpu_ms_per_day = 100",
            secret_sha256("secret-q"),
        )));
        let key = Arc::clone(&auth.set().keys[0]);
        // 2026-12-03T23:59:00Z
        let evening = UNIX_EPOCH + Duration::from_secs(1_796_342_340);
        auth.admit(&key, evening).unwrap();
        auth.admit(&key, evening).unwrap();
        match auth.admit(&key, evening) {
            Err(ApiError::QuotaExceeded {
                name,
                limit,
                used,
                resets_at,
                retry_after,
            }) => {
                assert_eq!((name, limit, used), ("executions_per_day", 2, 2));
                assert_eq!(resets_at, "2026-12-04T00:00:00Z");
                assert_eq!(retry_after, 60);
            }
            other => panic!("{other:?}"),
        }
        // A refunded execution frees its place.
        auth.refund(&key, evening);
        auth.admit(&key, evening).unwrap();
        let midnight = evening + Duration::from_secs(60);
        auth.admit(&key, midnight).unwrap();
        let usage = Usage {
            cpu_ms: 150.0,
            ..Usage::default()
        };
        auth.settle(&key, None, &usage, midnight);
        match auth.admit(&key, midnight) {
            Err(ApiError::QuotaExceeded { name, used, .. }) => {
                assert_eq!((name, used), ("cpu_ms_per_day", 150));
            }
            other => panic!("{other:?}"),
        }
        let report = auth.report(midnight);
        assert_eq!(report[0]["totals"]["executions"], 1);
        assert_eq!(report[0]["today"]["executions"], 1);
        assert_eq!(report[0]["today"]["resetsAt"], "2026-12-05T00:00:00Z");
        assert!(!report[0].to_string().contains(&secret_sha256("secret-q")));
    }

    #[test]
    fn replaced_keys_take_effect_at_once_and_kept_names_keep_their_ledger() {
        let auth = Auth::new(&with_token("old-token-1", None, 0));
        let user = Access::Scope(Scope::Execute);
        let key = auth
            .authorise(user, Some(b"Bearer old-token-1"))
            .unwrap()
            .unwrap();
        auth.admit(&key, SystemTime::now()).unwrap();
        auth.settle(&key, Some("TIMEOUT"), &Usage::default(), SystemTime::now());
        auth.replace(&with_token("new-token-1", Some("new-admin-1"), 0));
        assert!(matches!(
            auth.authorise(user, Some(b"Bearer old-token-1")),
            Err(ApiError::Forbidden)
        ));
        auth.authorise(user, Some(b"Bearer new-token-1")).unwrap();
        auth.authorise(Access::Scope(Scope::Admin), Some(b"Bearer new-admin-1"))
            .unwrap();
        let report = auth.report(SystemTime::now());
        assert_eq!(report[0]["name"], "default");
        assert_eq!(report[0]["totals"]["errors"]["TIMEOUT"], 1);
        auth.replace(&AuthConfig::default());
        assert_eq!(
            name(auth.authorise(Access::Scope(Scope::Admin), None)),
            "open"
        );
        // A request of the removed key that ends after the reload leaves no ledger behind.
        auth.settle(&key, None, &Usage::default(), SystemTime::now());
        assert!(!auth.lock().contains_key("default"));
    }
}
