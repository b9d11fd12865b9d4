//! An MDM enrollment server on axum: devices enroll with `POST /api/enroll`, admins issue,
//! list, show, revoke and bulk-print tokens through a bearer-protected API and the console
//! page at `/`. SQLite by default, PostgreSQL with `--features postgres` and a `postgres://`
//! URL; the key file is the one `tokenctl` uses.
//!
//! ```text
//! export ONBOARDING_TOKEN_ADMIN_KEY=$(openssl rand -base64 32)
//! cargo run --example mdm_server -- [--db PATH_OR_URL] [--key PATH] [--listen 127.0.0.1:8080]
//! ```
//!
//! `cargo run --example mdm_server -- --help` lists the other settings (organization,
//! enrollment rate limit, enrollment link base, Android provisioning). The HTTP interface is
//! described in `app.rs`; `tests/mdm_server.rs` and `tests/browser/` drive it.

mod app;
mod cli;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let code = cli::run_cli(
        std::env::args_os(),
        std::env::var_os(app::ADMIN_KEY_ENV),
        cli::shutdown_signal(),
    )
    .await;
    ExitCode::from(code)
}
