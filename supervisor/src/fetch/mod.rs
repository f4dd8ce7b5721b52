//! The `agent` preset's `fetch`, performed by the supervisor under the egress policy.
//!
//! A worker has no network: each `fetch` in the code arrives here as a host-call frame
//! ([`FetchRequest`]) during [`crate::pool::Pool::call`], which hands it to the job's
//! [`FetchContext`]. The context applies the per-execution limits (count, body sizes, time),
//! checks every hop against the [`policy`] (scheme, host, port, and the addresses after DNS
//! resolution: the shared client's resolver returns only checked addresses, so the connection
//! goes to exactly what was checked), attaches the configured secret headers, follows redirects
//! by hand, reads the body while counting it, and records an [`FetchAudit`] entry for the
//! answer. The result goes back to the worker as the promise's value or rejection message.

pub mod policy;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use isolate_shared::message::{FetchRequest, FetchResponse, FetchResult, RedirectMode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;

use crate::config::FetchConfig;
pub use policy::HostSet;
use policy::{AddressPolicy, Cidr, HostPattern};

/// Why the egress service could not be set up (checked at start-up).
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// A configured value is unusable (the configuration's `validate` normally catches it).
    #[error("fetch configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Why one fetch got no response. The `Display` text is the message of the `TypeError` the
/// code's promise rejects with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchFailure {
    /// The egress policy refused the URL or one of its addresses.
    #[error("fetch to {target} denied by egress policy: {reason}")]
    Denied {
        /// The host or address that was refused.
        target: String,
        /// Which rule refused it.
        reason: String,
    },
    /// The execution made its configured number of fetches already.
    #[error("fetch limit of {0} requests per execution reached")]
    TooMany(u32),
    /// The request body is over the limit.
    #[error("request body exceeds {0} bytes")]
    RequestTooLarge(u64),
    /// The response body grew past the limit (the transfer was stopped there).
    #[error("response body exceeds {0} bytes")]
    ResponseTooLarge(u64),
    /// The fetch did not finish in time.
    #[error("fetch timed out after {0} ms")]
    Timeout(u64),
    /// The URL cannot be parsed or used.
    #[error("invalid URL {url:?}: {problem}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The method or a header is unusable.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A redirect was not followed.
    #[error("{0}")]
    Redirect(String),
    /// The connection or the exchange failed.
    #[error("fetch to {host} failed: {problem}")]
    Network {
        /// The host.
        host: String,
        /// What failed.
        problem: String,
    },
}

/// The resolver of the shared client: resolves a name with the system resolver and returns
/// only the addresses the address policy allows, so the client connects to nothing unchecked.
/// When none is left it fails with [`DeniedAddress`], which [`network_failure`] finds again.
struct CheckedResolver {
    addresses: Arc<AddressPolicy>,
}

/// A name resolved only to addresses the policy refuses.
#[derive(Debug)]
struct DeniedAddress {
    addr: IpAddr,
    reason: &'static str,
}

impl std::fmt::Display for DeniedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}", self.addr, self.reason)
    }
}

impl std::error::Error for DeniedAddress {}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addresses = Arc::clone(&self.addresses);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_denial = None;
            let mut allowed = Vec::with_capacity(resolved.len());
            for addr in resolved {
                match addresses.check(addr.ip()) {
                    Ok(()) => allowed.push(addr),
                    Err(reason) => {
                        first_denial.get_or_insert(DeniedAddress {
                            addr: addr.ip(),
                            reason,
                        });
                    }
                }
            }
            if allowed.is_empty() {
                if let Some(denied) = first_denial {
                    return Err(Box::new(denied) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A configured header attached to requests for matching hosts.
#[derive(Clone)]
struct Secret {
    host: HostPattern,
    name: HeaderName,
    value: HeaderValue,
}

/// The service-wide half of fetch: the policy, the limits and the shared HTTP client. Built
/// once at start-up from `[fetch]`.
pub struct Egress {
    hosts: HostSet,
    schemes: Vec<String>,
    ports: Vec<u16>,
    addresses: Arc<AddressPolicy>,
    secrets: Vec<Secret>,
    limits: FetchConfig,
    client: reqwest::Client,
}

impl Egress {
    /// Builds the policy and the client from the configuration.
    pub fn new(config: &FetchConfig) -> Result<Egress, EgressError> {
        let bad = EgressError::Config;
        let hosts = config
            .allow_hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let allow = config
            .allow_addresses
            .iter()
            .map(|a| Cidr::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(EgressError::Config)?;
        let mut secrets = Vec::new();
        for s in &config.secret_headers {
            let host = HostPattern::parse(&s.host).map_err(EgressError::Config)?;
            let name = HeaderName::from_bytes(s.name.trim().as_bytes())
                .map_err(|_| EgressError::Config(format!("invalid header name {:?}", s.name)))?;
            let value = s.value.as_deref().unwrap_or_default();
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                EgressError::Config(format!("invalid value for the header {:?}", s.name))
            })?;
            value.set_sensitive(true);
            secrets.push(Secret { host, name, value });
        }
        let addresses = Arc::new(AddressPolicy { allow });
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .referer(false)
            .pool_max_idle_per_host(0)
            .http1_only()
            .dns_resolver(Arc::new(CheckedResolver {
                addresses: Arc::clone(&addresses),
            }))
            .build()
            .map_err(|e| EgressError::Client(e.to_string()))?;
        Ok(Egress {
            hosts: HostSet(hosts),
            schemes: config.allow_schemes.clone(),
            ports: config.allow_ports.clone(),
            addresses,
            secrets,
            limits: config.clone(),
            client,
        })
    }

    /// The configured host allowlist narrowed to `entries` (a request's `fetch.allow`).
    pub fn narrow(&self, entries: &[String]) -> Result<HostSet, String> {
        self.hosts.narrow(entries)
    }

    /// A context for one execution, allowing `hosts` (the configured list, or a narrowed one),
    /// whose engine timeout is `timeout`.
    pub fn context(self: &Arc<Self>, hosts: Option<HostSet>, timeout: Duration) -> FetchContext {
        FetchContext {
            egress: Arc::clone(self),
            hosts: hosts.unwrap_or_else(|| self.hosts.clone()),
            timeout,
            state: Mutex::new(State::default()),
        }
    }

    fn port_allowed(&self, scheme: &str, port: u16) -> bool {
        if self.ports.is_empty() {
            return matches!((scheme, port), ("https", 443) | ("http", 80));
        }
        self.ports.contains(&port)
    }
}

/// One line of the fetch audit in an `/execute` answer.
#[derive(Debug, Clone, Serialize)]
pub struct FetchAudit {
    /// The method.
    pub method: String,
    /// The URL the code asked for.
    pub url: String,
    /// The final status, when a response arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Response body bytes handed to the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Redirects followed.
    #[serde(skip_serializing_if = "is_zero")]
    pub redirects: u32,
    /// Milliseconds the fetch took.
    pub ms: u64,
    /// Why the egress policy refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied: Option<String>,
    /// Why it failed otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The longest text (URL, method, reason) an audit entry keeps, in bytes before JSON escaping.
pub const AUDIT_TEXT_MAX: usize = 2048;

/// `text` cut to [`AUDIT_TEXT_MAX`] bytes on a character boundary, marked with `…` when cut.
fn clip(text: &str) -> String {
    crate::api::answer::clip(text, AUDIT_TEXT_MAX).into_owned()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Default)]
struct State {
    started: Option<Instant>,
    count: u32,
    audit: Vec<FetchAudit>,
    /// Request and response body bytes of the fetches that went out.
    egress_bytes: u64,
}

/// The fetch state of one execution: its allowlist, its deadline, its count and its audit.
pub struct FetchContext {
    egress: Arc<Egress>,
    hosts: HostSet,
    timeout: Duration,
    state: Mutex<State>,
}

/// How far past the execution's remaining time a fetch may run (well inside the hard
/// deadline's grace).
const EXECUTION_SLACK: Duration = Duration::from_millis(20);

/// Headers the code may not set: they belong to the connection, or the client sets them.
const FORBIDDEN_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-connection",
];

/// Headers dropped when a redirect leaves the origin.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "cookie"];

impl FetchContext {
    /// Marks the moment the job was handed to the worker: the engine's timeout runs from here.
    pub fn start(&self) {
        let mut state = self.lock();
        state.started.get_or_insert_with(Instant::now);
    }

    /// The audit of the fetches so far.
    pub fn audit(&self) -> Vec<FetchAudit> {
        self.lock().audit.clone()
    }

    /// Fetch calls the code made (refused ones included), and the request and response body
    /// bytes of those that went out.
    pub fn usage(&self) -> (u64, u64) {
        let state = self.lock();
        (u64::from(state.count), state.egress_bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Performs one host call and records it. Never fails: a refusal is an answer.
    pub async fn perform(&self, request: FetchRequest) -> FetchResult {
        let begun = Instant::now();
        let limits = &self.egress.limits;
        // The entry is recorded before the fetch starts, so a fetch cut short by the hard
        // deadline (which drops this future) still shows in the audit.
        let (count, remaining, index) = {
            let mut state = self.lock();
            state.count = state.count.saturating_add(1);
            let started = *state.started.get_or_insert(begun);
            let left = (started + self.timeout).saturating_duration_since(begun);
            // At most one entry past the limit: further calls are refused and not listed, so
            // the audit stays bounded however often the code calls fetch.
            let listed = state.audit.len() <= limits.max_requests as usize;
            if listed {
                state.audit.push(FetchAudit {
                    method: clip(&request.method),
                    url: clip(&request.url),
                    status: None,
                    bytes: None,
                    redirects: 0,
                    ms: 0,
                    denied: None,
                    error: Some("the execution was stopped during this fetch".into()),
                });
            }
            (state.count, left, listed.then(|| state.audit.len() - 1))
        };
        // When the execution's own time is what bounds the fetch, give it a little more, so
        // that the worker's deadline passes first and the execution answers TIMEOUT.
        let budget = Duration::from_millis(limits.timeout_ms).min(remaining + EXECUTION_SLACK);
        let method = request.method.clone();
        let url = request.url.clone();
        let sent = request.body.len() as u64;
        let outcome = if count > limits.max_requests {
            Err(FetchFailure::TooMany(limits.max_requests))
        } else {
            match tokio::time::timeout(budget, self.exchange(request)).await {
                Ok(result) => result,
                Err(_) => Err(FetchFailure::Timeout(budget.as_millis() as u64)),
            }
        };
        let ms = begun.elapsed().as_millis() as u64;
        let mut entry = FetchAudit {
            method: clip(&method),
            url: clip(&url),
            status: None,
            bytes: None,
            redirects: 0,
            ms,
            denied: None,
            error: None,
        };
        crate::telemetry::fetch(match &outcome {
            Ok(_) => "ok",
            Err(FetchFailure::Denied { .. } | FetchFailure::TooMany(_)) => "denied",
            Err(_) => "error",
        });
        let went_out = match &outcome {
            Ok((response, _)) => sent + response.body.len() as u64,
            Err(
                FetchFailure::Denied { .. }
                | FetchFailure::TooMany(_)
                | FetchFailure::RequestTooLarge(_),
            ) => 0,
            Err(_) => sent,
        };
        self.lock().egress_bytes += went_out;
        let result = match outcome {
            Ok((response, redirects)) => {
                entry.status = Some(response.status);
                entry.bytes = Some(response.body.len() as u64);
                entry.redirects = redirects;
                Ok(response)
            }
            Err(failure) => {
                let message = failure.to_string();
                match failure {
                    FetchFailure::Denied { target, reason } => {
                        entry.denied = Some(clip(&format!("{}: {reason}", clip(&target))))
                    }
                    _ => entry.error = Some(clip(&message)),
                }
                Err(message)
            }
        };
        if let Some(i) = index {
            if let Some(slot) = self.lock().audit.get_mut(i) {
                *slot = entry;
            }
        }
        result
    }

    /// Checks a hop's URL against the policy (the addresses of a name are checked by the
    /// client's resolver).
    fn check_url(&self, url: &Url) -> Result<(), FetchFailure> {
        let egress = &self.egress;
        let scheme = url.scheme();
        let host = match url.host() {
            Some(url::Host::Domain(d)) => policy::normalize_host(d),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => {
                return Err(FetchFailure::InvalidUrl {
                    url: url.to_string(),
                    problem: "it has no host".into(),
                })
            }
        };
        let deny = |reason: String| FetchFailure::Denied {
            target: host.clone(),
            reason,
        };
        if !egress.schemes.iter().any(|s| s == scheme) {
            return Err(deny(format!("the scheme {scheme:?} is not allowed")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchFailure::InvalidUrl {
                url: redact_credentials(url),
                problem: "it must not contain credentials".into(),
            });
        }
        if !self.hosts.matches(&host) {
            return Err(deny("the host is not on the allowlist".into()));
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if !egress.port_allowed(scheme, port) {
            return Err(deny(format!("port {port} is not allowed")));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            egress
                .addresses
                .check(ip)
                .map_err(|why| deny(format!("{ip} is {why}")))?;
        }
        Ok(())
    }

    /// The request and its redirects. Returns the response and how many redirects it took.
    async fn exchange(&self, request: FetchRequest) -> Result<(FetchResponse, u32), FetchFailure> {
        let limits = &self.egress.limits;
        if request.body.len() as u64 > limits.max_request_body_bytes {
            return Err(FetchFailure::RequestTooLarge(limits.max_request_body_bytes));
        }
        let mut url = Url::parse(&request.url).map_err(|e| FetchFailure::InvalidUrl {
            url: request.url.clone(),
            problem: e.to_string(),
        })?;
        let mut method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| FetchFailure::InvalidRequest(format!("method {:?}", request.method)))?;
        // Case-insensitive, as fetch.js checks it: the frame may come from a subverted worker.
        if ["CONNECT", "TRACE", "TRACK"]
            .iter()
            .any(|m| method.as_str().eq_ignore_ascii_case(m))
        {
            return Err(FetchFailure::InvalidRequest(format!(
                "the method {method} is not allowed"
            )));
        }
        let mut headers = code_headers(&request.headers)?;
        let mut body = request.body;
        let mut redirects = 0u32;
        loop {
            self.check_url(&url)?;
            let mut hop = headers.clone();
            let host = url
                .host_str()
                .map(policy::normalize_host)
                .unwrap_or_default();
            let mut sent_secrets = Vec::new();
            for secret in self.egress.secrets.iter().filter(|s| s.host.matches(&host)) {
                hop.remove(&secret.name);
                sent_secrets.push(secret.value.clone());
            }
            for secret in self.egress.secrets.iter().filter(|s| s.host.matches(&host)) {
                hop.append(secret.name.clone(), secret.value.clone());
            }
            let mut builder = self.egress.client.request(method.clone(), url.clone());
            builder = builder.headers(hop);
            if !body.is_empty() {
                builder = builder.body(body.clone());
            }
            let mut response = builder
                .send()
                .await
                .map_err(|e| network_failure(&host, &e))?;
            let status = response.status();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
                && location.is_some()
                && request.redirect != RedirectMode::Manual
            {
                if request.redirect == RedirectMode::Error {
                    return Err(FetchFailure::Redirect(format!(
                        "fetch to {host} was redirected and redirect is \"error\""
                    )));
                }
                redirects += 1;
                if redirects > limits.max_redirects {
                    return Err(FetchFailure::Redirect(format!(
                        "too many redirects (more than {})",
                        limits.max_redirects
                    )));
                }
                let target = location.unwrap_or_default();
                let next = url.join(&target).map_err(|e| FetchFailure::InvalidUrl {
                    url: target.clone(),
                    problem: format!("in a redirect: {e}"),
                })?;
                let to_get = status == StatusCode::SEE_OTHER && method != Method::HEAD
                    || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                        && method == Method::POST;
                if to_get {
                    method = Method::GET;
                    body = Vec::new();
                    for name in ["content-type", "content-encoding", "content-language"] {
                        headers.remove(name);
                    }
                }
                if next.origin() != url.origin() {
                    for name in CREDENTIAL_HEADERS {
                        headers.remove(name);
                    }
                }
                url = next;
                continue;
            }
            let max = limits.max_response_body_bytes;
            if response.content_length().is_some_and(|n| n > max) {
                return Err(FetchFailure::ResponseTooLarge(max));
            }
            let response_headers = response_headers(response.headers(), &sent_secrets);
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| network_failure(&host, &e))?
            {
                if (bytes.len() + chunk.len()) as u64 > max {
                    return Err(FetchFailure::ResponseTooLarge(max));
                }
                bytes.extend_from_slice(&chunk);
            }
            let response = FetchResponse {
                status: status.as_u16(),
                status_text: status.canonical_reason().unwrap_or("").to_string(),
                url: url.to_string(),
                redirected: redirects > 0,
                headers: response_headers,
                body: bytes,
            };
            return Ok((response, redirects));
        }
    }
}

/// The code's headers, checked; connection-level ones are dropped.
fn code_headers(pairs: &[(String, String)]) -> Result<HeaderMap, FetchFailure> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| FetchFailure::InvalidRequest(format!("header name {name:?}")))?;
        if FORBIDDEN_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("proxy-") {
            continue;
        }
        let value = HeaderValue::from_bytes(value.as_bytes())
            .map_err(|_| FetchFailure::InvalidRequest(format!("the value of the header {name}")))?;
        map.append(name, value);
    }
    if !map.contains_key(reqwest::header::USER_AGENT) {
        map.insert(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("isolate-service/", env!("CARGO_PKG_VERSION"))),
        );
    }
    Ok(map)
}

/// The response headers as the code sees them. A value that contains a secret this hop sent
/// (a server echoing it), anywhere in it and in any ASCII case, is replaced.
fn response_headers(headers: &HeaderMap, secrets: &[HeaderValue]) -> Vec<(String, String)> {
    let secrets: Vec<Vec<u8>> = secrets
        .iter()
        .map(|s| s.as_bytes().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    headers
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let lower = value.as_bytes().to_ascii_lowercase();
            let leaks = secrets
                .iter()
                .any(|s| lower.windows(s.len()).any(|w| w == s.as_slice()));
            let text = if leaks {
                "[redacted]".to_string()
            } else {
                text
            };
            (name.as_str().to_string(), text)
        })
        .collect()
}

fn redact_credentials(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// Turns a client error into a failure: a refused address (from the resolver) is a denial,
/// anything else is named by its innermost cause.
fn network_failure(host: &str, error: &reqwest::Error) -> FetchFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut innermost = String::new();
    while let Some(e) = source {
        if let Some(denied) = e.downcast_ref::<DeniedAddress>() {
            return FetchFailure::Denied {
                target: host.to_string(),
                reason: denied.to_string(),
            };
        }
        innermost = e.to_string();
        source = e.source();
    }
    let problem = if error.is_timeout() {
        "the request timed out".to_string()
    } else if error.is_connect() {
        format!("cannot connect ({innermost})")
    } else {
        innermost
    };
    FetchFailure::Network {
        host: host.to_string(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_secrets_are_redacted_in_any_case_and_position() {
        let secret = [HeaderValue::from_static("s3cret-Token")];
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-exact", "s3cret-Token"),
            ("x-upper", "S3CRET-TOKEN"),
            ("x-inside", "Bearer s3cret-token; scope=all"),
            ("x-clean", "nothing here"),
        ] {
            headers.insert(
                reqwest::header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let out: std::collections::HashMap<String, String> =
            response_headers(&headers, &secret).into_iter().collect();
        for name in ["x-exact", "x-upper", "x-inside"] {
            assert_eq!(out[name], "[redacted]", "{name}");
        }
        assert_eq!(out["x-clean"], "nothing here");
    }

    #[tokio::test]
    async fn forbidden_methods_are_refused_in_any_case() {
        let config = FetchConfig {
            allow_hosts: vec!["127.0.0.1".into()],
            allow_schemes: vec!["http".into()],
            allow_ports: vec![9],
            ..FetchConfig::default()
        };
        let egress = Arc::new(Egress::new(&config).unwrap());
        for method in ["connect", "Trace", "track", "CONNECT"] {
            let context = egress.context(None, Duration::from_secs(5));
            let result = context
                .perform(FetchRequest {
                    method: method.into(),
                    url: "http://127.0.0.1:9/".into(),
                    headers: Vec::new(),
                    body: Vec::new(),
                    redirect: RedirectMode::Follow,
                })
                .await;
            let message = result.err().unwrap_or_default();
            assert_eq!(
                message,
                format!("invalid request: the method {method} is not allowed"),
                "{method}"
            );
        }
    }
}
