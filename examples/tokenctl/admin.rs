//! `init`, `list`, `show`, `revoke`, `redeem` and `keys`.

use std::io::Read;

use onboarding_token::payload::{MAX_INPUT_LEN, extract_token};
use onboarding_token::{
    BatchId, DeviceId, GroupId, KeyId, PolicyId, RedeemError, RevokeTarget, SigningKey, Status,
    SystemRng, Token, TokenId, TokenQuery, keyfile,
};
use serde_json::json;

use crate::cli::{KeysCommand, ListArgs, RedeemArgs, RevokeArgs, ShowArgs, StatusArg};
use crate::output::{self, clean};
use crate::{Context, Failure, Service, describe, fail};

/// `init`.
pub async fn init(ctx: &Context) -> Result<(), Failure> {
    let mut rng = SystemRng::default();
    let (keyring, created) =
        keyfile::load_or_create(&ctx.key, &mut rng).map_err(|e| Failure::Error(describe(&e)))?;
    if created {
        outln!(
            "created key file {} (mode 0600) with signing key {}",
            ctx.key.display(),
            keyring.active_key_id()
        )?;
    } else {
        outln!(
            "key file {} exists: signing key {}, {} key{} in all (kept as is)",
            ctx.key.display(),
            keyring.active_key_id(),
            keyring.key_ids().count(),
            if keyring.key_ids().count() == 1 {
                ""
            } else {
                "s"
            }
        )?;
    }
    let existed = ctx.sqlite_file_exists();
    let store = ctx.store(true).await?;
    match existed {
        Some(false) => outln!(
            "created database {} ({}) with the current schema",
            ctx.db_display(),
            store.backend()
        )?,
        _ => outln!(
            "database {} ({}): schema up to date",
            ctx.db_display(),
            store.backend()
        )?,
    }
    Ok(())
}

fn status_of(arg: StatusArg) -> Status {
    match arg {
        StatusArg::Pending => Status::Pending,
        StatusArg::Active => Status::Active,
        StatusArg::Exhausted => Status::Exhausted,
        StatusArg::Expired => Status::Expired,
        StatusArg::Revoked => Status::Revoked,
    }
}

fn parse_batch(text: &str) -> Result<BatchId, Failure> {
    text.trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|e| fail("--batch", &e))
}

/// Every token matching `query`, up to `max`, following pages. Returns the tokens and
/// whether more matched.
async fn collect(
    service: &Service,
    mut query: TokenQuery,
    max: Option<u64>,
) -> Result<(Vec<Token>, bool), Failure> {
    let mut out = Vec::new();
    loop {
        // One more than wanted tells whether more match.
        let want = max.map_or(TokenQuery::MAX_LIMIT as u64, |m| {
            m.saturating_sub(out.len() as u64)
                .saturating_add(1)
                .min(TokenQuery::MAX_LIMIT as u64)
        });
        query = query.with_limit(want as usize);
        let page = service
            .list(&query)
            .await
            .map_err(|e| fail("listing tokens", &e))?;
        out.extend(page.tokens);
        if let Some(m) = max {
            if out.len() as u64 > m {
                out.truncate(usize::try_from(m).unwrap_or(usize::MAX));
                return Ok((out, true));
            }
        }
        match page.next {
            Some(cursor) => query = query.with_after(cursor),
            None => return Ok((out, false)),
        }
    }
}

/// `list`.
pub async fn list(ctx: &Context, args: ListArgs) -> Result<(), Failure> {
    let service = ctx.service().await?;
    let mut query = service.query().with_organization(ctx.org.clone());
    if let Some(group) = &args.group {
        query = query.with_group(GroupId::new(group).map_err(|e| fail("--group", &e))?);
    }
    if let Some(policy) = &args.policy {
        query = query.with_policy(PolicyId::new(policy).map_err(|e| fail("--policy", &e))?);
    }
    if let Some(status) = args.status {
        query = query.with_status(status_of(status));
    }
    if let Some(batch) = &args.batch {
        query = query.with_batch(parse_batch(batch)?);
    }
    let max = (!args.all).then_some(args.limit);
    let (tokens, more) = collect(&service, query, max).await?;
    if args.json {
        let items: Vec<_> = tokens
            .iter()
            .map(|t| output::token_json(t, service.status(t)))
            .collect();
        output::print_json(&json!(items))?;
    } else if tokens.is_empty() {
        errln!("no tokens match in organization {}", ctx.org);
    } else {
        let rows: Vec<Vec<String>> = tokens
            .iter()
            .map(|t| {
                vec![
                    t.id().to_string(),
                    service.status(t).to_string(),
                    format!("{}/{}", t.uses(), output::limit_text(t.usage_limit())),
                    clean(t.group().as_str()).into_owned(),
                    output::policies_text(t.policies()),
                    output::validity_text(t),
                    clean(&output::truncate(t.description(), 40)).into_owned(),
                ]
            })
            .collect();
        output::print_table(
            &[
                "ID",
                "STATUS",
                "USES",
                "GROUP",
                "POLICIES",
                "VALIDITY",
                "DESCRIPTION",
            ],
            &rows,
        )?;
    }
    if more {
        errln!(
            "showing the first {} tokens; more match (use --limit N or --all)",
            tokens.len()
        );
    }
    Ok(())
}

/// Finds the token `text` names in the organization: a full id, or a unique prefix of at
/// least 8 hex digits (the short id printed on bulk sheets).
async fn resolve(ctx: &Context, service: &Service, text: &str) -> Result<Token, Failure> {
    let text = text.trim().to_ascii_lowercase();
    let hex = !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit());
    let token = if hex && text.len() == 2 * TokenId::LEN {
        let id: TokenId = text.parse().map_err(|e| fail("token id", &e))?;
        service
            .get(id)
            .await
            .map_err(|e| fail("reading the token", &e))?
            .ok_or_else(|| Failure::Error(format!("no token with id {id}")))?
    } else if hex && (8..2 * TokenId::LEN).contains(&text.len()) {
        let query = service.query().with_organization(ctx.org.clone());
        let (tokens, _) = collect(service, query, None).await?;
        let mut matches = tokens
            .into_iter()
            .filter(|t| t.id().to_string().starts_with(&text));
        match (matches.next(), matches.next()) {
            (Some(token), None) => token,
            (None, _) => {
                return Err(Failure::Error(format!(
                    "no token id starting with {text} in organization {}",
                    ctx.org
                )));
            }
            (Some(_), Some(_)) => {
                return Err(Failure::Error(format!(
                    "several token ids start with {text}; give more digits"
                )));
            }
        }
    } else {
        return Err(Failure::Error(
            "token id: expected 32 hex digits, or a unique prefix of at least 8".into(),
        ));
    };
    if token.organization() != &ctx.org {
        return Err(Failure::Error(format!(
            "token {} belongs to organization {}, not {} (use --org {})",
            token.id(),
            token.organization(),
            ctx.org,
            token.organization()
        )));
    }
    Ok(token)
}

/// `show`.
pub async fn show(ctx: &Context, args: ShowArgs) -> Result<(), Failure> {
    let service = ctx.service().await?;
    let token = resolve(ctx, &service, &args.id).await?;
    let redemptions = service
        .redemptions(token.id())
        .await
        .map_err(|e| fail("reading the redemptions", &e))?;
    let status = service.status(&token);
    if args.json {
        let mut value = output::token_json(&token, status);
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "redemptions".into(),
                json!(
                    redemptions
                        .iter()
                        .map(|r| json!({
                            "device": r.device.as_str(),
                            "redeemed_at": output::rfc3339(r.redeemed_at),
                        }))
                        .collect::<Vec<_>>()
                ),
            );
        }
        output::print_json(&value)?;
        return Ok(());
    }
    let validity = token.validity();
    let uses = match token.usage_limit().max_uses() {
        Some(max) => format!(
            "{} of {max} ({} left)",
            token.uses(),
            u64::from(max).saturating_sub(token.uses())
        ),
        None => format!("{} (unlimited)", token.uses()),
    };
    let mut lines: Vec<(&str, String)> = vec![
        ("id", token.id().to_string()),
        ("status", status.to_string()),
        ("organization", token.organization().to_string()),
        ("group", clean(token.group().as_str()).into_owned()),
        ("policies", output::policies_text(token.policies())),
        ("uses", uses),
        (
            "not before",
            validity
                .not_before
                .map_or_else(|| "-".to_owned(), output::rfc3339),
        ),
        (
            "expires",
            validity
                .expiry
                .at()
                .map_or_else(|| "never".to_owned(), output::rfc3339),
        ),
        ("created", output::rfc3339(token.created_at())),
        ("key", token.key_id().to_string()),
        (
            "batch",
            token
                .batch()
                .map_or_else(|| "-".to_owned(), |b| b.to_string()),
        ),
        (
            "description",
            if token.description().is_empty() {
                "-".to_owned()
            } else {
                clean(token.description()).into_owned()
            },
        ),
    ];
    if token.metadata().is_empty() {
        lines.push(("metadata", "-".to_owned()));
    }
    for (k, v) in token.metadata().iter() {
        lines.push(("metadata", format!("{}={}", clean(k), clean(v))));
    }
    if let Some(r) = token.revocation() {
        let reason = if r.reason().is_empty() {
            String::new()
        } else {
            format!(" ({})", clean(r.reason()))
        };
        lines.push((
            "revoked",
            format!("{}{reason}", output::rfc3339(r.revoked_at())),
        ));
    }
    lines.push(("redemptions", redemptions.len().to_string()));
    for (key, value) in lines {
        outln!("{key:<13}{value}")?;
    }
    for r in &redemptions {
        outln!(
            "  {}  {}",
            output::rfc3339(r.redeemed_at),
            clean(r.device.as_str())
        )?;
    }
    Ok(())
}

/// Every token `query` matches, all pages.
async fn count_matching(service: &Service, query: TokenQuery) -> Result<Vec<Token>, Failure> {
    Ok(collect(service, query, None).await?.0)
}

/// `revoke`.
pub async fn revoke(ctx: &Context, args: RevokeArgs) -> Result<(), Failure> {
    let service = ctx.service().await?;
    let (target, matched, label) = if let Some(id) = &args.id {
        let token = resolve(ctx, &service, id).await?;
        (
            RevokeTarget::Token(token.id()),
            vec![token.clone()],
            format!("token {}", token.id()),
        )
    } else if let Some(group) = &args.group {
        let group = GroupId::new(group).map_err(|e| fail("--group", &e))?;
        let query = service
            .query()
            .with_organization(ctx.org.clone())
            .with_group(group.clone());
        let matched = count_matching(&service, query).await?;
        if matched.is_empty() {
            return Err(Failure::Error(format!(
                "no tokens in group {group} of organization {}",
                ctx.org
            )));
        }
        let label = format!("group {group}");
        (
            RevokeTarget::Group {
                organization: ctx.org.clone(),
                group,
            },
            matched,
            label,
        )
    } else if let Some(batch) = &args.batch {
        let batch = parse_batch(batch)?;
        let matched = count_matching(&service, service.query().with_batch(batch)).await?;
        if matched.is_empty() {
            return Err(Failure::Error(format!("no tokens in batch {batch}")));
        }
        if let Some(other) = matched.iter().find(|t| t.organization() != &ctx.org) {
            return Err(Failure::Error(format!(
                "batch {batch} has tokens of organization {}, not {} (use --org {})",
                other.organization(),
                ctx.org,
                other.organization()
            )));
        }
        (
            RevokeTarget::Batch(batch),
            matched,
            format!("batch {batch}"),
        )
    } else {
        return Err(crate::usage(
            clap::error::ErrorKind::MissingRequiredArgument,
            "revoke needs a token ID, --group G or --batch B",
        ));
    };
    let revoked = service
        .revoke(&target, &args.reason)
        .await
        .map_err(|e| fail("revoking", &e))?;
    let already = (matched.len() as u64).saturating_sub(revoked);
    if args.json {
        output::print_json(&json!({
            "target": label,
            "matched": matched.len(),
            "revoked": revoked,
            "already_revoked": already,
        }))?;
    } else if revoked == 0 && matched.len() == 1 {
        outln!("{label} was already revoked; nothing changed")?;
    } else {
        outln!(
            "revoked {revoked} token{} ({label}{})",
            if revoked == 1 { "" } else { "s" },
            if already > 0 {
                format!("; {already} already revoked")
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// `redeem`.
pub async fn redeem(ctx: &Context, args: RedeemArgs) -> Result<(), Failure> {
    let device = DeviceId::new(&args.device).map_err(|e| fail("--device", &e))?;
    let input = if args.input == "-" {
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail("standard input", &e))?;
        match std::str::from_utf8(&bytes) {
            Ok(text) => zeroize::Zeroizing::new(text.to_owned()),
            Err(_) => {
                return Err(Failure::Rejected {
                    code: "invalid token",
                    detail: "the input is not UTF-8 text".into(),
                });
            }
        }
    } else {
        zeroize::Zeroizing::new(args.input.clone())
    };
    let token = extract_token(&input).map_err(|e| Failure::Rejected {
        code: "invalid token",
        detail: describe(&e),
    })?;
    let service = ctx.service().await?;
    let enrollment = match service.redeem(token.expose_secret(), &device).await {
        Ok(enrollment) => enrollment,
        Err(RedeemError::Rejected(rejection)) => {
            return Err(Failure::Rejected {
                code: rejection.device_facing().code(),
                detail: rejection.to_string(),
            });
        }
        Err(e) => return Err(fail("redeeming", &e)),
    };
    if args.json {
        output::print_json(&json!({
            "token_id": enrollment.token_id.to_string(),
            "device": device.as_str(),
            "organization": enrollment.organization().as_str(),
            "group": enrollment.group().as_str(),
            "policies": enrollment.policies().iter().map(PolicyId::as_str).collect::<Vec<_>>(),
            "metadata": enrollment.metadata.as_map(),
            "uses": enrollment.uses,
            "limit": output::limit_json(enrollment.limit),
            "remaining": enrollment.remaining(),
            "replay": enrollment.replay,
            "redeemed_at": output::rfc3339(enrollment.redeemed_at),
        }))?;
        return Ok(());
    }
    if enrollment.replay {
        outln!(
            "device {} already redeemed token {} at {}; nothing consumed (replay)",
            clean(device.as_str()),
            enrollment.token_id,
            output::rfc3339(enrollment.redeemed_at)
        )?;
    } else {
        outln!(
            "enrolled device {} with token {}",
            clean(device.as_str()),
            enrollment.token_id
        )?;
    }
    outln!(
        "  organization {}, group {}, policies: {}",
        enrollment.organization(),
        enrollment.group(),
        output::policies_text(enrollment.policies())
    )?;
    outln!(
        "  uses {}/{}{}",
        enrollment.uses,
        output::limit_text(enrollment.limit),
        enrollment
            .remaining()
            .map_or_else(String::new, |r| format!(" ({r} left)"))
    )?;
    Ok(())
}

/// `keys`.
pub fn keys(ctx: &Context, command: KeysCommand) -> Result<(), Failure> {
    let mut keyring = ctx.keyring()?;
    match command {
        KeysCommand::List { json } => {
            let active = keyring.active_key_id();
            let keys: Vec<(KeyId, &str)> = keyring
                .key_ids()
                .map(|id| (id, if id == active { "active" } else { "verify" }))
                .collect();
            if json {
                output::print_json(&json!(
                    keys.iter()
                        .map(|(id, role)| json!({ "id": id.to_string(), "role": role }))
                        .collect::<Vec<_>>()
                ))?;
            } else {
                output::print_table(
                    &["KEY", "ROLE"],
                    &keys
                        .iter()
                        .map(|(id, role)| {
                            vec![
                                id.to_string(),
                                if *role == "active" {
                                    "active (signs new tokens)".to_owned()
                                } else {
                                    "verify only".to_owned()
                                },
                            ]
                        })
                        .collect::<Vec<_>>(),
                )?;
            }
        }
        KeysCommand::Rotate { json } => {
            let old = keyring.active_key_id();
            let mut rng = SystemRng::default();
            let mut new_key = SigningKey::generate(&mut rng);
            // A fresh id colliding with a kept key is a 1 in 2^32 event; draw again.
            while keyring.key_ids().any(|id| id == new_key.id()) {
                new_key = SigningKey::generate(&mut rng);
            }
            let new = new_key.id();
            keyring
                .rotate(new_key)
                .map_err(|e| Failure::Error(describe(&e)))?;
            keyfile::save(&ctx.key, &keyring).map_err(|e| Failure::Error(describe(&e)))?;
            if json {
                output::print_json(
                    &json!({ "active": new.to_string(), "previous": old.to_string() }),
                )?;
            } else {
                outln!(
                    "new signing key {new}; key {old} kept for verification (its tokens still redeem)"
                )?;
                outln!("restart servers that use {} to load it", ctx.key.display())?;
            }
        }
        KeysCommand::Retire { key_id } => {
            let id: KeyId = key_id
                .trim()
                .to_ascii_lowercase()
                .parse()
                .map_err(|e| fail("key id", &e))?;
            keyring
                .retire(id)
                .map_err(|e| Failure::Error(describe(&e)))?;
            keyfile::save(&ctx.key, &keyring).map_err(|e| Failure::Error(describe(&e)))?;
            outln!("retired key {id}: tokens it signed no longer redeem")?;
        }
    }
    Ok(())
}
