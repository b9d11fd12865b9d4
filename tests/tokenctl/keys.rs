//! tokenctl: `keys rotate|list|retire`.

use super::*;

#[test]
fn keys_rotate_keeps_old_tokens_and_list_shows_no_secret() {
    let env = Env::init();
    let (_, old_token) = env.issue(&["--group", "g", "--max-uses", "3"]);
    let before = env.ok(&["keys", "list", "--json"]).json();
    let old_key = before[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        before,
        serde_json::json!([{ "id": old_key, "role": "active" }])
    );

    let rotated = env.ok(&["keys", "rotate", "--json"]).json();
    assert_eq!(rotated["previous"], old_key.as_str());
    let new_key = rotated["active"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    #[cfg(unix)]
    assert_eq!(mode(&env.key()), 0o600);

    let after = env.ok(&["keys", "list", "--json"]).json();
    assert_eq!(
        after,
        serde_json::json!([
            { "id": new_key, "role": "active" },
            { "id": old_key, "role": "verify" },
        ])
    );
    let table = env.ok(&["keys", "list"]);
    assert!(table.stdout.contains(&new_key) && table.stdout.contains("verify only"));
    // No secret from the key file appears in any output.
    let file = fs::read_to_string(env.key()).unwrap();
    for secret in file.lines().filter_map(|l| l.split_whitespace().nth(2)) {
        assert!(!table.stdout.contains(secret));
        assert!(!after.to_string().contains(secret));
        assert!(!rotated.to_string().contains(secret));
    }

    // Old tokens still redeem; new ones are signed with the new key.
    assert_eq!(env.redeem(&old_token, "d1").code, 0);
    let issued = env.ok(&["issue", "--group", "g", "--json"]).json();
    assert_eq!(issued["key_id"], new_key.as_str());
    let new_token = issued["token"].as_str().unwrap().to_owned();

    // Retiring the old key invalidates its tokens only.
    env.run(&["keys", "retire", &new_key])
        .assert_error("active");
    env.ok(&["keys", "retire", &old_key]);
    env.redeem(&old_token, "d2")
        .assert_rejected("invalid token");
    assert_eq!(env.redeem(&new_token, "d2").code, 0);
    env.run(&["keys", "retire", "nothex"])
        .assert_error("key id");
    let leftovers: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
