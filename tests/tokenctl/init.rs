//! tokenctl: `init`, the key file and global options.

use super::*;

#[test]
fn init_is_idempotent_and_creates_a_private_key_file() {
    let env = Env::new();
    let first = env.ok(&["init"]);
    assert!(first.stdout.contains("created key file"), "{first:?}");
    assert!(first.stdout.contains("created database"), "{first:?}");
    assert!(env.db().exists() && env.key().exists());
    #[cfg(unix)]
    assert_eq!(mode(&env.key()), 0o600);
    let key_before = fs::read(env.key()).unwrap();

    let second = env.ok(&["init"]);
    assert!(second.stdout.contains("exists"), "{second:?}");
    assert!(second.stdout.contains("schema up to date"), "{second:?}");
    assert_eq!(fs::read(env.key()).unwrap(), key_before, "key file kept");

    // The output names the key id but never the secret.
    let secret_text = String::from_utf8(key_before).unwrap();
    let secret = secret_text.split_whitespace().nth(2).unwrap();
    for run in [&first, &second] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }

    // Tokens survive a second init.
    let (_, token) = env.issue(&["--group", "g"]);
    env.ok(&["init"]);
    assert_eq!(env.redeem(&token, "d1").code, 0);
}

#[test]
fn commands_before_init_say_to_run_init() {
    let env = Env::new();
    env.run(&["list"]).assert_error("tokenctl init");
    env.run(&["issue", "--group", "g"])
        .assert_error("tokenctl init");
    env.run(&["keys", "list"]).assert_error("tokenctl init");
    // With a key file but no database, commands other than init do not create one.
    env.ok(&["init"]);
    fs::remove_file(env.db()).unwrap();
    env.run(&["list"]).assert_error("does not exist");
    assert!(!env.db().exists());
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    let env = Env::init();
    let (_, token) = env.issue(&["--group", "g"]);
    for bad in [0o644, 0o640, 0o604] {
        chmod(&env.key(), bad);
        for args in [
            vec!["list"],
            vec!["issue", "--group", "g"],
            vec!["redeem", token.as_str(), "--device", "d"],
            vec!["keys", "list"],
            vec!["keys", "rotate"],
            vec!["init"],
        ] {
            let run = env.run(&args);
            run.assert_error("accessible by group or others");
            assert!(run.stderr.contains("chmod 600"), "{run:?}");
        }
    }
    chmod(&env.key(), 0o600);
    assert_eq!(env.redeem(&token, "d").code, 0);
}

#[test]
fn an_invalid_key_file_is_refused_without_echoing_it() {
    let env = Env::new();
    fs::write(env.key(), "obk1 0a0b0c0d c2VjcmV0c2VjcmV0c2VjcmV0 boss\n").unwrap();
    #[cfg(unix)]
    chmod(&env.key(), 0o600);
    let run = env.run(&["init"]);
    run.assert_error("not a valid keyring");
    assert!(!run.stderr.contains("c2VjcmV0"), "{run:?}");
}

#[test]
fn environment_variables_and_default_paths() {
    let env = Env::new();
    // No --db/--key: the defaults in the working directory.
    let run = Run::from(env.bare().arg("init").output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(env.path("onboarding-tokens.db").exists());
    assert!(env.path("onboarding-token.key").exists());

    // The environment names the database, key and organization.
    let mut cmd = env.bare();
    cmd.env("ONBOARDING_TOKEN_DB", env.db())
        .env("ONBOARDING_TOKEN_KEY", env.key())
        .env("ONBOARDING_TOKEN_ORG", "acme")
        .arg("init");
    assert_eq!(Run::from(cmd.output().unwrap()).code, 0);
    let mut cmd = env.bare();
    cmd.env("ONBOARDING_TOKEN_DB", env.db())
        .env("ONBOARDING_TOKEN_KEY", env.key())
        .env("ONBOARDING_TOKEN_ORG", "acme")
        .args(["issue", "--group", "g", "--json"]);
    let issued = Run::from(cmd.output().unwrap()).json();
    assert_eq!(issued["organization"], "acme");
    // The default organization does not see it; --org acme does.
    assert!(env.list_json(&[]).is_empty());
    assert_eq!(env.list_json(&["--org", "acme"]).len(), 1);
    // The last of a repeated option wins (wrappers can be overridden).
    let run = Run::from(
        env.bare()
            .args(["--db", "elsewhere.db", "--key"])
            .arg(env.key())
            .arg("--db")
            .arg(env.db())
            .args(["--org", "acme", "list", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json().as_array().unwrap().len(), 1);
    assert!(!env.path("elsewhere.db").exists());
    // Global options also work after the command.
    let run = Run::from(
        env.bare()
            .args(["list", "--json", "--org", "acme", "--db"])
            .arg(env.db())
            .arg("--key")
            .arg(env.key())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json().as_array().unwrap().len(), 1);
}

#[test]
fn sqlite_urls_are_accepted() {
    let env = Env::new();
    let url = format!("sqlite://{}", env.path("url.db").display());
    let run = Run::from(
        env.bare()
            .args(["--db", &url, "--key"])
            .arg(env.key())
            .arg("init")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(env.path("url.db").exists());
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_urls_need_the_postgres_feature() {
    let env = Env::new();
    let run = Run::from(
        env.bare()
            .args(["--db", "postgres://app:hunter2@localhost/mdm", "--key"])
            .arg(env.key())
            .arg("init")
            .output()
            .unwrap(),
    );
    run.assert_error("postgres");
    assert!(!run.stderr.contains("hunter2"), "{run:?}");
}
