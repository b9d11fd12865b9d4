//! Enrollment links: building them from a base URL, and finding the token in one.

use super::*;

#[test]
fn url_keeps_query_and_fragment_and_encodes() {
    let t = token();
    let s = t.expose_secret();
    let cases = [
        (
            "https://mdm.example.com/enroll",
            format!("https://mdm.example.com/enroll?token={s}"),
        ),
        (
            "http://localhost:8080",
            format!("http://localhost:8080?token={s}"),
        ),
        (
            "https://x.example/e?",
            format!("https://x.example/e?token={s}"),
        ),
        (
            "https://x.example/e?a=1&",
            format!("https://x.example/e?a=1&token={s}"),
        ),
        (
            "https://x.example/e?a=1",
            format!("https://x.example/e?a=1&token={s}"),
        ),
        (
            "https://x.example/e?a=%20b#/enroll",
            format!("https://x.example/e?a=%20b&token={s}#/enroll"),
        ),
        (
            "https://[::1]:8443/e",
            format!("https://[::1]:8443/e?token={s}"),
        ),
        (
            "HTTPS://X.EXAMPLE/e",
            format!("HTTPS://X.EXAMPLE/e?token={s}"),
        ),
    ];
    for (base, expected) in cases {
        let url = EnrollmentUrl::new(base).unwrap();
        assert_eq!(url.render(&t).expose_secret(), expected, "base {base}");
        assert_eq!(extracted(&expected).unwrap(), s);
    }
    let named = EnrollmentUrl::new("https://x.example/e?token=keep").unwrap_err();
    assert_eq!(named, UrlError::ParamAlreadyPresent);
    let url = EnrollmentUrl::new("https://x.example/e?token2=1")
        .unwrap()
        .with_param("t.k~n-1_")
        .unwrap();
    assert_eq!(url.param(), "t.k~n-1_");
    assert!(
        url.render(&t)
            .expose_secret()
            .ends_with(&format!("&t.k~n-1_={s}"))
    );
}

#[test]
fn url_bases_are_validated() {
    let bad = [
        ("", UrlError::NotHttp),
        ("mdm.example.com", UrlError::NotHttp),
        ("ftp://mdm.example.com", UrlError::NotHttp),
        ("javascript:alert(1)", UrlError::NotHttp),
        ("https://", UrlError::MissingHost),
        ("https:///path", UrlError::MissingHost),
        ("https://mdm example.com", UrlError::BadCharacter),
        ("https://mdm.example.com/a b", UrlError::BadCharacter),
        ("https://mdm.example.com/\n", UrlError::BadCharacter),
        ("https://mdmé.example.com", UrlError::BadCharacter),
        ("https://mdm.example.com:port/", UrlError::BadCharacter),
        ("https://mdm.example.com/<script>", UrlError::BadCharacter),
        ("https://[zz::1]/", UrlError::BadCharacter),
        (
            "https://admin:hunter2@mdm.example.com/",
            UrlError::Credentials,
        ),
        ("https://user@mdm.example.com/", UrlError::Credentials),
    ];
    for (base, err) in bad {
        assert_eq!(EnrollmentUrl::new(base).unwrap_err(), err, "base {base:?}");
    }
    let long = format!("https://x.example/{}", "a".repeat(3000));
    assert!(matches!(
        EnrollmentUrl::new(&long),
        Err(UrlError::TooLong { .. })
    ));
    let url = EnrollmentUrl::new("https://x.example").unwrap();
    for name in ["", "a b", "a&b", "a=b", "é", &"p".repeat(65)] {
        assert_eq!(
            url.clone().with_param(name).unwrap_err(),
            UrlError::BadParamName
        );
    }
}

#[test]
fn percent_encoded_token_in_a_link_is_found() {
    let t = token();
    let s = t.expose_secret();
    let encoded: String = s.bytes().map(|b| format!("%{b:02X}")).collect();
    let link = format!("https://x.example/e?site=a+b&token={encoded}#top");
    assert_eq!(extracted(&link).unwrap(), s);
    let path = format!("myapp://enroll/{s}");
    assert_eq!(extracted(&path).unwrap(), s);
}
