//! `issue` and `bulk`: building token specifications and payload settings from the
//! options, issuing, and writing what admins hand out.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::Path;

use chrono::{DateTime, Utc};
use clap::error::ErrorKind;
use indicatif::{ProgressBar, ProgressStyle};
use onboarding_token::android::{AdminExtras, AndroidProvisioning, Wifi, WifiSecurity};
use onboarding_token::bulk::{
    self, BulkSpec, Manifest, Paper, QrFileFormat, SheetOptions, parse_duration, parse_time,
};
use onboarding_token::payload::{EnrollmentUrl, PayloadConfig, PayloadFormat, SecretText};
use onboarding_token::qr::{EcLevel, Qr, TerminalStyle};
use onboarding_token::{
    ExpirySpec, GroupId, Issued, KeyId, Metadata, OrgId, PolicyId, RevokeTarget, SigningKey,
    TokenId, TokenSpec, TokenString, UsageLimit,
};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::{
    BulkArgs, EcArg, Format, IssueArgs, PaperArg, PayloadOptions, QrArg, QrFileArg, TokenOptions,
    WifiSecurityArg,
};
use crate::output::{self, PendingFile, StagingDir};
use crate::{Context, Failure, Service, describe, fail, usage};

fn bad(option: &str, err: &(dyn std::error::Error + 'static)) -> Failure {
    fail(option, err)
}

/// `K=V` pairs into a map; a key given twice is an error.
fn pairs(option: &str, items: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut map = BTreeMap::new();
    for item in items {
        let Some((key, value)) = item.split_once('=') else {
            return Err(Failure::Error(format!(
                "{option}: expected KEY=VALUE, got `{}`",
                output::clean(&output::truncate(item, 64))
            )));
        };
        if key.is_empty() {
            return Err(Failure::Error(format!("{option}: the key is empty")));
        }
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(Failure::Error(format!(
                "{option}: key `{}` is given twice",
                output::clean(&output::truncate(key, 64))
            )));
        }
    }
    Ok(map)
}

/// The specification the token options describe, for `group` in `org`.
fn token_spec(org: &OrgId, group: &str, options: &TokenOptions) -> Result<TokenSpec, Failure> {
    let group = GroupId::new(group).map_err(|e| bad("--group", &e))?;
    let policies = options
        .policies
        .iter()
        .map(|p| PolicyId::new(p).map_err(|e| bad("--policy", &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let limit = if options.limit.unlimited {
        UsageLimit::Unlimited
    } else {
        options
            .limit
            .max_uses
            .map_or(Some(UsageLimit::Once), UsageLimit::limited)
            .ok_or_else(|| Failure::Error("--max-uses: must be at least 1".into()))?
    };
    let expiry = if options.expiry.never_expires {
        ExpirySpec::Never
    } else if let Some(d) = &options.expiry.expires_in {
        ExpirySpec::After(parse_duration(d).map_err(|e| bad("--expires-in", &e))?)
    } else if let Some(t) = &options.expiry.expires_at {
        ExpirySpec::At(parse_time(t).map_err(|e| bad("--expires-at", &e))?)
    } else {
        ExpirySpec::Default
    };
    let metadata =
        Metadata::from_map(pairs("--meta", &options.meta)?).map_err(|e| bad("--meta", &e))?;
    let mut spec = TokenSpec::new(org.clone(), group)
        .with_policies(policies)
        .with_usage_limit(limit)
        .with_expiry(expiry)
        .with_metadata(metadata);
    if let Some(t) = &options.not_before {
        spec = spec.with_not_before(parse_time(t).map_err(|e| bad("--not-before", &e))?);
    }
    if let Some(d) = &options.description {
        spec = spec.with_description(d.clone());
    }
    Ok(spec)
}

fn payload_format(format: Format) -> PayloadFormat {
    match format {
        Format::Token => PayloadFormat::Token,
        Format::Grouped => PayloadFormat::Grouped,
        Format::Url => PayloadFormat::Url,
        Format::Android => PayloadFormat::Android,
        Format::Kme => PayloadFormat::Kme,
        Format::Nfc => PayloadFormat::Nfc,
    }
}

fn ec_level(level: EcArg) -> EcLevel {
    match level {
        EcArg::L => EcLevel::L,
        EcArg::M => EcLevel::M,
        EcArg::Q => EcLevel::Q,
        EcArg::H => EcLevel::H,
    }
}

/// The payload settings the options describe.
fn payload_config(options: &PayloadOptions) -> Result<PayloadConfig, Failure> {
    let mut config = PayloadConfig::new();
    if let Some(base) = &options.url_base {
        let url = EnrollmentUrl::new(base)
            .and_then(|u| u.with_param(&options.url_param))
            .map_err(|e| bad("--url-base", &e))?;
        config = config.with_url(url);
    }
    let mut extras = AdminExtras::new();
    if let Some(key) = &options.android_extras_key {
        extras = extras
            .with_token_key(key)
            .map_err(|e| bad("--android-extras-key", &e))?;
    }
    for (key, value) in pairs("--android-extra", &options.android_extras)? {
        extras = extras
            .with_extra(&key, &value)
            .map_err(|e| bad("--android-extra", &e))?;
    }
    config = config.with_kme(extras.clone());
    if let Some(component) = &options.android_component {
        let (Some(checksum), Some(download)) =
            (&options.android_checksum, &options.android_download)
        else {
            return Err(usage(
                ErrorKind::MissingRequiredArgument,
                "--android-component needs --android-checksum and --android-download",
            ));
        };
        let mut android = AndroidProvisioning::new(component, checksum, download)
            .map_err(|e| bad("Android provisioning", &e))?
            .with_admin_extras(extras)
            .with_leave_all_system_apps_enabled(options.android_leave_system_apps)
            .with_skip_encryption(options.android_skip_encryption)
            .with_allow_offline(options.android_allow_offline);
        if let Some(locale) = &options.android_locale {
            android = android
                .with_locale(locale)
                .map_err(|e| bad("--android-locale", &e))?;
        }
        if let Some(tz) = &options.android_time_zone {
            android = android
                .with_time_zone(tz)
                .map_err(|e| bad("--android-time-zone", &e))?;
        }
        if let Some(ssid) = &options.wifi_ssid {
            let password = options.wifi_password.as_deref().filter(|p| !p.is_empty());
            let security = match options.wifi_security {
                Some(WifiSecurityArg::Wpa) => WifiSecurity::Wpa,
                Some(WifiSecurityArg::Wep) => WifiSecurity::Wep,
                Some(WifiSecurityArg::None) => WifiSecurity::None,
                None if password.is_some() => WifiSecurity::Wpa,
                None => WifiSecurity::None,
            };
            let wifi = Wifi::new(ssid, security, password)
                .map_err(|e| bad("Wi-Fi", &e))?
                .hidden(options.wifi_hidden);
            android = android.with_wifi(wifi);
        }
        config = config.with_android(android);
    }
    Ok(config)
}

/// A throwaway token string, the length of every real one.
fn probe() -> TokenString {
    SigningKey::from_bytes(KeyId::from_bytes([0; 4]), &[0; 32]).sign(&TokenId::from_bytes([0; 16]))
}

/// Checks that `format` is configured, by rendering it for a throwaway token.
fn check_renders(config: &PayloadConfig, format: PayloadFormat) -> Result<SecretText, Failure> {
    config
        .render(format, &probe())
        .map_err(|e| Failure::Error(describe(&e)))
}

/// Renders the payload for a throwaway token and encodes it as a QR code: every token
/// string has the same length, so this tells before anything is issued whether the real
/// payloads fit.
fn check_fits(config: &PayloadConfig, format: PayloadFormat, ec: EcLevel) -> Result<(), Failure> {
    let payload = check_renders(config, format)?;
    Qr::encode_with(payload.expose_secret(), ec).map_err(|e| {
        Failure::Error(format!(
            "the {format} payload does not fit in a QR code: {}; try --ec-level L or fewer settings",
            describe(&e)
        ))
    })?;
    Ok(())
}

/// After a failure that follows issuing, revokes what was issued so no token is left that
/// nobody holds, and says so.
async fn undo(service: &Service, target: RevokeTarget, what: &str, err: String) -> Failure {
    match service
        .revoke(&target, "tokenctl: the output could not be written")
        .await
    {
        Ok(_) => Failure::Error(format!("{err}\n{what} revoked, since nobody received it")),
        Err(e) => Failure::Error(format!(
            "{err}\nrevoking {what} failed too ({}); revoke it by hand",
            describe(&e)
        )),
    }
}

fn summary(issued: &Issued) -> String {
    let token = &issued.token;
    format!(
        "issued token {} for group {} (policies: {}; {} {}; {})",
        token.id(),
        token.group(),
        output::policies_text(token.policies()),
        output::limit_text(token.usage_limit()),
        if token.usage_limit().max_uses() == Some(1) {
            "use"
        } else {
            "uses"
        },
        output::validity_text(token),
    )
}

/// `issue`.
pub async fn issue(ctx: &Context, args: IssueArgs) -> Result<(), Failure> {
    let spec = token_spec(&ctx.org, &args.group, &args.token)?;
    let config = payload_config(&args.payload)?;
    let format = payload_format(args.payload.format);
    let ec = ec_level(args.payload.ec_level);
    check_renders(&config, format)?;
    if args.qr.is_some() {
        check_fits(&config, format, ec)?;
    }
    if args.json && args.qr.is_some() && args.out.is_none() {
        return Err(usage(
            ErrorKind::ArgumentConflict,
            "--json with --qr needs --out FILE for the QR code (standard output holds the JSON)",
        ));
    }
    if args.qr == Some(QrArg::Png) && args.out.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::Error(
            "refusing to write a PNG image to the terminal; use --out FILE or redirect standard output".into(),
        ));
    }
    // Created before issuing, so an unwritable destination issues nothing.
    let pending = match &args.out {
        Some(path) => Some(PendingFile::create(path).map_err(|e| fail(path.display(), &e))?),
        None => None,
    };

    let service = ctx.service().await?;
    let issued = service
        .issue(spec)
        .await
        .map_err(|e| fail("issuing the token", &e))?;

    let produced = render_output(&config, format, ec, &args, &issued);
    let written = match (produced, pending) {
        (Err(e), _) => Err(e),
        (Ok(bytes), Some(pending)) => pending.commit(&bytes).map(|()| None).map_err(|e| {
            format!(
                "{}: {}",
                args.out.as_deref().unwrap_or(Path::new("")).display(),
                e
            )
        }),
        (Ok(bytes), None) => Ok(Some(bytes)),
    };
    let stdout_bytes = match written {
        Ok(bytes) => bytes,
        Err(err) => {
            let what = format!("token {}", issued.token.id());
            return Err(undo(&service, RevokeTarget::Token(issued.token.id()), &what, err).await);
        }
    };

    let printed = if args.json {
        issue_json(&service, &config, format, &args, &issued)
    } else if let Some(bytes) = stdout_bytes {
        output::write_stdout_bytes(&bytes)
    } else {
        Ok(())
    };
    if let Err(failure) = printed {
        // Nobody got the token: take it back.
        let what = format!("token {}", issued.token.id());
        let err = match failure {
            Failure::Closed => "standard output was closed".to_owned(),
            other => other.to_string(),
        };
        return Err(undo(&service, RevokeTarget::Token(issued.token.id()), &what, err).await);
    }
    errln!("{}", summary(&issued));
    if let Some(path) = &args.out {
        errln!("wrote {} (mode 0600)", path.display());
    }
    Ok(())
}

/// `issue --json`: the record, the token, and the payload.
fn issue_json(
    service: &Service,
    config: &PayloadConfig,
    format: PayloadFormat,
    args: &IssueArgs,
    issued: &Issued,
) -> Result<(), Failure> {
    let payload = config
        .render(format, &issued.secret)
        .map_err(|e| Failure::Error(describe(&e)))?;
    let mut value = output::token_json(&issued.token, service.status(&issued.token));
    if let Some(obj) = value.as_object_mut() {
        obj.insert("token".into(), json!(issued.secret.expose_secret()));
        obj.insert("format".into(), json!(format.as_str()));
        obj.insert("payload".into(), json!(payload.expose_secret()));
        obj.insert(
            "out".into(),
            json!(args.out.as_ref().map(|p| p.display().to_string())),
        );
    }
    output::print_json(&value)
}

/// The bytes `issue` outputs: the payload text, or its QR code.
fn render_output(
    config: &PayloadConfig,
    format: PayloadFormat,
    ec: EcLevel,
    args: &IssueArgs,
    issued: &Issued,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let payload = config
        .render(format, &issued.secret)
        .map_err(|e| describe(&e))?;
    let Some(qr_kind) = args.qr else {
        let mut text = Zeroizing::new(Vec::with_capacity(payload.len() + 1));
        text.extend_from_slice(payload.expose_secret().as_bytes());
        text.push(b'\n');
        return Ok(text);
    };
    let qr = Qr::encode_with(payload.expose_secret(), ec).map_err(|e| describe(&e))?;
    Ok(Zeroizing::new(match qr_kind {
        QrArg::Terminal => {
            let style = if args.out.is_none() && std::io::stdout().is_terminal() {
                TerminalStyle::Ansi
            } else {
                TerminalStyle::DarkOnLight
            };
            qr.to_terminal(style).into_bytes()
        }
        QrArg::Svg => {
            let mut svg = qr.to_svg();
            svg.push('\n');
            svg.into_bytes()
        }
        QrArg::Png => qr.to_png(args.png_scale).map_err(|e| describe(&e))?,
    }))
}

/// Reads a CSV specification (at most what [`BulkSpec::parse`] accepts, plus one byte so
/// it can report the size).
fn read_spec(path: &Path) -> Result<String, Failure> {
    let file = std::fs::File::open(path).map_err(|e| fail(path.display(), &e))?;
    let mut bytes = Vec::new();
    file.take(bulk::MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(path.display(), &e))?;
    String::from_utf8(bytes)
        .map_err(|_| Failure::Error(format!("{}: not UTF-8 text", path.display())))
}

/// `bulk`.
pub async fn bulk(ctx: &Context, args: BulkArgs) -> Result<(), Failure> {
    let now: DateTime<Utc> = ctx.now();
    let specs = match (&args.spec, &args.group, args.count) {
        (Some(path), _, _) => {
            let text = read_spec(path)?;
            let spec = BulkSpec::parse(&text, &ctx.org, now).map_err(|e| {
                let mut message = format!("{}: {}", path.display(), e.errors().len());
                message.push_str(if e.errors().len() == 1 {
                    " error; nothing was issued"
                } else {
                    " errors; nothing was issued"
                });
                for err in e.errors() {
                    message.push_str(&format!("\n  {}", output::clean(&err.to_string())));
                }
                Failure::Error(message)
            })?;
            spec.to_specs()
        }
        (None, Some(group), Some(count)) => {
            let spec = token_spec(&ctx.org, group, &args.token)?;
            spec.validate(now)
                .map_err(|e| Failure::Error(describe(&e)))?;
            vec![spec; count as usize]
        }
        _ => {
            return Err(usage(
                ErrorKind::MissingRequiredArgument,
                "bulk needs --spec FILE.csv, or --group G with --count N",
            ));
        }
    };
    let config = payload_config(&args.payload)?;
    let format = payload_format(args.payload.format);
    let ec = ec_level(args.payload.ec_level);
    check_fits(&config, format, ec)?;
    let qr_format = match args.qr {
        QrFileArg::Svg => QrFileFormat::Svg,
        QrFileArg::Png => QrFileFormat::Png,
    };
    let mut sheet = SheetOptions::new()
        .with_ec_level(ec)
        .with_format(format)
        .with_paper(match args.paper {
            PaperArg::A4 => Paper::A4,
            PaperArg::Letter => Paper::Letter,
        });
    if let Some(title) = &args.title {
        sheet = sheet.with_title(title.clone());
    }
    let staging =
        StagingDir::create(&args.out_dir).map_err(|e| Failure::Error(format!("--out-dir: {e}")))?;

    let service = ctx.service().await?;
    let batch = service
        .issue_batch(specs)
        .await
        .map_err(|e| fail("issuing the batch; nothing was issued", &e))?;
    let count = batch.tokens.len();

    let written = write_batch(
        &staging,
        &batch.tokens,
        &config,
        format,
        ec,
        qr_format,
        &sheet,
        args.png_scale,
    )
    .and_then(|()| {
        staging
            .commit()
            .map_err(|e| format!("{}: {e}", args.out_dir.display()))
    });
    if let Err(err) = written {
        let what = format!("the {count} tokens of batch {}", batch.batch);
        return Err(undo(&service, RevokeTarget::Batch(batch.batch), &what, err).await);
    }

    let dir = args.out_dir.display().to_string();
    if args.json {
        output::print_json(&json!({
            "batch": batch.batch.to_string(),
            "count": count,
            "out_dir": dir,
            "manifest_csv": args.out_dir.join("manifest.csv").display().to_string(),
            "manifest_json": args.out_dir.join("manifest.json").display().to_string(),
            "sheet": args.out_dir.join("sheet.html").display().to_string(),
            "qr_format": qr_format.extension(),
            "format": format.as_str(),
        }))?;
    } else {
        outln!("issued {count} tokens in batch {}", batch.batch)?;
        outln!(
            "wrote {dir}/manifest.csv, {dir}/manifest.json, {dir}/sheet.html and {count} QR codes ({})",
            qr_format.extension()
        )?;
        outln!(
            "these files hold the tokens: keep them like passwords and shred printed sheets after use"
        )?;
    }
    Ok(())
}

/// Writes the manifest, the sheet and one QR file per token into the staging directory.
#[allow(clippy::too_many_arguments)]
fn write_batch(
    staging: &StagingDir,
    issued: &[Issued],
    config: &PayloadConfig,
    format: PayloadFormat,
    ec: EcLevel,
    qr_format: QrFileFormat,
    sheet: &SheetOptions,
    png_scale: u32,
) -> Result<(), String> {
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(issued.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    progress.set_message("QR codes");
    let io = |name: &str| {
        let name = name.to_owned();
        move |e: std::io::Error| format!("writing {name}: {e}")
    };
    for item in issued {
        let name = qr_format.file_name(item.token.id());
        let bytes = qr_file(config, format, ec, qr_format, &item.secret, png_scale)
            .map_err(|e| format!("QR code for token {}: {e}", item.token.id()))?;
        staging.write(&name, &bytes).map_err(io(&name))?;
        progress.inc(1);
    }
    progress.set_message("sheet");
    let manifest = Manifest::from_issued(issued, Some(qr_format));
    staging
        .write("manifest.csv", manifest.to_csv().expose_secret().as_bytes())
        .map_err(io("manifest.csv"))?;
    staging
        .write(
            "manifest.json",
            manifest.to_json().expose_secret().as_bytes(),
        )
        .map_err(io("manifest.json"))?;
    let html = bulk::render_sheet(issued, config, sheet).map_err(|e| describe(&e))?;
    staging
        .write("sheet.html", html.expose_secret().as_bytes())
        .map_err(io("sheet.html"))?;
    progress.finish_and_clear();
    Ok(())
}

fn qr_file(
    config: &PayloadConfig,
    format: PayloadFormat,
    ec: EcLevel,
    qr_format: QrFileFormat,
    token: &TokenString,
    png_scale: u32,
) -> Result<Vec<u8>, String> {
    let payload: SecretText = config.render(format, token).map_err(|e| describe(&e))?;
    let qr = Qr::encode_with(payload.expose_secret(), ec).map_err(|e| describe(&e))?;
    match qr_format {
        QrFileFormat::Png => qr.to_png(png_scale).map_err(|e| describe(&e)),
        QrFileFormat::Svg => Ok(qr.to_svg().into_bytes()),
    }
}
