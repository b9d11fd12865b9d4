//! `PayloadConfig`: every format rendered, and the token extracted from each.

use super::*;

#[test]
fn payload_config_renders_every_format_and_each_extracts() {
    let t = token();
    let config = PayloadConfig::new()
        .with_url(EnrollmentUrl::new("https://mdm.example.com/e").unwrap())
        .with_android(android());
    for format in PayloadFormat::ALL {
        let payload = config.render(format, &t).unwrap();
        assert_eq!(
            extracted(payload.expose_secret()).unwrap(),
            t.expose_secret(),
            "format {format}"
        );
        assert_eq!(format.to_string().parse::<PayloadFormat>().unwrap(), format);
    }
    let bare = PayloadConfig::new();
    for format in [
        PayloadFormat::Url,
        PayloadFormat::Android,
        PayloadFormat::Nfc,
    ] {
        assert_eq!(
            bare.render(format, &t).unwrap_err(),
            PayloadError::NotConfigured(format)
        );
    }
    // KME falls back to the default token key without settings.
    let kme = bare.render(PayloadFormat::Kme, &t).unwrap();
    assert!(
        kme.expose_secret()
            .contains("clouddpc.EXTRA_ENROLLMENT_TOKEN")
    );
    assert!("KME".parse::<PayloadFormat>().is_ok());
    assert!("qr".parse::<PayloadFormat>().is_err());
}
