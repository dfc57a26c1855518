//! Code steps that cannot mislead (issue 10): pages that ask for a code say "we'll text you
//! a code" until one is sent, then where it went, with the method selected and the field next
//! to the button; the reset page goes step by step (the emailed code, checked and counted,
//! then the method and the new password); a code with no tries left says so, alike for an
//! unknown login (S2.5); an authenticator code that fails hints at the next one whether it
//! was wrong or replayed; and no page of these flows is a dead end.

use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp, wrong_code};
use serde_json::json;

on_both_backends!(
    s2_5_a_used_up_code_gets_its_own_answer_the_same_for_an_unknown_login,
    s3_7_no_method_or_hint_shows_before_the_emailed_code_is_verified,
    the_reset_code_route_goes_step_by_step_and_sending_selects_the_method,
    reset_errors_name_their_field_and_keep_the_login_but_never_a_code_or_password,
    code_pages_offer_to_send_a_code_until_one_is_sent,
    a_failed_authenticator_code_hints_at_the_next_one_whether_wrong_or_replayed,
    the_locked_out_persons_pages_link_onwards,
);

const NEW_PASSWORD: &str = "a brand new long passphrase";
const PHONE_HINT: &str = "+63 *** *** 4521";
const TOTP_MESSAGE: &str = "That code is not right. If you just used a code, wait for the next one.";
const LOCKED_MESSAGE: &str = "Too many tries for this code. Use the link in the email, or ask for a new email.";

/// Another 8-digit code than `right`.
fn wrong(right: &str, nth: u64) -> String {
    let n: u64 = right.parse().unwrap();
    format!("{:08}", (n + 1 + nth) % 100_000_000)
}

/// The six-digit code in a text message.
fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().to_owned()
}

/// The text of the one SMS just delivered (emails are skipped).
async fn texted(app: &TestApp) -> String {
    let mut texts: Vec<_> = app.deliver().await.into_iter().filter(|m| m.to.starts_with('+')).collect();
    assert_eq!(texts.len(), 1, "{texts:?}");
    texts.remove(0).text
}

/// The opening tag of the `<input>` with this id.
fn input<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("<input id=\"{id}\"")).unwrap_or_else(|| panic!("no input #{id} in {html}"));
    let end = html[start..].find('>').unwrap();
    &html[start..start + end + 1]
}

fn names_the_error(tag: &str) -> bool {
    tag.contains("aria-invalid=\"true\"") && tag.contains("aria-describedby=\"reset-error") && tag.contains("autofocus")
}

async fn signed_in(app: &TestApp, login: &str) -> reqwest::Client {
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", login, PASSWORD).await.status, 200);
    client
}

/// Enrols the phone +63 917 123 4521 (hint "+63 *** *** 4521"); returns its method id.
async fn enrol_phone(app: &TestApp, client: &reqwest::Client) -> String {
    let started = app.post_json(client, "/api/v1/account/two-step/sms", json!({ "phone": "0917 123 4521" })).await;
    assert_eq!(started.status, 200, "{}", started.text);
    let method_id = started.json()["method_id"].as_str().unwrap().to_owned();
    let body = json!({ "method_id": method_id, "code": code_in(&texted(app).await) });
    assert_eq!(app.post_json(client, "/api/v1/account/two-step/sms/confirm", body).await.status, 200);
    app.deliver().await;
    // Past the resend wait of the enrolment's code.
    app.clock.advance(31);
    method_id
}

async fn post_form(app: &TestApp, browser: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> Response {
    Response::read(browser.post(app.url(path)).form(form).send().await.unwrap()).await
}

/// Step 1 of the code route, in `browser`.
async fn enter_code(app: &TestApp, browser: &reqwest::Client, login: &str, code: &str) -> Response {
    let csrf = csrf_of(&app.get(browser, "/reset-password?with=code").await.text);
    post_form(app, browser, "/reset-password/code", &[("csrf", &csrf), ("login", login), ("code", code)]).await
}

/// A page with what differs between two visitors (the form token, the login typed) blanked.
fn shape(page: &Response, login: &str) -> String {
    page.text.replace(&csrf_of(&page.text), "CSRF").replace(&format!("value=\"{login}\""), "value=\"LOGIN\"")
}

/// Header names, less those that differ by nature.
fn header_names(response: &Response) -> Vec<String> {
    let mut names: Vec<String> =
        response.headers.keys().map(|k| k.as_str().to_owned()).filter(|k| k != "x-request-id" && k != "date").collect();
    names.sort();
    names
}

/// S2.5, S3.4: five wrong codes use up a login's tries; the sixth try, right or wrong, gets
/// 429 `too_many_attempts` with its own message and the ways forward. It is the same answer
/// (status, body, headers, page) for an account with a live email, an account without one and
/// an unknown login: the count that decides it is kept under the login as typed. Asking for a
/// new email starts it again, for every login alike.
async fn s2_5_a_used_up_code_gets_its_own_answer_the_same_for_an_unknown_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("jordan", "jordan@example.com").await;
    let right = app.reset_mail("maria").await.code();
    let logins = ["maria", "jordan", "nobody"];
    for login in logins {
        for nth in 0..5 {
            let refused = app.reset(json!({ "login": login, "code": wrong(&right, nth), "new_password": NEW_PASSWORD })).await;
            assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_code"), "{login}, try {nth}");
        }
    }
    let mut answers = Vec::new();
    for login in logins {
        let late = app.reset(json!({ "login": login, "code": right, "new_password": NEW_PASSWORD })).await;
        assert_eq!((late.status, late.error_code().as_str()), (429, "too_many_attempts"), "{login}: {}", late.text);
        assert_eq!(late.json()["message"], LOCKED_MESSAGE);
        assert!(late.header("retry-after").is_none(), "a new email ends it, not a time");
        answers.push((late.text.clone(), header_names(&late)));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "one answer for all: {answers:?}");
    let sent = app
        .post_json(&TestApp::new_client(), "/api/v1/password/reset/send", json!({ "login": "nobody", "code": right, "method_id": "x" }))
        .await;
    assert_eq!((sent.status, sent.error_code().as_str()), (429, "too_many_attempts"), "the send helper answers alike");

    // The page: the same message and links, whoever the login names.
    let mut pages = Vec::new();
    for login in logins {
        let page = enter_code(&app, &TestApp::new_client(), login, &right).await;
        assert_eq!(page.status, 429, "{login}: {}", page.text);
        assert!(page.text.contains(LOCKED_MESSAGE), "{}", page.text);
        for link in ["href=\"/forgot-password\" id=\"new-email-link\"", "id=\"reset-help-link\"", "href=\"/login\" id=\"back-to-login\""] {
            assert!(page.text.contains(link), "{login}: {link} in {}", page.text);
        }
        assert!(!page.text.contains("method_id"), "nothing of the account");
        pages.push(shape(&page, login));
    }
    assert!(pages.windows(2).all(|w| w[0] == w[1]), "one page for all");
    assert_eq!(app.login("maria", PASSWORD).await.status, 200, "nothing changed");

    // A new email for each login: the count starts again for all of them.
    app.clock.advance(61);
    for login in logins {
        assert_eq!(app.forgot(login).await.status, 202);
    }
    let mails = app.deliver().await;
    assert_eq!(mails.len(), 2, "maria and jordan get an email: {mails:?}");
    let fresh = mails.iter().find(|m| m.to == "maria@example.com").unwrap().code();
    for login in ["jordan", "nobody"] {
        let again = app.reset(json!({ "login": login, "code": fresh, "new_password": NEW_PASSWORD })).await;
        assert_eq!((again.status, again.error_code().as_str()), (400, "invalid_code"), "{login}: {}", again.text);
    }
    let done = app.reset(json!({ "login": "maria", "code": fresh, "new_password": NEW_PASSWORD })).await;
    assert_eq!(done.status, 200, "{}", done.text);
}

/// S3.7: before the emailed code is verified, the reset page shows nothing of the account:
/// no method, no masked phone; after, it does, and the code is not in the page.
async fn s3_7_no_method_or_hint_shows_before_the_emailed_code_is_verified(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = signed_in(&app, "maria").await;
    let phone_id = enrol_phone(&app, &client).await;
    let right = app.reset_mail("maria").await.code();

    let browser = TestApp::new_client();
    let first = app.get(&browser, "/reset-password?with=code").await;
    let wrong_try = enter_code(&app, &browser, "maria", &wrong(&right, 0)).await;
    let malformed = enter_code(&app, &browser, "maria", "12").await;
    for page in [&first, &wrong_try, &malformed] {
        assert!(!page.text.contains("*** 4521") && !page.text.contains(&phone_id) && !page.text.contains("Text message"), "{}", page.text);
        assert!(!page.text.contains("id=\"new_password\""), "no new password before the code: {}", page.text);
    }
    // A step-2 page asked for directly with a login and code shows nothing either.
    let direct = app.get(&browser, &format!("/reset-password?method={phone_id}&sent=1")).await;
    assert!(!direct.text.contains("*** 4521") && !direct.text.contains(&phone_id), "{}", direct.text);

    // A continuation cookie not made by this server opens nothing.
    let forged = format!("doorman_reset=c1.{}.{}", uuid::Uuid::new_v4(), "A".repeat(43));
    let refused =
        Response::read(reqwest::Client::new().get(app.url("/reset-password")).header("cookie", forged).send().await.unwrap()).await;
    assert!(refused.text.contains("This reset is not valid any more") && !refused.text.contains("*** 4521"), "{}", refused.text);

    let passed = enter_code(&app, &browser, "maria", &right).await;
    assert_eq!((passed.status, passed.header("location")), (303, Some("/reset-password")));
    assert!(!passed.set_cookies().iter().any(|c| c.contains(&right)), "the cookie holds no code");
    let page = app.get(&browser, "/reset-password").await;
    assert!(page.text.contains(PHONE_HINT) && page.text.contains(&phone_id), "after the code, the methods: {}", page.text);
    assert!(!page.text.contains(&right), "the code is never written back");
}

/// Issue 10: the code route in steps; at step 2 the phone says "We'll text you a code" until
/// one is sent; sending selects it (not the default app) with a notice of where the code
/// went, and the field takes the focus; the texted code then works.
async fn the_reset_code_route_goes_step_by_step_and_sending_selects_the_method(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = signed_in(&app, "maria").await;
    let (_, totp_id) = enrol_totp(&app, &client).await;
    let phone_id = enrol_phone(&app, &client).await;
    let right = app.reset_mail("maria").await.code();

    let browser = TestApp::new_client();
    let step_one = app.get(&browser, "/reset-password?with=code").await;
    assert!(step_one.text.contains("Step 1 of 2") && step_one.text.contains("action=\"/reset-password/code\""), "{}", step_one.text);
    assert_eq!(enter_code(&app, &browser, "maria", &right).await.status, 303);
    let step_two = app.get(&browser, "/reset-password").await;
    assert!(step_two.text.contains("Step 2 of 2") && step_two.text.contains("Confirm it is you"), "{}", step_two.text);
    assert!(step_two.text.contains(&format!("value=\"{totp_id}\" checked")), "the default app first");
    assert!(step_two.text.contains("We'll text you a code.") && !step_two.text.contains("We texted"), "{}", step_two.text);
    assert!(step_two.text.contains(&format!("form=\"send-{phone_id}\">Text me a code</button>")), "{}", step_two.text);
    // "Set new password" is the form's default button: Enter in a field never sends a code.
    let form = &step_two.text[step_two.text.find("id=\"reset-form\"").unwrap()..];
    assert!(!form[..form.find("Set new password").unwrap()].contains("<button type=\"submit\">"), "{form}");

    let csrf = csrf_of(&step_two.text);
    let sent = post_form(&app, &browser, "/reset-password/send", &[("csrf", &csrf), ("method_id", &phone_id)]).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    let location = sent.header("location").unwrap().to_owned();
    assert_eq!(location, format!("/reset-password?method={phone_id}&sent=1"));
    let sms = code_in(&texted(&app).await);
    let page = app.get(&browser, &location).await;
    assert!(page.text.contains(&format!("value=\"{phone_id}\" checked")), "the phone is selected: {}", page.text);
    assert!(!page.text.contains(&format!("value=\"{totp_id}\" checked")));
    assert!(page.text.contains(&format!("We texted a code to {PHONE_HINT}. It works for 10 minutes.")), "{}", page.text);
    assert!(page.text.contains(&format!("We texted a code to {PHONE_HINT}: enter it below.")), "{}", page.text);
    assert!(input(&page.text, "factor_code").contains("autofocus"), "the field to type it in");
    // Reloaded later, it still knows the code is on its way, without the notice.
    let later = app.get(&browser, "/reset-password").await;
    assert!(later.text.contains("enter it below") && !later.text.contains("It works for 10 minutes"), "{}", later.text);

    let csrf = csrf_of(&page.text);
    let form = [("csrf", csrf.as_str()), ("method_id", &phone_id), ("factor_code", &sms), ("new_password", NEW_PASSWORD)];
    let done = post_form(&app, &browser, "/reset-password", &form).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Password changed"));
    assert_eq!(app.login("maria", NEW_PASSWORD).await.json()["status"], "second_factor_required");
}

/// Issue 10: each error names its field (aria-invalid, aria-describedby to the error, focus);
/// the login typed survives an error, a code or password never comes back in the page.
async fn reset_errors_name_their_field_and_keep_the_login_but_never_a_code_or_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let client = signed_in(&app, "maria").await;
    let (secret, totp_id) = enrol_totp(&app, &client).await;
    let phone_id = enrol_phone(&app, &client).await;
    let right = app.reset_mail("maria").await.code();
    let browser = TestApp::new_client();

    let no_login = enter_code(&app, &browser, "", &right).await;
    assert_eq!(no_login.status, 400);
    assert!(names_the_error(input(&no_login.text, "login")), "{}", input(&no_login.text, "login"));
    assert!(!input(&no_login.text, "code").contains("aria-invalid"));
    let typo = wrong(&right, 0);
    let wrong_code_page = enter_code(&app, &browser, "maria", &typo).await;
    assert_eq!(wrong_code_page.status, 400);
    assert!(names_the_error(input(&wrong_code_page.text, "code")), "{}", input(&wrong_code_page.text, "code"));
    assert!(input(&wrong_code_page.text, "login").contains("value=\"maria\""), "the login survives");
    assert!(!input(&wrong_code_page.text, "login").contains("aria-invalid"), "never says the login is unknown");
    assert!(!wrong_code_page.text.contains(&typo), "the code is not written back");

    assert_eq!(enter_code(&app, &browser, "maria", &right).await.status, 303);
    let page = app.get(&browser, "/reset-password").await;
    let csrf = csrf_of(&page.text);
    app.clock.advance(30); // the enrolment used this step's app code
    let app_code = current_code(&app, &secret, 0);
    let weak = post_form(
        &app,
        &browser,
        "/reset-password",
        &[("csrf", &csrf), ("method_id", &phone_id), ("factor_code", &app_code), ("new_password", "short")],
    )
    .await;
    assert_eq!(weak.status, 422, "{}", weak.text);
    assert!(names_the_error(input(&weak.text, "new_password")), "{}", input(&weak.text, "new_password"));
    assert!(input(&weak.text, "new_password").contains("password-rules"), "still described by the rules");
    assert!(!input(&weak.text, "factor_code").contains("aria-invalid"));
    assert!(weak.text.contains(&format!("value=\"{phone_id}\" checked")), "the chosen method stays selected");
    assert!(!weak.text.contains("value=\"short\"") && !weak.text.contains(&app_code), "no secret written back");

    let bad_code = wrong_code(&app, &secret, 0);
    let refused = post_form(
        &app,
        &browser,
        "/reset-password",
        &[("csrf", &csrf), ("method_id", &totp_id), ("factor_code", &bad_code), ("new_password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert!(names_the_error(input(&refused.text, "factor_code")), "{}", input(&refused.text, "factor_code"));
    assert!(refused.text.contains(&format!("value=\"{totp_id}\" checked")), "the chosen method stays selected");
    assert!(!refused.text.contains(NEW_PASSWORD) && !refused.text.contains(&bad_code), "no secret written back");
    assert!(refused.text.contains(TOTP_MESSAGE), "{}", refused.text);

    // An empty code is no try: it asks for one, and nothing is counted.
    let empty = post_form(
        &app,
        &browser,
        "/reset-password",
        &[("csrf", &csrf), ("method_id", &totp_id), ("factor_code", " "), ("new_password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(empty.status, 403, "{}", empty.text);
    assert!(names_the_error(input(&empty.text, "factor_code")) && empty.text.contains("Enter the code or answer of the method you chose"));
    let done = post_form(
        &app,
        &browser,
        "/reset-password",
        &[("csrf", &csrf), ("method_id", &totp_id), ("factor_code", &app_code), ("new_password", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
}

/// Issue 10: the second step, step-up and withdrawal approval (one template) say "We'll
/// text you a code at ..." with the send button until a code is sent, then "We texted a code
/// to ..." and "Enter the code we texted to ...", with the field focused; the code works.
async fn code_pages_offer_to_send_a_code_until_one_is_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let setup = signed_in(&app, "maria").await;
    let (_, totp_id) = enrol_totp(&app, &setup).await;
    let phone_id = enrol_phone(&app, &setup).await;

    let client = signed_in(&app, "maria").await;
    let check = async |path: &str, send_path: &str, extra: &[(&str, &str)]| -> String {
        let before = app.get(&client, &format!("{path}{}method={phone_id}", if path.contains('?') { "&" } else { "?" })).await;
        assert_eq!(before.status, 200, "{path}: {}", before.text);
        assert!(before.text.contains(&format!("We'll text you a code at {PHONE_HINT}.")), "{path}: {}", before.text);
        assert!(!before.text.contains("Enter the code we texted") && !before.text.contains("We texted"), "{path}: nothing sent yet");
        assert!(before.text.contains("form=\"send-form\" id=\"send-code\">Text me a code</button>"), "{path}: {}", before.text);
        let csrf = csrf_of(&before.text);
        let mut form = vec![("csrf", csrf.as_str()), ("method_id", phone_id.as_str())];
        form.extend_from_slice(extra);
        let sent = post_form(&app, &client, send_path, &form).await;
        assert_eq!(sent.status, 303, "{path}: {}", sent.text);
        let location = sent.header("location").unwrap().to_owned();
        assert!(location.contains(&format!("method={phone_id}&sent=1")), "{location}");
        let after = app.get(&client, &location).await;
        assert!(after.text.contains(&format!("We texted a code to {PHONE_HINT}. It works for 10 minutes.")), "{path}: {}", after.text);
        assert!(after.text.contains(&format!("Enter the code we texted to {PHONE_HINT}")), "{path}: {}", after.text);
        assert!(input(&after.text, "code").contains("autofocus"), "{path}");
        assert!(after.text.contains(">Send a new code</button>"), "{path}");
        let code = code_in(&texted(&app).await);
        app.clock.advance(31); // the resend wait, before the next page sends one
        code
    };

    // The second step of login.
    let code = check("/login/verify", "/login/verify/send", &[]).await;
    let csrf = csrf_of(&app.get(&client, "/login/verify").await.text);
    let in_ = post_form(&app, &client, "/login/verify", &[("csrf", &csrf), ("method_id", &phone_id), ("code", &code)]).await;
    assert_eq!((in_.status, in_.header("location")), (303, Some("/account")), "{}", in_.text);

    // Step-up.
    app.clock.advance(11 * 60);
    let code = check("/step-up?next=/account/security", "/step-up/send", &[("next", "/account/security")]).await;
    let csrf = csrf_of(&app.get(&client, "/step-up?next=/account/security").await.text);
    let form = [("csrf", csrf.as_str()), ("method_id", &phone_id), ("code", &code), ("next", "/account/security")];
    let up = post_form(&app, &client, "/step-up", &form).await;
    assert_eq!((up.status, up.header("location")), (303, Some("/account/security")), "{}", up.text);

    // Withdrawal approval.
    let csrf = csrf_of(&app.get(&client, "/payments").await.text);
    let asked = post_form(&app, &client, "/payments/withdraw", &[("csrf", &csrf), ("amount", "125.50"), ("destination", "gcash")]).await;
    let confirm = asked.header("location").unwrap().to_owned();
    let code = check(&confirm, &format!("{confirm}/send"), &[]).await;
    let csrf = csrf_of(&app.get(&client, &confirm).await.text);
    let done = post_form(&app, &client, &confirm, &[("csrf", &csrf), ("method_id", &phone_id), ("code", &code)]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("id=\"withdrawal-done\""), "{}", done.text);
    // An app needs no sending: no send button for it.
    let other = app.get(&client, &format!("/login/verify?method={totp_id}")).await;
    assert!(!other.text.contains("send-code"));
}

/// Issue 10, S5.3: a failed authenticator code says to wait for the next code, whether it
/// was wrong or the one just used (replayed), in the same words: the hint is no oracle.
/// The case the tester met: the code just used at login, typed again within 30 s for a
/// withdrawal.
async fn a_failed_authenticator_code_hints_at_the_next_one_whether_wrong_or_replayed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let setup = signed_in(&app, "maria").await;
    let (secret, totp_id) = enrol_totp(&app, &setup).await;
    let just_used = current_code(&app, &secret, 0); // by the enrolment
    let wrong_now = wrong_code(&app, &secret, 0);

    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.json()["status"], "second_factor_required");
    let mut answers = Vec::new();
    for code in [&just_used, &wrong_now] {
        let api = app.post_json(&client, "/api/v1/login/second-factor", json!({ "method_id": totp_id, "code": code })).await;
        assert_eq!((api.status, api.error_code().as_str()), (401, "invalid_code"));
        assert_eq!(api.json()["message"], TOTP_MESSAGE);
        let csrf = csrf_of(&app.get(&client, "/login/verify").await.text);
        let page = post_form(&app, &client, "/login/verify", &[("csrf", &csrf), ("method_id", &totp_id), ("code", code)]).await;
        assert_eq!(page.status, 401);
        assert!(page.text.contains(TOTP_MESSAGE), "{}", page.text);
        let tag = input(&page.text, "code");
        assert!(
            tag.contains("aria-invalid=\"true\"") && tag.contains("aria-describedby=\"verify-error\"") && tag.contains("autofocus"),
            "{tag}"
        );
        answers.push((api.text, page.text.replace(&csrf, "CSRF")));
    }
    assert_eq!(answers[0], answers[1], "a replayed code and a wrong one get the same answer");

    // In at the next step; that code again within 30 s, for a withdrawal.
    let next = current_code(&app, &secret, 1);
    assert_eq!(app.post_json(&client, "/api/v1/login/second-factor", json!({ "method_id": totp_id, "code": next })).await.status, 200);
    let csrf = csrf_of(&app.get(&client, "/account").await.text);
    let asked = post_form(&app, &client, "/payments/withdraw", &[("csrf", &csrf), ("amount", "50"), ("destination", "gcash")]).await;
    let confirm = asked.header("location").unwrap().to_owned();
    let csrf = csrf_of(&app.get(&client, &confirm).await.text);
    let again = post_form(&app, &client, &confirm, &[("csrf", &csrf), ("method_id", &totp_id), ("code", &next)]).await;
    assert_eq!(again.status, 401, "{}", again.text);
    assert!(again.text.contains(TOTP_MESSAGE), "{}", again.text);
    // Enrolment failures say the same.
    let enrolling = app.post_json(&client, "/api/v1/account/two-step/totp", json!({})).await.json();
    let method = enrolling["method_id"].as_str().unwrap();
    let refused = app.post_json(&client, "/api/v1/account/two-step/totp/confirm", json!({ "method_id": method, "code": "000000x" })).await;
    assert_eq!((refused.status, refused.json()["message"].as_str()), (401, Some(TOTP_MESSAGE)), "{}", refused.text);
}

/// Issue 10: no dead ends. The throttled login page links "Reset your password"; an
/// expired link offers a new email, the code route, help and log in.
async fn the_locked_out_persons_pages_link_onwards(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let browser = TestApp::new_client();
    let mut last = None;
    for _ in 0..7 {
        let csrf = csrf_of(&app.get(&browser, "/login").await.text);
        let request = browser.post(app.url("/login")).header("X-Real-IP", "203.0.113.9");
        let page = Response::read(
            request.form(&[("csrf", csrf.as_str()), ("login", "maria"), ("password", "guess guess guess")]).send().await.unwrap(),
        )
        .await;
        last = Some(page);
    }
    let throttled = last.unwrap();
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    assert!(
        throttled.text.contains("<a href=\"/forgot-password\" id=\"throttled-reset-link\">Reset your password</a>"),
        "{}",
        throttled.text
    );
    let elsewhere = TestApp::new_client();
    let csrf = csrf_of(&app.get(&elsewhere, "/login").await.text);
    let wrong_only = post_form(&app, &elsewhere, "/login", &[("csrf", &csrf), ("login", "maria"), ("password", "x")]).await;
    assert_eq!(wrong_only.status, 401, "{}", wrong_only.text);
    assert!(!wrong_only.text.contains("throttled-reset-link"), "only when throttled");

    let token = app.reset_mail("maria").await.token("reset-password");
    let reader = TestApp::new_client();
    assert_eq!(app.get(&reader, &format!("/reset-password?token={token}")).await.status, 303);
    assert_eq!(app.reset(json!({ "token": token, "new_password": NEW_PASSWORD })).await.status, 200);
    let expired = app.get(&reader, "/reset-password").await;
    assert!(expired.text.contains("This reset link is not valid any more"), "{}", expired.text);
    for link in [
        "href=\"/forgot-password\" id=\"new-email-link\"",
        "href=\"/reset-password?with=code\" id=\"code-route-link\"",
        "href=\"/help/forgot-password\" id=\"reset-help-link\"",
        "href=\"/login\" id=\"back-to-login\"",
    ] {
        assert!(expired.text.contains(link), "{link} in {}", expired.text);
    }
    assert!(!expired.text.contains("id=\"new_password\""), "no form that cannot work");
}
