//! The printable HTML sheet of QR cards (feature `qr`).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::core::policy::PolicyId;
use crate::core::token::{Expiry, TokenId, UsageLimit};
use crate::payload::{PayloadConfig, PayloadError, PayloadFormat, SecretText, grouped_lines};
use crate::qr::{EcLevel, Qr, QrError};
use crate::service::Issued;

/// The paper a sheet is laid out for. Either way six cards (two by three) fit a page of
/// A4 and of US Letter, so a sheet made for one prints on the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Paper {
    /// ISO A4, 210 × 297 mm.
    #[default]
    A4,
    /// US Letter, 8.5 × 11 in.
    Letter,
}

impl Paper {
    fn css(&self) -> &'static str {
        match self {
            Self::A4 => "A4",
            Self::Letter => "letter",
        }
    }
}

/// How [`render_sheet`] lays out and encodes cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetOptions {
    title: String,
    paper: Paper,
    ec_level: EcLevel,
    format: PayloadFormat,
}

impl Default for SheetOptions {
    fn default() -> Self {
        Self {
            title: "Device enrollment codes".to_owned(),
            paper: Paper::A4,
            ec_level: EcLevel::M,
            format: PayloadFormat::Token,
        }
    }
}

impl SheetOptions {
    /// A4, level M, the bare token in each QR code.
    pub fn new() -> Self {
        Self::default()
    }

    /// The page title.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// The paper size.
    pub fn with_paper(mut self, paper: Paper) -> Self {
        self.paper = paper;
        self
    }

    /// The QR error-correction level.
    pub fn with_ec_level(mut self, ec_level: EcLevel) -> Self {
        self.ec_level = ec_level;
        self
    }

    /// What each QR code holds (the bare token, a link, the Android JSON, ...).
    pub fn with_format(mut self, format: PayloadFormat) -> Self {
        self.format = format;
        self
    }
}

/// A sheet could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SheetError {
    /// The payload format is not configured.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A token's payload does not fit in a QR code.
    #[error("QR code for token {id}: {source}")]
    Qr {
        /// The token.
        id: TokenId,
        /// Why.
        #[source]
        source: QrError,
    },
}

const CARDS_PER_PAGE: usize = 6;

const STYLE: &str = "\
*{box-sizing:border-box}\
html{color:#000;background:#fff}\
body{margin:0;font:9pt/1.3 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
.page{width:186mm;margin:0 auto;break-after:page;page-break-after:always}\
.page:last-child{break-after:auto;page-break-after:auto}\
header{height:10mm;display:flex;justify-content:space-between;align-items:baseline;gap:4mm}\
h1{font-size:11pt;margin:0;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}\
.secret{font-size:7.5pt;margin:0;text-align:right}\
.cards{display:grid;grid-template-columns:repeat(2,90mm);grid-auto-rows:78mm;gap:4mm 6mm}\
.card{border:.3mm dashed #777;border-radius:2mm;padding:3mm;display:flex;flex-direction:column;align-items:center;overflow:hidden;break-inside:avoid;page-break-inside:avoid}\
.card>*{flex:none;max-width:100%}\
.card svg{width:38mm;height:38mm}\
.group{font-size:10pt;font-weight:700;margin-top:1mm;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\
.facts,.desc,.hint{font-size:7pt;line-height:1.25;text-align:center;margin:0;overflow:hidden}\
.desc{white-space:nowrap;text-overflow:ellipsis;font-style:italic}\
.hint{color:#333}\
.token{font:7.5pt/1.25 ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;margin:1mm 0 0;white-space:pre;letter-spacing:.02em}\
@media screen{body{background:#eee}.page{background:#fff;padding:10mm 12mm;margin:8mm auto;width:210mm;box-shadow:0 0 3mm #999}}\
";

/// A self-contained printable HTML page: one card per token with its QR code (inline
/// SVG), group, policies, usage limit, validity, short id, description, a scanning hint
/// and the token in the typed form ([`grouped_lines`]). Six cards per page, on A4 or
/// Letter. Every text is HTML-escaped; the page loads nothing and runs no script (its
/// Content-Security-Policy forbids both).
///
/// The sheet holds every token: it is a credential (see the [module docs](super#secrets)).
pub fn render_sheet(
    issued: &[Issued],
    payloads: &PayloadConfig,
    options: &SheetOptions,
) -> Result<SecretText, SheetError> {
    let mut out = String::with_capacity(4096 + issued.len() * 12_000);
    let title = escape(&options.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"robots\" content=\"noindex\">\n\
         <title>{title}</title>\n<style>@page{{size:{paper};margin:10mm}}{STYLE}</style>\n</head>\n<body>\n",
        paper = options.paper.css(),
    );
    let hint = match options.format {
        PayloadFormat::Android => "Android setup: tap the welcome screen six times, then scan.",
        PayloadFormat::Url => "Scan with the camera, or open the link on the device.",
        PayloadFormat::Kme | PayloadFormat::Nfc => "Knox / NFC provisioning payload.",
        _ => "Scan in the enrollment app, or type the code below.",
    };
    let pages = issued.chunks(CARDS_PER_PAGE).count().max(1);
    for (page_index, page) in issued.chunks(CARDS_PER_PAGE).enumerate() {
        let _ = write!(
            out,
            "<section class=\"page\">\n<header><h1>{title}</h1>\
             <p class=\"secret\">Confidential: each code enrolls a device. \
             Store securely; shred after use. Page {} of {pages}</p></header>\n\
             <div class=\"cards\">\n",
            page_index + 1
        );
        for item in page {
            card(&mut out, item, payloads, options, hint)?;
        }
        out.push_str("</div>\n</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    Ok(SecretText::new(out))
}

fn card(
    out: &mut String,
    item: &Issued,
    payloads: &PayloadConfig,
    options: &SheetOptions,
    hint: &str,
) -> Result<(), SheetError> {
    let token = &item.token;
    let payload = payloads.render(options.format, &item.secret)?;
    let qr = Qr::encode_with(payload.expose_secret(), options.ec_level).map_err(|source| {
        SheetError::Qr {
            id: token.id(),
            source,
        }
    })?;
    let id = token.id().to_string();
    let policies = if token.policies().is_empty() {
        "no policies".to_owned()
    } else {
        token
            .policies()
            .iter()
            .map(PolicyId::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let limit = match token.usage_limit() {
        UsageLimit::Once => "single use".to_owned(),
        UsageLimit::Limited(n) => format!("up to {n} devices"),
        UsageLimit::Unlimited => "unlimited devices".to_owned(),
    };
    let fmt_time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let validity = token.validity();
    let from = validity
        .not_before
        .map_or_else(|| "issue".to_owned(), fmt_time);
    let until = match validity.expiry {
        Expiry::At(t) => format!("until {}", fmt_time(t)),
        Expiry::Never => "no expiry".to_owned(),
    };
    let _ = write!(
        out,
        "<article class=\"card\">{svg}\n<div class=\"group\">{group}</div>\n\
         <p class=\"facts\">{policies}<br>{limit} · id {short}<br>valid from {from}, {until}</p>\n",
        svg = qr.to_svg(),
        group = escape(token.group().as_str()),
        policies = escape(&policies),
        limit = escape(&limit),
        from = escape(&from),
        until = escape(&until),
        short = escape(&id[..8]),
    );
    if !token.description().is_empty() {
        let _ = writeln!(out, "<p class=\"desc\">{}</p>", escape(token.description()));
    }
    let typed = grouped_lines(&item.secret);
    let _ = write!(
        out,
        "<p class=\"hint\">{}</p>\n<pre class=\"token\">{}</pre></article>\n",
        escape(hint),
        escape(typed.expose_secret())
    );
    Ok(())
}

/// Escapes text for HTML element content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
