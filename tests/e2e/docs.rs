//! Keeps the documentation honest: README.md, ARCHITECTURE.md and docs/*.md are checked
//! against the repository, the configuration code and the running service.
//!
//! - Every relative link points at a file that exists, and every `#anchor` at a heading of its
//!   target, with GitHub's anchor rules.
//! - The settings table of docs/configuration.md lists exactly the configuration's keys, with
//!   their built-in defaults, and the environment variables that set them.
//! - Every ```` ```sh ```` block runs with bash against a real service and exits with 0; when a
//!   ```` ```json ```` block follows it (only blank lines between), the answer must match it,
//!   except values that differ per run. Commands that cannot run in a test belong in
//!   ```` ```console ```` or ```` ```text ```` blocks, which are not run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use isolate_service::config::{Config, ENV_VARS};
use serde_json::Value;

use crate::common::Service;

/// The token the examples get in `$TOKEN`.
const TOKEN: &str = "docs-example-token-0123456789";

/// Answer fields whose values differ from run to run; their presence is still checked.
const PER_RUN: [&str; 13] = [
    "executionId",
    "cpuMs",
    "wallMs",
    "heapPeakBytes",
    "elapsed",
    "compileTime",
    "instantiateTime",
    "callTime",
    "loadTime",
    "uptime",
    "time",
    "ms",
    "stack",
];

/// The repository root: the nearest ancestor of this package that holds ARCHITECTURE.md.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("ARCHITECTURE.md").is_file() && d.join("docs").is_dir())
        .expect("the repository root (with ARCHITECTURE.md and docs/)")
        .to_path_buf()
}

/// The checked documents, relative to the root.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("read docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| Path::new("docs").join(p.file_name().expect("file name")))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// One line of a Markdown file, outside or inside a fenced block.
enum Line<'a> {
    /// Ordinary text, with its line number.
    Text(usize, &'a str),
    /// A fenced block: info string, content and the line number of its opening fence.
    Block(&'a str, String, usize),
}

/// Splits Markdown into text lines and fenced blocks (fences of three or more backticks).
fn parse(markdown: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut open: Option<(&str, usize, String, usize)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim_start();
        let ticks = trimmed.len() - trimmed.trim_start_matches('`').len();
        match &mut open {
            Some((info, width, body, start)) => {
                if ticks >= *width && trimmed[ticks..].trim().is_empty() {
                    out.push(Line::Block(info, std::mem::take(body), *start));
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
            None if ticks >= 3 => open = Some((trimmed[ticks..].trim(), ticks, String::new(), n)),
            None => out.push(Line::Text(n, line)),
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    out
}

/// `text` without its inline code spans.
fn without_code(text: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in text.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// GitHub's anchor for a heading: link syntax reduced to its text, lower case, every character
/// but letters, digits, spaces, `-` and `_` removed, spaces turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading.trim();
    // `[text](target)` becomes `text`.
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|c| open + c) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|e| close + e) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown document, with `-1`, `-2`, … for repeated headings.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in parse(markdown) {
        let Line::Text(_, text) = line else { continue };
        let hashes = text.len() - text.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !text[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(&text[hashes..]);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The targets of the inline links `[text](target)` of one line (code spans excluded).
fn link_targets(line: &str) -> Vec<String> {
    let text = without_code(line);
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split_whitespace().next().unwrap_or("");
        out.push(target.to_string());
        rest = &after[end..];
    }
    out
}

/// Every broken relative link or anchor in `files` (relative to `root`), as `file:line: why`.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(root.join(file)).expect("read a document");
        let dir = file.parent().unwrap_or(Path::new(""));
        for line in parse(&text) {
            let Line::Text(n, line) = line else { continue };
            for target in link_targets(line) {
                let is_url = target
                    .split_once(':')
                    .is_some_and(|(scheme, _)| scheme.chars().all(|c| c.is_ascii_alphabetic()));
                if is_url || target.is_empty() {
                    continue;
                }
                let (path, fragment) = match target.split_once('#') {
                    Some((p, f)) => (p, Some(f)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    normalise(&dir.join(path))
                };
                let full = root.join(&resolved);
                if !full.exists() {
                    problems.push(format!("{}:{n}: {target}: no such file", file.display()));
                    continue;
                }
                let Some(fragment) = fragment else { continue };
                if full.extension().is_none_or(|e| e != "md") {
                    problems.push(format!(
                        "{}:{n}: {target}: an anchor into a file that is not Markdown",
                        file.display()
                    ));
                    continue;
                }
                let target_text = std::fs::read_to_string(&full).expect("read a link target");
                if !anchors(&target_text).contains(fragment) {
                    problems.push(format!(
                        "{}:{n}: {target}: no heading with the anchor #{fragment} in {}",
                        file.display(),
                        resolved.display()
                    ));
                }
            }
        }
    }
    problems
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn anchors_follow_github_rules() {
    let md = "# API reference\n## `POST /wasm/compile`\n### Failure: 422, or 500 for `INTERNAL`\n\
              ## The `agent` preset and `fetch`\n## Limits\n## Limits\n```sh\n# not a heading\n```\n\
              ## What do I need to build it?\n## See [fetch](fetch.md)\n";
    let expected: BTreeSet<String> = [
        "api-reference",
        "post-wasmcompile",
        "failure-422-or-500-for-internal",
        "the-agent-preset-and-fetch",
        "limits",
        "limits-1",
        "what-do-i-need-to-build-it",
        "see-fetch",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(anchors(md), expected);
}

#[test]
fn a_broken_link_or_anchor_is_found() {
    let dir = std::env::temp_dir().join(format!("isolate-docs-links-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs")).expect("scratch dir");
    std::fs::write(
        dir.join("README.md"),
        "# Top\n[ok](docs/a.md#part-two) [ok](#top) [url](https://example.invalid/x#y)\n\
         `[code](missing.md)`\n[gone](docs/missing.md) [bad anchor](docs/a.md#part-three)\n",
    )
    .expect("write");
    std::fs::write(
        dir.join("docs/a.md"),
        "# A\n## Part two\n[up](../README.md#top) [self](#nope)\n",
    )
    .expect("write");
    let problems = broken_links(
        &dir,
        &[PathBuf::from("README.md"), PathBuf::from("docs/a.md")],
    );
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with("README.md:4: docs/missing.md: no such file"));
    assert!(problems[1].contains("#part-three"));
    assert!(problems[2].starts_with("docs/a.md:3: #nope"));
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let root = root();
    let problems = broken_links(&root, &documents(&root));
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

/// The cells of a table row, split on `|` outside code spans.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut in_code = false;
    for c in inner.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.last_mut().expect("a cell").push(c);
            }
            '|' if !in_code => out.push(String::new()),
            _ => out.last_mut().expect("a cell").push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The first code span of a cell.
fn code_span(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let end = start + cell[start..].find('`')?;
    Some(&cell[start..end])
}

/// The configuration flattened to dotted keys; arrays, `null` and scalars are leaves.
fn flatten(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(v, &key, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

fn flat(config: &Config) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let value = serde_json::to_value(config).expect("the configuration serialises");
    flatten(&value, "", &mut out);
    out
}

/// One row of the settings table.
struct Setting {
    line: usize,
    env: Option<String>,
    default: Value,
}

/// The settings table of docs/configuration.md: the only table whose first column is `Key`.
fn settings_table(markdown: &str) -> BTreeMap<String, Setting> {
    let mut tables = 0;
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in parse(markdown) {
        let Line::Text(n, text) = line else {
            in_table = false;
            continue;
        };
        if !text.trim_start().starts_with('|') {
            in_table = false;
            continue;
        }
        let c = cells(text);
        if c.first().map(String::as_str) == Some("Key") {
            tables += 1;
            assert_eq!(
                c,
                ["Key", "Env var", "Default", "Meaning"],
                "line {n}: the settings table's columns"
            );
            in_table = true;
            continue;
        }
        if !in_table || c.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')) {
            continue;
        }
        assert_eq!(c.len(), 4, "line {n}: a settings row has four cells");
        let key = code_span(&c[0])
            .unwrap_or_else(|| panic!("line {n}: the key is not in backticks"))
            .to_string();
        let env = code_span(&c[1]).map(str::to_string);
        let default = match code_span(&c[2]) {
            _ if c[2].starts_with("unset") => Value::Null,
            Some(literal) => {
                let table: toml::Table = toml::from_str(&format!("v = {literal}"))
                    .unwrap_or_else(|e| panic!("line {n}: default {literal:?} is not TOML: {e}"));
                serde_json::to_value(&table["v"]).expect("a TOML value as JSON")
            }
            None => panic!("line {n}: the default is neither `a TOML literal` nor unset"),
        };
        let previous = rows.insert(
            key.clone(),
            Setting {
                line: n,
                env,
                default,
            },
        );
        assert!(previous.is_none(), "line {n}: {key} is listed twice");
    }
    assert_eq!(
        tables, 1,
        "docs/configuration.md holds exactly one settings table"
    );
    rows
}

#[test]
fn the_settings_table_matches_the_configuration() {
    let text = std::fs::read_to_string(root().join("docs/configuration.md")).expect("read");
    let table = settings_table(&text);
    let defaults = flat(&Config::default());
    let mut problems = Vec::new();
    for (key, value) in &defaults {
        match table.get(key) {
            None => problems.push(format!("{key} is a setting, and the table lacks it")),
            Some(row) if &row.default != value => problems.push(format!(
                "line {}: {key} defaults to {value}, the table says {}",
                row.line, row.default
            )),
            Some(_) => {}
        }
    }
    for (key, row) in &table {
        if !defaults.contains_key(key) {
            problems.push(format!("line {}: {key} is not a setting", row.line));
        }
    }
    // Each variable the service reads sets exactly the key of its row, or no key at all (then
    // the page must still explain it, as it does ISOLATE_CONFIG).
    let mut documented: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, row) in &table {
        if let Some(var) = &row.env {
            documented.insert(var, key);
            if !ENV_VARS.contains(&var.as_str()) {
                problems.push(format!(
                    "line {}: {var} is not read by the service",
                    row.line
                ));
            }
        }
    }
    for var in ENV_VARS {
        let mut config = Config::default();
        let env = BTreeMap::from([(var.to_string(), "5901".to_string())]);
        config
            .apply_env(&env)
            .unwrap_or_else(|e| panic!("{var}=5901 is refused ({e}): choose another sample"));
        let after = flat(&config);
        let changed: Vec<&String> = after
            .iter()
            .filter(|(k, v)| defaults.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        match (documented.get(var), changed.as_slice()) {
            (Some(key), [only]) if *key == only.as_str() => {}
            (None, []) if text.contains(&format!("`{var}`")) => {}
            (None, []) => problems.push(format!(
                "{var} is read and docs/configuration.md never names it"
            )),
            (row, changed) => problems.push(format!(
                "{var} sets {changed:?}, and the table says {}",
                row.map_or("nothing".to_string(), |k| k.to_string())
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "docs/configuration.md:\n{}",
        problems.join("\n")
    );
}

/// A shell example and the answer printed after it, if any.
struct Example {
    line: usize,
    script: String,
    answer: Option<String>,
}

/// The ```` ```sh ```` blocks of a document, each with the ```` ```json ```` block that follows
/// it with only blank lines between.
fn examples(file: &Path, markdown: &str) -> Vec<Example> {
    let lines = parse(markdown);
    let mut out: Vec<Example> = Vec::new();
    let mut last_was_sh = false;
    for line in &lines {
        match line {
            Line::Text(_, text) if text.trim().is_empty() => {}
            Line::Text(..) => last_was_sh = false,
            Line::Block(info, body, n) => {
                let lang = info.split_whitespace().next().unwrap_or("");
                assert!(
                    !matches!(lang, "bash" | "shell" | "zsh" | "shell-session"),
                    "{}:{n}: a ```{lang} block: use ```sh for an example the docs test runs, \
                     ```console for commands it must not run",
                    file.display()
                );
                match lang {
                    "sh" => {
                        out.push(Example {
                            line: *n,
                            script: body.clone(),
                            answer: None,
                        });
                        last_was_sh = true;
                        continue;
                    }
                    "json" if last_was_sh => {
                        if let Some(e) = out.last_mut() {
                            e.answer = Some(body.clone());
                        }
                    }
                    _ => {}
                }
                last_was_sh = false;
            }
        }
    }
    out
}

/// Every JSON value of a text holding one or more.
fn json_values(text: &str) -> Result<Vec<Value>, serde_json::Error> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect()
}

/// Differences between the documented and the real answer, per-run values aside.
fn differences(path: &str, documented: &Value, real: &Value, out: &mut Vec<String>) {
    match (documented, real) {
        (Value::Object(d), Value::Object(r)) => {
            let dk: BTreeSet<&String> = d.keys().collect();
            let rk: BTreeSet<&String> = r.keys().collect();
            if dk != rk {
                out.push(format!("{path}: documented keys {dk:?}, real keys {rk:?}"));
                return;
            }
            for (k, v) in d {
                if !PER_RUN.contains(&k.as_str()) {
                    differences(&format!("{path}.{k}"), v, &r[k], out);
                }
            }
        }
        (Value::Array(d), Value::Array(r)) if d.len() == r.len() => {
            for (i, (d, r)) in d.iter().zip(r).enumerate() {
                differences(&format!("{path}[{i}]"), d, r, out);
            }
        }
        (d, r) if d == r => {}
        (d, r) => out.push(format!("{path}: documented {d}, real {r}")),
    }
}

/// Runs `script` with bash, with `$TOKEN` set; gives up after a minute.
fn run_bash(script: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new("bash")
        .args(["-eu", "-o", "pipefail", "-c", script])
        .env("TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

#[test]
fn every_shell_example_runs_and_answers_as_documented() {
    let root = root();
    let mut problems = Vec::new();
    let mut ran = 0;
    for file in documents(&root) {
        let text = std::fs::read_to_string(root.join(&file)).expect("read a document");
        let examples = examples(&file, &text);
        if examples.is_empty() {
            continue;
        }
        // A fresh service per document, so that each page works from a fresh start.
        let service = Service::with(
            "[auth]\nrate_limit_per_minute = 0\n",
            &[("ISOLATE_AUTH_TOKEN", TOKEN)],
        );
        let addr = service.addr.to_string();
        for example in examples {
            ran += 1;
            let at = format!("{}:{}", file.display(), example.line);
            let script = example
                .script
                .replace("127.0.0.1:5900", &addr)
                .replace("localhost:5900", &addr);
            let (status, stdout, stderr) = run_bash(&script);
            if status != Some(0) {
                problems.push(format!(
                    "{at}: exit status {status:?}\nstdout: {stdout}\nstderr: {stderr}"
                ));
                continue;
            }
            let Some(answer) = example.answer else {
                continue;
            };
            let documented = json_values(&answer)
                .unwrap_or_else(|e| panic!("{at}: the answer block is not JSON: {e}"));
            let real = match json_values(&stdout) {
                Ok(real) => real,
                Err(e) => {
                    problems.push(format!("{at}: the answer is not JSON ({e}): {stdout}"));
                    continue;
                }
            };
            if documented.len() != real.len() {
                problems.push(format!(
                    "{at}: {} documented answers, {} real ones: {stdout}",
                    documented.len(),
                    real.len()
                ));
                continue;
            }
            let mut diff = Vec::new();
            for (d, r) in documented.iter().zip(&real) {
                differences("answer", d, r, &mut diff);
            }
            if !diff.is_empty() {
                problems.push(format!("{at}:\n  {}\n  real: {stdout}", diff.join("\n  ")));
            }
        }
    }
    assert!(ran > 0, "no ```sh example found");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
