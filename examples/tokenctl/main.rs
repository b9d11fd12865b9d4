//! `tokenctl`: the admin command line for onboarding tokens. It issues tokens (as text, links,
//! Android provisioning payloads or QR codes), bulk-issues printable sheets, lists, shows,
//! revokes and redeems them, and rotates the signing keys, against a SQLite file by
//! default (`postgres://` URLs with the `postgres` feature).
//!
//! ```sh
//! cargo run --example tokenctl -- init
//! cargo run --example tokenctl -- issue --group emea/berlin --policy wifi-corp --max-uses 25 --qr terminal
//! cargo run --example tokenctl -- bulk --group emea/berlin --count 30 --out-dir berlin-sheet --qr png
//! cargo run --example tokenctl -- list --status active
//! cargo run --example tokenctl -- --help
//! ```
//!
//! Exit status: 0 on success; 1 for a rejected token (the message names the reason:
//! `invalid token`, `revoked`, `expired`, `not yet valid`, `exhausted`), bad input or a
//! failed operation; 2 for a usage error.

/// Writes a line to standard output, as a `Result<(), Failure>`.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// Writes a line to standard error, ignoring failures.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!($($arg)*)) };
}

mod admin;
mod cli;
mod issue;
mod output;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser};
use onboarding_token::store::any::OpenError;
use onboarding_token::{AnyStore, Clock, Keyring, Onboarding, OrgId, keyfile};

use cli::{Cli, Command};

/// Why a command failed: the message for standard error and the exit status.
#[derive(Debug)]
pub enum Failure {
    /// A token was rejected: `code` is the device-facing reason word.
    Rejected {
        /// `invalid token`, `revoked`, `expired`, `not yet valid` or `exhausted`.
        code: &'static str,
        /// The precise reason, for the admin.
        detail: String,
    },
    /// Bad input or a failed operation.
    Error(String),
    /// A usage error found after parsing (clap formats it, exit 2).
    Usage(clap::Error),
    /// Standard output was closed by its reader: stop quietly (exit 1).
    Closed,
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Rejected { .. } | Failure::Error(_) | Failure::Closed => 1,
            Failure::Usage(_) => 2,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Rejected { code, detail } => write!(f, "rejected: {code} ({detail})"),
            Failure::Error(message) => f.write_str(message),
            Failure::Usage(e) => write!(f, "{e}"),
            Failure::Closed => f.write_str("standard output was closed"),
        }
    }
}

/// An error message with its chain of causes, each cause added only if the message does
/// not already say it.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// `context: error` as a [`Failure::Error`].
pub fn fail(context: impl fmt::Display, err: &(dyn std::error::Error + 'static)) -> Failure {
    Failure::Error(format!("{context}: {}", describe(err)))
}

/// A usage error in clap's format (exit 2), for rules clap's attributes cannot express.
pub fn usage(kind: clap::error::ErrorKind, message: impl fmt::Display) -> Failure {
    Failure::Usage(Cli::command().error(kind, message))
}

/// The clock: the system's, or a fixed instant from `ONBOARDING_TOKEN_NOW` (testing aid).
#[derive(Debug, Clone, Copy)]
pub struct CliClock(Option<DateTime<Utc>>);

impl Clock for CliClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.unwrap_or_else(Utc::now)
    }
}

/// The service every command uses.
pub type Service = Onboarding<AnyStore, CliClock>;

/// A database connection pool to close before exiting.
#[derive(Debug, Clone)]
enum OpenPool {
    #[cfg(feature = "sqlite")]
    Sqlite(onboarding_token::sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(onboarding_token::sqlx::PgPool),
}

/// The global options, checked.
#[derive(Debug)]
pub struct Context {
    /// `--db` as given.
    pub db: String,
    /// `--key`.
    pub key: PathBuf,
    /// `--org`.
    pub org: OrgId,
    /// The clock.
    pub clock: CliClock,
    /// Pools opened so far, closed by [`close`](Context::close).
    pools: std::sync::Mutex<Vec<OpenPool>>,
}

impl Context {
    fn new(cli: &Cli) -> Result<Self, Failure> {
        let org = OrgId::new(&cli.org).map_err(|e| fail("--org", &e))?;
        if cli.db.trim().is_empty() {
            return Err(Failure::Error("--db: empty database location".into()));
        }
        let now = match std::env::var("ONBOARDING_TOKEN_NOW") {
            Ok(text) => Some(
                onboarding_token::bulk::parse_time(&text)
                    .map_err(|e| fail("ONBOARDING_TOKEN_NOW", &e))?,
            ),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::Error(
                    "ONBOARDING_TOKEN_NOW: not valid UTF-8".into(),
                ));
            }
        };
        Ok(Self {
            db: cli.db.clone(),
            key: cli.key.clone(),
            org,
            clock: CliClock(now),
            pools: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The database location for messages, with any password in a URL hidden.
    pub fn db_display(&self) -> String {
        redact_url(&self.db)
    }

    /// The SQLite file `--db` names, if it names one.
    fn sqlite_file(&self) -> Option<&Path> {
        let db = self.db.as_str();
        if db == "memory:" || db.starts_with("postgres://") || db.starts_with("postgresql://") {
            return None;
        }
        let path = db
            .strip_prefix("sqlite://")
            .or_else(|| db.strip_prefix("sqlite:"))
            .unwrap_or(db);
        (path != ":memory:").then(|| Path::new(path))
    }

    /// Whether the SQLite file `--db` names exists (`None` for other stores).
    pub fn sqlite_file_exists(&self) -> Option<bool> {
        self.sqlite_file().map(Path::exists)
    }

    /// Loads the key file.
    pub fn keyring(&self) -> Result<Keyring, Failure> {
        keyfile::load(&self.key).map_err(|e| Failure::Error(describe(&e)))
    }

    /// Opens the store. Unless `create`, a SQLite file must exist already (a mistyped
    /// `--db` should not silently start an empty database).
    pub async fn store(&self, create: bool) -> Result<AnyStore, Failure> {
        if !create {
            if let Some(path) = self.sqlite_file() {
                if !path.exists() {
                    return Err(Failure::Error(format!(
                        "database {} does not exist (create it with `tokenctl init`)",
                        path.display()
                    )));
                }
            }
        }
        let store = AnyStore::open(&self.db).await.map_err(|e| match e {
            OpenError::NotCompiled { .. } => Failure::Error(format!("--db: {e}")),
            e => fail(format_args!("database {}", self.db_display()), &e),
        })?;
        let pool = match &store {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => Some(OpenPool::Sqlite(s.pool().clone())),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => Some(OpenPool::Postgres(s.pool().clone())),
            _ => None,
        };
        if let Some(pool) = pool {
            self.pools
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(pool);
        }
        Ok(store)
    }

    /// Closes every database connection opened, so SQLite folds its write-ahead log back
    /// into the database file and removes it, and PostgreSQL sees a clean goodbye.
    async fn close(&self) {
        let pools = std::mem::take(
            &mut *self
                .pools
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for pool in pools {
            match pool {
                #[cfg(feature = "sqlite")]
                OpenPool::Sqlite(pool) => pool.close().await,
                #[cfg(feature = "postgres")]
                OpenPool::Postgres(pool) => pool.close().await,
            }
        }
    }

    /// The key file and the store, as a service on the CLI's clock.
    pub async fn service(&self) -> Result<Service, Failure> {
        let keyring = self.keyring()?;
        let store = self.store(false).await?;
        Ok(Onboarding::new(keyring, store).with_clock(self.clock))
    }

    /// The current time (the service's clock, truncated like the service does).
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// `scheme://user:password@host/...` with the password replaced by `***`.
fn redact_url(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => location.to_owned(),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = Context::new(&cli)?;
    let result = dispatch(&ctx, cli.command).await;
    ctx.close().await;
    result
}

async fn dispatch(ctx: &Context, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init => admin::init(ctx).await,
        Command::Issue(args) => issue::issue(ctx, *args).await,
        Command::Bulk(args) => issue::bulk(ctx, *args).await,
        Command::List(args) => admin::list(ctx, args).await,
        Command::Show(args) => admin::show(ctx, args).await,
        Command::Revoke(args) => admin::revoke(ctx, args).await,
        Command::Redeem(args) => admin::redeem(ctx, args).await,
        Command::Keys(command) => admin::keys(ctx, command),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version exit 0, usage errors 2, as clap decides.
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            errln!("tokenctl: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(e)) => e.exit(),
        Err(Failure::Closed) => ExitCode::from(1),
        Err(failure) => {
            let message = failure.to_string();
            // Every line prefixed, so logs stay greppable.
            for line in message.lines() {
                errln!("tokenctl: {line}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/mdm"),
            "postgres://app:***@db:5432/mdm"
        );
        assert_eq!(redact_url("postgres://db/mdm"), "postgres://db/mdm");
        assert_eq!(redact_url("./tokens.db"), "./tokens.db");
    }
}
