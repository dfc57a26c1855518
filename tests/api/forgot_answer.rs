//! "Forgot your answer?" by email (issue 11 §1, checklist S6.6): the link works once, needs
//! another (strong) method, and the new question is the one asked at the next login.

use crate::helpers::{BASE_URL, Backend, Mail, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp, wrong_code};
use serde_json::{Value, json};

on_both_backends!(
    s6_6_the_forgot_answer_link_works_once_needs_another_method_and_sets_the_next_question,
    s6_6_forgot_answer_answers_the_same_whether_or_not_an_email_was_sent,
    s6_6_the_prompt_pages_offer_forgot_answer_and_the_link_page_sets_a_new_question,
);

/// maria with an authenticator app and a security question ("Pink Floyd"), mail delivered.
async fn maria_with_question(app: &TestApp) -> doorman_core::factors::TotpSecret {
    app.create_account("maria", "maria@example.com").await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.10", "maria", PASSWORD).await.status, 200);
    let (secret, _) = enrol_totp(app, &client).await;
    let question = app
        .post_json(&client, "/api/v1/account/two-step/security-question", json!({ "question_id": "first_concert", "answer": "Pink Floyd" }))
        .await;
    assert_eq!(question.status, 200, "{}", question.text);
    app.deliver().await;
    secret
}

fn method_of(body: &Value, kind: &str) -> Option<String> {
    body["methods"].as_array()?.iter().find(|m| m["kind"] == kind).map(|m| m["id"].as_str().unwrap().to_owned())
}

/// The one "Forgot your answer?" email, and the token of its link.
fn answer_mail(mails: &[Mail]) -> (Mail, String) {
    let mail = mails.iter().find(|m| m.kind == "answer_reset").unwrap_or_else(|| panic!("no answer email: {mails:?}")).clone();
    let link = mail.link(&format!("{BASE_URL}/answer-reset?token="));
    let token = link.split("token=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    (mail, token)
}

async fn complete(app: &TestApp, body: Value) -> Response {
    app.post_json(&TestApp::new_client(), "/api/v1/answer-reset", body).await
}

async fn s6_6_the_forgot_answer_link_works_once_needs_another_method_and_sets_the_next_question(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = maria_with_question(&app).await;

    // The second step of login asks the question; "Forgot your answer?" emails a link.
    let login = TestApp::new_client();
    let pending = app.login_as(&login, "192.0.2.10", "maria", PASSWORD).await.json();
    let old_question = method_of(&pending, "security_question").expect("the question is offered");
    let asked = app.post_json(&login, "/api/v1/login/forgot-answer", json!({})).await;
    assert_eq!((asked.status, asked.json()["status"].as_str()), (202, Some("email_sent")), "{}", asked.text);
    let mails = app.deliver().await;
    let (mail, token) = answer_mail(&mails);
    assert_eq!(mail.to, "maria@example.com");
    assert!(mail.text.contains("Forgot your") && mail.text.contains("security question"), "says what it is for: {}", mail.text);
    assert!(mail.text.contains(&format!("{BASE_URL}/report-not-me?token=")), "carries \"this wasn't me\": {}", mail.text);

    // The page's methods: the strong ones only, never the question.
    let opened = app.post_json(&TestApp::new_client(), "/api/v1/answer-reset/open", json!({ "token": token })).await;
    assert_eq!(opened.status, 200, "{}", opened.text);
    let totp = method_of(&opened.json(), "totp").expect("the app is offered");
    assert!(method_of(&opened.json(), "security_question").is_none(), "not the question: {}", opened.text);

    let new_q = |method: &str, code: &str, answer: &str| json!({ "token": token, "method_id": method, "code": code, "question_id": "first_album", "answer": answer });
    // The old question cannot prove itself; a wrong app code is refused; a weak answer too.
    let by_question = complete(&app, new_q(&old_question, "pink floyd", "Rumours")).await;
    assert_eq!((by_question.status, by_question.error_code().as_str()), (400, "method_not_enough"), "{}", by_question.text);
    let wrong = complete(&app, new_q(&totp, &wrong_code(&app, &secret, 0), "Rumours")).await;
    assert_eq!((wrong.status, wrong.error_code().as_str()), (401, "invalid_code"), "{}", wrong.text);
    let weak = complete(&app, new_q(&totp, &current_code(&app, &secret, 0), "none")).await;
    assert_eq!((weak.status, weak.error_code().as_str()), (422, "weak_answer"), "{}", weak.text);

    // The app's code and a new question: done, and notified. (The next step: the app's code
    // from enrolment is spent.)
    app.clock.advance(31);
    let done = complete(&app, new_q(&totp, &current_code(&app, &secret, 0), "Rumours")).await;
    assert_eq!((done.status, done.json()["status"].as_str()), (200, Some("question_changed")), "{}", done.text);
    let notices = app.deliver().await;
    assert!(
        notices.iter().any(|m| m.kind == "security_change" && m.text.contains("Forgot your answer?")),
        "the change is notified: {notices:?}"
    );

    // Once only.
    app.clock.advance(31);
    let again = complete(&app, new_q(&totp, &current_code(&app, &secret, 0), "Fleetwood Mac")).await;
    assert_eq!((again.status, again.error_code().as_str()), (400, "invalid_token"), "{}", again.text);

    // The next login asks the new question, and the new answer works.
    let next = TestApp::new_client();
    let methods = app.login_as(&next, "192.0.2.11", "maria", PASSWORD).await.json();
    let question = method_of(&methods, "security_question").unwrap();
    assert_ne!(question, old_question);
    let hint = methods["methods"].as_array().unwrap().iter().find(|m| m["kind"] == "security_question").unwrap()["hint"].clone();
    assert_eq!(hint, "What was the first album you bought?");
    let old_answer = app.post_json(&next, "/api/v1/login/second-factor", json!({ "method_id": question, "code": "Pink Floyd" })).await;
    assert_eq!(old_answer.status, 401, "the old answer is gone");
    let signed = app.post_json(&next, "/api/v1/login/second-factor", json!({ "method_id": question, "code": "rumours" })).await;
    assert_eq!(signed.status, 200, "{}", signed.text);
    // S10.4: the history says the question was replaced through the emailed link.
    let history = crate::two_step::method_history(&app, &next).await;
    let latest: Vec<(&str, &str, &str)> =
        history[..2].iter().map(|(kind, _, change, by, _)| (kind.as_str(), change.as_str(), by.as_str())).collect();
    assert_eq!(latest, [("security_question", "added", "forgot_answer"), ("security_question", "removed", "forgot_answer")]);
    assert!(history[0].1.contains("What was the first album you bought?"), "{history:?}");
}

async fn s6_6_forgot_answer_answers_the_same_whether_or_not_an_email_was_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    maria_with_question(&app).await;

    // Without a half-signed-in session there is nobody to email.
    let anonymous = app.post_json(&TestApp::new_client(), "/api/v1/login/forgot-answer", json!({})).await;
    assert_eq!((anonymous.status, anonymous.error_code().as_str()), (401, "not_authenticated"));

    // From a reset: the reset link's proof, and the same answer each time; past the silent
    // limit (three an hour) no email goes, yet the answer is the same.
    let reset = app.reset_mail("maria").await;
    let reset_token = reset.token("reset-password");
    let mut sent = 0;
    for _ in 0..4 {
        let asked = app.post_json(&TestApp::new_client(), "/api/v1/password/reset/forgot-answer", json!({ "token": reset_token })).await;
        assert_eq!((asked.status, asked.text.as_str()), (202, r#"{"status":"email_sent"}"#));
        sent += app.deliver().await.iter().filter(|m| m.kind == "answer_reset").count();
    }
    assert_eq!(sent, 3, "rate limited, silently");
    let bad = app.post_json(&TestApp::new_client(), "/api/v1/password/reset/forgot-answer", json!({ "token": "a".repeat(43) })).await;
    assert_eq!((bad.status, bad.error_code().as_str()), (400, "invalid_token"));

    // An account without a question: the same 202, and nothing sent.
    app.create_account("jun", "jun@example.com").await;
    let jun = TestApp::new_client();
    assert_eq!(app.login_as(&jun, "192.0.2.12", "jun", PASSWORD).await.status, 200);
    enrol_totp(&app, &jun).await;
    app.deliver().await;
    let pending = TestApp::new_client();
    app.login_as(&pending, "192.0.2.12", "jun", PASSWORD).await;
    let asked = app.post_json(&pending, "/api/v1/login/forgot-answer", json!({})).await;
    assert_eq!((asked.status, asked.text.as_str()), (202, r#"{"status":"email_sent"}"#));
    assert!(app.deliver().await.iter().all(|m| m.kind != "answer_reset"), "nothing to reset, nothing sent");
}

async fn s6_6_the_prompt_pages_offer_forgot_answer_and_the_link_page_sets_a_new_question(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = maria_with_question(&app).await;

    // The login prompt for the question offers "Forgot your answer?" as a form (never a GET).
    let browser = TestApp::new_client();
    let pending = app.login_as(&browser, "192.0.2.10", "maria", PASSWORD).await.json();
    let question = method_of(&pending, "security_question").unwrap();
    let prompt = app.get(&browser, &format!("/login/verify?method={question}")).await;
    assert!(
        prompt.text.contains(r#"action="/login/verify/forgot-answer""#) && prompt.text.contains("id=\"forgot-answer-button\""),
        "{}",
        prompt.text
    );
    let forged = Response::read(browser.post(app.url("/login/verify/forgot-answer")).form(&[("csrf", "nope")]).send().await.unwrap()).await;
    assert_eq!(forged.status, 403, "needs the CSRF token");
    let asked =
        Response::read(browser.post(app.url("/login/verify/forgot-answer")).form(&[("csrf", csrf_of(&prompt.text))]).send().await.unwrap())
            .await;
    assert_eq!(asked.status, 200);
    assert!(asked.text.contains("Check your email"), "{}", asked.text);
    let (_, token) = answer_mail(&app.deliver().await);

    // The reset prompt offers it too when the question is among the methods.
    let reset = app.reset_mail("maria").await;
    let resetter = TestApp::new_client();
    app.get(&resetter, &format!("/reset-password?token={}", reset.token("reset-password"))).await;
    let reset_page = app.get(&resetter, "/reset-password").await;
    assert!(reset_page.text.contains(r#"action="/reset-password/forgot-answer""#), "{}", reset_page.text);

    // The link: the token leaves the address bar, the page lists the app but not the question,
    // and points to the way forward without any method.
    let linked = TestApp::new_client();
    let opened = app.get(&linked, &format!("/answer-reset?token={token}&from=login")).await;
    assert_eq!((opened.status, opened.header("location")), (303, Some("/answer-reset")));
    assert_eq!(opened.header("referrer-policy"), Some("no-referrer"));
    let page = app.get(&linked, "/answer-reset").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Authenticator app") && !page.text.contains(&format!("value=\"{question}\"")), "{}", page.text);
    assert!(
        page.text.contains("href=\"/login/two-step-reset\" id=\"waiting-reset-link\""),
        "from a login: the waiting-period reset: {}",
        page.text
    );
    let half = TestApp::new_client();
    assert_eq!(app.login_as(&half, "192.0.2.30", "maria", PASSWORD).await.json()["status"], "second_factor_required");
    let waiting = app.get(&half, "/login/two-step-reset").await;
    assert_eq!(waiting.status, 200, "the link leads to the waiting-period reset once the password is given: {}", waiting.text);
    assert!(waiting.text.contains("Email me a link to start"), "{}", waiting.text);
    let looked_again = app.get(&linked, "/answer-reset").await;
    assert_eq!(looked_again.status, 200, "looking spends nothing");
    let totp = page.text.split("name=\"method_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

    let post = |answer: &str, code: String, csrf: String| {
        let form = vec![
            ("csrf".to_owned(), csrf),
            ("method_id".to_owned(), totp.clone()),
            ("code".to_owned(), code),
            ("question_id".to_owned(), "first_album".to_owned()),
            ("answer".to_owned(), answer.to_owned()),
        ];
        linked.post(app.url("/answer-reset")).form(&form).send()
    };
    let weak = Response::read(post("none", current_code(&app, &secret, 0), csrf_of(&page.text)).await.unwrap()).await;
    assert_eq!(weak.status, 422);
    let answer_field = weak.text.split("id=\"answer\"").nth(1).unwrap().split('>').next().unwrap().to_owned();
    assert!(
        answer_field.contains("aria-invalid=\"true\"") && answer_field.contains("autofocus"),
        "the error names its field: {answer_field}"
    );
    app.clock.advance(31);
    let done = Response::read(post("Rumours", current_code(&app, &secret, 0), csrf_of(&weak.text)).await.unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("Your new security question is set"), "{}", done.text);

    // From a reset, the page points to support instead.
    let (_, reset_token) = {
        let asked = app
            .post_json(&TestApp::new_client(), "/api/v1/password/reset/forgot-answer", json!({ "token": reset.token("reset-password") }))
            .await;
        assert_eq!(asked.status, 202);
        answer_mail(&app.deliver().await)
    };
    let support = TestApp::new_client();
    app.get(&support, &format!("/answer-reset?token={reset_token}&from=reset")).await;
    let page = app.get(&support, "/answer-reset").await;
    assert!(page.text.contains("href=\"/recovery-request\""), "from a reset: support: {}", page.text);
    assert!(!page.text.contains("/login/two-step-reset"), "from a reset the password was not given: no waiting-period reset");
}
