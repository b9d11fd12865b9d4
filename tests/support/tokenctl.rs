//! Running the `tokenctl` example as a separate process (its own end-to-end tests, and the
//! hardening tests: bad input at the CLI, processes racing, a process killed mid-batch),
//! each environment with its own database and key file in a temporary directory.
//!
//! The example binary is built once per test binary with the same profile and features as
//! the test (so it is never stale), or taken from `TOKENCTL_BIN` when that is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The `tokenctl` binary.
pub fn tokenctl_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TOKENCTL_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test>-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target directory");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile directory name");
        let mut features = Vec::new();
        for (on, name) in [
            (cfg!(feature = "sqlite"), "sqlite"),
            (cfg!(feature = "qr"), "qr"),
            (cfg!(feature = "postgres"), "postgres"),
            (cfg!(feature = "testing"), "testing"),
        ] {
            if on {
                features.push(name);
            }
        }
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet", "--example", "tokenctl"])
            .args([
                "--manifest-path",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ])
            .args(["--no-default-features", "--features", &features.join(",")])
            .arg("--target-dir")
            .arg(target_dir);
        if profile != "debug" {
            build.args(["--profile", profile]);
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "cargo build --example tokenctl failed");
        profile_dir
            .join("examples")
            .join(format!("tokenctl{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Self {
        Self {
            code: output
                .status
                .code()
                .expect("exited normally, not by a signal"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// A rejection: exit 1, nothing on stdout, one `tokenctl: rejected: <reason> (...)` line.
    #[track_caller]
    pub fn assert_rejected(&self, reason: &str) {
        assert_eq!(self.code, 1, "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {self:?}");
        assert!(
            lines[0].starts_with(&format!("tokenctl: rejected: {reason} (")),
            "{self:?}"
        );
    }

    /// Exit 1 with a `tokenctl:` message containing `needle` (stdout not checked).
    #[track_caller]
    pub fn assert_error(&self, needle: &str) {
        assert_eq!(self.code, 1, "{self:?}");
        assert!(self.stderr.starts_with("tokenctl: "), "{self:?}");
        assert!(self.stderr.contains(needle), "{needle:?} not in {self:?}");
    }

    /// Exit 1 with a `tokenctl:` message, and nothing on stdout.
    #[track_caller]
    pub fn assert_clean_error(&self) {
        assert_eq!(self.code, 1, "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert!(self.stderr.starts_with("tokenctl: "), "{self:?}");
    }

    /// Exit 2, nothing on stdout: clap's usage error, or the help clap shows for a missing
    /// subcommand.
    #[track_caller]
    pub fn assert_usage(&self) {
        assert_eq!(self.code, 2, "{self:?}");
        assert!(
            self.stderr.starts_with("error: ") || self.stderr.contains("Usage: tokenctl"),
            "{self:?}"
        );
        assert_eq!(self.stdout, "", "{self:?}");
    }

    /// Exit 2, nothing on stdout, and clap's usage error (not the help).
    #[track_caller]
    pub fn assert_usage_error(&self) {
        assert_eq!(self.code, 2, "{self:?}");
        assert_eq!(self.stdout, "", "{self:?}");
        assert!(self.stderr.starts_with("error: "), "{self:?}");
    }
}

/// A temporary directory with its own database location and key file.
pub struct Env {
    pub dir: tempfile::TempDir,
    /// `--db`: the SQLite file in the directory, or a PostgreSQL URL.
    db: String,
}

impl Env {
    /// A SQLite file in a new temporary directory (not yet initialized).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = dir.path().join("tokens.db").display().to_string();
        Self { dir, db }
    }

    /// [`Env::new`], initialized (`tokenctl init`).
    pub fn init() -> Self {
        Self::new().initialized()
    }

    /// A database location (not yet initialized), with the key file in a new temporary
    /// directory.
    pub fn with_db(db: String) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self { dir, db }
    }

    /// `tokenctl init`, then the environment.
    pub fn initialized(self) -> Self {
        self.ok(&["init"]);
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `--db` location as a path (the SQLite file).
    pub fn db(&self) -> PathBuf {
        PathBuf::from(&self.db)
    }

    pub fn key(&self) -> PathBuf {
        self.path("tokens.key")
    }

    /// The binary with a clean environment, run in the directory, stdin closed, no global
    /// options.
    pub fn bare(&self) -> Command {
        let mut cmd = Command::new(tokenctl_bin());
        for var in [
            "ONBOARDING_TOKEN_DB",
            "ONBOARDING_TOKEN_KEY",
            "ONBOARDING_TOKEN_ORG",
            "ONBOARDING_TOKEN_NOW",
            "ONBOARDING_TOKEN_WIFI_PASSWORD",
        ] {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// [`Env::bare`] with `--db` and `--key` set to this environment's.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--db").arg(&self.db).arg("--key").arg(self.key());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("running tokenctl"))
    }

    /// Runs with `args`, after `setup` has changed the command (environment variables).
    pub fn run_with(&self, args: &[&str], setup: impl FnOnce(&mut Command)) -> Run {
        let mut cmd = self.cmd();
        cmd.args(args);
        setup(&mut cmd);
        Run::from(cmd.output().expect("running tokenctl"))
    }

    /// Runs with `input` on standard input.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tokenctl");
        let mut stdin = child.stdin.take().expect("piped stdin");
        // The child may stop reading early (input too long): a broken pipe is fine.
        let _ = stdin.write_all(input);
        drop(stdin);
        Run::from(child.wait_with_output().expect("waiting for tokenctl"))
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "tokenctl {args:?} failed: {run:?}");
        run
    }

    /// Issues a token with `args` (after `issue --json`); returns `(id, token)`.
    pub fn issue(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["issue", "--json"];
        all.extend_from_slice(args);
        let json = self.ok(&all).json();
        (
            json["id"].as_str().expect("id").to_owned(),
            json["token"].as_str().expect("token").to_owned(),
        )
    }

    /// `redeem INPUT --device DEVICE --json`.
    pub fn redeem(&self, input: &str, device: &str) -> Run {
        self.run(&["redeem", input, "--device", device, "--json"])
    }

    /// The records `list --json ARGS...` prints.
    pub fn list_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        match self.ok(&all).json() {
            Value::Array(items) => items,
            other => panic!("list --json printed {other}"),
        }
    }

    /// Every token record, as `list --all --json` prints them.
    pub fn list(&self) -> Vec<Value> {
        match self.ok(&["list", "--all", "--json"]).json() {
            Value::Array(items) => items,
            other => panic!("list --json printed {other}"),
        }
    }

    /// `show ID --json`.
    pub fn show(&self, id: &str) -> Value {
        self.ok(&["show", id, "--json"]).json()
    }
}
