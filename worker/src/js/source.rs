//! The code as the engine runs it, and the way back to the code the user sent.
//!
//! Going in, TypeScript is stripped to JavaScript ([`super::typescript`]) and a function body
//! is wrapped in an `async function` on its first line. Coming out, every position the engine
//! reports (an error's line and column, each `input.js:LINE:COLUMN` of its stack) is moved
//! back through the same steps in reverse: out of the wrapper, then from the stripped
//! JavaScript's byte columns to the original's. A syntax error caused by `import`, `export` or
//! a decorator is also given a message that names it.

use std::borrow::Cow;

use isolate_shared::message::{ErrorKind, JobError, Language, SyntaxError};

use super::typescript;

/// The file name user code is compiled under; stack traces show it.
pub const FILENAME: &str = "input.js";

/// [`FILENAME`] as a C string.
pub(super) const FILENAME_C: &std::ffi::CStr = c"input.js";

/// The JavaScript to run: the code itself, or the code with its types stripped.
pub(super) fn to_javascript(
    code: &str,
    language: Language,
) -> Result<Cow<'_, str>, typescript::StripError> {
    match language {
        Language::JavaScript => Ok(Cow::Borrowed(code)),
        Language::TypeScript => typescript::strip(code).map(Cow::Owned),
    }
}

/// Moves an error raised while running `js` (the JavaScript made from `original`, wrapped as
/// a function body when `in_body`) back to the user's code, and names module syntax.
pub(super) fn locate(original: &str, js: &str, in_body: bool, err: &mut JobError) {
    if in_body {
        out_of_body(js, err);
    }
    name_module_syntax(js, err);
    if js.len() != original.len() {
        to_original(original, js, err);
    }
}

/// [`locate`] for a syntax error found by `/validate`, which has no stack.
pub(super) fn locate_syntax(
    original: &str,
    js: &str,
    in_body: bool,
    (mut message, line, column): (String, u32, u32),
) -> SyntaxError {
    let (line, mut column) = if in_body {
        body_position(js, line, column)
    } else {
        (line, column)
    };
    if let Some((keyword, at)) = module_keyword(js, line, column) {
        message = module_message(keyword);
        column = at;
    } else if is_decorator(js, line, column) {
        message = DECORATOR_MESSAGE.into();
    }
    if js.len() != original.len() {
        column = typescript::map_column(original, js, line, column);
    }
    SyntaxError {
        message,
        line,
        column,
    }
}

/// What wraps a function body. It stays on the code's first line, so only first-line columns
/// shift (by its length), and those are corrected when positions are reported.
const BODY_PREFIX: &str = "(async function () {";
const BODY_SUFFIX: &str = "\n})()";

/// A stripper error as the job's error: a `SyntaxError` at the user's position.
pub(super) fn strip_error(e: typescript::StripError) -> JobError {
    JobError {
        kind: ErrorKind::Runtime,
        name: "SyntaxError".into(),
        message: e.message,
        stack: None,
        line: Some(e.line),
        column: Some(e.column),
    }
}

/// Moves an error raised in the function-body wrapper back to the user's code: the position,
/// and the first-line columns in the stack trace.
fn out_of_body(code: &str, err: &mut JobError) {
    if let (Some(line), Some(column)) = (err.line, err.column) {
        let (line, column) = body_position(code, line, column);
        err.line = Some(line);
        err.column = Some(column);
    }
    if let Some(stack) = err.stack.as_mut() {
        *stack = map_stack(stack, |line, column| body_position(code, line, column));
    }
}

/// Moves the columns of an error in stripped TypeScript back to the original's bytes (they
/// differ only on lines where erased type syntax held multi-byte characters).
fn to_original(ts: &str, js: &str, err: &mut JobError) {
    let map = |line: u32, column: u32| (line, typescript::map_column(ts, js, line, column));
    if let (Some(line), Some(column)) = (err.line, err.column) {
        err.column = Some(map(line, column).1);
    }
    if let Some(stack) = err.stack.as_mut() {
        *stack = map_stack(stack, map);
    }
}

/// Rewrites every `input.js:LINE:COLUMN` of a stack trace with `map`.
fn map_stack(stack: &str, map: impl Fn(u32, u32) -> (u32, u32)) -> String {
    let marker = format!("{FILENAME}:");
    let mut out = String::with_capacity(stack.len());
    let mut rest = stack;
    while let Some(at) = rest.find(&marker) {
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let n = digits(rest);
        let line = rest[..n].parse::<u32>().ok();
        let after = &rest[n..];
        let m = after.strip_prefix(':').map(digits).unwrap_or(0);
        match (
            line,
            after.get(1..1 + m).and_then(|c| c.parse::<u32>().ok()),
        ) {
            (Some(line), Some(column)) if m > 0 => {
                let (line, column) = map(line, column);
                out.push_str(&format!("{line}:{column}"));
                rest = &after[1 + m..];
            }
            _ => {
                out.push_str(&rest[..n]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Gives a syntax error caused by an `import` or `export` declaration a message that names
/// it: the code is a script or a function body, never a module, and nothing can be loaded.
fn name_module_syntax(code: &str, err: &mut JobError) {
    if err.name != "SyntaxError" {
        return;
    }
    let (Some(line), Some(column)) = (err.line, err.column) else {
        return;
    };
    if let Some((keyword, column)) = module_keyword(code, line, column) {
        err.message = module_message(keyword);
        err.column = Some(column);
    } else if is_decorator(code, line, column) {
        err.message = DECORATOR_MESSAGE.into();
    }
}

/// The message for a decorator, which QuickJS does not implement.
const DECORATOR_MESSAGE: &str =
    "decorators (`@name`) are not supported: the engine does not implement them";

/// Whether a syntax error at `line:column` is at an `@`.
fn is_decorator(code: &str, line: u32, column: u32) -> bool {
    code.split('\n')
        .nth(line.saturating_sub(1) as usize)
        .and_then(|text| text.as_bytes().get((column as usize).saturating_sub(1)))
        == Some(&b'@')
}

/// The message for an `import` or `export` declaration.
fn module_message(keyword: &str) -> String {
    format!(
        "`{keyword}` declarations are not supported: code runs as a script or a function body, \
         not as a module, and no module can be loaded (`import type` and `export type` in \
         TypeScript are erased)"
    )
}

/// Whether a syntax error at `line:column` is inside an `import`/`export` declaration that
/// starts on that line; returns the keyword and its column.
fn module_keyword(code: &str, line: u32, column: u32) -> Option<(&'static str, u32)> {
    let text = code.split('\n').nth(line.checked_sub(1)? as usize)?;
    let limit = (column as usize).saturating_sub(1);
    let mut best = None;
    for keyword in ["import", "export"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(keyword).map(|i| i + from) {
            if i > limit {
                break;
            }
            let before_ok = text[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == '.'));
            let after = text[i + keyword.len()..].chars().next();
            let after_ok = match keyword {
                "import" => {
                    after.is_some_and(|c| c.is_whitespace() || matches!(c, '{' | '*' | '"' | '\''))
                }
                _ => after.is_none_or(|c| c.is_whitespace() || matches!(c, '{' | '*')),
            };
            if before_ok && after_ok {
                best = Some((keyword, i as u32 + 1));
            }
            from = i + keyword.len();
        }
    }
    best
}

/// Maps a position in the wrapped function body back to the user's code: first-line columns
/// lose the prefix, and a position in the closing suffix (an error at the very end of the
/// code) moves to the end of the user's last line.
fn body_position(code: &str, line: u32, column: u32) -> (u32, u32) {
    let lines = code.split('\n').count() as u32;
    if line > lines {
        let last = code.rsplit('\n').next().unwrap_or("");
        let column = last.chars().count() as u32 + 1;
        return (lines, column);
    }
    if line == 1 {
        return (1, column.saturating_sub(BODY_PREFIX.len() as u32).max(1));
    }
    (line, column)
}

/// Wraps a function body so that it runs as one (see [`BODY_PREFIX`]).
pub(super) fn wrap_body(code: &str) -> String {
    let mut s = String::with_capacity(code.len() + BODY_PREFIX.len() + BODY_SUFFIX.len());
    s.push_str(BODY_PREFIX);
    s.push_str(code);
    s.push_str(BODY_SUFFIX);
    s
}
