//! The test: the admin console driven in headless Chromium.

use super::driver::{browser_binaries, connect, start_driver};
use super::helpers::{
    decode_qr, displayed, enroll, fill, row_state, save_screenshot, snapshot, text_of, wait_for,
};
use super::server::start_server;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    let Some((chromium, driver_binary)) = browser_binaries() else {
        return;
    };
    let server = start_server().await;
    let driver = start_driver(&driver_binary);
    let profile = tempfile::tempdir().unwrap();
    let client = connect(&driver, &chromium, profile.path()).await;

    // Run the scenario in its own task so that the browser is closed even when it fails.
    let outcome = tokio::spawn(scenario(client.clone(), server.base.clone())).await;
    let _ = client.close().await;
    drop(driver);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn scenario(c: Client, base: String) {
    let http = reqwest::Client::new();

    // --- The admin key: a wrong one is refused, the right one unlocks; kept for the tab.
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for("the login form", || async {
        Ok(displayed(&c, "#admin-key").await?.then_some(()))
    })
    .await;
    assert!(!displayed(&c, "#console").await.unwrap());
    fill(&c, "#admin-key", "not-the-admin-key-at-all").await;
    c.find(Locator::Css("#unlock"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let refused = wait_for("the refusal", || async {
        let t = text_of(&c, "#login-error").await?;
        Ok((!t.is_empty()).then_some(t))
    })
    .await;
    assert!(refused.contains("not accepted"), "{refused}");
    fill(&c, "#admin-key", ADMIN).await;
    c.find(Locator::Css("#unlock"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the console", || async {
        Ok(displayed(&c, "#console").await?.then_some(()))
    })
    .await;
    assert_eq!(text_of(&c, "#org-name").await.unwrap(), "organization acme");
    let kept = c
        .execute(
            "return sessionStorage.getItem('onboarding-token-admin-key');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!(ADMIN), "the key is kept in sessionStorage");
    // Entered once: a reload of the tab goes straight to the console.
    c.refresh().await.unwrap();
    wait_for("the console after a reload", || async {
        Ok((displayed(&c, "#console").await? && !displayed(&c, "#login").await?).then_some(()))
    })
    .await;
    // From here on the page is never reloaded: this marker would vanish.
    c.execute("window.__noReload = 'still here';", vec![])
        .await
        .unwrap();

    // --- Create a two-device token through the form.
    fill(&c, "#c-group", "emea/berlin").await;
    fill(&c, "#c-policies", "wifi-corp, vpn").await;
    fill(&c, "#c-max-uses", "2").await;
    fill(&c, "#c-description", "Front desk tablets").await;
    c.find(Locator::Css("#c-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the new token's QR code", || async {
        let loaded = c
            .execute(
                "const img = document.getElementById('created-qr'); \
                 return !document.getElementById('created').hidden && img.complete && img.naturalWidth > 0;",
                vec![],
            )
            .await?;
        Ok((loaded == json!(true)).then_some(()))
    })
    .await;
    snapshot(&c, "1-created").await;
    let shown_token = text_of(&c, "#created-token").await.unwrap();
    assert!(shown_token.starts_with("obt1_"), "{shown_token}");
    let typed = text_of(&c, "#created-typed").await.unwrap();
    assert_eq!(typed.split_whitespace().collect::<String>(), shown_token);

    // The QR code as displayed: large enough to scan from a screen, and it scans.
    let qr = c.find(Locator::Css("#created-qr")).await.unwrap();
    c.execute(
        "arguments[0].scrollIntoView({block: 'center'});",
        vec![serde_json::to_value(&qr).unwrap()],
    )
    .await
    .unwrap();
    let (_, _, width, height) = qr.rectangle().await.unwrap();
    assert!(
        width >= 300.0 && (width - height).abs() < 1.0,
        "QR shown {width}x{height}"
    );
    let picture = qr.screenshot().await.unwrap();
    save_screenshot("2-qr", &picture);
    let scanned = decode_qr(&picture);
    assert_eq!(
        scanned,
        vec![shown_token.clone()],
        "the on-screen QR code scans to the token"
    );
    let token = scanned.into_iter().next().unwrap();

    // The copy button.
    c.find(Locator::Css("#copy-token"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let copied = wait_for("the copy confirmation", || async {
        let t = text_of(&c, "#copy-status").await?;
        Ok((!t.is_empty()).then_some(t))
    })
    .await;
    assert!(copied.starts_with("Cop"), "{copied}");

    // The list shows it, active, 0 / 2.
    let id = c
        .execute(
            "return document.querySelector('#token-rows tr').dataset.id;",
            vec![],
        )
        .await
        .unwrap();
    let id = id.as_str().unwrap().to_owned();
    let (status, uses) = wait_for("the new token's row", || row_state(&c, &id)).await;
    assert_eq!((status.as_str(), uses.as_str()), ("active", "0 / 2"));
    let row_text = text_of(&c, &format!("tr[data-id=\"{id}\"]")).await.unwrap();
    for expected in ["emea/berlin", "wifi-corp, vpn", "Front desk tablets"] {
        assert!(row_text.contains(expected), "{row_text}");
    }

    // --- Two devices enroll with the scanned token; a third is turned away.
    for device in ["SN-TABLET-1", "SN-TABLET-2"] {
        let (status, body) = enroll(&http, &base, &token, device).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["group"], "emea/berlin");
        assert_eq!(body["policies"], json!(["wifi-corp", "vpn"]));
    }
    let (status, body) = enroll(&http, &base, &token, "SN-TABLET-3").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("exhausted")));

    // The list shows it exhausted without a reload.
    wait_for("the row to show the token exhausted", || async {
        let state = row_state(&c, &id).await?;
        Ok(state
            .filter(|(s, u)| s == "exhausted" && u == "2 / 2")
            .map(|_| ()))
    })
    .await;
    snapshot(&c, "3-exhausted").await;

    // --- Revoke another token from the page.
    let other: Value = http
        .post(format!("{base}/api/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"group": "amer/nyc", "max_uses": 5, "description": "Lobby kiosk"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_id = other["id"].as_str().unwrap().to_owned();
    let other_token = other["token"].as_str().unwrap().to_owned();
    wait_for("the other token's row", || async {
        Ok(row_state(&c, &other_id)
            .await?
            .filter(|(s, _)| s == "active"))
    })
    .await;
    // Click its Revoke button (retried if a refresh replaced the row meanwhile).
    wait_for("the revoke form", || async {
        let row = c
            .find(Locator::Css(&format!("tr[data-id=\"{other_id}\"]")))
            .await?;
        if row
            .find_all(Locator::Css(".revoke-reason"))
            .await?
            .is_empty()
        {
            row.find(Locator::Css(".revoke-btn")).await?.click().await?;
        }
        let open = !row
            .find_all(Locator::Css(".revoke-reason"))
            .await?
            .is_empty();
        Ok(open.then_some(()))
    })
    .await;
    let row_css = format!("tr[data-id=\"{other_id}\"]");
    fill(&c, &format!("{row_css} .revoke-reason"), "kiosk stolen").await;
    snapshot(&c, "4-revoking").await;
    c.find(Locator::Css(&format!("{row_css} .revoke-confirm")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the row to show the token revoked", || async {
        let row = c.find(Locator::Css(&row_css)).await?;
        let status = row.attr("data-status").await?.unwrap_or_default();
        let reason = row.find_all(Locator::Css(".reason")).await?;
        let reason = match reason.first() {
            Some(r) => r.text().await?,
            None => String::new(),
        };
        Ok((status == "revoked" && reason == "kiosk stolen").then_some(()))
    })
    .await;
    let (status, body) = enroll(&http, &base, &other_token, "SN-KIOSK").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("revoked")));

    // --- Filters.
    c.find(Locator::Css("#f-status"))
        .await
        .unwrap()
        .select_by_value("revoked")
        .await
        .unwrap();
    c.find(Locator::Css("#f-apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("only the revoked token listed", || async {
        let ids = c
            .execute(
                "return [...document.querySelectorAll('#token-rows tr')].map(r => r.dataset.id);",
                vec![],
            )
            .await?;
        Ok((ids == json!([other_id])).then_some(()))
    })
    .await;
    c.find(Locator::Css("#f-clear"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // --- A printable batch from the bulk form.
    fill(&c, "#b-group", "apac/tokyo").await;
    fill(&c, "#b-count", "3").await;
    fill(&c, "#b-description", "Tokyo phones").await;
    c.find(Locator::Css("#b-submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for("the batch result", || async {
        Ok(displayed(&c, "#batch-result").await?.then_some(()))
    })
    .await;
    let info = text_of(&c, "#batch-info").await.unwrap();
    assert!(info.ends_with("3 tokens."), "{info}");
    let console_window = c.window().await.unwrap();
    c.find(Locator::Css("#sheet-open"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let sheet_window = wait_for("the sheet's window", || async {
        let windows = c.windows().await?;
        Ok(windows.into_iter().find(|w| *w != console_window))
    })
    .await;
    c.switch_to_window(sheet_window).await.unwrap();
    let (cards, dashed, qr_codes) = wait_for("the printable sheet", || async {
        let found = c
            .execute(
                "const cards = document.querySelectorAll('article.card'); \
                 return cards.length ? [cards.length, getComputedStyle(cards[0]).borderTopStyle, \
                 cards[0].querySelectorAll('svg').length] : null;",
                vec![],
            )
            .await?;
        Ok(found.as_array().map(|a| {
            (
                a[0].as_u64(),
                a[1].as_str().map(str::to_owned),
                a[2].as_u64(),
            )
        }))
    })
    .await;
    snapshot(&c, "5-sheet").await;
    assert_eq!(cards, Some(3), "one card per token");
    assert_eq!(qr_codes, Some(1), "a QR code on each card");
    assert_eq!(
        dashed.as_deref(),
        Some("dashed"),
        "the sheet's own style applies"
    );
    c.close_window().await.unwrap();
    c.switch_to_window(console_window).await.unwrap();

    // --- Readable on a phone: one column, labelled cards, nothing wider than the screen.
    c.set_window_size(390, 844).await.unwrap();
    let layout = wait_for("the phone layout", || async {
        let v = c
            .execute(
                "const head = getComputedStyle(document.querySelector('#tokens thead')).display; \
                 const cols = getComputedStyle(document.querySelector('.columns')).gridTemplateColumns.split(' ').length; \
                 return [head, cols, document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await?;
        Ok((v[0] == "none").then_some(v))
    })
    .await;
    assert_eq!(layout[1], 1, "one column on a phone");
    assert!(
        layout[2].as_u64().unwrap() <= layout[3].as_u64().unwrap(),
        "no horizontal scrolling: {layout}"
    );
    snapshot(&c, "6-phone").await;
    c.execute(
        "document.getElementById('list-section').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    snapshot(&c, "7-phone-list").await;

    let marker = c
        .execute("return window.__noReload;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!("still here"), "the page was never reloaded");
}
