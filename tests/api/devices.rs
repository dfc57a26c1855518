//! S9.2: what security emails and the sessions list say about a device. The `User-Agent`
//! header is the client's own text; only a browser and system from a fixed list
//! (`crates/core/src/device.rs`) may appear, never any of the header itself.

use crate::helpers::{Backend, PASSWORD, Response, TestApp};
use crate::on_both_backends;
use serde_json::json;

on_both_backends!(
    s9_2_a_reset_with_a_hostile_user_agent_sends_an_email_without_its_text,
    s9_2_the_sessions_list_names_browsers_never_the_raw_header,
);

/// The header from the outside review, and a few more ways to write text into a notice.
const HOSTILE: &str = "Mozilla/5.0 <script>alert(1)</script> Call 1-800-555-0100 or visit evil.example/secure";
const HOSTILE_IN_PLATFORM: &str = "Mozilla/5.0 (Windows NT 10.0; Call 1-800-555-0100 or visit evil.example) Chrome/142.0.0.0";
const FIREFOX: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0";
/// Pieces of the hostile headers that must never be shown in an email.
const NEVER_SHOWN: [&str; 7] = ["script", "alert", "1-800", "555-0100", "evil.example", "Call", "visit"];
/// The same for pages, which have scripts of their own.
const NEVER_ON_PAGES: [&str; 4] = ["alert(1)", "1-800", "555-0100", "evil.example"];

fn browser(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder().user_agent(user_agent).cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn assert_clean(what: &str, text: &str) {
    let pieces: &[&str] = if what.contains("page") { &NEVER_ON_PAGES } else { &NEVER_SHOWN };
    for piece in pieces {
        assert!(!text.contains(piece), "{what} shows {piece:?} from the User-Agent: {text}");
    }
}

/// Resets maria's password from a client with `user_agent` and returns the "password
/// changed" email.
async fn reset_from(app: &TestApp, user_agent: &str, new_password: &str) -> crate::helpers::Mail {
    let token = app.reset_mail("maria").await.token("reset-password");
    let body = json!({ "token": token, "new_password": new_password });
    let reset = Response::read(browser(user_agent).post(app.url("/api/v1/password/reset")).json(&body).send().await.unwrap()).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let mut mails = app.deliver().await;
    let position = mails.iter().position(|m| m.kind == "password_changed").unwrap_or_else(|| panic!("{mails:?}"));
    mails.remove(position)
}

async fn s9_2_a_reset_with_a_hostile_user_agent_sends_an_email_without_its_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;

    let mail = reset_from(&app, HOSTILE, "violet canyon drumbeat").await;
    assert!(mail.text.contains("Device: an unrecognised browser"), "{}", mail.text);
    assert_clean("the text part", &mail.text);
    assert_clean("the HTML part", &mail.html);
    assert_clean("the subject", &mail.subject);

    app.clock.advance(61); // the resend wait between two reset emails
    let mail = reset_from(&app, HOSTILE_IN_PLATFORM, "amber meadow lighthouse").await;
    assert!(mail.text.contains("Device: Chrome on Windows"), "{}", mail.text);
    assert_clean("the text part", &mail.text);
    assert_clean("the HTML part", &mail.html);

    app.clock.advance(61);
    let mail = reset_from(&app, FIREFOX, "silver orchard compass").await;
    assert!(mail.text.contains("Device: Firefox on Windows"), "{}", mail.text);
    assert!(mail.html.contains("Firefox on Windows"), "{}", mail.html);
}

async fn s9_2_the_sessions_list_names_browsers_never_the_raw_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let login = json!({ "login": "maria", "password": PASSWORD });
    let hostile = browser(HOSTILE);
    assert_eq!(hostile.post(app.url("/api/v1/login")).json(&login).send().await.unwrap().status(), 200);
    let firefox = browser(FIREFOX);
    assert_eq!(firefox.post(app.url("/api/v1/login")).json(&login).send().await.unwrap().status(), 200);

    let listed = app.get(&firefox, "/api/v1/account/sessions").await;
    assert_eq!(listed.status, 200);
    let mut devices: Vec<String> =
        listed.json()["sessions"].as_array().unwrap().iter().map(|s| s["device"].as_str().unwrap().to_owned()).collect();
    devices.sort();
    assert_eq!(devices, ["Firefox on Windows", "an unrecognised browser"]);
    assert!(listed.json()["sessions"][0].get("user_agent").is_none(), "the raw header is not exposed: {}", listed.text);
    assert_clean("GET /api/v1/account/sessions", &listed.text);

    let page = app.get(&firefox, "/account/sessions").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Firefox on Windows") && page.text.contains("Unrecognised browser"), "{}", page.text);
    assert_clean("the sessions page", &page.text);
}
