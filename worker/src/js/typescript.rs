//! TypeScript to JavaScript by type stripping, inside the worker.
//!
//! The stripper (`swc_ts_fast_strip` in strip-only mode) replaces every piece of type syntax
//! with whitespace of the same width in UTF-16 units (line breaks are kept; an erased
//! statement may start with a `;` to keep automatic semicolon insertion as it was), so every
//! line of the JavaScript it returns is the user's line, and every character sits at the same
//! UTF-16 column. QuickJS counts columns in UTF-8 bytes, so on a line whose erased type syntax
//! held multi-byte characters [`map_column`] moves a column back to the original's bytes.
//! Nothing is type-checked.
//!
//! It parses the code as a module, so that `import type` and `export type` are understood
//! (and erased). A module cannot contain a top-level `return`, which function bodies have: each
//! `return` the parser refuses is replaced, for parsing only, by a placeholder of the same
//! width (`_$r = ` before an argument, `_$r   ` without one), and the keyword is put back in
//! the output.
//!
//! Constructs that have no plain-JavaScript form (`enum`, `namespace` with values, parameter
//! properties, `import x = require()`, `export =`, `<T>x` casts) are refused with an error
//! naming the construct, at its position. The stripper runs single-threaded, reads no file and
//! needs no system call beyond memory allocation.

use std::cell::RefCell;
use std::rc::Rc;

use swc_common::errors::{DiagnosticBuilder, Emitter, Handler, HANDLER};
use swc_common::sync::Lrc;
use swc_common::{SourceMap, GLOBALS};
use swc_ts_fast_strip::{operate, Mode, Options};

/// The stripper and its version, for `/stats` and the README.
pub use isolate_shared::message::TS_STRIPPER as STRIPPER;

/// Deepest bracket nesting accepted. The parser recurses once per level on the worker's only
/// stack; deeper code is refused rather than risking the stack.
pub const MAX_NESTING: usize = 1000;

/// Most right-nesting operators (prefix `!`, `~`, `+`, `-`, `typeof`, `void`, `delete`,
/// `await`, `new`; assignments; arrows; `?`; `**`) accepted in one expression (counted until a
/// `;` or `,`). The parser recurses on each, and chains of hundreds of thousands kept it busy
/// until the timeout; longer chains are refused before parsing. QuickJS, with its stack limit,
/// could not run a chain this long anyway.
pub const MAX_CHAIN: usize = 10_000;

/// The parser's message for a `return` outside a function.
const RETURN_NOT_ALLOWED: &str = "Return statement is not allowed here";
/// What replaces a `return` with an argument while parsing.
const PLACEHOLDER_ARG: &str = "_$r = ";
/// What replaces a `return` without an argument while parsing.
const PLACEHOLDER_BARE: &str = "_$r   ";

/// Why the code could not be stripped: a syntax error, or a construct that has no
/// JavaScript form, with its 1-based position in the user's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct StripError {
    /// What is wrong, naming the construct when one is refused.
    pub message: String,
    /// The refused construct (`"enum"`, `"namespace"`, …), or `None` for a syntax error.
    pub construct: Option<&'static str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in UTF-8 bytes from the start of the line (as QuickJS counts).
    pub column: u32,
}

/// One diagnostic of the stripper: its message and byte offset in the input.
#[derive(Debug, Clone)]
struct Diag {
    message: String,
    offset: usize,
}

/// The diagnostics collected from one run: message and start position of each.
type Collected = Rc<RefCell<Vec<(String, Option<u32>)>>>;

/// Collects the stripper's diagnostics instead of printing them.
struct Collect(Collected);

impl Emitter for Collect {
    fn emit(&mut self, db: &mut DiagnosticBuilder<'_>) {
        let message = db.message();
        let lo = db.span.primary_span().map(|s| s.lo.0);
        self.0.borrow_mut().push((message, lo));
    }
}

/// Stack bytes given to the stripper per byte of input, within [`MIN_STACK`] and
/// [`MAX_STACK`]. The parser recurses once per nesting level (an arrow-function chain, the
/// costliest form measured, takes about 770 bytes of stack per byte of source).
const STACK_PER_BYTE: usize = 1024;
/// The smallest stack the stripper runs on.
const MIN_STACK: usize = 16 << 20;
/// The largest stack the stripper runs on; it is mapped for the call and unmapped after, and
/// only the pages the parser touches are ever backed by memory.
const MAX_STACK: usize = 256 << 20;

/// Strips the types from `code`, keeping every line and every UTF-16 column.
///
/// Unless the current stack has room for the input's worst case (short inputs), it runs on a
/// stack of its own (mapped with `mmap`, sized from the input), because the parser recurses
/// once per nesting level and the worker's only thread has 8 MiB. Deep nesting is refused
/// before parsing: brackets past [`MAX_NESTING`] levels, and chains of right-nesting operators
/// past [`MAX_CHAIN`] in one expression, each with a `SyntaxError` at its position.
pub fn strip(code: &str) -> Result<String, StripError> {
    let needed = code.len().saturating_mul(STACK_PER_BYTE);
    let stack = needed.clamp(MIN_STACK, MAX_STACK);
    // Small inputs run on the current stack when it has room for their worst case (mapping
    // and faulting in a fresh stack costs more than stripping a short function body).
    stacker::maybe_grow(needed.saturating_add(RED_ZONE), stack, || strip_here(code))
}

/// Stack kept free below the stripper's worst case before it may run on the current stack.
const RED_ZONE: usize = 1 << 20;

fn strip_here(code: &str) -> Result<String, StripError> {
    // The parser drops a leading byte-order mark, which would shift the first line: strip
    // what follows it and put it back (it is whitespace to QuickJS).
    if let Some(rest) = code.strip_prefix('\u{feff}') {
        let bom = '\u{feff}'.len_utf8() as u32;
        return strip_here(rest)
            .map(|js| format!("\u{feff}{js}"))
            .map_err(|mut e| {
                if e.line == 1 {
                    e.column += bom;
                }
                e
            });
    }
    if let Some(offset) = too_deep(code) {
        let (line, column) = line_column(code, offset);
        return Err(StripError {
            message: format!(
                "the code nests brackets deeper than {MAX_NESTING} levels, more than the \
                 TypeScript stripper accepts"
            ),
            construct: None,
            line,
            column,
        });
    }
    if let Some(offset) = too_long_chain(code) {
        let (line, column) = line_column(code, offset);
        return Err(StripError {
            message: format!(
                "the code chains more than {MAX_CHAIN} prefix operators, assignments, arrows or \
                 conditionals in one expression, more than the TypeScript stripper accepts"
            ),
            construct: None,
            line,
            column,
        });
    }
    let diags = match run(code) {
        Ok(js) => return Ok(js),
        Err(diags) => diags,
    };
    if diags.is_empty() || !diags.iter().all(|d| d.message == RETURN_NOT_ALLOWED) {
        return Err(describe(code, &diags));
    }
    // A function body: hide its top-level returns from the module parser.
    let mut masked = code.to_string();
    let mut returns = Vec::with_capacity(diags.len());
    for d in &diags {
        if code.get(d.offset..d.offset + 6) != Some("return") {
            return Err(describe(code, &diags));
        }
        let placeholder = if has_argument(&code[d.offset + 6..]) {
            PLACEHOLDER_ARG
        } else {
            PLACEHOLDER_BARE
        };
        masked.replace_range(d.offset..d.offset + 6, placeholder);
        returns.push((d.offset, placeholder));
    }
    let mut js = run(&masked).map_err(|diags| describe(code, &diags))?;
    for (offset, placeholder) in returns {
        // The stripper keeps UTF-16 positions; erased multi-byte characters may shrink.
        let offset = byte_offset(&js, utf16_offset(code, offset));
        if js.get(offset..offset + 6) != Some(placeholder) {
            // The stripper rewrote a placeholder: never expected, but never run such code.
            let (line, column) = line_column(code, offset);
            return Err(StripError {
                message: "this return statement cannot be stripped".into(),
                construct: None,
                line,
                column,
            });
        }
        js.replace_range(offset..offset + 6, "return");
    }
    Ok(js)
}

/// Whether the text after a `return` keyword starts an argument on the same line.
fn has_argument(rest: &str) -> bool {
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' | b'\r' => return false,
            b' ' | b'\t' | 0x0b | 0x0c => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => return false,
            b'/' if b.get(i + 1) == Some(&b'*') => match rest[i + 2..].find("*/") {
                Some(end) => {
                    let comment = &rest[i + 2..i + 2 + end];
                    if comment.contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
                        return false;
                    }
                    i += end + 4;
                }
                None => return false,
            },
            b';' | b'}' => return false,
            _ if rest[i..].starts_with(['\u{2028}', '\u{2029}']) => return false,
            _ => return true,
        }
    }
    false
}

/// Runs the stripper once. `Err` holds its diagnostics (possibly none, for an internal failure).
fn run(code: &str) -> Result<String, Vec<Diag>> {
    let collected: Collected = Rc::new(RefCell::new(Vec::new()));
    let cm: Lrc<SourceMap> = Default::default();
    let handler = Handler::with_emitter(false, false, Box::new(Collect(Rc::clone(&collected))));
    let options = Options {
        module: Some(true),
        mode: Mode::StripOnly,
        ..Default::default()
    };
    let result = GLOBALS.set(&Default::default(), || {
        HANDLER.set(&handler, || {
            operate(&cm, &handler, code.to_string(), options)
        })
    });
    match result {
        Ok(out) => Ok(out.code),
        Err(_) => {
            let start = cm.files().first().map(|f| f.start_pos.0).unwrap_or(1);
            let diags = collected
                .borrow()
                .iter()
                .map(|(message, lo)| Diag {
                    message: message.clone(),
                    offset: lo
                        .map(|lo| lo.saturating_sub(start) as usize)
                        .unwrap_or(0)
                        .min(code.len()),
                })
                .collect();
            Err(diags)
        }
    }
}

/// The first diagnostic as an error naming its construct.
fn describe(code: &str, diags: &[Diag]) -> StripError {
    let first = diags
        .iter()
        .find(|d| d.message != RETURN_NOT_ALLOWED)
        .or(diags.first());
    let Some(d) = first else {
        return StripError {
            message: "the TypeScript stripper failed on this code".into(),
            construct: None,
            line: 1,
            column: 1,
        };
    };
    let (line, column) = line_column(code, d.offset);
    let (construct, message) = if code.as_bytes().get(d.offset) == Some(&b'@') {
        (
            Some("decorator"),
            "decorators (`@name`) are not supported: the engine does not implement them".into(),
        )
    } else {
        explain(&d.message)
    };
    StripError {
        message,
        construct,
        line,
        column,
    }
}

/// Maps a stripper message to the construct it refuses and a message that names it.
fn explain(message: &str) -> (Option<&'static str>, String) {
    const NOTE: &str = "TypeScript runs here by erasing its types, and this construct has no \
                        JavaScript equivalent";
    let (construct, text) = if message.contains("enum is not supported") {
        (
            "enum",
            format!("TypeScript `enum` is not supported ({NOTE}); use an object or a union of literal types"),
        )
    } else if message.contains("namespace declaration is not supported") {
        (
            "namespace",
            format!(
                "TypeScript `namespace`/`module` declarations with values are not supported \
                 ({NOTE}); namespaces that hold only types are erased"
            ),
        )
    } else if message.contains("import equals declaration") {
        (
            "import-equals",
            "`import x = require(...)` is not supported: nothing can be loaded here (`import type x = require(...)` is erased)".to_string(),
        )
    } else if message.contains("export assignment") {
        (
            "export-assignment",
            "`export =` is not supported: the code is not a module".to_string(),
        )
    } else if message.contains("parameter property") {
        (
            "parameter-property",
            format!(
                "TypeScript parameter properties (`constructor(public x)`) are not supported \
                 ({NOTE}); declare the field and assign it in the constructor"
            ),
        )
    } else if message.contains("angle-bracket syntax for type assertions") {
        (
            "type-assertion",
            "angle-bracket type assertions (`<T>x`) are not supported; write `x as T`".to_string(),
        )
    } else if message.contains("`module` keyword") {
        (
            "module",
            "the `module` keyword for namespaces is not supported; use `namespace`".to_string(),
        )
    } else if message.contains("unary or await expression on the left-hand side of `**`") {
        (
            "exponentiation",
            "a unary or await expression on the left of `**` must be parenthesized".to_string(),
        )
    } else {
        return (None, message.to_string());
    };
    (Some(construct), text)
}

/// The 1-based line and column (UTF-8 bytes, as QuickJS counts) of a byte offset.
pub fn line_column(code: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(code.len());
    let before = &code.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line as u32, (offset - line_start + 1) as u32)
}

/// The number of UTF-16 units in `s` before byte `offset`.
fn utf16_offset(s: &str, offset: usize) -> usize {
    s.get(..offset)
        .unwrap_or(s)
        .chars()
        .map(char::len_utf16)
        .sum()
}

/// The byte offset in `s` of UTF-16 unit `units` (the end of `s` when past it).
fn byte_offset(s: &str, units: usize) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        if n >= units {
            return i;
        }
        n += c.len_utf16();
    }
    s.len()
}

/// Maps a 1-based byte column on line `line` of the stripped code `js` to the same character
/// in the original `ts` (both have the same lines and the same UTF-16 columns).
pub fn map_column(ts: &str, js: &str, line: u32, column: u32) -> u32 {
    let n = line.saturating_sub(1) as usize;
    let (Some(ts_line), Some(js_line)) = (ts.split('\n').nth(n), js.split('\n').nth(n)) else {
        return column;
    };
    if ts_line.len() == js_line.len() {
        return column;
    }
    let units = utf16_offset(js_line, (column as usize).saturating_sub(1));
    byte_offset(ts_line, units) as u32 + 1
}

/// The offset where bracket nesting (`(`, `[`, `{`) first exceeds [`MAX_NESTING`], if it
/// does. Brackets in strings and comments count too: the bound is conservative, not exact.
/// Angle brackets do not count (they are also comparison operators); deep type arguments are
/// left to the stripper's own stack.
fn too_deep(code: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in code.bytes().enumerate() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// The byte offset where an expression first chains more than [`MAX_CHAIN`] right-nesting
/// operators, skipping strings, template literals and comments. A `;` or `,` ends the count.
fn too_long_chain(code: &str) -> Option<usize> {
    let b = code.as_bytes();
    let mut chain = 0usize;
    // The last byte that is not whitespace, to tell a prefix `+`/`-` from a binary one.
    let mut prev = b';';
    let mut i = 0usize;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or(0);
        let mut counts = false;
        match c {
            b'\'' | b'"' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                prev = b'a';
                continue;
            }
            b'/' if next == b'/' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if next == b'*' => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            b';' | b',' => chain = 0,
            b'!' | b'~' => counts = next != b'=',
            b'+' | b'-' => counts = b"(=,;:!~+-*/%&|^<>?[{".contains(&prev),
            b'=' => counts = next != b'=' && !b"=!<>".contains(&prev),
            b'?' => counts = next != b'.' && next != b'?' && prev != b'?',
            b'*' => counts = next == b'*' && prev != b'*',
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &b[start..i];
                if matches!(
                    word,
                    b"typeof" | b"void" | b"delete" | b"await" | b"new" | b"yield"
                ) {
                    chain += 1;
                    if chain > MAX_CHAIN {
                        return Some(start);
                    }
                    prev = b'(';
                } else {
                    prev = b'a';
                }
                continue;
            }
            _ => {}
        }
        if counts {
            chain += 1;
            if chain > MAX_CHAIN {
                return Some(i);
            }
        }
        if !c.is_ascii_whitespace() {
            prev = c;
        }
        i += 1;
    }
    None
}

/// Strips a small program using every kind of type syntax, so that the stripper's code and
/// lazily built tables are loaded before the zygote forks.
pub fn warm() {
    // Reads the main thread's stack bounds (glibc reads /proc/self/maps for them) while files
    // can still be opened; forked workers inherit the answer.
    let _ = stacker::remaining_stack();
    let _ = strip(
        "interface P { x: number }\ntype Q = P | null;\nconst p: P = { x: 1 } as P;\n\
         function f<T>(v: T): T { return v! }\nclass C implements P { x!: number; private y?: string }\n\
         return f<number>(p.x satisfies number);",
    );
}

#[cfg(test)]
mod tests;
