//! The admin page: its files and headers over HTTP, and the page itself in Debian's headless
//! Chromium (tests/ui/ui-test.mjs, through playwright-core), which must load without a console
//! error, fill the worker table, and run a snippet from the playground. The screenshot is kept
//! as results/ui.png.

use std::path::PathBuf;
use std::process::Command;

use crate::common::Service;

const TOKEN: &str = "ui-test-token-0123456789";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_page_and_its_files_are_served_with_strict_headers_and_no_data() {
    let s = Service::with("", &[("ISOLATE_AUTH_TOKEN", TOKEN)]);
    for (path, kind) in [
        ("/ui", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/app.css", "text/css; charset=utf-8"),
    ] {
        // No token needed for the files: they hold no data; every call they make needs one.
        let res = s.get(path);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some(kind), "{path}");
        let csp = res.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"));
        assert!(
            !res.body.contains("http://") && !res.body.contains("https://"),
            "{path} loads something from elsewhere"
        );
    }
    assert_eq!(s.request("POST", "/ui", &[], b"").status, 405);
    // Other paths under /ui are unknown routes (which need the token).
    assert_eq!(s.get("/ui/../status").status, 401);
    assert_eq!(s.get("/ui/other.js").status, 401);
    // The data the page shows needs the token.
    assert_eq!(s.get("/status").status, 401);
}

#[test]
fn the_page_works_in_a_real_headless_browser() {
    let ui = Command::new(root().join("scripts/ui-test-path.sh"))
        .output()
        .expect("scripts/ui-test-path.sh");
    let ui = PathBuf::from(String::from_utf8_lossy(&ui.stdout).trim());
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !ui.join(".installed").is_file() || !chromium.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium or playwright-core is missing under CI: run scripts/install-observability-deps.sh"
        );
        eprintln!("chromium or playwright-core not installed: skipping the browser test");
        return;
    }
    let s = Service::with(
        "[auth]\nrate_limit_per_minute = 0\n[workers]\nprewarm = 2\n",
        &[("ISOLATE_AUTH_TOKEN", TOKEN)],
    );
    let results = root().join("results");
    std::fs::create_dir_all(&results).unwrap();
    let profile = std::env::temp_dir().join(format!("isolate-ui-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    // ES modules resolve `playwright-core` next to the script, not through NODE_PATH: the
    // script runs from a copy beside the installed node_modules.
    let script = ui.join(format!("ui-test-{}.mjs", std::process::id()));
    std::fs::copy(root().join("tests/ui/ui-test.mjs"), &script).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .env("ISOLATE_URL", format!("http://{}", s.addr))
        .env("ISOLATE_TOKEN", TOKEN)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT", results.join("ui.png"))
        .env("USER_DATA_DIR", &profile)
        .current_dir(&ui)
        .output()
        .expect("run node");
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(&script);
    assert!(
        out.status.success(),
        "the browser test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(results.join("ui.png").is_file());
}
