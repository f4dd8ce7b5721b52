//! The `isolate-service` binary: parses the command line (clap), loads the configuration, sets
//! up logging and serves, or runs one file against a running service (`run`). With the hidden
//! first argument `__zygote` it becomes the zygote instead, before clap sees anything.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use isolate_service::client::{self, RunOptions};
use isolate_service::config::Config;
use isolate_service::pool::zygote::ZYGOTE_ARG;

/// The process's allocator: the C library's, except inside a worker's region slot (see
/// `isolate_worker::region`), where a prepared JavaScript runtime keeps everything it holds.
#[global_allocator]
static ALLOCATOR: isolate_worker::region::Routing = isolate_worker::region::Routing;

/// Run untrusted JavaScript, TypeScript and WebAssembly in sandboxed worker processes over HTTP.
#[derive(Parser)]
#[command(
    name = "isolate-service",
    version,
    args_conflicts_with_subcommands = true,
    after_help = after_help()
)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve(ServeArgs),
    /// Serve MCP on stdin and stdout (no HTTP port).
    Mcp(ConfigArg),
    /// Run one file on a running service and print its result (logs go to stderr).
    Run(RunArgs),
    /// Manage API keys (`[[auth.keys]]`).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh random secret alone on the first line, then the `[[auth.keys]]` block
    /// (its name and the secret's SHA-256) to paste into the configuration.
    New {
        /// The key's name: 1 to 64 of A-Z a-z 0-9 _ . -
        name: String,
    },
}

#[derive(Args, Clone, Default)]
struct ConfigArg {
    /// TOML configuration file (also ISOLATE_CONFIG).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Load and validate the configuration, then exit.
    #[arg(long, conflicts_with = "print_config")]
    check_config: bool,
    /// Print the effective configuration as TOML (secrets redacted), then exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(Args)]
struct RunArgs {
    /// The file to run: .js, .ts or .wasm.
    file: PathBuf,
    /// The preset (JavaScript and TypeScript).
    #[arg(long, value_name = "P")]
    preset: Option<String>,
    /// `env` as a JSON object, or @FILE holding one (for .wasm: the WASI environment).
    #[arg(long, value_name = "JSON|@FILE")]
    env: Option<String>,
    /// The export to call (.wasm).
    #[arg(long, value_name = "NAME")]
    entry: Option<String>,
    /// The arguments as a JSON array, or @FILE holding one (.wasm).
    #[arg(long, value_name = "JSON|@FILE")]
    args: Option<String>,
    /// The execution's timeout in milliseconds (the service's default when unset).
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// The service's base URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:5900")]
    url: String,
    /// The bearer token (default: $ISOLATE_AUTH_TOKEN; prefer it, since arguments are visible
    /// to other local users).
    #[arg(long, value_name = "T")]
    token: Option<String>,
}

/// The help's last paragraph: the environment variables from the one list the configuration
/// reads.
fn after_help() -> String {
    format!(
        "Environment (overrides the file): {}",
        isolate_service::config::ENV_VARS.join(", ")
    )
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == ZYGOTE_ARG) {
        let supervisor = args.next();
        std::process::exit(isolate_worker::zygote::main(
            supervisor.as_deref().and_then(std::ffi::OsStr::to_str),
        ));
    }
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve, false),
        Some(Command::Serve(args)) => serve(args, false),
        Some(Command::Mcp(config)) => serve(
            ServeArgs {
                config,
                ..ServeArgs::default()
            },
            true,
        ),
        Some(Command::Run(args)) => run(args),
        Some(Command::Keys(KeysCommand::New { name })) => {
            match isolate_service::api::auth::new_key(&name) {
                Ok(key) => {
                    println!("{}", key.secret);
                    print!("{}", key.block);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn serve(args: ServeArgs, mcp_stdio: bool) -> ExitCode {
    let config_path = args
        .config
        .config
        .or_else(|| std::env::var_os("ISOLATE_CONFIG").map(PathBuf::from));
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
    let set_log_level = init_logging(&config);
    for w in warnings {
        tracing::warn!("{w}");
    }
    if args.print_config {
        return match config.to_redacted_toml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("isolate-service: cannot print the configuration: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.check_config {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    let served = if mcp_stdio {
        isolate_service::mcp::serve_stdio(config)
    } else {
        // SIGHUP loads the same file and the environment as they are then.
        let reloader = isolate_service::Reloader {
            load: Box::new(move || {
                let env: BTreeMap<String, String> = std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                    .collect();
                Config::load(config_path.as_deref(), &env)
            }),
            set_log_level: Box::new(set_log_level),
        };
        actix_web::rt::System::new().block_on(isolate_service::serve_with(config, Some(reloader)))
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

fn run(args: RunArgs) -> ExitCode {
    let token = args.token.or_else(|| {
        std::env::var("ISOLATE_AUTH_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
    });
    let options = RunOptions {
        file: args.file,
        preset: args.preset,
        env: args.env,
        entry: args.entry,
        args: args.args,
        timeout_ms: args.timeout,
        url: args.url,
        token,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("isolate-service: cannot start the client: {e}");
            return ExitCode::from(client::EXIT_USAGE);
        }
    };
    match runtime.block_on(client::run(&options)) {
        Ok(outcome) => {
            for line in &outcome.stderr {
                eprintln!("{line}");
            }
            if let Some(line) = &outcome.stdout {
                println!("{line}");
            }
            ExitCode::from(outcome.code)
        }
        Err(e) => {
            eprintln!("isolate-service: {e}");
            ExitCode::from(client::EXIT_USAGE)
        }
    }
}

/// Sets up logging to stderr; returns the function that changes the level (on SIGHUP).
fn init_logging(config: &Config) -> impl Fn(&str) -> Result<(), String> + Send + Sync {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let lines = if config.log.format == "json" {
        lines.json().boxed()
    } else {
        lines.boxed()
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .init();
    move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    }
}
