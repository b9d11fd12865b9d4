//! Finding and starting Chromium and chromedriver.

use super::*;

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.push("/usr/bin".into());
    dirs.push("/usr/lib/chromium".into());
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The Chromium and chromedriver binaries, or `None` (after saying so) when the test is
/// to be skipped.
pub(super) fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    // An override names the binary; one that names no file means "not installed".
    let find = |var: &str, names: &[&str]| match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => which(names),
    };
    let chromium = find(
        "CHROMIUM",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
    );
    let driver = find("CHROMEDRIVER", &["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        (c, d) => {
            let missing: Vec<&str> = [("chromium", c.is_none()), ("chromedriver", d.is_none())]
                .into_iter()
                .filter_map(|(name, gone)| gone.then_some(name))
                .collect();
            let message = format!(
                "browser test: {} not installed (Debian: apt-get install -y chromium chromium-driver)",
                missing.join(" and ")
            );
            assert!(
                !in_ci(),
                "{message}; CI is set, so this is a failure, not a skip"
            );
            // Straight to the process's stderr, past the test harness's capture, so that
            // the skip shows in a passing `cargo test`.
            let _ = writeln!(std::io::stderr(), "SKIPPED {message}");
            None
        }
    }
}

/// A chromedriver process, killed on drop.
pub(super) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn start_driver(binary: &Path) -> Driver {
    // A free port: bind, read it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(binary)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    // Wait (bounded) for chromedriver to say it listens.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("started successfully") {
                let _ = tx.send(());
            }
        }
    });
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    rx.recv_timeout(STEP)
        .expect("chromedriver did not report that it started");
    driver
}

pub(super) async fn connect(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session with headless Chromium")
}
