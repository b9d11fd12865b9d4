//! The manifest of what a bulk issuance produced, as CSV and JSON.

use chrono::{DateTime, SecondsFormat, Utc};

use super::csv::csv_field;
use crate::core::policy::{GroupId, PolicyId};
use crate::core::token::{BatchId, Expiry, TokenId, UsageLimit, Validity};
use crate::payload::SecretText;
use crate::service::Issued;

/// The kind of QR image file written per token, which names it in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum QrFileFormat {
    /// `.svg`
    #[default]
    Svg,
    /// `.png`
    Png,
}

impl QrFileFormat {
    /// The file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            Self::Svg => "svg",
            Self::Png => "png",
        }
    }

    /// The file name for a token's QR code: `<token id>.<extension>`.
    pub fn file_name(&self, id: TokenId) -> String {
        format!("{id}.{}", self.extension())
    }
}

/// One issued token in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// The token id.
    pub id: TokenId,
    /// The batch it was issued in.
    pub batch: Option<BatchId>,
    /// Its group.
    pub group: GroupId,
    /// Its policies.
    pub policies: Vec<PolicyId>,
    /// Its validity window.
    pub validity: Validity,
    /// Its usage limit.
    pub limit: UsageLimit,
    /// Its description.
    pub description: String,
    /// The token string (a credential).
    pub token: SecretText,
    /// The QR image file name, if QR files are written.
    pub qr_file: Option<String>,
}

/// What a bulk issuance produced, for scripts (JSON) and spreadsheets (CSV).
///
/// Contains every token string: see the [module docs](super#secrets).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use onboarding_token::bulk::{Manifest, QrFileFormat};
/// use onboarding_token::*;
/// let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), MemoryStore::new());
/// let spec = TokenSpec::new(OrgId::new("acme")?, GroupId::new("sales")?);
/// let batch = service.issue_many(spec, 3).await?;
///
/// let manifest = Manifest::from_issued(&batch.tokens, Some(QrFileFormat::Png));
/// let csv = manifest.to_csv();
/// assert!(csv.expose_secret().starts_with("id,batch,group,policies,not_before,expires,limit,description,token,qr_file\n"));
/// assert_eq!(csv.expose_secret().lines().count(), 4);
/// let json: serde_json::Value = serde_json::from_str(manifest.to_json().expose_secret())?;
/// assert_eq!(json["tokens"].as_array().unwrap().len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn expiry_text(expiry: Expiry) -> String {
    match expiry {
        Expiry::At(t) => rfc3339(t),
        Expiry::Never => "never".to_owned(),
    }
}

fn limit_text(limit: UsageLimit) -> String {
    match limit.max_uses() {
        Some(n) => n.to_string(),
        None => "unlimited".to_owned(),
    }
}

impl Manifest {
    /// The manifest of issued tokens; with `qr`, each entry names its QR file
    /// ([`QrFileFormat::file_name`]).
    pub fn from_issued(issued: &[Issued], qr: Option<QrFileFormat>) -> Self {
        let entries = issued
            .iter()
            .map(|i| ManifestEntry {
                id: i.token.id(),
                batch: i.token.batch(),
                group: i.token.group().clone(),
                policies: i.token.policies().to_vec(),
                validity: *i.token.validity(),
                limit: i.token.usage_limit(),
                description: i.token.description().to_owned(),
                token: SecretText::from(&i.secret),
                qr_file: qr.map(|q| q.file_name(i.token.id())),
            })
            .collect();
        Self { entries }
    }

    /// The entries, in issue order.
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// CSV with the header `id,batch,group,policies,not_before,expires,limit,description,
    /// token,qr_file`. Policies are `;`-separated; `expires` is RFC 3339 or `never`; `limit`
    /// a number or `unlimited`; empty fields for no value. Text fields that a spreadsheet
    /// would take for a formula get a leading `'`.
    pub fn to_csv(&self) -> SecretText {
        let mut out = String::with_capacity(256 * (self.entries.len() + 1));
        out.push_str(
            "id,batch,group,policies,not_before,expires,limit,description,token,qr_file\n",
        );
        for e in &self.entries {
            let policies: Vec<&str> = e.policies.iter().map(PolicyId::as_str).collect();
            let fields: [(String, bool); 10] = [
                (e.id.to_string(), false),
                (e.batch.map(|b| b.to_string()).unwrap_or_default(), false),
                (e.group.to_string(), true),
                (policies.join(";"), true),
                (
                    e.validity.not_before.map(rfc3339).unwrap_or_default(),
                    false,
                ),
                (expiry_text(e.validity.expiry), false),
                (limit_text(e.limit), false),
                (e.description.clone(), true),
                (e.token.expose_secret().to_owned(), false),
                (e.qr_file.clone().unwrap_or_default(), true),
            ];
            for (i, (value, text)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(&mut out, value, *text);
            }
            out.push('\n');
        }
        SecretText::new(out)
    }

    /// JSON: `{"version": 1, "tokens": [{"id", "batch", "group", "policies", "not_before",
    /// "expires", "limit", "description", "token", "qr_file"}, ...]}` with the value forms
    /// of [`to_csv`](Manifest::to_csv) (`limit` a number or `"unlimited"`, `expires` a time
    /// or `"never"`, `null` for no value).
    pub fn to_json(&self) -> SecretText {
        use serde_json::{Value, json};
        let tokens: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id.to_string(),
                    "batch": e.batch.map(|b| b.to_string()),
                    "group": e.group.as_str(),
                    "policies": e.policies.iter().map(PolicyId::as_str).collect::<Vec<_>>(),
                    "not_before": e.validity.not_before.map(rfc3339),
                    "expires": expiry_text(e.validity.expiry),
                    "limit": match e.limit.max_uses() {
                        Some(n) => json!(n),
                        None => json!("unlimited"),
                    },
                    "description": e.description,
                    "token": e.token.expose_secret(),
                    "qr_file": e.qr_file,
                })
            })
            .collect();
        let doc = json!({ "version": 1, "tokens": tokens });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        SecretText::new(text + "\n")
    }
}
