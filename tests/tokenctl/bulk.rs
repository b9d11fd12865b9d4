//! tokenctl: `bulk` from a template or a CSV specification, and its refusals.

use super::*;

fn manifest(dir: &Path) -> Vec<Value> {
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    json["tokens"].as_array().unwrap().clone()
}

#[test]
fn bulk_from_a_template_writes_manifest_sheet_and_png_qr_files_that_redeem() {
    let env = Env::init();
    let out = env.path("sheets/berlin");
    let run = env.ok(&[
        "bulk",
        "--group",
        "emea/berlin",
        "--count",
        "3",
        "--policy",
        "wifi-corp",
        "--max-uses",
        "2",
        "--description",
        "Berlin <laptops> & co",
        "--out-dir",
        out.to_str().unwrap(),
        "--qr",
        "png",
        "--json",
    ]);
    assert_eq!(run.stderr, "", "no progress bar without a terminal");
    let summary = run.json();
    assert_eq!(summary["count"], 3);
    let batch = summary["batch"].as_str().unwrap();
    assert!(is_id(batch));
    assert!(!run.stdout.contains("obt1_"));

    let entries = manifest(&out);
    assert_eq!(entries.len(), 3);
    let mut names: BTreeSet<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in ["manifest.csv", "manifest.json", "sheet.html"] {
        assert!(names.remove(name), "{name} missing");
    }
    let sheet = fs::read_to_string(out.join("sheet.html")).unwrap();
    let csv = fs::read_to_string(out.join("manifest.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with(
        "id,batch,group,policies,not_before,expires,limit,description,token,qr_file\n"
    ));
    assert!(sheet.contains("Berlin &lt;laptops&gt; &amp; co"));
    for entry in &entries {
        let id = entry["id"].as_str().unwrap();
        let token = entry["token"].as_str().unwrap();
        let qr_file = entry["qr_file"].as_str().unwrap();
        assert_eq!(qr_file, format!("{id}.png"));
        assert!(names.remove(qr_file), "{qr_file} missing");
        assert_eq!(entry["batch"], batch);
        assert_eq!(entry["group"], "emea/berlin");
        assert_eq!(entry["limit"], 2);
        assert_eq!(decode_png(&fs::read(out.join(qr_file)).unwrap()), [token]);
        assert!(csv.contains(token) && csv.contains(id));
        assert!(sheet.contains(&id[..8]));
        assert_eq!(env.redeem(token, "scanned").code, 0, "{id}");
    }
    assert!(names.is_empty(), "unexpected files: {names:?}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&out), 0o700);
        for entry in fs::read_dir(&out).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
    }
    // No staging directory is left beside it.
    let siblings: Vec<_> = fs::read_dir(env.path("sheets")).unwrap().collect();
    assert_eq!(siblings.len(), 1);
    assert_eq!(env.list_json(&["--batch", batch]).len(), 3);

    // The human summary.
    let human = env.ok(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "1",
        "--out-dir",
        env.path("h").to_str().unwrap(),
    ]);
    assert!(
        human.stdout.contains("issued 1 tokens in batch"),
        "{human:?}"
    );
    assert!(human.stdout.contains("manifest.csv"));
}

#[test]
fn bulk_from_a_csv_spec() {
    let env = Env::init();
    let spec = env.path("spec.csv");
    fs::write(
        &spec,
        "group,policies,count,limit,expires,description,metadata\n\
         emea/berlin,wifi-corp;vpn,2,3,7d,Berlin laptops,site=berlin\n\
         # kiosks\n\
         amer/nyc,,1,unlimited,never,\"Kiosks, lobby\",\n",
    )
    .unwrap();
    let out = env.path("out");
    let run = env.ok(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--format",
        "url",
        "--url-base",
        "https://mdm.example.com/enroll",
        "--qr",
        "png",
    ]);
    assert!(run.stdout.contains("issued 3 tokens"), "{run:?}");
    let entries = manifest(&out);
    let groups: Vec<&str> = entries
        .iter()
        .map(|e| e["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["emea/berlin", "emea/berlin", "amer/nyc"]);
    assert_eq!(
        entries[0]["policies"],
        serde_json::json!(["wifi-corp", "vpn"])
    );
    assert_eq!(entries[0]["limit"], 3);
    assert_eq!(entries[2]["limit"], "unlimited");
    assert_eq!(entries[2]["expires"], "never");
    assert_eq!(entries[2]["description"], "Kiosks, lobby");
    for entry in &entries {
        let token = entry["token"].as_str().unwrap();
        // The QR codes hold the link, per --format.
        let decoded = decode_png(&fs::read(out.join(entry["qr_file"].as_str().unwrap())).unwrap());
        assert_eq!(
            decoded,
            [format!("https://mdm.example.com/enroll?token={token}")]
        );
        assert_eq!(env.redeem(&decoded[0], "d").code, 0);
    }
    let berlin = env
        .ok(&["show", entries[0]["id"].as_str().unwrap(), "--json"])
        .json();
    assert_eq!(berlin["metadata"]["site"], "berlin");

    // SVG is the default file format.
    let svg_out = env.path("svg");
    env.ok(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        svg_out.to_str().unwrap(),
    ]);
    for entry in manifest(&svg_out) {
        let name = entry["qr_file"].as_str().unwrap();
        assert!(name.ends_with(".svg"));
        assert!(
            fs::read_to_string(svg_out.join(name))
                .unwrap()
                .starts_with("<svg")
        );
    }
}

#[test]
fn bulk_with_a_bad_csv_exits_1_naming_line_and_column_and_issues_nothing() {
    let env = Env::init();
    let spec = env.path("spec.csv");
    fs::write(
        &spec,
        "group,count,limit\n\
         emea/berlin,2,1\n\
         amer/nyc,many,1\n\
         apac//tokyo,1,0\n",
    )
    .unwrap();
    let out = env.path("out");
    let run = env.run(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    run.assert_error("nothing was issued");
    assert!(run.stderr.contains("line 3, column `count`"), "{run:?}");
    assert!(run.stderr.contains("line 4, column `group`"), "{run:?}");
    assert!(run.stderr.contains("line 4, column `limit`"), "{run:?}");
    assert!(
        run.stderr.lines().all(|l| l.starts_with("tokenctl: ")),
        "{run:?}"
    );
    assert!(!out.exists());
    assert!(env.list_json(&["--all"]).is_empty());

    // Unknown columns, missing files, non-UTF-8 files.
    fs::write(&spec, "group,count,colour\ng,1,red\n").unwrap();
    env.run(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("colour");
    env.run(&[
        "bulk",
        "--spec",
        "missing.csv",
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("missing.csv");
    fs::write(&spec, b"group,count\n\xff\xfe,1\n").unwrap();
    env.run(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("UTF-8");
    assert!(!out.exists());
    assert!(env.list_json(&["--all"]).is_empty());
}

#[test]
fn bulk_refuses_a_non_empty_directory_and_bad_template_values() {
    let env = Env::init();
    let out = env.path("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("old.txt"), "keep me").unwrap();
    env.run(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "2",
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("not empty");
    assert_eq!(fs::read_to_string(out.join("old.txt")).unwrap(), "keep me");
    env.run(&[
        "bulk",
        "--group",
        "g g",
        "--count",
        "2",
        "--out-dir",
        env.path("x").to_str().unwrap(),
    ])
    .assert_error("--group");
    env.run(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "2",
        "--expires-at",
        "2001-01-01T00:00:00Z",
        "--out-dir",
        env.path("x").to_str().unwrap(),
    ])
    .assert_error("expiry");
    assert!(env.list_json(&["--all"]).is_empty());
    assert!(!env.path("x").exists());

    // An existing empty directory is fine.
    let empty = env.path("empty");
    fs::create_dir(&empty).unwrap();
    env.ok(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "2",
        "--out-dir",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(manifest(&empty).len(), 2);
}
