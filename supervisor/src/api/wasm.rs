//! `POST /wasm/compile` and `POST /wasm/run`.
//!
//! Compilation happens in a worker (the compiler parses untrusted bytes); the supervisor only
//! decodes base64, hashes, reads `file` inside `wasm.module_dir`, keeps the artifact in the
//! [`crate::modules::ModuleStore`] and converts JSON arguments into typed values for the worker.

use std::path::{Component, Path};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use isolate_shared::frame::MAX_FRAME_BYTES;
use isolate_shared::message::{
    ErrorKind, SupervisorMessage, WasiInput, WasmArg, WasmCompileJob, WasmErrorKind,
    WasmImportValue, WasmKind, WasmRunJob, WasmRunOutcome, WasmValue, WorkerMessage,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::answer::{clip, Answer};
use super::auth::{Caller, Usage};
use super::error::{failure_status, pool_failure, ApiError, Subject};
use super::{request, AppState, LogFields};
use crate::config::Config;
use crate::modules::{sha256_hex, valid_id, StoreError, StoredModule};
use crate::pool::PoolError;

fn ms(us: u64) -> String {
    format!("{:.3}ms", us as f64 / 1000.0)
}

fn compile_answer(m: &StoredModule, cached: bool) -> Answer {
    let (exports, exports_truncated) = within(
        COMPILE_LIST_MAX,
        m.exports
            .iter()
            .map(|e| json!({"name": clip(&e.name, ECHOED_NAME_MAX), "kind": e.kind.as_str()})),
    );
    let (imports, imports_truncated) = within(
        COMPILE_LIST_MAX,
        m.imports.iter().map(|i| {
            json!({
                "module": clip(&i.module, ECHOED_NAME_MAX),
                "name": clip(&i.name, ECHOED_NAME_MAX),
                "kind": i.kind.as_str(),
            })
        }),
    );
    let mut answer = json!({
        "moduleId": m.id,
        "byteSize": m.byte_size,
        "compileTime": format!("{:.2}ms", m.compile_us as f64 / 1000.0),
        "exports": exports,
        "imports": imports,
        "cached": cached,
    });
    if exports_truncated {
        answer["exportsTruncated"] = Value::Bool(true);
    }
    if imports_truncated {
        answer["importsTruncated"] = Value::Bool(true);
    }
    Answer::json(StatusCode::OK, &answer)
}

/// The most a compile answer spends on each of its lists (in bytes of JSON).
const COMPILE_LIST_MAX: usize = 1 << 20;

/// The items of a list until their JSON (with a comma each) would pass `max` bytes, and
/// whether some were left out. Each item is measured by encoding it into a counter, so
/// nothing is allocated for the measure.
fn within<T: Serialize>(max: usize, items: impl Iterator<Item = T>) -> (Vec<T>, bool) {
    let mut out = Vec::new();
    let mut spent = 0;
    for item in items {
        spent += json_len(&item) + 1;
        if spent > max {
            return (out, true);
        }
        out.push(item);
    }
    (out, false)
}

/// The length of `value` encoded as JSON.
fn json_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to the counter cannot fail, and the items are names and plain JSON values.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn compile_failure(status: StatusCode, kind: &str, message: String) -> Answer {
    Answer::json(status, &json!({ "error": message, "type": kind }))
}

/// Reads `file` from inside `wasm.module_dir`.
fn read_module_file(state: &AppState, name: &str) -> Result<Vec<u8>, ApiError> {
    let Some(dir) = state.config().wasm.module_dir.as_deref() else {
        return Err(ApiError::FileForbidden(
            "Loading modules by \"file\" is disabled (wasm.module_dir is not set)",
        ));
    };
    let path = Path::new(name);
    if name.is_empty() || name.contains('\0') {
        return Err(ApiError::InvalidField {
            field: "file",
            problem: "must be a non-empty path".into(),
        });
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(ApiError::InvalidField {
            field: "file",
            problem: "must not contain \"..\"".into(),
        });
    }
    let root = Path::new(dir)
        .canonicalize()
        .map_err(|_| ApiError::FileForbidden("The module directory is not available"))?;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    // Canonicalising resolves symlinks, so one that leads out of the directory fails the
    // prefix check like an absolute path elsewhere.
    // A path outside the directory gets the same answer as a missing file, whether or not
    // something exists there: the route must not tell which paths exist on the server.
    let real = joined.canonicalize().map_err(|_| ApiError::FileNotFound)?;
    if !real.starts_with(&root) {
        return Err(ApiError::FileNotFound);
    }
    let meta = std::fs::metadata(&real).map_err(|_| ApiError::FileNotFound)?;
    if !meta.is_file() {
        return Err(ApiError::FileNotFound);
    }
    let limit = state.config().wasm.max_module_bytes;
    if meta.len() > limit as u64 {
        return Err(ApiError::ModuleTooLarge(limit));
    }
    std::fs::read(&real).map_err(|_| ApiError::FileNotFound)
}

fn module_bytes(state: &AppState, body: &request::Body) -> Result<Vec<u8>, ApiError> {
    let limit = state.config().wasm.max_module_bytes;
    match (body.get("bytes"), body.get("file")) {
        (Some(Value::String(b64)), None) | (Some(Value::String(b64)), Some(Value::Null)) => {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            if compact.len() / 4 * 3 > limit + 3 {
                return Err(ApiError::ModuleTooLarge(limit));
            }
            let bytes = engine.decode(compact).map_err(|_| ApiError::InvalidField {
                field: "bytes",
                problem: "must be base64".into(),
            })?;
            if bytes.len() > limit {
                return Err(ApiError::ModuleTooLarge(limit));
            }
            Ok(bytes)
        }
        (None | Some(Value::Null), Some(Value::String(name))) => read_module_file(state, name),
        (None | Some(Value::Null), None | Some(Value::Null)) => {
            Err(ApiError::MissingField("bytes"))
        }
        (Some(v), Some(w)) if !v.is_null() && !w.is_null() => Err(ApiError::InvalidField {
            field: "bytes",
            problem: "give either \"bytes\" or \"file\", not both".into(),
        }),
        (Some(Value::String(_)) | None | Some(Value::Null), _) => Err(ApiError::InvalidField {
            field: "file",
            problem: "must be a string".into(),
        }),
        _ => Err(ApiError::InvalidField {
            field: "bytes",
            problem: "must be a base64 string".into(),
        }),
    }
}

/// The body limit of `POST /wasm/compile`: room for a module of `wasm.max_module_bytes` in
/// base64, and never less than `server.max_body_bytes`.
pub fn compile_body_limit(config: &Config) -> usize {
    config
        .server
        .max_body_bytes
        .max(config.wasm.max_module_bytes / 3 * 4 + 64 * 1024)
}

/// `POST /wasm/compile`: validates and compiles a module in a worker, or answers from the
/// store when these bytes were compiled under this id before.
pub async fn compile(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = super::execute::caller(&req)?;
    let limit = compile_body_limit(state.config());
    let body = request::read_object(&req, payload, limit).await?;
    compile_body(&state, body, &caller)
        .await
        .map(Answer::into_response)
}

/// What `POST /wasm/compile` does once its body is read. The MCP tool `compile_wasm` calls
/// it too.
pub async fn compile_body(
    state: &web::Data<AppState>,
    body: request::Body,
    caller: &Caller,
) -> Result<Answer, ApiError> {
    let wasm = &state.config().wasm;
    let explicit = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if valid_id(id) => Some(id.clone()),
        Some(_) => {
            return Err(ApiError::InvalidField {
                field: "id",
                problem: "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'".into(),
            })
        }
    };
    let replace = match body.get("replace") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            return Err(ApiError::InvalidField {
                field: "replace",
                problem: "must be true or false".into(),
            })
        }
    };
    let bytes = web::block({
        let state = state.clone();
        move || module_bytes(&state, &body)
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    let source_sha256 = sha256_hex(&bytes);
    // Content-hash ids always mean their bytes: an explicit id that looks like one (64 hex
    // digits, any case) must be the hash of these bytes, so that no one can put other code
    // under the id of someone else's module, before or after they upload it.
    if let Some(id) = &explicit {
        let looks_like_hash = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if looks_like_hash && !id.eq_ignore_ascii_case(&source_sha256) {
            return Err(ApiError::InvalidField {
                field: "id",
                problem: "64 hex digits is the form of content-hash ids, which always mean \
                          the SHA-256 of their bytes; choose another id"
                    .into(),
            });
        }
    }
    let id = match explicit {
        Some(id) if id.eq_ignore_ascii_case(&source_sha256) => source_sha256.clone(),
        Some(id) => id,
        None => source_sha256.clone(),
    };
    // An id this instance does not hold may be in the shared directory (`wasm.cache_dir`).
    state.modules.load(&id).await;
    let cached = |state: &AppState| {
        state
            .modules
            .peek(&id)
            .filter(|m| m.source_sha256 == source_sha256)
    };
    if let Some(existing) = cached(state) {
        state.modules.count_hit();
        return Ok(compile_answer(&existing, true));
    }
    // One compilation per id at a time: concurrent uploads of the same new module wait for
    // the first and are answered from the store.
    let turn = state.modules.compile_turn(&id);
    let _turn = turn.lock().await;
    if let Some(existing) = cached(state) {
        state.modules.count_hit();
        return Ok(compile_answer(&existing, true));
    }
    // An explicit id names one module until its owner says otherwise: other bytes under an
    // id in use are refused unless the request asks to replace it. (A content-hash id cannot
    // get here with other bytes: it is checked against them above.)
    if let Some(existing) = state.modules.peek(&id) {
        if !replace {
            return Ok(compile_failure(
                StatusCode::CONFLICT,
                "MODULE_EXISTS",
                format!(
                    "module \"{}\" already holds other bytes; send \"replace\": true to \
                     replace it",
                    existing.id
                ),
            ));
        }
    }
    state.modules.count_miss();
    let byte_size = bytes.len() as u64;
    let job = SupervisorMessage::WasmCompile(WasmCompileJob { bytes });
    let deadline =
        Duration::from_millis(wasm.compile_timeout_ms + state.config().limits.kill_grace_ms);
    let tenant = super::execute::tenant(caller);
    let outcome = match state.pool.call(&job, deadline, None, &tenant).await {
        Ok((WorkerMessage::WasmCompiled(outcome), _)) => outcome,
        Ok(_) => return Err(ApiError::Internal),
        Err(PoolError::Busy(_) | PoolError::ShuttingDown) => return Err(ApiError::Busy),
        Err(PoolError::Deadline { .. }) => {
            return Ok(compile_failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "TIMEOUT",
                format!(
                    "compilation exceeded {} ms; the worker was stopped",
                    wasm.compile_timeout_ms
                ),
            ))
        }
        Err(PoolError::Crashed(_)) => {
            return Ok(compile_failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "WORKER_CRASHED",
                "the worker compiling this module died (it may need more memory than allowed)"
                    .into(),
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot compile a module");
            return Err(ApiError::Internal);
        }
    };
    let compiled = match outcome.result {
        Ok(c) => c,
        Err(message) => {
            return Ok(compile_failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "COMPILE_ERROR",
                format!("Invalid WebAssembly module: {message}"),
            ))
        }
    };
    let stored = StoredModule {
        id,
        source_sha256,
        byte_size,
        compile_us: outcome.elapsed_us,
        exports: compiled.exports,
        imports: compiled.imports,
        artifact: std::sync::Arc::new(compiled.artifact),
    };
    // A run frame carries the artifact; leave room for the rest of the job.
    if stored.artifact.len() as u64 > MAX_FRAME_BYTES as u64 - (1 << 20) {
        return Ok(compile_failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MODULE_TOO_LARGE",
            "the compiled module is too large to run".into(),
        ));
    }
    let stored = {
        let state = state.clone();
        web::block(move || state.modules.insert(stored, replace))
            .await
            .map_err(|_| ApiError::Internal)?
    };
    match stored {
        Ok(m) => Ok(compile_answer(&m, false)),
        Err(e @ StoreError::TooLarge(_)) => Ok(compile_failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MODULE_TOO_LARGE",
            e.to_string(),
        )),
        // Another instance sharing the directory published other bytes under this id first.
        Err(StoreError::Taken(id)) => Ok(compile_failure(
            StatusCode::CONFLICT,
            "MODULE_EXISTS",
            format!(
                "module \"{id}\" already holds other bytes; send \"replace\": true to replace it"
            ),
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot store a module");
            Err(ApiError::Internal)
        }
    }
}

fn arg(v: &Value) -> Option<WasmArg> {
    Some(match v {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => WasmArg::Int(i),
            (None, Some(u)) => WasmArg::Text(u.to_string()),
            _ => WasmArg::Float(n.as_f64()?),
        },
        Value::String(s) => WasmArg::Text(s.clone()),
        Value::Bool(b) => WasmArg::Bool(*b),
        _ => return None,
    })
}

fn failure(status: StatusCode, kind: &str, message: String, extra: Map<String, Value>) -> Answer {
    let mut body = Map::new();
    body.insert("success".into(), Value::Bool(false));
    body.insert("error".into(), json!({ "type": kind, "message": message }));
    body.extend(extra);
    Answer::json(status, &Value::Object(body))
}

fn value_json(v: &WasmValue) -> Value {
    let float = |f: f64| {
        if f.is_finite() {
            json!(f)
        } else if f.is_nan() {
            json!("NaN")
        } else if f > 0.0 {
            json!("Infinity")
        } else {
            json!("-Infinity")
        }
    };
    match v {
        WasmValue::I32(x) => json!(x),
        // Beyond 2^53 a JSON number would lose digits: such values come back as strings.
        WasmValue::I64(x) if x.unsigned_abs() <= 1 << 53 => json!(x),
        WasmValue::I64(x) => json!(x.to_string()),
        WasmValue::F32(x) => float(f64::from(*x)),
        WasmValue::F64(x) => float(*x),
        WasmValue::Opaque(t) => json!(format!("<{}>", t.as_str())),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunStats<'a> {
    instantiate_time: String,
    call_time: String,
    load_time: String,
    memory_pages: u64,
    memory_bytes: u64,
    exports: Vec<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    exports_truncated: bool,
}

/// The longest export name (in bytes) a run answer repeats; longer ones are cut and marked.
const ECHOED_NAME_MAX: usize = 1024;

/// The most a run answer spends on `stats.exports` (in bytes of JSON); the rest of the list
/// is left out and `stats.exportsTruncated` says so.
const EXPORTS_LIST_MAX: usize = 64 * 1024;

/// The export names a run answer lists, each cut at [`ECHOED_NAME_MAX`] bytes, and whether
/// the list stopped at [`EXPORTS_LIST_MAX`]: a module's names cost the answer at most that
/// much, whatever their number or length.
fn listed_exports(module: &StoredModule) -> (Vec<std::borrow::Cow<'_, str>>, bool) {
    within(
        EXPORTS_LIST_MAX,
        module
            .exports
            .iter()
            .map(|e| clip(&e.name, ECHOED_NAME_MAX)),
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trap_code: Option<&'a str>,
}

/// The answer of a run, success or failure (typed, so answering builds no JSON tree).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunAnswer<'a> {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorOut<'a>>,
    module_id: &'a str,
    entry: &'a str,
    stats: RunStats<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_truncated: Option<bool>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stubbed_imports: &'a [String],
    usage: Usage,
}

struct RunRequest {
    job: WasmRunJob,
    module: std::sync::Arc<StoredModule>,
}

fn invalid_args(message: String) -> Answer {
    failure(
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_ARGS",
        message,
        Map::new(),
    )
}

/// Reads and checks a run request; `Err(Ok(answer))` is a 422 answer, `Err(Err(e))` a 4xx.
// The error is a whole answer, built at most once per refused request: its size is no cost.
#[allow(clippy::result_large_err)]
fn parse_run(
    state: &AppState,
    body: &request::Body,
) -> Result<RunRequest, Result<Answer, ApiError>> {
    let id = match body.get("moduleId") {
        None | Some(Value::Null) => return Err(Err(ApiError::MissingField("moduleId"))),
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::String(_)) => return Err(Err(ApiError::MissingField("moduleId"))),
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "moduleId",
                problem: "must be a string".into(),
            }))
        }
    };
    let Some(module) = state.modules.get(id) else {
        return Err(Ok(failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MODULE_NOT_FOUND",
            "no module with this id; compile it first with POST /wasm/compile".into(),
            Map::new(),
        )));
    };
    let entry = match body.get("entry") {
        None | Some(Value::Null) => match module.default_entry() {
            Some(e) => e.name.clone(),
            None => {
                return Err(Ok(failure(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "NO_CALLABLE_EXPORT",
                    "the module exports no function".into(),
                    Map::new(),
                )))
            }
        },
        Some(Value::String(name)) => {
            if !module
                .exports
                .iter()
                .any(|e| e.kind == WasmKind::Function && &e.name == name)
            {
                return Err(Ok(failure(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "NO_CALLABLE_EXPORT",
                    format!("the module exports no function named \"{name}\""),
                    Map::new(),
                )));
            }
            name.clone()
        }
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "entry",
                problem: "must be a string".into(),
            }))
        }
    };
    let is_command = module.imports_wasi() && entry == "_start";
    let raw_args = match body.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "args",
                problem: "must be an array".into(),
            }))
        }
    };
    let mut wasi = WasiInput {
        args: vec![module.id.clone()],
        ..Default::default()
    };
    let mut args = Vec::new();
    if is_command {
        // `_start` takes no parameters: `args` are the program's command-line arguments.
        for (i, a) in raw_args.iter().enumerate() {
            match a {
                Value::String(s) => wasi.args.push(s.clone()),
                Value::Number(n) => wasi.args.push(n.to_string()),
                _ => {
                    return Err(Ok(invalid_args(format!(
                        "argument {i}: command-line arguments of a WASI command must be strings"
                    ))))
                }
            }
        }
    } else {
        for (i, a) in raw_args.iter().enumerate() {
            match arg(a) {
                Some(v) => args.push(v),
                None => {
                    return Err(Ok(invalid_args(format!(
                        "argument {i}: must be a number, a numeric string or a boolean"
                    ))))
                }
            }
        }
    }
    match body.get("argv") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            wasi.args = a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
        }
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "argv",
                problem: "must be an array of strings".into(),
            }))
        }
    }
    match body.get("stdin") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => wasi.stdin = s.clone().into_bytes(),
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "stdin",
                problem: "must be a string".into(),
            }))
        }
    }
    match body.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                    return Err(Err(ApiError::InvalidField {
                        field: "env",
                        problem: "names must be non-empty without '=' and values without NUL"
                            .into(),
                    }));
                }
                wasi.env.push((k.clone(), v));
            }
        }
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "env",
                problem: "must be an object".into(),
            }))
        }
    }
    let mut imports = Vec::new();
    match body.get("imports") {
        None | Some(Value::Null) => {}
        Some(Value::Object(modules)) => {
            for (m, fields) in modules {
                let Value::Object(fields) = fields else {
                    return Err(Err(ApiError::InvalidField {
                        field: "imports",
                        problem: format!("\"{m}\" must be an object of values"),
                    }));
                };
                for (n, v) in fields {
                    let Some(value) = arg(v) else {
                        return Err(Err(ApiError::InvalidField {
                            field: "imports",
                            problem: format!("{m}.{n} must be a number, numeric string or boolean (JSON cannot carry functions)"),
                        }));
                    };
                    imports.push(WasmImportValue {
                        module: m.clone(),
                        name: n.clone(),
                        value,
                    });
                }
            }
        }
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "imports",
                problem: "must be an object".into(),
            }))
        }
    }
    let stub_missing_imports = match body.get("stubImports") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Err(ApiError::InvalidField {
                field: "stubImports",
                problem: "must be a boolean".into(),
            }))
        }
    };
    let timeout_ms = request::timeout(body, &state.config().limits).map_err(Err)?;
    Ok(RunRequest {
        job: WasmRunJob {
            module_id: module.source_sha256.clone(),
            artifact: None,
            entry,
            args,
            imports,
            stub_missing_imports,
            wasi,
            timeout_ms,
            limits: state.config().wasm.limits(),
        },
        module,
    })
}

/// `POST /wasm/run`: calls one export of a stored module in a worker.
pub async fn run(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let caller = super::execute::caller(&req)?;
    let body = request::read_object(&req, payload, state.config().server.max_body_bytes).await?;
    run_body(&state, &body, &caller, started)
        .await
        .map(Answer::into_response)
}

/// What `POST /wasm/run` does once its body is read. The MCP tool `run_wasm` calls it too.
pub async fn run_body(
    state: &AppState,
    body: &request::Body,
    caller: &Caller,
    started: std::time::Instant,
) -> Result<Answer, ApiError> {
    // An id this instance does not hold may be in the shared directory (`wasm.cache_dir`).
    if let Some(Value::String(id)) = body.get("moduleId") {
        state.modules.load(id).await;
    }
    let RunRequest { mut job, module } = match parse_run(state, body) {
        Ok(r) => r,
        Err(answer) => return answer,
    };
    job.timeout_ms = caller.limit_timeout(job.timeout_ms, request::asks_timeout(body))?;
    let timeout_ms = job.timeout_ms;
    let entry = job.entry.clone();
    let deadline = Duration::from_millis(timeout_ms + state.config().limits.kill_grace_ms);
    state.auth.admit(caller, std::time::SystemTime::now())?;
    let called = std::time::Instant::now();
    let tenant = super::execute::tenant(caller);
    let call = state
        .pool
        .call_wasm(job, &module.artifact, deadline, &tenant);
    let (outcome, pid) = match call.await {
        Ok((WorkerMessage::WasmRan(o), pid)) => (o, Some(pid)),
        Ok(_) => return Err(ApiError::Internal),
        Err(e) => {
            let (kind, _, message) = match pool_failure(&e, timeout_ms, Subject::Module) {
                Ok(failure) => failure,
                Err(busy) => {
                    state.auth.refund(caller, std::time::SystemTime::now());
                    let busy_kind = Some(ErrorKind::Busy.as_str());
                    state.metrics.record(
                        ("-", &caller.name),
                        "wasmtime",
                        "wasm",
                        busy_kind,
                        called.elapsed(),
                    );
                    return Err(busy);
                }
            };
            // A timeout answers as a run, with its statistics (all zero); every other
            // failure of the pool answers here.
            if let PoolError::Deadline { .. } = e {
                let mut outcome = WasmRunOutcome::failed(WasmErrorKind::Timeout, message);
                outcome.cpu_us = e.killed_cpu_us();
                (outcome, None)
            } else {
                let usage = Usage {
                    wall_ms: Usage::millis_since(started),
                    ..Usage::default()
                };
                super::settle(
                    state,
                    caller,
                    ("-", "/wasm/run", "wasmtime", "wasm"),
                    (Some(kind.as_str()), called.elapsed()),
                    &usage,
                );
                let mut extra = Map::new();
                if let PoolError::Crashed(pid) = e {
                    extra.insert("worker".into(), json!(pid));
                }
                extra.insert("usage".into(), json!(usage));
                return Ok(failure(failure_status(kind), kind.as_str(), message, extra));
            }
        }
    };
    let s = &outcome.stats;
    let stdout = outcome
        .wasi
        .then(|| String::from_utf8_lossy(&outcome.stdout));
    let stderr = outcome
        .wasi
        .then(|| String::from_utf8_lossy(&outcome.stderr));
    let (exports, exports_truncated) = listed_exports(&module);
    let entry = clip(&entry, ECHOED_NAME_MAX);
    let usage = Usage {
        cpu_ms: outcome.cpu_us as f64 / 1e3,
        wall_ms: Usage::millis_since(started),
        heap_peak_bytes: s.memory_bytes,
        fetches: 0,
        egress_bytes: 0,
    };
    let mut answer = RunAnswer {
        success: true,
        result: None,
        error: None,
        module_id: &module.id,
        entry: &entry,
        stats: RunStats {
            instantiate_time: ms(s.instantiate_us),
            call_time: ms(s.call_us),
            load_time: ms(s.load_us),
            memory_pages: s.memory_pages,
            memory_bytes: s.memory_bytes,
            exports,
            exports_truncated,
        },
        exit_code: outcome.wasi.then_some(outcome.exit_code),
        stdout: stdout.as_deref(),
        stderr: stderr.as_deref(),
        output_truncated: outcome.wasi.then_some(outcome.output_truncated),
        stubbed_imports: &outcome.stubbed_imports,
        usage,
    };
    let mut fields = LogFields {
        preset: Some("wasm"),
        error_type: None,
        worker_pid: pid,
        fetches: None,
    };
    let reply = match &outcome.result {
        Ok(values) => {
            let result = match values.as_slice() {
                [] => Value::Null,
                [one] => value_json(one),
                many => Value::Array(many.iter().map(value_json).collect()),
            };
            answer.result = Some(result);
            Answer::json(StatusCode::OK, &answer)
        }
        Err(e) => {
            if e.kind == WasmErrorKind::ModuleUnusable {
                state.modules.remove(&module.id);
            }
            let kind = e.kind.as_str();
            fields.error_type = Some(kind);
            let status = match e.kind {
                WasmErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            answer.success = false;
            answer.error = Some(ErrorOut {
                kind,
                message: &e.message,
                trap_code: e.trap_code.as_deref(),
            });
            Answer::json(status, &answer)
        }
    };
    // The backstop: whatever the parts' own caps, the answer stays within its bound.
    let bound = state.config().answer_bytes();
    let reply = if reply.body.len() > bound {
        fields.error_type = Some(ErrorKind::OutputLimit.as_str());
        failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::OutputLimit.as_str(),
            format!(
                "the answer would be {} bytes, more than the bound of {bound} bytes; the \
                 result and output were dropped",
                reply.body.len()
            ),
            Map::from_iter([("usage".to_string(), json!(usage))]),
        )
    } else {
        reply
    };
    super::settle(
        state,
        caller,
        ("-", "/wasm/run", "wasmtime", "wasm"),
        (fields.error_type, called.elapsed()),
        &usage,
    );
    Ok(reply.with_fields(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use isolate_shared::message::WasmType;

    #[test]
    fn values_become_json_without_losing_digits() {
        assert_eq!(value_json(&WasmValue::I32(-5)), json!(-5));
        assert_eq!(
            value_json(&WasmValue::I64(1 << 53)),
            json!(9007199254740992i64)
        );
        assert_eq!(
            value_json(&WasmValue::I64((1 << 53) + 1)),
            json!("9007199254740993")
        );
        assert_eq!(
            value_json(&WasmValue::I64(i64::MIN)),
            json!("-9223372036854775808")
        );
        assert_eq!(value_json(&WasmValue::F32(1.5)), json!(1.5));
        assert_eq!(value_json(&WasmValue::F64(f64::NAN)), json!("NaN"));
        assert_eq!(
            value_json(&WasmValue::F64(f64::NEG_INFINITY)),
            json!("-Infinity")
        );
        assert_eq!(
            value_json(&WasmValue::Opaque(WasmType::V128)),
            json!("<v128>")
        );
    }

    #[test]
    fn json_arguments_keep_their_kind() {
        assert_eq!(arg(&json!(3)), Some(WasmArg::Int(3)));
        assert_eq!(arg(&json!(2.5)), Some(WasmArg::Float(2.5)));
        assert_eq!(
            arg(&json!(u64::MAX)),
            Some(WasmArg::Text(u64::MAX.to_string()))
        );
        assert_eq!(arg(&json!("12")), Some(WasmArg::Text("12".into())));
        assert_eq!(arg(&json!(true)), Some(WasmArg::Bool(true)));
        assert_eq!(arg(&json!(null)), None);
        assert_eq!(arg(&json!([1])), None);
    }
}
