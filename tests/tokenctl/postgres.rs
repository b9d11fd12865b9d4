//! tokenctl: the commands against PostgreSQL.

use super::*;

/// The same commands against PostgreSQL (`--db postgres://…`, feature `postgres`), in an
/// organization of this run's own so concurrent runs do not meet.
#[cfg(feature = "postgres")]
#[test]
fn postgres_urls_work_end_to_end() {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set; run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/test",
    );
    let env = Env::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let org = format!("tokenctl-{}-{nanos}", std::process::id());
    let run = |args: &[&str]| {
        Run::from(
            env.bare()
                .args(["--db", &url, "--org", &org, "--key"])
                .arg(env.key())
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let init = run(&["init"]);
    assert_eq!(init.code, 0, "{init:?}");
    assert!(init.stdout.contains("(postgres)"), "{init:?}");
    let issued = run(&["issue", "--json", "--group", "g", "--max-uses", "2"]).json();
    let token = issued["token"].as_str().unwrap();
    let id = issued["id"].as_str().unwrap();
    for device in ["a", "b"] {
        let r = run(&["redeem", token, "--device", device]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    run(&["redeem", token, "--device", "c"]).assert_rejected("exhausted");
    let listed = run(&["list", "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "exhausted");
    let shown = run(&["show", id]);
    assert!(shown.stdout.contains("redemptions  2"), "{shown:?}");
    assert!(
        run(&["revoke", "--group", "g"])
            .stdout
            .contains("revoked 1 token")
    );
    assert_eq!(run(&["show", id, "--json"]).json()["status"], "revoked");
}
