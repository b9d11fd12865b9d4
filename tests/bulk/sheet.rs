//! The printable sheet: escaped text and one QR code per token.

use super::*;
use onboarding_token::payload::{EnrollmentUrl, PayloadConfig, PayloadError, PayloadFormat};
use onboarding_token::qr::EcLevel;

#[tokio::test]
async fn sheet_escapes_text_and_inlines_one_qr_per_token() {
    let batch = issue_sample().await;
    let html = render_sheet(
        &batch.tokens,
        &PayloadConfig::new(),
        &SheetOptions::new().with_title("Berlin <b>rollout</b> & co"),
    )
    .unwrap();
    let html = html.expose_secret();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("<b>"));
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;")
    );
    assert!(html.contains("Berlin &lt;b&gt;rollout&lt;/b&gt; &amp; co"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert_eq!(html.matches("<article class=\"card\">").count(), 2);
    assert!(html.contains("@page{size:A4;margin:10mm}"));
    assert!(html.contains("default-src 'none'"));
    assert!(html.contains("up to 5 devices"));
    assert!(html.contains("unlimited devices"));
    assert!(html.contains("no expiry"));
    assert!(html.contains("valid from 2026-03-01 10:00 UTC"));
    assert!(html.contains("until 2026-03-08 09:00 UTC"));
    assert!(html.contains(&format!(
        "id {}",
        &batch.tokens[0].token.id().to_string()[..8]
    )));
    for issued in &batch.tokens {
        let typed = onboarding_token::payload::grouped_lines(&issued.secret);
        assert!(html.contains(typed.expose_secret()));
        // The token appears only in the typed form, never as one string.
        assert!(!html.contains(issued.secret.expose_secret()));
    }
}

#[tokio::test]
async fn sheet_pages_paper_and_formats() {
    let batch = issue_sample().await;
    let mut many = Vec::new();
    for _ in 0..4 {
        many.extend(batch.tokens.iter().cloned());
    }
    let config =
        PayloadConfig::new().with_url(EnrollmentUrl::new("https://mdm.example.com/e").unwrap());
    let html = render_sheet(
        &many,
        &config,
        &SheetOptions::new()
            .with_paper(Paper::Letter)
            .with_format(PayloadFormat::Url)
            .with_ec_level(EcLevel::L),
    )
    .unwrap();
    let html = html.expose_secret();
    assert!(html.contains("@page{size:letter;margin:10mm}"));
    assert_eq!(html.matches("<section class=\"page\">").count(), 2);
    assert!(html.contains("Page 2 of 2"));
    assert_eq!(html.matches("<svg").count(), 8);
    assert!(html.contains("Scan with the camera"));

    let err = render_sheet(
        &many,
        &PayloadConfig::new(),
        &SheetOptions::new().with_format(PayloadFormat::Android),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        SheetError::Payload(PayloadError::NotConfigured(PayloadFormat::Android))
    ));
}
