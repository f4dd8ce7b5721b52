//! The `isolate-service` binary: parses the command line, loads the configuration, sets up
//! logging and serves. With the hidden first argument `__zygote` it becomes the zygote instead.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use isolate_service::config::Config;
use isolate_service::pool::zygote::ZYGOTE_ARG;

const USAGE: &str = "\
isolate-service: run untrusted JavaScript in sandboxed worker processes over HTTP

Usage: isolate-service [--config PATH] [--check-config]
       isolate-service mcp [--config PATH]   serve MCP on stdin/stdout (no HTTP port)

Options:
  --config PATH     TOML configuration file (also ISOLATE_CONFIG)
  --check-config    load and validate the configuration, then exit
  --version         print the version
  --help            print this help";

/// The help text, with the environment variables from the one list the configuration reads.
fn usage() -> String {
    format!(
        "{USAGE}\n\nEnvironment (overrides the file): {}",
        isolate_service::config::ENV_VARS.join(", ")
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(ZYGOTE_ARG) {
        std::process::exit(isolate_worker::zygote::main(
            args.get(2).map(String::as_str),
        ));
    }
    let mut config_path: Option<PathBuf> = std::env::var_os("ISOLATE_CONFIG").map(PathBuf::from);
    let mut check_only = false;
    let mut mcp_stdio = false;
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            "--version" | "-V" => {
                println!("isolate-service {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--check-config" => check_only = true,
            "mcp" => mcp_stdio = true,
            "--config" => match it.next() {
                Some(p) => config_path = Some(PathBuf::from(p)),
                None => return usage_error("--config needs a path"),
            },
            other => match other.strip_prefix("--config=") {
                Some(p) => config_path = Some(PathBuf::from(p)),
                None => return usage_error(&format!("unknown argument {other:?}")),
            },
        }
    }
    // The whole environment: `ISOLATE_*` variables override the file, and
    // `fetch.secret_headers` may name any variable in `value_env`.
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let (config, warnings) = match Config::load(config_path.as_deref(), &env) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("isolate-service: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    for w in warnings {
        tracing::warn!("{w}");
    }
    if check_only {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let served = if mcp_stdio {
        isolate_service::mcp::serve_stdio(config)
    } else {
        actix_web::rt::System::new().block_on(isolate_service::serve(config))
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("isolate-service: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("isolate-service: {message}\n\n{}", usage());
    ExitCode::from(2)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
