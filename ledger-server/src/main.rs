//! `ledger-server`: serves the log over HTTP until SIGTERM/SIGINT, then
//! stops accepting requests, lets in-flight appends commit and exits.
//! `ledger-server export --data-dir D --out FILE` writes an audit archive
//! from a data directory instead (read-only; see docs/FORMAT.md).

use std::sync::Arc;

use anyhow::Context as _;
use ledger_core::{CommitObserver, Log, LogConfig};
use ledger_server::auth::AdminToken;
use ledger_server::bus::RevocationBus;
use ledger_server::metrics::Metrics;
use ledger_server::ssf::Transmitter;
use ledger_server::{app, AppState, Config, Limits};
use tracing_subscriber::EnvFilter;

// Request handling allocates many small, short-lived buffers across threads;
// mimalloc spends less time on them than glibc malloc (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `ledger-server export`: an audit archive from a data directory.
#[derive(Debug, clap::Parser)]
#[command(
    name = "ledger-server export",
    about = "Write an audit archive (agent-ledger-archive/v1, zstd) from a data directory, opened read-only"
)]
struct ExportArgs {
    /// The data directory (its `db/`; the server may be running).
    #[arg(long, default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// Where to write the archive (`-`: standard output).
    #[arg(long)]
    out: std::path::PathBuf,
    /// First entry (default 0).
    #[arg(long)]
    start: Option<u64>,
    /// One past the last entry (default: the stored checkpoint's size).
    #[arg(long)]
    end: Option<u64>,
    /// Include a consistency proof from this tree size (the one the
    /// auditor last saw).
    #[arg(long)]
    since_size: Option<u64>,
    /// The checkpoint to export under: `witnessed` (the latest the
    /// server's witnesses cosigned to its quorum, kept in
    /// `witnessed.checkpoint`; the default when that file exists) or
    /// `latest` (the log's own, without cosignatures).
    #[arg(long, value_parser = ["witnessed", "latest"])]
    checkpoint: Option<String>,
}

fn export(args: &ExportArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let started = std::time::Instant::now();
    let db = args.data_dir.join("db");
    let store = ledger_core::store::RocksStore::open_read_only(&db).with_context(|| format!("opening {} read-only", db.display()))?;
    let head = ledger_core::store::LogStore::head(&store)?.ok_or_else(|| anyhow::anyhow!("{} holds an empty log", db.display()))?;
    let witnessed = args.data_dir.join(ledger_server::witnessing::WITNESSED_FILE);
    let note = match args.checkpoint.as_deref() {
        Some("latest") => head.checkpoint.clone(),
        Some(_) => std::fs::read_to_string(&witnessed).with_context(|| format!("reading {}", witnessed.display()))?,
        None if witnessed.exists() => std::fs::read_to_string(&witnessed).with_context(|| format!("reading {}", witnessed.display()))?,
        None => head.checkpoint.clone(),
    };
    let range = ledger_core::ExportRange { start: args.start, end: args.end, since_size: args.since_size };
    let (header, bytes) = if args.out.as_os_str() == "-" {
        let mut out = CountingWriter(std::io::BufWriter::new(std::io::stdout().lock()), 0);
        let header = ledger_core::export_archive(&store, &note, range, &mut out)?;
        out.flush()?;
        (header, out.1)
    } else {
        // Written beside the target and renamed once complete: a failed
        // export never leaves a file that looks like an archive.
        let tmp = args.out.with_extension("partial");
        let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = CountingWriter(std::io::BufWriter::new(file), 0);
        let header = ledger_core::export_archive(&store, &note, range, &mut out)?;
        out.flush()?;
        out.0.get_ref().sync_all()?;
        std::fs::rename(&tmp, &args.out).with_context(|| format!("renaming to {}", args.out.display()))?;
        (header, out.1)
    };
    eprintln!(
        "exported entries [{}, {}) of {} (tree size {}) in {} bytes, {:.2} s",
        header.start,
        header.end,
        header.origin,
        header.tree_size,
        bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Counts the bytes written through it.
struct CountingWriter<W>(W, u64);

impl<W: std::io::Write> std::io::Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).is_some_and(|a| a == "export") {
        return export(&<ExportArgs as clap::Parser>::parse_from(std::env::args_os().skip(1)));
    }
    serve_main()
}

#[tokio::main]
async fn serve_main() -> anyhow::Result<()> {
    let config = Config::load();
    if let Some(dir) = &config.console_dir {
        ledger_server::serve_console_from(dir.clone());
    }
    let filter = EnvFilter::try_from_env("LEDGER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if config.log_format == "json" {
        tracing_subscriber::fmt().with_env_filter(filter).json().init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).init();
    }
    for flag in &config.secrets_on_command_line {
        tracing::warn!(
            flag,
            "a secret given as a flag is visible to other local users in the process list; prefer its LEDGER_* environment variable or file"
        );
    }

    let metrics = Arc::new(Metrics::new());
    let origin = config.resolve_origin()?;
    let openings_key = match &config.openings_key {
        Some(text) => {
            Some(ledger_core::sealing::OpeningsKey::from_text(text.expose()).map_err(|e| anyhow::anyhow!("LEDGER_OPENINGS_KEY: {e}"))?)
        }
        None => None,
    };
    let prover_backends = ledger_core::ProverBackends::new(
        config.prover_backend,
        config.prover_batch_min as usize,
        config.prover_strict,
        config.prover_gpu_secrets,
    )?;
    if let Some(why) = prover_backends.fallback() {
        tracing::warn!(backend = %config.prover_backend, reason = %why, "prover backend unavailable; batches run on lockstep-cpu");
    }
    let log_config = LogConfig {
        origin: origin.clone(),
        queue_bytes: config.queue_bytes,
        openings_key,
        prover_threads: config.prover_threads,
        prover_backends,
        prover_queue: config.prover_queue as usize,
        prover_self_check: config.prover_self_check,
        trust_domain: Some(config.trust_domain.clone()),
        nonce_ttl: std::time::Duration::from_secs(config.nonce_ttl_secs),
        ..LogConfig::default()
    };
    let (admin, admin_text) = match &config.admin_token {
        Some(token) => {
            (AdminToken::new(token.expose()).map_err(|e| anyhow::anyhow!("LEDGER_ADMIN_TOKEN: {e}"))?, token.expose().to_owned())
        }
        None => {
            let path = config.admin_token_path();
            let (token, created) = ledger_core::keys::load_or_create_secret(&path, "admin token")?;
            if created {
                // Where to find it, never the token itself: stderr ends up
                // in log collectors that many more people can read. The
                // fingerprint tells which token a copy is.
                eprintln!("admin token generated in {} (mode 0600), fingerprint sha256:{}", path.display(), fingerprint(&token));
            }
            (AdminToken::new(token.clone()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?, token)
        }
    };
    let ssf_config = config.ssf_config(&admin_text).map_err(|e| anyhow::anyhow!("SSF: {e}"))?;
    drop(admin_text);
    let observer: Arc<dyn CommitObserver> = metrics.clone();
    let log = Arc::new(
        Log::open_dir(&config.data_dir, log_config, Some(observer))
            .with_context(|| format!("opening the log in {}", config.data_dir.display()))?,
    );
    let head = log.head();
    metrics.tree_size.set(head.size);
    tracing::info!(origin = %origin, tree_size = head.size, key = %log.verifier_key(), data_dir = %config.data_dir.display(), "log opened");

    // Without --policy the policy in force stays (one set by `PUT /v1/policy`
    // survives a restart); a new log starts with the built-in default.
    let policy = config.policy.as_deref().map(ledger_server::policy::load).transpose()?;
    ledger_server::policy::start_trust(&log, policy.as_ref()).await.context("starting the trust view")?;

    let limits = Limits {
        max_entry_bytes: config.max_entry_bytes as usize,
        max_entry_request_bytes: config.max_entry_request_bytes(),
        max_batch_entries: config.max_batch_entries as usize,
        max_batch_request_bytes: config.max_batch_request_bytes(),
        body_timeout: std::time::Duration::from_secs(config.body_timeout_secs),
    };
    let backends = log.prover_backends();
    tracing::info!(
        threads = log.prover_threads(),
        backend = %backends.chosen(),
        single = backends.single().name(),
        batch = backends.batch().name(),
        batch_min = backends.batch_min(),
        curve_backend = zk::curve_backend(),
        "prover pool ready"
    );
    let token_key = ledger_core::issuer::load_or_create_key(&config.data_dir.join(ledger_core::issuer::TOKEN_KEY_FILE))?;
    let issuer = Arc::new(ledger_core::issuer::Issuer::new(Arc::clone(&log), token_key, config.issuer_config()));
    tracing::info!(key = %ledger_core::issuer::paserk_public(&issuer.public_key()), "token issuer ready");
    tokio::spawn(Arc::clone(&issuer).run_expiry());
    let events = Arc::new(RevocationBus::new(Arc::clone(&log), config.bus_config(), Arc::clone(&metrics)));
    let ssf = Arc::new(Transmitter::start(Arc::clone(&log), ssf_config, &config.data_dir).context("starting the SSF transmitter")?);
    let witnessing = config.witness_config()?.map(|(witnesses, quorum)| {
        tracing::info!(witnesses = witnesses.len(), quorum, "submitting checkpoints to witnesses");
        let file = config.data_dir.join(ledger_server::witnessing::WITNESSED_FILE);
        ledger_server::witnessing::Witnessing::spawn_with_file(Arc::clone(&log), witnesses, quorum, Some(file))
    });
    let router = app(AppState {
        log: Arc::clone(&log),
        metrics,
        limits,
        admin: Some(admin),
        events: Arc::clone(&events),
        ssf: Some(Arc::clone(&ssf)),
        issuer: Some(issuer),
        witnessing,
    });
    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    // Event streams never end by themselves: the bus ends them when the
    // shutdown starts, so the connections they hold can close; long polls
    // answer now instead of holding the drain.
    let stopping = Arc::clone(&ssf);
    let shutdown = async move {
        shutdown_signal().await;
        events.close();
        stopping.stop();
    };
    ledger_server::serve::serve(listener, router, config.serve_limits(), shutdown).await.context("serving")?;
    tracing::info!("stopping SSF delivery");
    ssf.shutdown().await;

    tracing::info!("draining the sequencer");
    let drain = Arc::clone(&log);
    tokio::task::spawn_blocking(move || drain.shutdown()).await.context("joining the sequencer")?;
    tracing::info!(tree_size = log.head().size, "stopped");
    Ok(())
}

/// The first 8 hex digits of SHA-256 of `secret`: enough to tell two
/// tokens apart, far too little to guess one from.
fn fingerprint(secret: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(secret.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested");
}
