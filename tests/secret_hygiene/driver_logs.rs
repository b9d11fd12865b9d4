//! What the SQL stores' driver logs: no secret in it.

use super::*;

/// Every log record, formatted.
struct Capture;

fn captured() -> &'static Mutex<Vec<String>> {
    static LOG: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(Vec::new()))
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        captured().lock().unwrap().push(line);
    }
    fn flush(&self) {}
}

fn install_capture() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_boxed_logger(Box::new(Capture)).expect("the only logger");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Issues, redeems (success, replay, exhausted, forged, malformed), inspects, lists and
/// revokes through `store`; returns the token strings involved.
async fn exercise<S: TokenStore>(store: S) -> Vec<TokenString> {
    let service = Onboarding::new(Keyring::new(key()), store).with_clock(ManualClock::new(t0()));
    let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap())
        .with_description("desc")
        .with_metadata(Metadata::from_pairs([("k", "v")]).unwrap());
    let one = service.issue(spec.clone()).await.unwrap();
    let batch = service.issue_many(spec, 3).await.unwrap();
    let a = DeviceId::new("a").unwrap();
    let b = DeviceId::new("b").unwrap();
    let text = one.secret.expose_secret();
    service.redeem(text, &a).await.unwrap();
    service.redeem(text, &a).await.unwrap();
    assert!(service.redeem(text, &b).await.is_err());
    let forged = Keyring::new(SigningKey::from_bytes(key().id(), &[1; 32])).sign(&one.token.id());
    assert!(service.redeem(forged.expose_secret(), &b).await.is_err());
    assert!(service.redeem(&text[..40], &b).await.is_err());
    service.inspect(text).await.unwrap();
    service.list(&service.query()).await.unwrap();
    service.redemptions(one.token.id()).await.unwrap();
    service
        .revoke(&RevokeTarget::Batch(batch.batch), "r")
        .await
        .unwrap();
    assert!(
        service
            .redeem(batch.tokens[0].secret.expose_secret(), &b)
            .await
            .is_err()
    );
    let mut all = vec![one.secret, forged];
    all.extend(batch.tokens.into_iter().map(|i| i.secret));
    all
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_log_output_never_contains_secrets() {
    install_capture();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("tokens.db"))
        .await
        .unwrap();
    let tokens = exercise(store).await;
    let key_path = dir.path().join("k.key");
    keyfile::save(&key_path, &Keyring::new(key())).unwrap();
    keyfile::load(&key_path).unwrap();
    let lines = captured().lock().unwrap().clone();
    // sqlx does log (its statements, at debug level): the capture works.
    assert!(
        lines.iter().any(|l| l.contains("sqlx::query")),
        "{} lines captured",
        lines.len()
    );
    let secrets = Secrets::new(&tokens.iter().collect::<Vec<_>>());
    for line in &lines {
        secrets.assert_absent("a log record", line);
    }
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_log_output_never_contains_secrets() {
    install_capture();
    let store = support::postgres::fresh_store().await;
    let tokens = exercise(store).await;
    let lines = captured().lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.contains("sqlx::query")));
    let secrets = Secrets::new(&tokens.iter().collect::<Vec<_>>());
    for line in &lines {
        secrets.assert_absent("a log record", line);
    }
}

#[tokio::test]
async fn memory_store_logs_nothing() {
    install_capture();
    // Other tests in this binary may log concurrently (sqlx); look only for records not
    // from sqlx.
    exercise(MemoryStore::new()).await;
    let lines = captured().lock().unwrap().clone();
    assert!(
        lines.iter().all(|l| l.contains("sqlx")),
        "records from outside sqlx: {lines:?}"
    );
}
