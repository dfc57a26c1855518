//! "No access to my email" (issue 11 §3): a recovery request handled by support. Checklist S2.1,
//! S3.4-S3.6, S11 (no account enumeration, abuse limits, proof of work, the case).

use crate::helpers::{BASE_URL, Backend, Mail, Response, TestApp, test_config};
use crate::on_both_backends;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

on_both_backends!(
    s11_a_request_confirmed_by_its_code_opens_a_case_with_a_status_page_the_person_can_add_to,
    s2_1_answers_and_emails_are_the_same_whether_or_not_the_account_exists,
    s3_5_s3_6_requests_are_limited_per_client_address_and_per_contact_address,
    s3_6_one_network_cannot_spend_the_days_ceiling_which_holds_at_500,
    s3_4_codes_are_single_use_bound_to_their_request_and_limited_in_tries,
    bad_input_gets_a_clear_4xx_naming_its_field,
    s3_6_a_wrong_or_reused_proof_of_work_is_refused_when_bits_are_set,
    s1_9_the_forgot_and_reset_pages_link_no_access_to_this_email_to_the_form
);

const CONTACT: &str = "new-me@example.org";

async fn challenge(app: &TestApp) -> Value {
    let answer = app.get(&TestApp::new_client(), "/api/v1/recovery-requests/challenge").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

pub(crate) async fn post_from(app: &TestApp, ip: &str, path: &str, body: Value) -> Response {
    let request = TestApp::new_client().post(app.url(path)).header("X-Real-IP", ip).json(&body);
    Response::read(request.send().await.expect("request")).await
}

/// A request with a fresh challenge (bits = 0 in tests: any nonce solves it).
pub(crate) async fn ask(app: &TestApp, ip: &str, login: &str, contact: &str) -> Response {
    let c = challenge(app).await;
    let body = json!({
        "login": login,
        "contact_email": contact,
        "message": "I lost access to my old mailbox.\nMy phone too.",
        "hints": { "last_sign_in": "last March", "country": "PH", "payout_type": "bank", "payout_bank": "BDO" },
        "pow_challenge": c["challenge"],
        "pow_nonce": "0",
    });
    post_from(app, ip, "/api/v1/recovery-requests", body).await
}

pub(crate) async fn confirm(app: &TestApp, ip: &str, contact: &str, code: &str) -> Response {
    post_from(app, ip, "/api/v1/recovery-requests/confirm", json!({ "contact_email": contact, "code": code })).await
}

pub(crate) fn only_mail(mails: Vec<Mail>, kind: &str) -> Mail {
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = mails.into_iter().next().unwrap();
    assert_eq!(mail.kind, kind);
    mail
}

async fn s11_a_request_confirmed_by_its_code_opens_a_case_with_a_status_page_the_person_can_add_to(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let asked = ask(&app, "192.0.2.10", "maria", CONTACT).await;
    assert_eq!((asked.status, asked.json()), (202, json!({ "status": "verify_contact" })));
    let code_mail = only_mail(app.deliver().await, "recovery_request_code");
    assert_eq!(code_mail.to, CONTACT);
    assert!(!code_mail.text.contains("maria"), "the code email names no account: {}", code_mail.text);

    let confirmed = confirm(&app, "192.0.2.10", CONTACT, &code_mail.code()).await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.text);
    let case = confirmed.json()["case"].as_str().expect("a case number").to_owned();
    assert!(case.starts_with("C-") && case.len() == 12, "{case}");
    let case_mail = only_mail(app.deliver().await, "recovery_request_case");
    assert_eq!(case_mail.to, CONTACT);
    assert!(case_mail.text.contains(&case) && !case_mail.text.contains("maria"), "{}", case_mail.text);
    let token = case_mail.token("recovery-request/status");

    let status = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/status", json!({ "token": token })).await;
    assert_eq!(status.status, 200, "{}", status.text);
    assert_eq!((status.json()["case"].as_str(), status.json()["status"].as_str()), (Some(case.as_str()), Some("open")));
    assert_eq!(status.json()["notes"], json!([]));

    let note = json!({ "token": token, "message": "I also remember my old phone number:\nit ended in 42." });
    let added = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/notes", note).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let again = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/status", json!({ "token": token })).await;
    assert_eq!(again.json()["notes"][0]["body"], "I also remember my old phone number:\nit ended in 42.");
    assert_eq!(again.json()["notes"][0]["author"], "requester");

    // The status page, reached by the link: the token leaves the address bar at once.
    let browser = TestApp::new_client();
    let link = app.get(&browser, &format!("/recovery-request/status?token={token}")).await;
    assert_eq!((link.status, link.header("location")), (303, Some("/recovery-request/status")));
    let page = app.get(&browser, "/recovery-request/status").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains(&case) && page.text.contains("it ended in 42."), "{}", page.text);

    // Ten notes a day per case.
    for i in 1..10 {
        let note = json!({ "token": token, "message": format!("note {i}") });
        assert_eq!(post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/notes", note).await.status, 201);
    }
    let note = json!({ "token": token, "message": "one too many" });
    let limited = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/notes", note).await;
    assert_eq!((limited.status, limited.error_code().as_str()), (429, "too_many_requests"));

    // The link stops working after 90 days.
    app.clock.advance(91 * 24 * 3600);
    let expired = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/status", json!({ "token": token })).await;
    assert_eq!((expired.status, expired.error_code().as_str()), (400, "invalid_token"));
}

async fn s2_1_answers_and_emails_are_the_same_whether_or_not_the_account_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let real = ask(&app, "192.0.2.10", "maria", "a@example.org").await;
    let real_mail = only_mail(app.deliver().await, "recovery_request_code");
    let unknown = ask(&app, "192.0.2.11", "nobody-here", "b@example.org").await;
    let unknown_mail = only_mail(app.deliver().await, "recovery_request_code");
    assert_eq!((real.status, &real.text), (unknown.status, &unknown.text), "the same answer");
    let (a, b) = (real_mail.code(), unknown_mail.code());
    let grouped = |c: &str| format!("{} {}", &c[..4], &c[4..]);
    assert_eq!(real_mail.subject, unknown_mail.subject);
    assert_eq!(real_mail.text.replace(&grouped(&a), "CODE"), unknown_mail.text.replace(&grouped(&b), "CODE"), "the same email");

    let one = confirm(&app, "192.0.2.10", "a@example.org", &a).await;
    let other = confirm(&app, "192.0.2.11", "b@example.org", &b).await;
    assert_eq!((one.status, other.status), (201, 201), "a case either way: {} {}", one.text, other.text);
    let mails = app.deliver().await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().all(|m| m.kind == "recovery_request_case" && !m.text.contains("maria")));
}

async fn s3_5_s3_6_requests_are_limited_per_client_address_and_per_contact_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Five an hour per client address, whatever the contact address.
    for i in 0..5 {
        assert_eq!(ask(&app, "192.0.2.10", "maria", &format!("c{i}@example.org")).await.status, 202);
    }
    let limited = ask(&app, "192.0.2.10", "maria", "c9@example.org").await;
    assert_eq!((limited.status, limited.error_code().as_str()), (429, "too_many_requests"));
    assert!(limited.header("retry-after").is_some());
    assert_eq!(app.deliver().await.len(), 5, "no email for a refused request");
    // Three a day per contact address, whatever the client address.
    for i in 0..3 {
        assert_eq!(ask(&app, &format!("198.51.100.{i}"), "maria", CONTACT).await.status, 202);
    }
    let limited = ask(&app, "198.51.100.9", "maria", CONTACT).await;
    assert_eq!((limited.status, limited.error_code().as_str()), (429, "too_many_requests"));
    assert_eq!(app.deliver().await.len(), 3);
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(ask(&app, "198.51.100.9", "maria", CONTACT).await.status, 202, "a day later");
    assert_eq!(ask(&app, "192.0.2.10", "maria", "c9@example.org").await.status, 202);
}

async fn s3_4_codes_are_single_use_bound_to_their_request_and_limited_in_tries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(ask(&app, "192.0.2.10", "maria", CONTACT).await.status, 202);
    let code = app.deliver().await[0].code();
    let wrong = if code == "00000000" { "11111111" } else { "00000000" };
    let nobody = confirm(&app, "192.0.2.10", "other@example.org", &code).await;
    assert_eq!((nobody.status, nobody.error_code().as_str()), (400, "invalid_code"), "bound to its contact address");
    for _ in 0..4 {
        let refused = confirm(&app, "192.0.2.10", CONTACT, wrong).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_code"));
    }
    assert_eq!(confirm(&app, "192.0.2.10", CONTACT, "12ab").await.error_code(), "invalid_code", "malformed counts too");
    let spent = confirm(&app, "192.0.2.10", CONTACT, &code).await;
    assert_eq!((spent.status, spent.error_code().as_str()), (429, "too_many_attempts"), "five tries per request");

    // A new request, a new code; it works once, and not after 30 minutes.
    assert_eq!(ask(&app, "192.0.2.10", "maria", CONTACT).await.status, 202);
    let code = app.deliver().await[0].code();
    assert_eq!(confirm(&app, "192.0.2.10", CONTACT, &code).await.status, 201);
    let again = confirm(&app, "192.0.2.10", CONTACT, &code).await;
    assert_eq!((again.status, again.error_code().as_str()), (400, "invalid_code"), "single use");
    assert_eq!(ask(&app, "192.0.2.11", "maria", CONTACT).await.status, 202);
    let code = app.deliver().await.into_iter().find(|m| m.kind == "recovery_request_code").unwrap().code();
    app.clock.advance(31 * 60);
    assert_eq!(confirm(&app, "192.0.2.10", CONTACT, &code).await.error_code(), "invalid_code", "expired");
}

async fn bad_input_gets_a_clear_4xx_naming_its_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = challenge(&app).await;
    let base = json!({ "login": "maria", "contact_email": CONTACT, "message": "help", "pow_challenge": c["challenge"], "pow_nonce": "0" });
    for (field, value, code) in [
        ("login", json!("  "), "invalid_login"),
        ("contact_email", json!("not an address"), "invalid_email"),
        ("message", json!(""), "invalid_message"),
        ("message", json!("x".repeat(4001)), "invalid_message"),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let refused = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests", body).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, code), "{field}");
        assert_eq!(refused.json()["field"], field);
    }
    let mut unknown = base.clone();
    unknown["hints"] = json!({ "shoe_size": "42" });
    assert_eq!(post_from(&app, "192.0.2.10", "/api/v1/recovery-requests", unknown).await.status, 400);
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("pow_challenge");
    let refused = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests", missing).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_proof_of_work"));
    let bad_token = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/status", json!({ "token": BASE_URL })).await;
    assert_eq!((bad_token.status, bad_token.error_code().as_str()), (400, "invalid_token"));
    let unknown_token = json!({ "token": "A".repeat(43), "message": "hello" });
    let note = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/notes", unknown_token).await;
    assert_eq!((note.status, note.error_code().as_str()), (400, "invalid_token"));
    let bad_email = confirm(&app, "192.0.2.10", "nope", "12345678").await;
    assert_eq!((bad_email.status, bad_email.error_code().as_str()), (400, "invalid_code"));
    assert!(app.deliver().await.is_empty(), "nothing was sent");
}

fn solve(challenge: &str, bits: u32, want_solved: bool) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| {
            let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
            let zeros = digest.iter().position(|b| *b != 0).map_or(256, |i| i as u32 * 8 + digest[i].leading_zeros());
            (zeros >= bits) == want_solved
        })
        .unwrap()
}

async fn s3_6_a_wrong_or_reused_proof_of_work_is_refused_when_bits_are_set(backend: Backend) {
    let config = doorman::config::Config { proof_of_work_bits: 12, ..test_config(backend).await };
    let app = TestApp::spawn_with(config).await;
    let c = challenge(&app).await;
    assert_eq!(c["bits"], 12);
    let text = c["challenge"].as_str().unwrap().to_owned();
    let body = |nonce: String, challenge: &str| json!({ "login": "maria", "contact_email": CONTACT, "message": "help", "pow_challenge": challenge, "pow_nonce": nonce });
    let wrong = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests", body(solve(&text, 12, false), &text)).await;
    assert_eq!((wrong.status, wrong.error_code().as_str()), (400, "invalid_proof_of_work"));
    // A challenge the server did not make, even solved, is refused.
    let forged = text.replacen(".12.", ".1.", 1);
    let refused = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests", body(solve(&forged, 12, true), &forged)).await;
    assert_eq!(refused.error_code(), "invalid_proof_of_work");
    let nonce = solve(&text, 12, true);
    let solved = post_from(&app, "192.0.2.10", "/api/v1/recovery-requests", body(nonce.clone(), &text)).await;
    assert_eq!(solved.status, 202, "{}", solved.text);
    let reused = post_from(&app, "192.0.2.11", "/api/v1/recovery-requests", body(nonce, &text)).await;
    assert_eq!((reused.status, reused.error_code().as_str()), (400, "invalid_proof_of_work"), "each challenge once");
    // Too old: ten minutes.
    let late = challenge(&app).await["challenge"].as_str().unwrap().to_owned();
    app.clock.advance(11 * 60);
    let expired = post_from(&app, "192.0.2.12", "/api/v1/recovery-requests", body(solve(&late, 12, true), &late)).await;
    assert_eq!(expired.error_code(), "invalid_proof_of_work");
    assert_eq!(app.deliver().await.len(), 1);
}

/// The forgot-password page, its "check your email" page, the reset page and the help
/// article lead to the form; opening the form and its challenge sends nothing.
async fn s1_9_the_forgot_and_reset_pages_link_no_access_to_this_email_to_the_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let browser = TestApp::new_client();
    for path in ["/forgot-password", "/reset-password?with=code", "/recovery-request"] {
        let page = app.get(&browser, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.text.contains("href=\"/recovery-request\"") || path == "/recovery-request", "{path}");
    }
    let form = app.get(&browser, "/forgot-password").await;
    let fields = [("csrf", crate::helpers::csrf_of(&form.text)), ("login", "maria".to_owned())];
    let sent = Response::read(browser.post(app.url("/forgot-password")).form(&fields).send().await.unwrap()).await;
    assert!(sent.text.contains("href=\"/recovery-request\">No access to this email?</a>"), "{}", sent.text);
    let _ = app.deliver().await;
    let form = app.get(&browser, "/recovery-request").await;
    assert!(form.text.contains("data-pow-bits=\"0\"") && form.text.contains("name=\"pow_challenge\""));
    challenge(&app).await;
    assert!(app.deliver().await.is_empty(), "GETs change nothing");
}

/// S3.5, S3.6: one network (an IPv4 /24 or IPv6 /48) gets 30 requests a day, whatever its
/// addresses, so that one sender cannot spend the ceiling of 500 a day that bounds what the
/// form makes doorman send; that ceiling holds across networks, and nothing is sent past it.
async fn s3_6_one_network_cannot_spend_the_days_ceiling_which_holds_at_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    for i in 0..30 {
        let asked = ask(&app, &format!("203.0.113.{}", i + 1), "maria", &format!("n{i}@example.org")).await;
        assert_eq!(asked.status, 202, "{i}: {}", asked.text);
    }
    let same_network = ask(&app, "203.0.113.200", "maria", "n30@example.org").await;
    assert_eq!((same_network.status, same_network.error_code().as_str()), (429, "too_many_requests"), "{}", same_network.text);
    let v6 = |i: usize| format!("2001:db8:7:{i:x}::1");
    for i in 0..30 {
        assert_eq!(ask(&app, &v6(i), "maria", &format!("v{i}@example.org")).await.status, 202, "{i}: one /48, many /64s");
    }
    assert_eq!(ask(&app, &v6(99), "maria", "v99@example.org").await.status, 429, "the /48 is spent");

    // 440 more from other networks reach the day's ceiling of 500; the 501st is refused.
    for n in 0..440 {
        let ip = format!("198.{}.{}.1", 18 + n / 200, n % 200);
        let asked = ask(&app, &ip, "maria", &format!("m{n}@example.org")).await;
        assert_eq!(asked.status, 202, "{n}: {}", asked.text);
    }
    let over = ask(&app, "192.0.2.77", "maria", "over@example.org").await;
    assert_eq!((over.status, over.error_code().as_str()), (429, "too_many_requests"), "{}", over.text);
    let sent = app.deliver().await;
    assert_eq!(sent.len(), 500, "one code email per accepted request, none past the ceiling");
    assert!(sent.iter().all(|m| m.kind == "recovery_request_code") && sent.iter().all(|m| m.to != "over@example.org"));
}
