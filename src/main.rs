//! The `trunkd` command: parse arguments, set up logging, run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use trunkd::config::{self, DEFAULT_CONFIG_PATH, LoadOptions};
use trunkd::io::count_of;

/// trunkd — SIP trunk edge daemon.
///
/// Loads SIP trunk definitions from a TOML file and its includes (see README.md),
/// validates every key, binds the SIP listeners and logs each trunk's changes of state,
/// with a periodic summary.
/// Edit the files or send SIGHUP and trunkd reloads them, applying only what changed, or
/// keeping the running config if the edit is invalid. Trunks register and send OPTIONS
/// keepalives; inbound INVITEs over UDP are admitted or refused per trunk and routed to
/// the backend. `trunkd status` prints what the running daemon wrote to its status file.
#[derive(Debug, Parser)]
#[command(name = "trunkd", version, long_about)]
struct Cli {
    /// Log format on stderr: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon in the foreground (systemd: Type=notify). SIGHUP reloads the config,
    /// SIGTERM or SIGINT stops it.
    Run {
        /// Main config file; its `include` globs are relative to its directory.
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Validate the config and exit: 0 if valid, 1 with every error on stderr if not.
    CheckConfig {
        /// Main config file to check.
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Print the running daemon's per-trunk status (its `[daemon] status_file`) as a
    /// table, or as JSON. Exits 1 if there is no status to show or the daemon that
    /// wrote it is gone.
    Status {
        /// Main config file, to find `status_file` in.
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Read this status file instead of the config's.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Print the status file's JSON as it is.
        #[arg(long)]
        json: bool,
    },
    /// Check one trunk against its carrier and print a report: config, DNS, transport
    /// (TCP/TLS), an OPTIONS round trip, REGISTER and un-REGISTER (with credentials), NAT
    /// and the inbound allowlist. Safe while the daemon runs (own ephemeral socket). Exits
    /// 0 when no step failed, 1 when one did, 2 for an unknown trunk id.
    Verify {
        /// The trunk's id (its `[trunks.<id>]` table).
        trunk: String,
        /// Main config file.
        #[arg(long, short, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Run { config } => {
            trunkd::io::memory::use_one_arena();
            run(config)
        }
        Command::CheckConfig { config } => check_config(config),
        Command::Status { config, file, json } => status(config, file, json),
        Command::Verify { trunk, config } => verify(config, &trunk),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A log line that cannot be written (stderr closed: a pipe whose reader went away)
    // is lost, not reported with eprintln!, which panics on the same closed stderr and
    // took the daemon down with it.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(config: PathBuf) -> ExitCode {
    // One crypto provider for the whole process, chosen here rather than by feature
    // unification in some dependency.
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    if provider.install_default().is_err() {
        tracing::error!("a rustls crypto provider was already installed");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(trunkd::io::run(config, LoadOptions::from_env())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: PathBuf) -> ExitCode {
    match config::load(&path, &LoadOptions::from_env()) {
        Ok(config) => {
            // Warnings do not make the config invalid: stderr, and still exit 0.
            for warning in &config.warnings {
                eprintln!("warning: {warning}");
            }
            let warnings = match config.warnings.len() {
                0 => String::new(),
                count => format!("; {}", count_of(count, "warning")),
            };
            println!(
                "{}: ok: {} ({} enabled) from {}{warnings}",
                path.display(),
                count_of(config.trunks.len(), "trunk"),
                config.enabled_trunks(),
                count_of(config.files.len(), "file")
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("{error}");
            }
            let count = count_of(errors.0.len(), "error");
            eprintln!("{}: invalid: {count}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn verify(config: PathBuf, trunk: &str) -> ExitCode {
    ExitCode::from(trunkd::verify::run(
        &config,
        trunk,
        &LoadOptions::from_env(),
    ))
}

fn status(config: PathBuf, file: Option<PathBuf>, json: bool) -> ExitCode {
    let path = match file {
        Some(path) => path,
        None => match config::load(&config, &LoadOptions::from_env()) {
            Ok(loaded) => match loaded.daemon.status_file {
                Some(path) => path,
                None => {
                    eprintln!(
                        "{}: status_file is off (\"\"); nothing to read",
                        config.display()
                    );
                    return ExitCode::FAILURE;
                }
            },
            Err(errors) => {
                for error in &errors.0 {
                    eprintln!("{error}");
                }
                eprintln!(
                    "{}: invalid; give the status file with --file",
                    config.display()
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let document = match trunkd::status_file::StatusDocument::read(&path) {
        Ok(document) => document,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&document) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", document.table());
    }
    let alive = Path::new(&format!("/proc/{}", document.pid)).exists();
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_secs())
        .saturating_sub(document.written_at);
    if !alive {
        eprintln!(
            "trunkd (pid {}) is not running: this status is {age}s old",
            document.pid
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
