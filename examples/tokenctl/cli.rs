//! The command line: every command, option and default, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit status:
  0  success
  1  a rejected token (the message names the reason: invalid token, revoked, expired,
     not yet valid, exhausted), bad input (a value, a CSV specification, a key file) or a
     failed operation (database, files)
  2  a usage error: unknown command or option, missing or conflicting options, a value
     that is not a number or not one of the listed choices

Environment:
  ONBOARDING_TOKEN_DB, ONBOARDING_TOKEN_KEY, ONBOARDING_TOKEN_ORG
      defaults for --db, --key and --org
  ONBOARDING_TOKEN_WIFI_PASSWORD
      default for --wifi-password (keeps the password out of the process list)
  ONBOARDING_TOKEN_NOW
      an RFC 3339 time used instead of the system clock (a testing aid, for example to
      issue a token that has already expired; never set it in production)";

/// Issue, list, inspect, revoke and redeem MDM onboarding tokens.
///
/// Tokens live in a SQLite file (or a PostgreSQL database when built with the `postgres`
/// feature); the signing keys live in a key file that only its owner may read. Run
/// `tokenctl init` once to create both.
#[derive(Debug, Parser)]
#[command(
    name = "tokenctl",
    version,
    after_long_help = AFTER_HELP,
    // A later --db/--key/--org (or any single-valued option) wins, so wrappers and
    // aliases that set them can be overridden.
    args_override_self = true
)]
pub struct Cli {
    /// SQLite file path, sqlite:// URL or postgres:// URL.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ONBOARDING_TOKEN_DB",
        default_value = "./onboarding-tokens.db",
        value_name = "PATH_OR_URL",
        hide_env_values = true
    )]
    pub db: String,

    /// Keyring file (created with mode 0600 by `init`; refused if group or others can read it).
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ONBOARDING_TOKEN_KEY",
        hide_env_values = true,
        default_value = "./onboarding-token.key",
        value_name = "PATH"
    )]
    pub key: PathBuf,

    /// The organization commands act within.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ONBOARDING_TOKEN_ORG",
        hide_env_values = true,
        default_value = "default",
        value_name = "ORG"
    )]
    pub org: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the key file if absent and create or migrate the database schema.
    ///
    /// Safe to run again: an existing key file is kept, and the schema is only upgraded.
    Init,
    /// Issue one token and print it (or its QR code, or a payload carrying it).
    ///
    /// Standard output gets only the requested form (the token, a payload, a QR code, or
    /// with --json one JSON object), so `TOKEN=$(tokenctl issue --group g)` works; a summary
    /// without the token goes to standard error.
    Issue(Box<IssueArgs>),
    /// Issue many tokens as one batch and write a manifest, a printable sheet and QR files.
    ///
    /// All or nothing: a bad specification issues nothing, and if the output cannot be
    /// written the batch is revoked. DIR must not exist or be empty; it is filled under a
    /// temporary name and renamed into place when complete. Every file holds tokens and is
    /// created with mode 0600.
    Bulk(Box<BulkArgs>),
    /// List tokens (never their token strings).
    List(ListArgs),
    /// Show one token's record and the devices that redeemed it (never the token string).
    Show(ShowArgs),
    /// Revoke a token, every token of a group (subgroups included), or a bulk batch.
    Revoke(RevokeArgs),
    /// Redeem a token for a device, as the enrollment server would.
    ///
    /// Takes a bare token, an enrollment URL, the Android or Knox JSON, the NFC properties
    /// or the typed (grouped) form; `-` reads it from standard input.
    Redeem(RedeemArgs),
    /// Manage the signing keys in the key file.
    #[command(subcommand)]
    Keys(KeysCommand),
}

/// What one token is: policies, usage limit, validity, description, metadata.
#[derive(Debug, Args, Default)]
pub struct TokenOptions {
    /// A policy to apply to enrolled devices (repeat for several).
    #[arg(long = "policy", value_name = "P")]
    pub policies: Vec<String>,

    #[command(flatten)]
    pub limit: LimitOptions,

    /// When the token starts to work (RFC 3339, for example 2030-01-31T09:00:00Z).
    #[arg(long, value_name = "T")]
    pub not_before: Option<String>,

    #[command(flatten)]
    pub expiry: ExpiryOptions,

    /// Free text for admins (shown by list and show, printed on bulk sheets).
    #[arg(long, value_name = "S")]
    pub description: Option<String>,

    /// Metadata handed to the server on redemption (repeat for several).
    #[arg(long = "meta", value_name = "K=V")]
    pub meta: Vec<String>,
}

#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct LimitOptions {
    /// How many devices may enroll with the token (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_uses: Option<u32>,
    /// Any number of devices may enroll with the token.
    #[arg(long)]
    pub unlimited: bool,
}

#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct ExpiryOptions {
    /// Lifetime after the token starts to work, such as 90m, 36h, 7d, 2w or 1d12h (default 7d).
    #[arg(long, value_name = "DUR")]
    pub expires_in: Option<String>,
    /// Expiry time (RFC 3339).
    #[arg(long, value_name = "T")]
    pub expires_at: Option<String>,
    /// The token never expires.
    #[arg(long)]
    pub never_expires: bool,
}

/// What goes into the QR code or the output: the form of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// The bare token.
    #[default]
    Token,
    /// The token in groups of four characters, for reading out or typing.
    Grouped,
    /// An enrollment link (needs --url-base).
    Url,
    /// The Android Enterprise provisioning JSON for the setup-screen QR code.
    Android,
    /// The flat Samsung Knox Mobile Enrollment JSON.
    Kme,
    /// The Android NFC provisioning properties.
    Nfc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WifiSecurityArg {
    #[value(name = "WPA")]
    Wpa,
    #[value(name = "WEP")]
    Wep,
    #[value(name = "NONE")]
    None,
}

/// How a token is presented: format and the settings of each form.
#[derive(Debug, Args, Default)]
pub struct PayloadOptions {
    /// The form of the token in the output and in QR codes.
    #[arg(long, value_enum, default_value_t = Format::Token)]
    pub format: Format,

    /// Base of enrollment links (http:// or https://); the token goes into a query parameter.
    #[arg(long, value_name = "URL", required_if_eq("format", "url"))]
    pub url_base: Option<String>,

    /// Name of the link's query parameter.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "token",
        requires = "url_base"
    )]
    pub url_param: String,

    /// Device admin (DPC) component, package/class (for example com.example.dpc/.AdminReceiver).
    #[arg(
        long,
        value_name = "C",
        required_if_eq_any([("format", "android"), ("format", "nfc")]),
        requires_all = ["android_checksum", "android_download"]
    )]
    pub android_component: Option<String>,

    /// The DPC's signing certificate checksum: URL-safe base64 of its SHA-256 digest.
    #[arg(long, value_name = "S", requires = "android_component")]
    pub android_checksum: Option<String>,

    /// https:// URL the device downloads the DPC from.
    #[arg(long, value_name = "URL", requires = "android_component")]
    pub android_download: Option<String>,

    /// The admin extras key the token goes under
    /// (default com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN).
    #[arg(long, value_name = "K")]
    pub android_extras_key: Option<String>,

    /// Another admin extra handed to the DPC, such as server_url=https://... (repeat for several).
    #[arg(long = "android-extra", value_name = "K=V")]
    pub android_extras: Vec<String>,

    /// Device locale, such as en_US.
    #[arg(long, value_name = "LOCALE", requires = "android_component")]
    pub android_locale: Option<String>,

    /// Device time zone, such as Europe/Berlin.
    #[arg(long, value_name = "TZ", requires = "android_component")]
    pub android_time_zone: Option<String>,

    /// Keep every system app enabled.
    #[arg(long, requires = "android_component")]
    pub android_leave_system_apps: bool,

    /// Skip device encryption.
    #[arg(long, requires = "android_component")]
    pub android_skip_encryption: bool,

    /// Allow provisioning without a network (Android 13+).
    #[arg(long, requires = "android_component")]
    pub android_allow_offline: bool,

    /// Wi-Fi network the device joins during setup (Android payloads).
    #[arg(long, value_name = "S", requires = "android_component")]
    pub wifi_ssid: Option<String>,

    /// Wi-Fi security (default WPA with a password, NONE without).
    #[arg(
        long,
        value_enum,
        value_name = "TYPE",
        ignore_case = true,
        requires = "wifi_ssid"
    )]
    pub wifi_security: Option<WifiSecurityArg>,

    /// Wi-Fi password.
    #[arg(
        long,
        value_name = "P",
        env = "ONBOARDING_TOKEN_WIFI_PASSWORD",
        hide_env_values = true
    )]
    pub wifi_password: Option<String>,

    /// The Wi-Fi network is hidden (does not broadcast its SSID).
    #[arg(long, requires = "wifi_ssid")]
    pub wifi_hidden: bool,

    /// QR error-correction level.
    #[arg(
        long,
        value_enum,
        value_name = "LEVEL",
        ignore_case = true,
        default_value_t = EcArg::M
    )]
    pub ec_level: EcArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum EcArg {
    /// About 7% recoverable, the smallest code.
    #[value(name = "L")]
    L,
    /// About 15% recoverable.
    #[default]
    #[value(name = "M")]
    M,
    /// About 25% recoverable.
    #[value(name = "Q")]
    Q,
    /// About 30% recoverable, the largest code.
    #[value(name = "H")]
    H,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QrArg {
    /// Unicode blocks for a terminal.
    Terminal,
    /// An SVG image.
    Svg,
    /// A PNG image.
    Png,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The device group enrolled devices join, such as emea/berlin.
    #[arg(long, value_name = "G")]
    pub group: String,

    #[command(flatten)]
    pub token: TokenOptions,

    #[command(flatten)]
    pub payload: PayloadOptions,

    /// Print a QR code of the output form instead of the text.
    #[arg(long, value_enum)]
    pub qr: Option<QrArg>,

    /// PNG pixels per QR module.
    #[arg(long, value_name = "PX", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub png_scale: u32,

    /// Write the output (text or QR code) to FILE (mode 0600, atomically) instead of
    /// standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Print a JSON object with the token's id, token string, payload and record.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QrFileArg {
    /// SVG images.
    Svg,
    /// PNG images.
    Png,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PaperArg {
    /// ISO A4.
    A4,
    /// US Letter.
    Letter,
}

#[derive(Debug, Args)]
pub struct BulkArgs {
    /// CSV specification, one row per department or location (columns: group, policies,
    /// count, limit, not_before, expires, description, metadata).
    #[arg(
        long,
        value_name = "FILE.csv",
        required_unless_present = "group",
        conflicts_with_all = [
            "group", "count", "policies", "max_uses", "unlimited", "not_before",
            "expires_in", "expires_at", "never_expires", "description", "meta"
        ]
    )]
    pub spec: Option<PathBuf>,

    /// The group of every token (template mode, with --count).
    #[arg(long, value_name = "G", requires = "count")]
    pub group: Option<String>,

    /// How many tokens to issue (template mode).
    #[arg(
        long,
        value_name = "N",
        requires = "group",
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    pub count: Option<u32>,

    #[command(flatten)]
    pub token: TokenOptions,

    #[command(flatten)]
    pub payload: PayloadOptions,

    /// Directory to write manifest.csv, manifest.json, sheet.html and the QR files to.
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,

    /// Image format of the per-token QR files.
    #[arg(long, value_enum, default_value_t = QrFileArg::Svg)]
    pub qr: QrFileArg,

    /// PNG pixels per QR module.
    #[arg(long, value_name = "PX", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub png_scale: u32,

    /// Paper the sheet is laid out for.
    #[arg(long, value_enum, default_value_t = PaperArg::A4)]
    pub paper: PaperArg,

    /// Title printed on every page of the sheet.
    #[arg(long, value_name = "S")]
    pub title: Option<String>,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Pending,
    Active,
    Exhausted,
    Expired,
    Revoked,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this group and its subgroups.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Only tokens carrying this policy.
    #[arg(long, value_name = "P")]
    pub policy: Option<String>,
    /// Only tokens with this status now.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Only this bulk batch.
    #[arg(long, value_name = "B")]
    pub batch: Option<String>,
    /// At most this many tokens, oldest first.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// Every matching token (no limit).
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Token id (32 hex digits, or a unique prefix of at least 8).
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(
    clap::ArgGroup::new("target").required(true).multiple(false).args(["id", "group", "batch"])
))]
pub struct RevokeArgs {
    /// Token id (32 hex digits, or a unique prefix of at least 8).
    pub id: Option<String>,
    /// Every token of this group and its subgroups.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Every token of this bulk batch.
    #[arg(long, value_name = "B")]
    pub batch: Option<String>,
    /// Why (kept with the record).
    #[arg(long, value_name = "S", default_value = "")]
    pub reason: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RedeemArgs {
    /// The token, a link or payload carrying it, or `-` to read it from standard input.
    #[arg(value_name = "TOKEN_OR_PAYLOAD")]
    pub input: String,
    /// The device's id (serial number, IMEI, enrollment id).
    #[arg(long, value_name = "DEVICE_ID")]
    pub device: String,
    /// Print the enrollment as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a new key the signing key; the previous one stays for verification, so
    /// tokens already handed out keep working. Restart servers to load the new key file.
    Rotate {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List key ids and roles (never the secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a verify-only key: every token it signed stops working.
    Retire {
        /// The key id (8 hex digits), as `keys list` shows it.
        key_id: String,
    },
}
