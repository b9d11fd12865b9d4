//! The manifest: CSV and JSON holding every issued token.

use super::*;

/// A small RFC 4180 reader, independent of the library's.
fn read_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn manifest_csv_and_json_hold_every_token() {
    let batch = issue_sample().await;
    let manifest = Manifest::from_issued(&batch.tokens, Some(QrFileFormat::Png));
    let csv = manifest.to_csv();
    let rows = read_csv(csv.expose_secret());
    assert_eq!(
        rows[0],
        [
            "id",
            "batch",
            "group",
            "policies",
            "not_before",
            "expires",
            "limit",
            "description",
            "token",
            "qr_file"
        ]
    );
    assert_eq!(rows.len(), 3);
    let (a, b) = (&batch.tokens[0], &batch.tokens[1]);
    let id_a = a.token.id().to_string();
    assert_eq!(rows[1][0], id_a);
    assert_eq!(rows[1][1], batch.batch.to_string());
    assert_eq!(rows[1][2], "emea/berlin");
    assert_eq!(rows[1][3], "wifi;vpn");
    assert_eq!(rows[1][4], "");
    assert_eq!(rows[1][5], "2026-03-08T09:00:00Z");
    assert_eq!(rows[1][6], "5");
    assert_eq!(
        rows[1][7],
        "<script>alert('x')</script> & \"quotes\", commas"
    );
    assert_eq!(rows[1][8], a.secret.expose_secret());
    assert_eq!(rows[1][9], format!("{id_a}.png"));
    // Formula-looking text is defused for spreadsheets.
    assert_eq!(rows[2][2], "'-dash");
    assert_eq!(rows[2][4], "2026-03-01T10:00:00Z");
    assert_eq!(rows[2][5], "never");
    assert_eq!(rows[2][6], "unlimited");
    assert_eq!(rows[2][7], "'=HYPERLINK(\"http://evil\")");
    assert_eq!(rows[2][8], b.secret.expose_secret());

    let json: Value = serde_json::from_str(manifest.to_json().expose_secret()).unwrap();
    assert_eq!(json["version"], 1);
    let tokens = json["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0]["id"], id_a.as_str());
    assert_eq!(tokens[0]["policies"], serde_json::json!(["wifi", "vpn"]));
    assert_eq!(tokens[0]["limit"], 5);
    assert_eq!(tokens[0]["not_before"], Value::Null);
    assert_eq!(tokens[0]["token"], a.secret.expose_secret());
    assert_eq!(tokens[1]["group"], "-dash");
    assert_eq!(tokens[1]["limit"], "unlimited");
    assert_eq!(tokens[1]["expires"], "never");
    assert_eq!(
        tokens[1]["description"], "=HYPERLINK(\"http://evil\")",
        "JSON keeps the exact text"
    );

    let without_qr = Manifest::from_issued(&batch.tokens, None);
    assert!(without_qr.entries().iter().all(|e| e.qr_file.is_none()));
    assert!(!format!("{manifest:?}").contains(&a.secret.expose_secret()[5..]));
}
