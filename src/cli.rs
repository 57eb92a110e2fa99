//! The `app` command line: one subcommand per process type, as Railway's start commands
//! and the Procfile name them. Flags are typed here (a malformed flag is a usage error,
//! exit 2) and become the top configuration layer; each names the environment variable
//! that sets the same value.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{LoadOptions, Loaded, Override, Settings};
use crate::modes;
use crate::state::AppState;
use crate::telemetry::{self, Identity};

#[derive(Debug, Parser)]
#[command(
    name = "app",
    version,
    about = "Switchyard: API, workers, scheduler, realtime and migrations in one binary",
    propagate_version = true
)]
pub struct Cli {
    /// Directory holding default.toml and <APP_ENV>.toml [env: CONFIG_DIR] [default: ./config]
    #[arg(long, global = true, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Log level or filter, e.g. info or "info,sqlx=warn" [env: LOG_LEVEL, RUST_LOG]
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// auto, json or pretty [env: LOG_FORMAT]
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (Railway service `api`)
    Serve(ServeArgs),
    /// Consume job queues (Railway service `worker`)
    Worker(WorkerArgs),
    /// Fire cron schedules into queues (Railway service `cron`)
    Scheduler(SchedulerArgs),
    /// Run the realtime WebSocket hub (Railway service `realtime`)
    Realtime(ListenArgs),
    /// Apply pending database migrations (Railway pre-deploy command)
    Migrate(MigrateArgs),
    /// Run the API, worker, scheduler and realtime hub in one process on one port, with
    /// production settings (a one-service deployment)
    All(AllArgs),
    /// Run every mode in one process, migrating first (for a laptop)
    Dev(ListenArgs),
    /// Inspect the configuration
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Exit 0 when the local health endpoint answers 200 (for Docker HEALTHCHECK)
    Healthcheck(HealthcheckArgs),
    /// Enqueue jobs, list dead jobs and retry them
    Jobs {
        #[command(subcommand)]
        command: modes::jobs::JobsCommand,
    },
    /// Print the OpenAPI document the API serves (needs no configuration)
    Openapi,
    /// Make, list and revoke scoped API keys
    Keys {
        #[command(subcommand)]
        command: modes::keys::KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate, then print the effective configuration with secrets redacted
    Check,
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// Address to bind [env: HOST] [default: ::]
    #[arg(long)]
    host: Option<std::net::IpAddr>,
    /// Port to listen on [env: PORT] [default: 8080 for serve, realtime, all and dev; none for
    /// worker and scheduler, which then serve no health endpoint]
    #[arg(long)]
    port: Option<u16>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    listen: ListenArgs,
    /// Apply pending migrations before serving, for platforms without a pre-deploy step
    /// [env: MIGRATE_ON_START]
    #[arg(long)]
    migrate: bool,
}

#[derive(Debug, Args)]
struct WorkerArgs {
    #[command(flatten)]
    listen: ListenArgs,
    /// Queues to consume, comma-separated [env: WORKER_QUEUES]
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    queues: Option<Vec<String>>,
    /// Jobs to run at once [env: WORKER_CONCURRENCY]
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
}

#[derive(Debug, Args)]
struct AllArgs {
    #[command(flatten)]
    listen: ListenArgs,
    /// Apply pending migrations before starting, for platforms without a pre-deploy step
    /// [env: MIGRATE_ON_START]
    #[arg(long)]
    migrate: bool,
    /// Queues the worker consumes, comma-separated [default: every queue in jobs.queues]
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    queues: Option<Vec<String>>,
    /// Jobs to run at once [env: WORKER_CONCURRENCY]
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
}

#[derive(Debug, Args)]
struct SchedulerArgs {
    #[command(flatten)]
    listen: ListenArgs,
    /// Print every schedule with its next 3 run times in its time zone, then exit
    #[arg(long, conflicts_with = "run_now")]
    list: bool,
    /// Enqueue one run of this schedule now, then exit (a manual trigger or a Railway
    /// cron service)
    #[arg(long, value_name = "NAME")]
    run_now: Option<String>,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct MigrateArgs {
    /// List every migration with its state, then exit
    #[arg(long)]
    status: bool,
    /// Exit 1 when any migration is pending, without applying it
    #[arg(long)]
    check: bool,
}

#[derive(Debug, Args)]
struct HealthcheckArgs {
    /// URL to probe [default: http://127.0.0.1:$PORT/api/health]
    #[arg(long)]
    url: Option<String>,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    timeout: u64,
    #[command(flatten)]
    listen: ListenArgs,
}

impl Command {
    /// One-shot commands whose result goes to stdout; their logs go to stderr.
    fn prints_result(&self) -> bool {
        match self {
            Self::Jobs { .. } | Self::Keys { .. } => true,
            Self::Scheduler(args) => args.list || args.run_now.is_some(),
            _ => false,
        }
    }

    fn mode(&self) -> &'static str {
        match self {
            Self::Serve(_) => "serve",
            Self::Worker(_) => "worker",
            Self::Scheduler(_) => "scheduler",
            Self::Realtime(_) => "realtime",
            Self::Migrate(_) => "migrate",
            Self::All(_) => "all",
            Self::Dev(_) => "dev",
            Self::Config { .. } => "config",
            Self::Healthcheck(_) => "healthcheck",
            Self::Jobs { .. } => "jobs",
            Self::Keys { .. } => "keys",
            Self::Openapi => "openapi",
        }
    }
}

impl Cli {
    /// The flags given, as configuration overrides.
    fn overrides(&self) -> Vec<Override> {
        let mut out = Vec::new();
        if let Some(level) = &self.log_level {
            // As a full filter, so the flag wins over RUST_LOG as well as LOG_LEVEL.
            out.push(Override::new("--log-level", "log.filter", level));
        }
        if let Some(format) = &self.log_format {
            out.push(Override::new("--log-format", "log.format", format));
        }
        let listen = match &self.command {
            Command::Serve(a) => Some(&a.listen),
            Command::Worker(a) => Some(&a.listen),
            Command::All(a) => Some(&a.listen),
            Command::Scheduler(a) => Some(&a.listen),
            Command::Realtime(a) | Command::Dev(a) => Some(a),
            Command::Healthcheck(a) => Some(&a.listen),
            Command::Migrate(_)
            | Command::Config { .. }
            | Command::Jobs { .. }
            | Command::Openapi
            | Command::Keys { .. } => None,
        };
        if let Some(listen) = listen {
            if let Some(host) = listen.host {
                out.push(Override::new("--host", "http.host", host.to_string()));
            }
            if let Some(port) = listen.port {
                out.push(Override::new("--port", "http.port", port));
            }
        }
        let (migrate, queues, concurrency) = match &self.command {
            Command::Serve(a) => (a.migrate, None, None),
            Command::Worker(a) => (false, a.queues.as_ref(), a.concurrency),
            Command::All(a) => (a.migrate, a.queues.as_ref(), a.concurrency),
            _ => (false, None, None),
        };
        if migrate {
            out.push(Override::new("--migrate", "startup.migrate", true));
        }
        if let Some(queues) = queues {
            out.push(Override::new("--queues", "worker.queues", queues));
        }
        if let Some(n) = concurrency {
            out.push(Override::new("--concurrency", "worker.concurrency", n));
        }
        out
    }
}

/// Parses the command line, loads the configuration and runs the chosen mode.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        // The document is the same for every deployment: no configuration is read. A
        // reader that stops early (`| head`) is not an error.
        use std::io::Write;
        let printed = writeln!(std::io::stdout().lock(), "{}", crate::http::document_json());
        return match printed {
            Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("error: cannot print the document: {error}");
                ExitCode::from(1)
            }
            _ => ExitCode::SUCCESS,
        };
    }
    let options = LoadOptions::from_process(cli.config_dir.clone(), cli.overrides());
    let loaded = match crate::settings::load(options) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => modes::config_check::run(&loaded),
        Command::Healthcheck(args) => {
            let url = args
                .url
                .unwrap_or_else(|| modes::healthcheck::default_url(&loaded.settings));
            modes::healthcheck::run(&url, Duration::from_secs(args.timeout))
        }
        command => run_async(command, loaded),
    }
}

fn run_async(command: Command, loaded: Loaded) -> ExitCode {
    let mut settings = loaded.settings;
    let identity = Identity::new(command.mode(), &settings);
    telemetry::init(&settings, identity.clone(), command.prints_result());
    // ring is the only provider built in; installing it explicitly keeps rustls from
    // panicking should a dependency ever bring a second one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    if let Command::All(args) = &command {
        modes::all::prepare(&mut settings, args.queues.is_some());
    }
    if let Command::Dev(_) = command
        && let Err(error) = modes::dev::prepare(&mut settings)
    {
        tracing::error!(error = format!("{error:#}"), "cannot prepare app dev");
        return ExitCode::from(1);
    }
    // Every mode's future is in `dispatch`'s, which makes it large; on the heap, only the
    // part a mode uses is ever touched, where on the main thread's stack each move of it
    // would touch (and keep resident) the whole of it.
    let result = runtime.block_on(Box::pin(async move {
        let shutdown = crate::shutdown::on_signal()?;
        dispatch(command, settings, identity, shutdown).await
    }));
    // Do not wait for stray blocking tasks: the drain already bounded what mattered.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "exiting with an error");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(
    command: Command,
    settings: Settings,
    identity: Identity,
    shutdown: CancellationToken,
) -> anyhow::Result<ExitCode> {
    tracing::info!(version = crate::VERSION, env = settings.app.env, "starting");
    if let Command::Migrate(args) = &command {
        let connect = crate::db::connect(&settings.database, settings.startup.dependency_wait());
        let Some(pool) = until_shutdown(&shutdown, connect).await? else {
            return Ok(ExitCode::SUCCESS);
        };
        let action = match (args.status, args.check) {
            (true, _) => modes::migrate::Action::Status,
            (_, true) => modes::migrate::Action::Check,
            _ => modes::migrate::Action::Apply,
        };
        let code = modes::migrate::run(&pool, action).await;
        pool.close().await;
        return code;
    }
    if let Command::Keys { command } = command {
        let connect = crate::db::connect(&settings.database, settings.startup.dependency_wait());
        let Some(pool) = until_shutdown(&shutdown, connect).await? else {
            return Ok(ExitCode::SUCCESS);
        };
        let code = modes::keys::run(&pool, &settings, command).await;
        pool.close().await;
        return Ok(code);
    }
    if let Command::Scheduler(args) = &command
        && args.list
    {
        // Needs no dependency: the schedules and their next runs come from the settings.
        return Ok(modes::scheduler::list(&settings));
    }
    let host = settings.http.host;
    let port = settings.http.port;
    // A platform may stop a replica that is still waiting for its dependencies.
    let Some(state) = until_shutdown(&shutdown, AppState::connect(settings, identity)).await?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    // The API's modes migrate first when asked (`--migrate`, `MIGRATE_ON_START`).
    if matches!(command, Command::Serve(_) | Command::All(_)) && state.settings.startup.migrate {
        crate::db::migrate(&state.db).await?;
    }
    let result = match command {
        Command::Jobs { command } => {
            let code = modes::jobs::run(&state, command).await;
            state.close().await;
            return Ok(code);
        }
        Command::Serve(_) => {
            let listener = crate::http::bind(host, port.unwrap_or(8080)).await?;
            modes::serve::run(state.clone(), listener, shutdown).await
        }
        Command::All(_) => {
            let listener = crate::http::bind(host, port.unwrap_or(8080)).await?;
            modes::all::run(state.clone(), listener, shutdown).await
        }
        Command::Dev(_) => {
            let listener = crate::http::bind(host, port.unwrap_or(8080)).await?;
            modes::dev::run(state.clone(), listener, shutdown).await
        }
        Command::Realtime(_) => {
            let listener = crate::http::bind(host, port.unwrap_or(8080)).await?;
            modes::realtime::run(state.clone(), listener, shutdown).await
        }
        Command::Worker(_) => {
            let listener = optional_listener(host, port).await?;
            modes::worker::run(state.clone(), listener, shutdown).await
        }
        Command::Scheduler(SchedulerArgs {
            run_now: Some(name),
            ..
        }) => {
            let code = modes::scheduler::run_now(&state, &name).await;
            state.close().await;
            return Ok(code);
        }
        Command::Scheduler(_) => {
            let listener = optional_listener(host, port).await?;
            modes::scheduler::run(state.clone(), listener, shutdown).await
        }
        Command::Migrate(_)
        | Command::Openapi
        | Command::Config { .. }
        | Command::Healthcheck(_)
        | Command::Keys { .. } => Ok(()),
    };
    state.close().await;
    result?;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Runs start-up work unless a shutdown signal comes first (`None`).
async fn until_shutdown<T>(
    shutdown: &CancellationToken,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Option<T>> {
    tokio::select! {
        result = work => result.map(Some),
        _ = shutdown.cancelled() => {
            tracing::info!("shutdown requested during start-up; exiting");
            Ok(None)
        }
    }
}

async fn optional_listener(
    host: std::net::IpAddr,
    port: Option<u16>,
) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    match port {
        Some(port) => Ok(Some(crate::http::bind(host, port).await?)),
        None => Ok(None),
    }
}
