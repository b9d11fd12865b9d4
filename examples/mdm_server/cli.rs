//! The command line and startup: flags, the admin key, the key file, the store, the
//! listener. [`run_cli`] is `main` without the process around it, so the tests run it too.

use std::ffi::OsString;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use onboarding_token::android::{
    AdminExtras, AndroidError, AndroidProvisioning, Wifi, WifiSecurity,
};
use onboarding_token::keyfile::{self, KeyFileError};
use onboarding_token::payload::{EnrollmentUrl, UrlError};
use onboarding_token::store::any::OpenError;
use onboarding_token::{AnyStore, InvalidName, Onboarding, OrgId, PayloadConfig};

use crate::app::{
    self, ADMIN_KEY_ENV, AdminKey, AdminKeyError, RateLimit, RateLimitError, Settings,
};

/// An MDM enrollment server: the device API (POST /api/enroll), the admin API and the
/// admin console at /. The admin key comes from the environment variable
/// ONBOARDING_TOKEN_ADMIN_KEY (required, at least 16 characters).
#[derive(Debug, Parser)]
#[command(name = "mdm_server", version)]
pub struct Args {
    /// SQLite file path, or a sqlite:// or postgres:// URL (postgres needs --features postgres).
    #[arg(
        long,
        env = "ONBOARDING_TOKEN_DB",
        default_value = "./onboarding-tokens.db"
    )]
    db: String,
    /// Keyring file, shared with tokenctl; created with mode 0600 if missing.
    #[arg(
        long,
        env = "ONBOARDING_TOKEN_KEY",
        default_value = "./onboarding-token.key"
    )]
    key: PathBuf,
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(
        long,
        env = "ONBOARDING_TOKEN_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// The organization tokens are issued and listed in.
    #[arg(long, env = "ONBOARDING_TOKEN_ORG", default_value = "default")]
    org: String,
    /// Enrollment requests one client address may send in a burst.
    #[arg(long, env = "ONBOARDING_TOKEN_ENROLL_BURST", default_value_t = 20)]
    enroll_burst: u32,
    /// Milliseconds after which a client that used its burst may send one more request.
    #[arg(
        long,
        env = "ONBOARDING_TOKEN_ENROLL_REPLENISH_MS",
        default_value_t = 1000
    )]
    enroll_replenish_ms: u64,
    /// The most tokens one batch may hold over HTTP.
    #[arg(long, env = "ONBOARDING_TOKEN_MAX_BATCH", default_value_t = 1000)]
    max_batch: usize,
    /// Enrollment link base for the `url` payload format (https://...).
    #[arg(long, env = "ONBOARDING_TOKEN_URL_BASE")]
    url_base: Option<String>,
    /// Android device admin component (package/class) for the `android` payload format.
    #[arg(long, env = "ONBOARDING_TOKEN_ANDROID_COMPONENT")]
    android_component: Option<String>,
    /// The DPC's signing certificate checksum (URL-safe base64 SHA-256).
    #[arg(long, env = "ONBOARDING_TOKEN_ANDROID_CHECKSUM")]
    android_checksum: Option<String>,
    /// The DPC's https:// download location.
    #[arg(long, env = "ONBOARDING_TOKEN_ANDROID_DOWNLOAD")]
    android_download: Option<String>,
    /// The admin extras key the token goes under (default: the Android Management API's).
    #[arg(long, env = "ONBOARDING_TOKEN_ANDROID_EXTRAS_KEY")]
    android_extras_key: Option<String>,
    /// An extra admin extra, KEY=VALUE (repeatable).
    #[arg(long = "android-extra", value_name = "KEY=VALUE")]
    android_extras: Vec<String>,
    /// Wi-Fi network the device joins during Android setup.
    #[arg(long, env = "ONBOARDING_TOKEN_WIFI_SSID")]
    wifi_ssid: Option<String>,
    /// Wi-Fi security: WPA, WEP or NONE.
    #[arg(long, env = "ONBOARDING_TOKEN_WIFI_SECURITY", default_value = "WPA")]
    wifi_security: String,
    /// Wi-Fi password (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "ONBOARDING_TOKEN_WIFI_PASSWORD", hide_env_values = true)]
    wifi_password: Option<String>,
    /// The Wi-Fi network is hidden.
    #[arg(long)]
    wifi_hidden: bool,
}

/// Why the server did not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The admin key is missing or unusable.
    #[error(transparent)]
    AdminKey(#[from] AdminKeyError),
    /// The admin key variable is not UTF-8.
    #[error("{ADMIN_KEY_ENV} is not valid UTF-8")]
    AdminKeyNotText,
    /// The organization name is invalid.
    #[error("--org: {0}")]
    Org(#[source] InvalidName),
    /// The Android settings are invalid or incomplete.
    #[error("Android settings: {0}")]
    Android(#[from] AndroidError),
    /// Only some of the three required Android settings were given.
    #[error(
        "Android settings need all of --android-component, --android-checksum and --android-download"
    )]
    AndroidIncomplete,
    /// A Wi-Fi or extras setting without the Android settings.
    #[error("--wifi-*, --android-extra and --android-extras-key need the Android settings")]
    AndroidMissing,
    /// An `--android-extra` without `=`.
    #[error("--android-extra must be KEY=VALUE")]
    BadExtra,
    /// The enrollment link base is invalid.
    #[error("--url-base: {0}")]
    Url(#[from] UrlError),
    /// The rate limit is invalid.
    #[error(transparent)]
    RateLimit(#[from] RateLimitError),
    /// `--max-batch` is zero.
    #[error("--max-batch must be at least 1")]
    MaxBatch,
    /// The key file could not be read or created.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The store could not be opened.
    #[error("--db: {0}")]
    Store(#[from] OpenError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl StartupError {
    /// 2 for configuration the operator must fix, 1 for failures at run time.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::KeyFile(_)
            | StartupError::Store(_)
            | StartupError::Bind { .. }
            | StartupError::Serve(_) => 1,
            _ => 2,
        }
    }
}

fn payload_config(args: &Args) -> Result<PayloadConfig, StartupError> {
    let mut config = PayloadConfig::new();
    if let Some(base) = &args.url_base {
        config = config.with_url(EnrollmentUrl::new(base)?);
    }
    let android = match (
        &args.android_component,
        &args.android_checksum,
        &args.android_download,
    ) {
        (None, None, None) => None,
        (Some(c), Some(s), Some(d)) => Some(AndroidProvisioning::new(c, s, d)?),
        _ => return Err(StartupError::AndroidIncomplete),
    };
    let Some(mut android) = android else {
        if args.wifi_ssid.is_some()
            || args.android_extras_key.is_some()
            || !args.android_extras.is_empty()
        {
            return Err(StartupError::AndroidMissing);
        }
        return Ok(config);
    };
    let mut extras = AdminExtras::new();
    if let Some(key) = &args.android_extras_key {
        extras = extras.with_token_key(key)?;
    }
    for pair in &args.android_extras {
        let (k, v) = pair.split_once('=').ok_or(StartupError::BadExtra)?;
        extras = extras.with_extra(k, v)?;
    }
    android = android.with_admin_extras(extras);
    if let Some(ssid) = &args.wifi_ssid {
        let security = WifiSecurity::from_str(&args.wifi_security)?;
        let wifi =
            Wifi::new(ssid, security, args.wifi_password.as_deref())?.hidden(args.wifi_hidden);
        android = android.with_wifi(wifi);
    }
    Ok(config.with_android(android))
}

/// Checks the configuration, opens the key file and the store, binds, prints
/// `listening on http://ADDR` on stdout, and serves until `shutdown` completes.
///
/// The admin key is checked first, so a server without one creates no file.
pub async fn run(
    args: Args,
    admin_key: Option<OsString>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let admin_key = admin_key.ok_or(AdminKeyError::Missing)?;
    let admin_key = admin_key.to_str().ok_or(StartupError::AdminKeyNotText)?;
    let admin_key = AdminKey::new(admin_key)?;
    let organization = OrgId::new(&args.org).map_err(StartupError::Org)?;
    let payloads = payload_config(&args)?;
    let enroll_limit = RateLimit::new(
        args.enroll_burst,
        Duration::from_millis(args.enroll_replenish_ms),
    )?;
    if args.max_batch == 0 {
        return Err(StartupError::MaxBatch);
    }

    let mut rng = onboarding_token::SystemRng::default();
    let (keyring, created) = keyfile::load_or_create(&args.key, &mut rng)?;
    if created {
        eprintln!("mdm_server: created key file {}", args.key.display());
    }
    let store = AnyStore::open(&args.db).await?;
    let service = Onboarding::new(keyring, store);

    let settings = Settings {
        organization,
        admin_key,
        payloads,
        enroll_limit,
        max_batch: args.max_batch,
    };
    let state = app::App::new(service, settings);
    let backend = state.service().store().backend();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: args.listen,
        source,
    })?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = writeln!(
            out,
            "admin console: http://{addr}/ (organization {}, {backend} store)",
            state.settings().organization
        );
        let _ = out.flush();
    }
    app::serve(listener, app::router(state), shutdown)
        .await
        .map_err(StartupError::Serve)
}

/// `main` without the process: parses `argv`, runs, prints errors, returns the exit code
/// (0 after a clean shutdown, 1 for a failure at run time, 2 for bad configuration).
pub async fn run_cli(
    argv: impl IntoIterator<Item = OsString>,
    admin_key: Option<OsString>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> u8 {
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    match run(args, admin_key, shutdown).await {
        Ok(()) => 0,
        Err(e) => {
            let mut message = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let text = s.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = s.source();
            }
            eprintln!("mdm_server: error: {message}");
            e.exit_code()
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    eprintln!("mdm_server: shutting down");
}
