//! The example server, started on a free port.

use super::*;

pub(super) struct Server {
    pub(super) base: String,
    _app: Arc<App<AnyStore>>,
    _dir: tempfile::TempDir,
}

pub(super) async fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = AnyStore::open(dir.path().join("tokens.db").to_str().unwrap())
        .await
        .unwrap();
    let mut rng = SystemRng::default();
    let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), store);
    let settings = Settings {
        organization: OrgId::new("acme").unwrap(),
        admin_key: AdminKey::new(ADMIN).unwrap(),
        payloads: PayloadConfig::new(),
        enroll_limit: RateLimit::new(1000, Duration::from_secs(1)).unwrap(),
        max_batch: 100,
    };
    let app = App::new(service, settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app::serve(
        listener,
        app::router(Arc::clone(&app)),
        std::future::pending(),
    ));
    Server {
        base: format!("http://{addr}"),
        _app: app,
        _dir: dir,
    }
}
