//! Property tests for every parser of outside input in the domain (issue 13): usernames,
//! emails, countries, phone numbers, tokens and codes, cookies, banner documents and Markdown
//! articles. Each property runs on 64 generated cases, so the suite stays quick in CI:
//! no input panics, a refusal is an error value, and what is accepted is normalised
//! idempotently (parsing its own output gives the same value).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use doorman_core::banners::{BannerBoard, Icon, Slot, format_time, parse_time};
use doorman_core::help::{ArticleFields, Slug, parse_article_file, render_markdown};
use doorman_core::phone::PhoneNumber;
use doorman_core::recovery::{RecoveryToken, ResetCode, ResetCodeAttempt, ResetContinuation};
use doorman_core::session::SessionToken;
use doorman_core::trusted_device::DeviceToken;
use doorman_core::{Country, EmailAddress, LoginIdentifier, Password, UserType, Username};
use proptest::prelude::*;

/// Any text, weighted towards what attackers send: control characters, CR/LF, quotes and
/// angle brackets, look-alikes, invisible and right-to-left characters, and long runs.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._@+ -]{0,40}",
        "[\\x00-\\x1f\\x7f<>\"'%;\\\\/&\r\n]{0,40}",
        "[а-яА-Яａ-ｚ\u{200b}\u{202e}\u{feff}\u{301}a-z@.]{0,40}",
        "[a-z]{0,5}".prop_map(|s| s.repeat(200)),
    ]
}

/// Any string bounded at a size the edge would let through.
fn token_like() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9_-]{40,46}", "[0-9a-f]{7,9}\\.[A-Za-z0-9_-]{42,44}", "[A-Za-z0-9_\\-=+/. ]{0,60}", any::<String>()]
}

/// 64 cases a property; a failure prints its minimal input rather than writing a file.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(64) }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn usernames_normalise_idempotently(raw in hostile_text()) {
        if let Ok(name) = Username::parse(&raw) {
            let again = Username::parse(name.as_str()).expect("an accepted name parses again");
            prop_assert_eq!(again.as_str(), name.as_str());
            prop_assert!(name.as_str().chars().all(|c| c.is_ascii_graphic()), "{:?}", name.as_str());
        }
    }

    #[test]
    fn emails_normalise_idempotently(local in "[a-zA-Z0-9._+-]{0,70}", domain in "[a-zA-Z0-9.-]{0,70}", noise in hostile_text()) {
        for raw in [format!("{local}@{domain}"), format!(" {local}@{domain} "), noise, format!("{local}@{domain}\r\nBcc: x@y.z")] {
            if let Ok(email) = EmailAddress::parse(&raw) {
                let again = EmailAddress::parse(email.as_str()).expect("an accepted email parses again");
                prop_assert_eq!(again.as_str(), email.as_str());
                prop_assert!(!email.as_str().chars().any(char::is_control), "no header injection through {:?}", email.as_str());
            }
        }
    }

    #[test]
    fn countries_and_user_types_round_trip(raw in hostile_text()) {
        if let Ok(country) = Country::parse(&raw) {
            prop_assert_eq!(Country::parse(country.as_str()).unwrap(), country);
        }
        if let Ok(kind) = UserType::parse(&raw) {
            prop_assert_eq!(UserType::parse(kind.as_str()).unwrap(), kind);
        }
    }

    #[test]
    fn login_identifiers_take_anything_at_a_bounded_cost(raw in hostile_text()) {
        let login = LoginIdentifier::new(&raw);
        prop_assert!(login.key().chars().count() <= 320 * 3, "lower-casing may grow a character, not more");
        prop_assert_eq!(LoginIdentifier::new(login.key()).key().to_owned(), login.key());
    }

    #[test]
    fn passwords_are_refused_or_accepted_never_a_panic(raw in hostile_text()) {
        let _ = Password::new(&raw);
    }

    #[test]
    fn phone_numbers_normalise_to_e164(raw in prop_oneof!["\\+?[0-9 ().-]{0,30}", hostile_text()], country in "[A-Z]{2}") {
        let country = Country::parse(&country).ok();
        if let Ok(phone) = PhoneNumber::parse(&raw, country) {
            prop_assert!(phone.e164().starts_with('+') && phone.e164()[1..].bytes().all(|b| b.is_ascii_digit()), "{}", phone.e164());
            let again = PhoneNumber::parse(phone.e164(), None).expect("E.164 parses again without a country");
            prop_assert_eq!(again.e164(), phone.e164());
        }
    }

    #[test]
    fn tokens_and_cookies_accept_only_their_own_shape(raw in token_like()) {
        for accepted in [
            RecoveryToken::parse(&raw).map(|t| t.expose().to_owned()),
            DeviceToken::parse(&raw).map(|t| t.expose().to_owned()),
            SessionToken::from_cookie(&raw).map(|t| t.expose().to_owned()),
        ].into_iter().flatten() {
            // 43 base64url characters, after an optional key id and a dot (issue 13).
            let bare = match accepted.split_once('.') {
                Some((id, rest)) => {
                    prop_assert!(id.len() == 8 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                    rest
                }
                None => accepted.as_str(),
            };
            prop_assert_eq!(bare.len(), 43);
            prop_assert!(bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
        if let Some(continuation) = ResetContinuation::parse(&raw) {
            prop_assert_eq!(ResetContinuation::parse(&continuation.encode()).map(|c| c.encode()), Some(continuation.encode()));
        }
    }

    #[test]
    fn generated_tokens_parse(_n in 0..4u8) {
        let keys = doorman_core::keyring::Keyring::single(doorman_core::keys::ServerKey::generate());
        let token = RecoveryToken::generate(&keys);
        prop_assert!(RecoveryToken::parse(token.expose()).is_some());
        let session = SessionToken::generate(&keys);
        prop_assert!(SessionToken::from_cookie(session.expose()).is_some());
    }

    #[test]
    fn codes_ignore_spaces_and_dashes_and_round_trip(digits in "[0-9]{8}", noise in hostile_text()) {
        let typed = format!("{} {}-", &digits[..4], &digits[4..]);
        let code = ResetCode::parse(&typed).expect("a code written as mailed");
        prop_assert_eq!(code.expose(), digits.as_str());
        prop_assert_eq!(ResetCode::parse(&code.grouped()).map(|c| c.expose().to_owned()), Some(digits));
        // A wrong-looking code is a guess, not an error: kept as typed.
        prop_assert_eq!(ResetCodeAttempt::new(&noise).typed().to_owned(), noise.as_str());
        if let Some(code) = ResetCode::parse(&noise) {
            prop_assert!(code.expose().len() == 8 && code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn banner_documents_are_refused_with_errors(raw in prop_oneof![hostile_text(), banner_json()]) {
        if let Ok(board) = BannerBoard::parse_json(&raw) {
            let again = BannerBoard::parse_json(&board.to_json()).expect("a saved document loads again");
            prop_assert_eq!(again.to_json(), board.to_json());
        }
    }

    #[test]
    fn banner_fields_round_trip(raw in hostile_text(), unix in 0i64..4_102_444_800) {
        if let Some(icon) = Icon::parse(&raw) {
            prop_assert_eq!(Icon::parse(icon.as_str()), Some(icon));
        }
        let _ = Slot::parse(&raw);
        let _ = parse_time(&raw);
        let minute = unix - unix % 60;
        prop_assert_eq!(parse_time(&format_time(minute)), Ok(Some(minute)));
    }

    #[test]
    fn articles_are_refused_with_errors_and_render_without_markup(title in hostile_text(), body in markdown(), slug in hostile_text()) {
        if let Ok(slug) = Slug::parse(&slug) {
            prop_assert_eq!(Slug::parse(slug.as_str()).unwrap().as_str().to_owned(), slug.as_str());
        }
        let fields = ArticleFields { slug: "a-page".into(), title: title.clone(), category: "Help".into(), body: body.clone(), related: String::new() };
        let _ = doorman_core::help::Article::parse(&fields, 0);
        let file = format!("---\ntitle: {title}\ncategory: Help\n---\n{body}");
        let _ = parse_article_file(&file, 0);
        let html = render_markdown(&body);
        let lower = html.to_ascii_lowercase();
        // Raw HTML comes out as text, and no link or image points at a script.
        for markup in ["<script", "<img src=x", "<div", "href=\"javascript:", "src=\"javascript:"] {
            prop_assert!(!lower.contains(markup), "{} in {}", markup, html);
        }
    }
}

/// Markdown with raw HTML, scripts and dangerous links mixed into ordinary text.
fn markdown() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<script>alert(1)</script>".to_owned()),
        Just("<img src=x onerror=alert(1)>".to_owned()),
        Just("[click](javascript:alert(1))".to_owned()),
        Just("![x](JaVaScRiPt:alert(1))".to_owned()),
        Just("[ok](https://example.com)".to_owned()),
        Just("\n\n# Title\n".to_owned()),
        Just("| a | b |\n|---|---|\n| 1 | 2 |\n".to_owned()),
        Just("<div onclick=x>".to_owned()),
        Just("```\n<script>\n```".to_owned()),
        "[a-z *_`]{0,20}",
        hostile_text(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// JSON shaped like a banner document, with hostile values.
fn banner_json() -> impl Strategy<Value = String> {
    (hostile_text(), hostile_text(), hostile_text(), 0usize..4).prop_map(|(message, country, icon, n)| {
        let banner = serde_json::json!({"message": message, "country": country, "usertype": "all", "icon": icon, "start": "", "end": ""});
        serde_json::json!({"global": {"message": message, "icon": icon, "start": "", "end": ""}, "responsive": vec![banner; n]}).to_string()
    })
}
