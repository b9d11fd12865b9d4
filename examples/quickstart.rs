//! Quick start: issue a 2-device token, redeem it from two devices, retry from the first
//! (a replay that consumes nothing), get a third device rejected as exhausted, and revoke
//! another token. Everything runs in memory; no services, no arguments.

use onboarding_token::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server's signing keys (in production: loaded from a secrets manager or key file).
    let mut rng = SystemRng::default();
    let keyring = Keyring::new(SigningKey::generate(&mut rng));
    let service = Onboarding::new(keyring, MemoryStore::new());

    // An admin issues a token for 2 devices in the Berlin group, with two policies.
    let org = OrgId::new("acme")?;
    let spec = TokenSpec::new(org.clone(), GroupId::new("emea/berlin")?)
        .with_policies([PolicyId::new("wifi-corp")?, PolicyId::new("vpn-always-on")?])
        .with_usage_limit(UsageLimit::limited(2).ok_or("limit must be positive")?)
        .with_description("Berlin office laptops")
        .with_metadata(Metadata::from_pairs([("site", "berlin-mitte")])?);
    let issued = service.issue(spec).await?;
    println!("issued token {}", issued.token.id());
    println!(
        "  compact form (goes into the QR code): {}",
        issued.secret.expose_secret()
    );
    println!(
        "  expires {}",
        issued
            .token
            .validity()
            .expiry
            .at()
            .map_or("never".into(), |t| t.to_rfc3339())
    );
    let token = issued.secret.expose_secret();

    // Two devices scan it and enroll.
    for serial in ["SN-0001", "SN-0002"] {
        let e = service.redeem(token, &DeviceId::new(serial)?).await?;
        println!(
            "{serial}: enrolled into {}/{} with policies [{}], use {} of {}, replay={}",
            e.organization(),
            e.group(),
            e.policies()
                .iter()
                .map(PolicyId::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            e.uses,
            e.limit
                .max_uses()
                .map_or("unlimited".into(), |n| n.to_string()),
            e.replay,
        );
    }

    // The first device retries after a network failure: same enrollment, nothing consumed.
    let retry = service.redeem(token, &DeviceId::new("SN-0001")?).await?;
    println!(
        "SN-0001 again: replay={}, uses still {} (first enrolled at {})",
        retry.replay, retry.uses, retry.redeemed_at
    );

    // A third device is turned away: both uses are taken.
    match service.redeem(token, &DeviceId::new("SN-0003")?).await {
        Ok(_) => return Err("a third device must not enroll with a 2-use token".into()),
        Err(err) => println!(
            "SN-0003: rejected: {err} (device sees: {})",
            err.device_facing()
        ),
    }

    // Another token leaks; the admin revokes it and the next attempt fails.
    let leaked = service
        .issue(TokenSpec::new(org.clone(), GroupId::new("amer/austin")?))
        .await?;
    service
        .revoke(
            &RevokeTarget::Token(leaked.token.id()),
            "posted in a public chat",
        )
        .await?;
    match service
        .redeem(leaked.secret.expose_secret(), &DeviceId::new("SN-0100")?)
        .await
    {
        Ok(_) => return Err("a revoked token must not enroll".into()),
        Err(err) => println!(
            "SN-0100 with the leaked token: rejected: {err} (device sees: {})",
            err.device_facing()
        ),
    }

    // The admin's view: every token with its status and usage.
    println!("\ntokens in {org}:");
    let page = service
        .list(&service.query().with_organization(org))
        .await?;
    for t in &page.tokens {
        println!(
            "  {}  {:<12} {:<10} uses {}/{}  {}",
            t.id(),
            t.group(),
            service.status(t),
            t.uses(),
            t.usage_limit()
                .max_uses()
                .map_or("∞".into(), |n| n.to_string()),
            t.description(),
        );
    }
    Ok(())
}
