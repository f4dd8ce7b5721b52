//! `isolate-service run`: a command-line client of a running service.
//!
//! It reads one file and picks the route by its extension: `.js` and `.mjs` go to
//! `POST /execute`, `.ts` and `.mts` to `POST /execute` with `language: "typescript"`, `.wasm`
//! to `POST /wasm/compile` and then `POST /wasm/run` by the id the compilation answered. It
//! prints the result as one line of JSON on stdout, the console output (or a WASI module's
//! output) on stderr, and exits with [`EXIT_FAILED`] when the code failed or the service
//! refused the request, [`EXIT_USAGE`] when the arguments, the file or the connection are at
//! fault.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Map, Value};

/// The exit status of a run whose code returned a result.
pub const EXIT_OK: u8 = 0;
/// The exit status of a run whose code failed, or that the service refused (any answer but
/// 200).
pub const EXIT_FAILED: u8 = 1;
/// The exit status of bad arguments, an unreadable file or an unreachable service.
pub const EXIT_USAGE: u8 = 2;

/// The largest file `run` sends (the service has its own, usually lower, body limit).
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// The largest answer `run` reads.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// What to run and where.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The file: `.js`, `.mjs`, `.ts`, `.mts` or `.wasm`.
    pub file: PathBuf,
    /// The preset (JavaScript and TypeScript only).
    pub preset: Option<String>,
    /// `env`: a JSON object, or `@path` of a file holding one. For WebAssembly it is the WASI
    /// environment (an object of strings).
    pub env: Option<String>,
    /// The export to call (WebAssembly only).
    pub entry: Option<String>,
    /// The arguments as a JSON array (WebAssembly only).
    pub args: Option<String>,
    /// The execution's timeout in milliseconds; unset leaves the service's default.
    pub timeout_ms: Option<u64>,
    /// The service's base URL, such as `http://127.0.0.1:5900`.
    pub url: String,
    /// The bearer token, when the service needs one.
    pub token: Option<String>,
}

/// Why a run could not even be asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The arguments do not make a request.
    #[error("{0}")]
    Usage(String),
    /// The service could not be reached or its answer could not be read.
    #[error("{0}")]
    Transport(String),
}

/// What the source file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    JavaScript,
    TypeScript,
    Wasm,
}

fn kind_of(path: &Path) -> Result<Kind, ClientError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("js" | "mjs" | "cjs") => Ok(Kind::JavaScript),
        Some("ts" | "mts" | "cts") => Ok(Kind::TypeScript),
        Some("wasm") => Ok(Kind::Wasm),
        _ => Err(ClientError::Usage(format!(
            "{}: the file must end in .js, .ts or .wasm",
            path.display()
        ))),
    }
}

/// Reads a file of at most `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ClientError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > limit {
        return Err(ClientError::Usage(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// A JSON argument given inline or as `@path`, which must parse as JSON of the wanted shape.
fn json_argument(flag: &str, text: &str) -> Result<Value, ClientError> {
    let text = match text.strip_prefix('@') {
        Some(path) => {
            let bytes = read_bounded(Path::new(path), MAX_FILE_BYTES)?;
            String::from_utf8(bytes)
                .map_err(|_| ClientError::Usage(format!("{flag}: {path} is not UTF-8")))?
        }
        None => text.to_string(),
    };
    serde_json::from_str(&text)
        .map_err(|e| ClientError::Usage(format!("{flag} is not valid JSON: {e}")))
}

/// The requests a run makes, built from the options and the file, before any I/O with the
/// service: the body of `/execute`, or the bodies of `/wasm/compile` and `/wasm/run` (whose
/// `moduleId` the compilation fills in).
#[derive(Debug, PartialEq)]
enum Plan {
    Execute(Value),
    Wasm {
        compile: Value,
        run: Map<String, Value>,
    },
}

fn plan(options: &RunOptions) -> Result<Plan, ClientError> {
    let kind = kind_of(&options.file)?;
    let bytes = read_bounded(&options.file, MAX_FILE_BYTES)?;
    let env = match &options.env {
        Some(text) => {
            let v = json_argument("--env", text)?;
            if !v.is_object() {
                return Err(ClientError::Usage("--env must be a JSON object".into()));
            }
            Some(v)
        }
        None => None,
    };
    if kind != Kind::Wasm {
        if options.entry.is_some() || options.args.is_some() {
            return Err(ClientError::Usage(
                "--entry and --args apply to .wasm files only".into(),
            ));
        }
        let code = String::from_utf8(bytes).map_err(|_| {
            ClientError::Usage(format!("{} is not UTF-8 text", options.file.display()))
        })?;
        let mut body = Map::new();
        body.insert("code".into(), json!(code));
        if kind == Kind::TypeScript {
            body.insert("language".into(), json!("typescript"));
        }
        if let Some(p) = &options.preset {
            body.insert("preset".into(), json!(p));
        }
        if let Some(env) = env {
            body.insert("env".into(), env);
        }
        if let Some(t) = options.timeout_ms {
            body.insert("timeout".into(), json!(t));
        }
        return Ok(Plan::Execute(Value::Object(body)));
    }
    if options.preset.is_some() {
        return Err(ClientError::Usage(
            "--preset applies to JavaScript and TypeScript only".into(),
        ));
    }
    let mut run = Map::new();
    if let Some(entry) = &options.entry {
        run.insert("entry".into(), json!(entry));
    }
    if let Some(text) = &options.args {
        let args = json_argument("--args", text)?;
        if !args.is_array() {
            return Err(ClientError::Usage("--args must be a JSON array".into()));
        }
        run.insert("args".into(), args);
    }
    if let Some(env) = env {
        run.insert("env".into(), env);
    }
    if let Some(t) = options.timeout_ms {
        run.insert("timeout".into(), json!(t));
    }
    let compile = json!({ "bytes": base64::engine::general_purpose::STANDARD.encode(&bytes) });
    Ok(Plan::Wasm { compile, run })
}

/// One answer: its status and its body as JSON.
struct Reply {
    status: u16,
    body: Value,
}

struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
}

impl Client {
    fn new(options: &RunOptions) -> Result<Client, ClientError> {
        let mut base = url::Url::parse(&options.url)
            .map_err(|e| ClientError::Usage(format!("--url {:?}: {e}", options.url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Usage(format!(
                "--url {:?} must be an http:// or https:// URL",
                options.url
            )));
        }
        // A base under a path prefix (behind a proxy) keeps it: `/p` joins as `/p/execute`.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        // The overall bound: the longest execution the service allows, its queue and margin.
        let timeout = Duration::from_millis(options.timeout_ms.unwrap_or(60_000))
            .saturating_add(Duration::from_secs(60));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot set up the client: {e}")))?;
        Ok(Client {
            http,
            base,
            token: options.token.clone(),
        })
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Reply, ClientError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ClientError::Usage(format!("--url: {e}")))?;
        let mut req = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut res = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("cannot reach {url}: {e}")))?;
        let status = res.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| ClientError::Transport(format!("reading the answer of {url}: {e}")))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ClientError::Transport(format!(
                    "the answer of {url} is larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = serde_json::from_slice(&bytes).unwrap_or_else(
            |_| json!({ "error": String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]) }),
        );
        Ok(Reply { status, body })
    }
}

/// What a finished run prints and how it exits.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    /// One line of JSON for stdout: the result, when there is one.
    pub stdout: Option<String>,
    /// Lines for stderr: console output, WASI output, the error.
    pub stderr: Vec<String>,
    /// [`EXIT_OK`] or [`EXIT_FAILED`].
    pub code: u8,
}

/// Reads an answer of `/execute` or `/wasm/run` (any status) into what to print.
fn outcome(reply: &Reply) -> Outcome {
    let body = &reply.body;
    let mut stderr = Vec::new();
    if let Some(logs) = body["logs"].as_array() {
        for entry in logs {
            let level = entry["level"].as_str().unwrap_or("log");
            let message = entry["message"].as_str().unwrap_or("");
            stderr.push(format!("[{level}] {message}"));
        }
    }
    for stream in ["stdout", "stderr"] {
        if let Some(text) = body[stream].as_str().filter(|t| !t.is_empty()) {
            stderr.push(text.trim_end_matches('\n').to_string());
        }
    }
    if reply.status == 200 && body["success"] == json!(true) {
        let result = body.get("result").cloned().unwrap_or(Value::Null);
        return Outcome {
            stdout: Some(result.to_string()),
            stderr,
            code: EXIT_OK,
        };
    }
    stderr.push(describe_failure(reply));
    Outcome {
        stdout: None,
        stderr,
        code: EXIT_FAILED,
    }
}

/// One line naming what went wrong: the error's type and message, where it was, the status.
fn describe_failure(reply: &Reply) -> String {
    let body = &reply.body;
    let error = &body["error"];
    let (kind, message) = match error {
        Value::Object(e) => (
            e.get("type").and_then(Value::as_str).unwrap_or("ERROR"),
            e.get("message").and_then(Value::as_str).unwrap_or(""),
        ),
        Value::String(s) => (body["type"].as_str().unwrap_or("ERROR"), s.as_str()),
        _ => ("ERROR", ""),
    };
    let mut line = format!("error: {kind}: {message}");
    if let (Some(l), Some(c)) = (error["line"].as_u64(), error["column"].as_u64()) {
        line.push_str(&format!(" (line {l}, column {c})"));
    }
    if reply.status != 200 && reply.status != 422 {
        line.push_str(&format!(" [HTTP {}]", reply.status));
    }
    line
}

/// Runs the file against the service and returns what to print.
pub async fn run(options: &RunOptions) -> Result<Outcome, ClientError> {
    let plan = plan(options)?;
    let client = Client::new(options)?;
    match plan {
        Plan::Execute(body) => Ok(outcome(&client.post("/execute", &body).await?)),
        Plan::Wasm { compile, mut run } => {
            let compiled = client.post("/wasm/compile", &compile).await?;
            let id = compiled.body["moduleId"].as_str().map(str::to_string);
            let Some(id) = id.filter(|_| compiled.status == 200) else {
                return Ok(Outcome {
                    stdout: None,
                    stderr: vec![describe_failure(&compiled)],
                    code: EXIT_FAILED,
                });
            };
            run.insert("moduleId".into(), json!(id));
            Ok(outcome(
                &client.post("/wasm/run", &Value::Object(run)).await?,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(file: &Path) -> RunOptions {
        RunOptions {
            file: file.to_path_buf(),
            preset: None,
            env: None,
            entry: None,
            args: None,
            timeout_ms: None,
            url: "http://127.0.0.1:5900".into(),
            token: None,
        }
    }

    fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("isolate-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn the_extension_picks_the_route_and_flags_are_checked() {
        let js = scratch("a.js", b"return env.x");
        let mut o = options(&js);
        o.preset = Some("data".into());
        o.env = Some(r#"{"x":1}"#.into());
        o.timeout_ms = Some(100);
        assert_eq!(
            plan(&o).unwrap(),
            Plan::Execute(
                json!({"code":"return env.x","preset":"data","env":{"x":1},"timeout":100})
            )
        );
        let ts = scratch("a.ts", b"const n: number = 1; n");
        assert_eq!(
            plan(&options(&ts)).unwrap(),
            Plan::Execute(json!({"code":"const n: number = 1; n","language":"typescript"}))
        );
        o.entry = Some("f".into());
        assert!(matches!(plan(&o), Err(ClientError::Usage(m)) if m.contains(".wasm")));
        let wasm = scratch("a.wasm", b"\0asm");
        let mut o = options(&wasm);
        o.entry = Some("add".into());
        o.args = Some("[2,3]".into());
        let Plan::Wasm { compile, run } = plan(&o).unwrap() else {
            panic!("not a wasm plan")
        };
        assert_eq!(compile, json!({"bytes": "AGFzbQ=="}));
        assert_eq!(Value::Object(run), json!({"entry":"add","args":[2,3]}));
        o.args = Some("{}".into());
        assert!(matches!(plan(&o), Err(ClientError::Usage(m)) if m.contains("array")));
        o.args = None;
        o.preset = Some("data".into());
        assert!(matches!(plan(&o), Err(ClientError::Usage(_))));
        let txt = scratch("a.txt", b"1");
        assert!(matches!(plan(&options(&txt)), Err(ClientError::Usage(_))));
    }

    #[test]
    fn env_is_an_object_inline_or_from_a_file() {
        let js = scratch("b.js", b"1");
        let env_file = scratch("env.json", br#"{"from":"file"}"#);
        let mut o = options(&js);
        o.env = Some(format!("@{}", env_file.display()));
        assert_eq!(
            plan(&o).unwrap(),
            Plan::Execute(json!({"code":"1","env":{"from":"file"}}))
        );
        for bad in ["[1]", "{", "@/nonexistent/env.json"] {
            o.env = Some(bad.into());
            assert!(matches!(plan(&o), Err(ClientError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn answers_become_output_and_an_exit_status() {
        let ok = Reply {
            status: 200,
            body: json!({"success":true,"result":{"a":[1]},"logs":[{"level":"info","message":"hi"}]}),
        };
        assert_eq!(
            outcome(&ok),
            Outcome {
                stdout: Some(r#"{"a":[1]}"#.into()),
                stderr: vec!["[info] hi".into()],
                code: EXIT_OK
            }
        );
        let thrown = Reply {
            status: 422,
            body: json!({"success":false,"error":{"type":"RUNTIME","message":"boom","line":1,"column":7},"logs":[]}),
        };
        let o = outcome(&thrown);
        assert_eq!(o.code, EXIT_FAILED);
        assert_eq!(o.stderr, ["error: RUNTIME: boom (line 1, column 7)"]);
        let refused = Reply {
            status: 401,
            body: json!({"error":"Missing bearer token"}),
        };
        assert_eq!(
            outcome(&refused).stderr,
            ["error: ERROR: Missing bearer token [HTTP 401]"]
        );
    }

    #[test]
    fn a_url_must_be_http() {
        let js = scratch("c.js", b"1");
        let mut o = options(&js);
        for bad in ["ftp://x", "not a url", "mailto:a@b"] {
            o.url = bad.into();
            assert!(
                matches!(Client::new(&o), Err(ClientError::Usage(_))),
                "{bad}"
            );
        }
    }
}
