//! The support console, first slice (issue 11 §6; checklist S11): who may use it, the step-up
//! every action needs, and the queue with claim, comment and resolve.

use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use crate::two_step::{current_code, enrol_totp};
use doorman_core::account::LoginIdentifier;
use doorman_core::audit::{AuditEvent, RequestContext};
use doorman_core::factors::TotpSecret;
use doorman_core::roles::Role;
use serde_json::{Value, json};

on_both_backends!(
    s11_every_support_route_refuses_anonymous_callers_and_other_accounts,
    s11_an_agent_needs_two_step_on_and_a_fresh_step_up_for_every_action,
    s11_an_agent_claims_comments_and_resolves_a_case_from_the_queue,
    s11_the_case_pages_claim_comment_and_resolve_with_csrf,
    s11_the_account_view_masks_contact_data_and_revealing_a_field_is_audited,
    s11_agents_notes_stay_internal_and_the_requesters_reach_the_agent,
    s11_an_agents_reply_reaches_the_requester_by_email_and_on_the_status_page,
    s11_closing_a_case_tells_its_requester_and_ends_replies,
);

/// A signed-in agent (role `support`, TOTP enrolled), with its TOTP secret and method id.
pub(crate) async fn agent(app: &TestApp, name: &str, ip: &str) -> (reqwest::Client, TotpSecret, String) {
    app.create_account(name, &format!("{name}@example.com")).await;
    assert!(app.services.roles.set_role(name, Role::Support, true, &RequestContext::cli()).await.unwrap());
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, ip, name, PASSWORD).await.status, 200);
    let (secret, method_id) = enrol_totp(app, &client).await;
    (client, secret, method_id)
}

pub(crate) async fn open_public_case(app: &TestApp, message: &str) -> String {
    app.services.compromise.report_publicly(&LoginIdentifier::new("maria"), message, &RequestContext::cli()).await.unwrap();
    let cases = app.services.store.open_cases(200).await.unwrap();
    cases.into_iter().find(|c| c.kind == "compromise_form").expect("the case is in the queue").id
}

pub(crate) async fn post_form(app: &TestApp, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> Response {
    Response::read(client.post(app.url(path)).form(form).send().await.unwrap()).await
}

fn queue_of(answer: &Response) -> Vec<Value> {
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["cases"].as_array().expect("a list of cases").clone()
}

/// Anonymous: 401 `not_authenticated` from the API, the login page (303) from pages. Signed in
/// without the role: 403 everywhere, before any step-up is asked for.
async fn s11_every_support_route_refuses_anonymous_callers_and_other_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let case = open_public_case(&app, "someone changed my payout").await;
    let plain = TestApp::new_client();
    assert_eq!(app.login_as(&plain, "192.0.2.20", "maria", PASSWORD).await.status, 200);

    let api_gets =
        ["/api/v1/support/cases".to_owned(), format!("/api/v1/support/cases/{case}"), format!("/api/v1/support/cases/{case}/account")];
    let api_posts = [
        format!("/api/v1/support/cases/{case}/account/reveal"),
        format!("/api/v1/support/cases/{case}/claim"),
        format!("/api/v1/support/cases/{case}/comments"),
        format!("/api/v1/support/cases/{case}/replies"),
        format!("/api/v1/support/cases/{case}/resolve"),
        format!("/api/v1/support/cases/{case}/checks"),
        format!("/api/v1/support/cases/{case}/actions"),
        "/api/v1/support/actions/some-action/approve".to_owned(),
    ];
    let page_gets = ["/support".to_owned(), format!("/support/cases/{case}")];
    let page_posts = [
        format!("/support/cases/{case}/reveal"),
        format!("/support/cases/{case}/claim"),
        format!("/support/cases/{case}/comment"),
        format!("/support/cases/{case}/reply"),
        format!("/support/cases/{case}/resolve"),
        format!("/support/cases/{case}/checks"),
        format!("/support/cases/{case}/actions"),
        "/support/actions/some-action/approve".to_owned(),
    ];

    for (who, client) in [("anonymous", TestApp::new_client()), ("a plain account", plain.clone())] {
        let (api_status, api_code, page_status) =
            if who == "anonymous" { (401, "not_authenticated", 303) } else { (403, "forbidden", 403) };
        for path in &api_gets {
            let answer = app.get(&client, path).await;
            assert_eq!((answer.status, answer.error_code().as_str()), (api_status, api_code), "{who} GET {path}");
        }
        for path in &api_posts {
            let answer = app.post_json(&client, path, json!({ "comment": "hello", "field": "email" })).await;
            assert_eq!((answer.status, answer.error_code().as_str()), (api_status, api_code), "{who} POST {path}");
        }
        for path in &page_gets {
            let answer = app.get(&client, path).await;
            assert_eq!(answer.status, page_status, "{who} GET {path}");
            if page_status == 303 {
                assert_eq!(answer.header("location"), Some("/login"), "{who} GET {path}");
            }
        }
        for path in &page_posts {
            let answer = post_form(&app, &client, path, &[("csrf", "x"), ("comment", "hello"), ("field", "email")]).await;
            assert_eq!(answer.status, page_status, "{who} POST {path}");
            if page_status == 303 {
                assert_eq!(answer.header("location"), Some("/login"), "{who} POST {path}");
            }
        }
    }
    // Nothing changed: the case is still open, unclaimed, without notes.
    let detail = app.services.store.open_cases(200).await.unwrap();
    let still = detail.iter().find(|c| c.id == case).expect("still open");
    assert_eq!((still.status.as_str(), still.claimed_by.as_deref()), ("open", None));
}

/// The role alone is not enough: 2-step must be on. An agent whose last verification is
/// older than the step-up window is asked to step up (API 403, pages to /step-up), then works.
async fn s11_an_agent_needs_two_step_on_and_a_fresh_step_up_for_every_action(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let case = open_public_case(&app, "not me").await;

    app.create_account("nofactor", "nofactor@example.com").await;
    assert!(app.services.roles.set_role("nofactor", Role::Support, true, &RequestContext::cli()).await.unwrap());
    let without = TestApp::new_client();
    assert_eq!(app.login_as(&without, "192.0.2.21", "nofactor", PASSWORD).await.status, 200);
    let refused = app.get(&without, "/api/v1/support/cases").await;
    assert_eq!((refused.status, refused.error_code().as_str()), (403, "two_step_required"), "{}", refused.text);
    assert_eq!(app.get(&without, "/support").await.status, 403);

    let (client, secret, method_id) = agent(&app, "agent", "192.0.2.22").await;
    assert_eq!(queue_of(&app.get(&client, "/api/v1/support/cases").await).len(), 1);

    app.clock.advance(11 * 60);
    let stale = app.post_json(&client, &format!("/api/v1/support/cases/{case}/claim"), json!({})).await;
    assert_eq!((stale.status, stale.error_code().as_str()), (403, "step_up_required"), "{}", stale.text);
    let stale_list = app.get(&client, "/api/v1/support/cases").await;
    assert_eq!((stale_list.status, stale_list.error_code().as_str()), (403, "step_up_required"));
    let page = app.get(&client, "/support").await;
    assert_eq!((page.status, page.header("location")), (303, Some("/step-up?next=/support")));
    let claimed_unstepped = app.services.store.open_cases(200).await.unwrap();
    assert!(claimed_unstepped.iter().all(|c| c.claimed_by.is_none()), "nothing claimed without a step-up");

    let stepped =
        app.post_json(&client, "/api/v1/step-up", json!({ "method_id": method_id, "code": current_code(&app, &secret, 0) })).await;
    assert_eq!(stepped.status, 200, "{}", stepped.text);
    let claimed = app.post_json(&client, &format!("/api/v1/support/cases/{case}/claim"), json!({})).await;
    assert_eq!((claimed.status, claimed.json()), (200, json!({ "status": "claimed" })));
}

/// The queue lists open cases with kind, status and time; claim, comment and resolve work
/// once, for the agent who holds the case, and are audited with the agent.
async fn s11_an_agent_claims_comments_and_resolves_a_case_from_the_queue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.create_account("maria", "maria@example.com").await;
    let case = open_public_case(&app, "Someone changed my payout method").await;
    let (client, _, _) = agent(&app, "agent", "192.0.2.23").await;
    let (other, _, _) = agent(&app, "other", "192.0.2.24").await;

    let queue = queue_of(&app.get(&client, "/api/v1/support/cases").await);
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(
        (queue[0]["id"].as_str(), queue[0]["kind"].as_str(), queue[0]["status"].as_str()),
        (Some(case.as_str()), Some("compromise_form"), Some("open"))
    );
    assert!(queue[0]["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", queue[0]);

    let path = |what: &str| format!("/api/v1/support/cases/{case}{what}");
    assert_eq!(app.post_json(&client, &path("/claim"), json!({})).await.status, 200);
    let taken = app.post_json(&other, &path("/claim"), json!({})).await;
    assert_eq!((taken.status, taken.error_code().as_str()), (409, "claimed_by_other"));
    let queue = queue_of(&app.get(&other, "/api/v1/support/cases").await);
    assert_eq!((queue[0]["status"].as_str(), queue[0]["claimed_by"].as_str()), (Some("claimed"), Some("agent")));

    let empty = app.post_json(&client, &path("/comments"), json!({ "comment": "   " })).await;
    assert_eq!((empty.status, empty.error_code().as_str()), (400, "invalid_comment"));
    let long = app.post_json(&client, &path("/comments"), json!({ "comment": "x".repeat(4001) })).await;
    assert_eq!((long.status, long.error_code().as_str()), (400, "invalid_comment"));
    let noted = app.post_json(&other, &path("/comments"), json!({ "comment": "Called the owner.\nWaiting for an answer." })).await;
    assert_eq!((noted.status, noted.json()), (201, json!({ "status": "commented" })));
    let detail = app.get(&client, &path("")).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    let detail = detail.json();
    assert!(detail["details"].as_str().unwrap().contains("Someone changed my payout method"), "{detail}");
    assert_eq!(detail["notes"][0]["agent"], "other");
    assert_eq!(detail["notes"][0]["comment"], "Called the owner.\nWaiting for an answer.");

    let not_yours = app.post_json(&other, &path("/resolve"), json!({})).await;
    assert_eq!((not_yours.status, not_yours.error_code().as_str()), (409, "claimed_by_other"));
    assert_eq!(app.post_json(&client, &path("/resolve"), json!({})).await.json(), json!({ "status": "resolved" }));
    assert!(queue_of(&app.get(&client, "/api/v1/support/cases").await).is_empty(), "a resolved case leaves the queue");
    for what in ["/claim", "/resolve"] {
        let again = app.post_json(&client, &path(what), json!({})).await;
        assert_eq!((again.status, again.error_code().as_str()), (409, "case_resolved"), "{what}");
    }
    let late = app.post_json(&client, &path("/comments"), json!({ "comment": "late" })).await;
    assert_eq!((late.status, late.error_code().as_str()), (409, "case_resolved"));
    let unknown = app.post_json(&client, "/api/v1/support/cases/C-0000000000/claim", json!({})).await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "not_found"));
    assert_eq!(app.get(&client, "/api/v1/support/cases/C-0000000000").await.status, 404);

    // Audited with the agent who did it.
    let agent_id = app.services.store.find_for_login("agent").await.unwrap().unwrap().0.id;
    let events = app.services.store.audit_of(&agent_id, 100).await.unwrap();
    for event in [AuditEvent::SupportCaseClaimed, AuditEvent::SupportCaseResolved] {
        assert!(events.iter().any(|e| e.event == event && e.detail.contains(&case)), "{event:?} in {events:?}");
    }
    let other_id = app.services.store.find_for_login("other").await.unwrap().unwrap().0.id;
    let events = app.services.store.audit_of(&other_id, 100).await.unwrap();
    assert!(events.iter().any(|e| e.event == AuditEvent::SupportCaseCommented && e.detail.contains(&case)));
    let _ = owner;
}

/// The pages: the queue lists the case; its page claims, takes a note (an empty one is shown
/// back on the form, named), refuses a form without the right CSRF token, and resolves.
async fn s11_the_case_pages_claim_comment_and_resolve_with_csrf(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let case = open_public_case(&app, "A <b>strange</b> login").await;
    let (client, _, _) = agent(&app, "agent", "192.0.2.25").await;

    let queue = app.get(&client, "/support").await;
    assert_eq!(queue.status, 200);
    assert!(queue.text.contains(&format!("href=\"/support/cases/{case}\"")) && queue.text.contains("Compromise report"), "{}", queue.text);
    let page = app.get(&client, &format!("/support/cases/{case}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("A &#60;b&#62;strange&#60;/b&#62; login") && !page.text.contains("<b>strange"),
        "escaped details: {}",
        page.text
    );
    let csrf = csrf_of(&page.text);

    let forged = post_form(&app, &client, &format!("/support/cases/{case}/claim"), &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    let claimed = post_form(&app, &client, &format!("/support/cases/{case}/claim"), &[("csrf", &csrf)]).await;
    assert_eq!((claimed.status, claimed.header("location")), (303, Some(format!("/support/cases/{case}").as_str())));
    let empty = post_form(&app, &client, &format!("/support/cases/{case}/comment"), &[("csrf", &csrf), ("comment", "")]).await;
    assert_eq!(empty.status, 400);
    assert!(empty.text.contains("aria-invalid=\"true\" aria-describedby=\"comment-error\""), "{}", empty.text);
    let noted =
        post_form(&app, &client, &format!("/support/cases/{case}/comment"), &[("csrf", &csrf), ("comment", "Asked for a selfie")]).await;
    assert_eq!(noted.status, 303);
    let page = app.get(&client, &format!("/support/cases/{case}")).await;
    assert!(page.text.contains("Asked for a selfie") && page.text.contains("id=\"case-claimed-by\">agent<"), "{}", page.text);
    let resolved = post_form(&app, &client, &format!("/support/cases/{case}/resolve"), &[("csrf", &csrf)]).await;
    assert_eq!((resolved.status, resolved.header("location")), (303, Some("/support")));
    assert!(app.get(&client, "/support").await.text.contains("No open cases."));
    // A public report has no contact address: no form to write to the requester.
    assert!(!page.text.contains("Write to the requester") && !page.text.contains("/reply\""), "{}", page.text);
}

/// The account a case names: username and email masked, 2-step methods, sessions, recent
/// events and cases; revealing a field answers it in clear and is audited with the agent.
async fn s11_the_account_view_masks_contact_data_and_revealing_a_field_is_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let owner = TestApp::new_client();
    assert_eq!(app.login_as(&owner, "203.0.113.9", "maria", PASSWORD).await.status, 200);
    enrol_totp(&app, &owner).await;
    let case = open_public_case(&app, "not me").await;
    let (client, _, _) = agent(&app, "agent", "192.0.2.26").await;

    let view = app.get(&client, &format!("/api/v1/support/cases/{case}/account")).await;
    assert_eq!(view.status, 200, "{}", view.text);
    let view = view.json();
    assert_eq!((view["username"].as_str(), view["email"].as_str()), (Some("m••••"), Some("m••••@e••••••.com")), "{view}");
    assert!(!view.to_string().contains("maria@example.com"), "{view}");
    assert_eq!(view["two_step_methods"][0]["kind"], "totp");
    // S10.4, S11.2: the agent sees when and how each method came, to judge evidence by.
    let history = &view["two_step_history"][0];
    assert_eq!(
        (history["kind"].as_str(), history["change"].as_str(), history["by"].as_str()),
        (Some("totp"), Some("added"), Some("owner"))
    );
    assert_eq!(view["sessions"][0]["ip"], "203.0.113.9");
    assert!(view["events"].as_array().unwrap().iter().any(|e| e["event"] == "login_succeeded"), "{view}");
    assert_eq!(view["cases"][0]["id"].as_str(), Some(case.as_str()));
    assert_eq!(view["locked"], false);

    let page = app.get(&client, &format!("/support/cases/{case}")).await;
    assert!(page.text.contains("m••••@e••••••.com") && !page.text.contains("maria@example.com"), "{}", page.text);
    assert!(page.text.contains("id=\"account-method-history\"") && page.text.contains("totp added by owner"), "{}", page.text);

    let bad = app.post_json(&client, &format!("/api/v1/support/cases/{case}/account/reveal"), json!({ "field": "password" })).await;
    assert_eq!((bad.status, bad.error_code().as_str()), (400, "invalid_field"));
    let shown = app.post_json(&client, &format!("/api/v1/support/cases/{case}/account/reveal"), json!({ "field": "email" })).await;
    assert_eq!((shown.status, shown.json()), (200, json!({ "field": "email", "value": "maria@example.com" })));
    let form =
        post_form(&app, &client, &format!("/support/cases/{case}/reveal"), &[("csrf", &csrf_of(&page.text)), ("field", "username")]).await;
    assert_eq!(form.status, 200);
    assert!(form.text.contains("id=\"account-username\">maria<"), "{}", form.text);

    let agent_id = app.services.store.find_for_login("agent").await.unwrap().unwrap().0.id;
    let events = app.services.store.audit_of(&agent_id, 100).await.unwrap();
    let reveals: Vec<_> = events.iter().filter(|e| e.event == AuditEvent::SupportFieldRevealed).map(|e| e.detail.clone()).collect();
    assert_eq!(reveals.len(), 2, "{reveals:?}");
    assert!(
        reveals.iter().any(|d| d.contains(&case) && d.ends_with("field=email")) && reveals.iter().any(|d| d.ends_with("field=username"))
    );

    // A case without an account: 404 no_account, and the page says so.
    app.services.compromise.report_publicly(&LoginIdentifier::new("nobody"), "?", &RequestContext::cli()).await.unwrap();
    let cases = app.services.store.open_cases(200).await.unwrap();
    let orphan = cases.iter().find(|c| c.id != case).unwrap().id.clone();
    let none = app.get(&client, &format!("/api/v1/support/cases/{orphan}/account")).await;
    assert_eq!((none.status, none.error_code().as_str()), (404, "no_account"));
    assert!(app.get(&client, &format!("/support/cases/{orphan}")).await.text.contains("This case names no account."));
}

/// A recovery request's case (issue 11 §3) in the console: the requester's note reaches the
/// agent, marked as the requester's; the agent's notes are internal and never shown on the
/// requester's status page.
async fn s11_agents_notes_stay_internal_and_the_requesters_reach_the_agent(backend: Backend) {
    use crate::recovery_requests::post_from;
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let (case, token) = recovery_case(&app, "new-me@example.org").await;
    let note = json!({ "token": token, "message": "My old phone ended in 42." });
    assert_eq!(post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/notes", note).await.status, 201);

    let (client, _, _) = agent(&app, "agent", "192.0.2.23").await;
    let comment = json!({ "comment": "Internal: payout bank matches." });
    let commented = app.post_json(&client, &format!("/api/v1/support/cases/{case}/comments"), comment).await;
    assert_eq!(commented.status, 201, "{}", commented.text);
    let seen = app.get(&client, &format!("/api/v1/support/cases/{case}")).await.json();
    let notes: Vec<(String, String)> = seen["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["agent"].as_str().unwrap_or_default().to_owned(), n["comment"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert!(notes.contains(&("requester".to_owned(), "My old phone ended in 42.".to_owned())), "{seen}");
    assert!(notes.contains(&("agent".to_owned(), "Internal: payout bank matches.".to_owned())), "{seen}");

    let shown = requester_view(&app, &token).await.json()["notes"].to_string();
    assert!(shown.contains("ended in 42") && !shown.contains("Internal"), "an agent's note reached the requester: {shown}");
}

/// A confirmed recovery request for maria from `contact`: the case and its first status link.
pub(crate) async fn recovery_case(app: &TestApp, contact: &str) -> (String, String) {
    use crate::recovery_requests::{ask, confirm, only_mail};
    assert_eq!(ask(app, "192.0.2.10", "maria", contact).await.status, 202);
    let code = only_mail(app.deliver().await, "recovery_request_code").code();
    let case = confirm(app, "192.0.2.10", contact, &code).await.json()["case"].as_str().unwrap().to_owned();
    let token = only_mail(app.deliver().await, "recovery_request_case").token("recovery-request/status");
    (case, token)
}

/// The requester's view of the case, through a status link.
async fn requester_view(app: &TestApp, token: &str) -> Response {
    crate::recovery_requests::post_from(app, "192.0.2.10", "/api/v1/recovery-requests/status", json!({ "token": token })).await
}

/// Issue 11 §3: "a support agent will ... write to this address". An agent's reply is shown
/// on the requester's status page and emailed to the verified contact address with a fresh
/// link to it; internal notes stay internal; the case is claimed by the agent who wrote; bad
/// input, another agent's case and a case without a contact address are refused with why,
/// and nothing is sent; replies are limited per case and day (each is an email, S3.5).
async fn s11_an_agents_reply_reaches_the_requester_by_email_and_on_the_status_page(backend: Backend) {
    use crate::recovery_requests::only_mail;
    const CONTACT: &str = "new-me@example.org";
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let (case, first_link) = recovery_case(&app, CONTACT).await;
    let (client, secret, method_id) = agent(&app, "agent", "192.0.2.23").await;
    let (other, _, _) = agent(&app, "other", "192.0.2.24").await;
    let replies = format!("/api/v1/support/cases/{case}/replies");

    let seen = app.get(&client, &format!("/api/v1/support/cases/{case}")).await.json();
    assert_eq!(seen["contact_email"], CONTACT, "the case names where replies go: {seen}");
    for bad in [json!({ "message": "" }), json!({ "message": " \n " }), json!({ "message": "x".repeat(4001) })] {
        let refused = app.post_json(&client, &replies, bad).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_reply"), "{}", refused.text);
        assert!(refused.json()["message"].as_str().unwrap().contains("4000 characters"), "{}", refused.text);
    }
    // NUL (which PostgreSQL refuses in text) and other controls: a 400, never a 500.
    for control in ["a\u{0}b", "a\u{7}b"] {
        let refused = app.post_json(&client, &replies, json!({ "message": control })).await;
        assert_eq!((refused.status, refused.error_code().as_str()), (400, "invalid_body"), "{}", refused.text);
    }
    let unknown = app.post_json(&client, "/api/v1/support/cases/C-0000000000/replies", json!({ "message": "hi" })).await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "not_found"));
    let public = open_public_case(&app, "someone changed my payout").await;
    app.deliver().await; // the agents' and the account's own security emails
    let no_contact = app.post_json(&client, &format!("/api/v1/support/cases/{public}/replies"), json!({ "message": "hi" })).await;
    assert_eq!((no_contact.status, no_contact.error_code().as_str()), (409, "no_contact"), "{}", no_contact.text);
    assert!(app.deliver().await.is_empty(), "nothing sent for a refused reply");

    let comment = json!({ "comment": "Internal: payout bank matches." });
    // Written in the same second of the clock: still listed in the order written.
    assert_eq!(app.post_json(&client, &format!("/api/v1/support/cases/{case}/comments"), comment).await.status, 201);
    let text = "Thanks for writing. Which bank did your last payout go to?\nAnswer on your case page.";
    let replied = app.post_json(&client, &replies, json!({ "message": format!("  {text}\n") })).await;
    assert_eq!((replied.status, replied.json()), (201, json!({ "status": "sent" })), "{}", replied.text);

    let mail = only_mail(app.deliver().await, "support_reply");
    assert_eq!(mail.to, CONTACT);
    assert!(mail.subject.contains(&case), "{}", mail.subject);
    assert!(mail.text.contains(text), "the reply as written: {}", mail.text);
    assert!(!mail.text.contains("maria") && !mail.text.contains("Internal"), "{}", mail.text);
    assert!(mail.text.contains("never asks for your password"), "{}", mail.text);
    let fresh_link = mail.token("recovery-request/status");
    assert_ne!(fresh_link, first_link, "each email carries its own link");

    // Either link shows the reply as support's, after nothing internal, and the case as taken.
    for link in [&first_link, &fresh_link] {
        let view = requester_view(&app, link).await;
        assert_eq!(view.status, 200, "{}", view.text);
        assert_eq!(view.json()["status"], "claimed");
        let notes = view.json()["notes"].clone();
        assert_eq!(notes.as_array().unwrap().len(), 1, "{notes}");
        assert_eq!((notes[0]["author"].as_str(), notes[0]["body"].as_str()), (Some("support"), Some(text)));
    }
    let browser = TestApp::new_client();
    assert_eq!(app.get(&browser, &format!("/recovery-request/status?token={fresh_link}")).await.status, 303);
    let page = app.get(&browser, "/recovery-request/status").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("a support agent is on it") && page.text.contains("<strong>Support</strong>"), "{}", page.text);
    assert!(page.text.contains("Which bank did your last payout go to?") && !page.text.contains("Internal"), "{}", page.text);

    // The agents' view marks what went to the requester; the case is now the replier's.
    let seen = app.get(&client, &format!("/api/v1/support/cases/{case}")).await.json();
    assert_eq!((seen["status"].as_str(), seen["claimed_by"].as_str()), (Some("claimed"), Some("agent")), "{seen}");
    let marked: Vec<(bool, &str)> =
        seen["notes"].as_array().unwrap().iter().map(|n| (n["to_requester"].as_bool().unwrap(), n["comment"].as_str().unwrap())).collect();
    assert_eq!(marked, [(false, "Internal: payout bank matches."), (true, text)]);
    let agent_id = app.services.store.find_for_login("agent").await.unwrap().unwrap().0.id;
    let events = app.services.store.audit_of(&agent_id, 100).await.unwrap();
    assert!(events.iter().any(|e| e.event == AuditEvent::SupportCaseReplied && e.detail == format!("case={case}")), "{events:?}");

    let taken = app.post_json(&other, &replies, json!({ "message": "Hello from another agent" })).await;
    assert_eq!((taken.status, taken.error_code().as_str()), (409, "claimed_by_other"), "{}", taken.text);
    assert!(app.deliver().await.is_empty());

    // The case page: the form says where the reply goes and what not to write; a refused
    // reply stays on the form with why; a sent one shows among the notes as a reply.
    let page = app.get(&client, &format!("/support/cases/{case}")).await;
    assert!(page.text.contains(&format!("Emailed to <strong>{CONTACT}</strong>")) && page.text.contains("not that they own the account"));
    let csrf = csrf_of(&page.text);
    let form_path = format!("/support/cases/{case}/reply");
    let forged = post_form(&app, &client, &form_path, &[("csrf", "forged"), ("message", "hello")]).await;
    assert_eq!(forged.status, 403);
    let empty = post_form(&app, &client, &form_path, &[("csrf", &csrf), ("message", "  ")]).await;
    assert_eq!(empty.status, 400);
    assert!(empty.text.contains("aria-invalid=\"true\" aria-describedby=\"reply-error\"") && empty.text.contains("4000 characters"));
    let sent = post_form(&app, &client, &form_path, &[("csrf", &csrf), ("message", "Sent from the page <b>2</b>")]).await;
    assert_eq!((sent.status, sent.header("location")), (303, Some(format!("/support/cases/{case}#case-notes").as_str())));
    let mail = only_mail(app.deliver().await, "support_reply");
    assert!(mail.text.contains("Sent from the page <b>2</b>"), "{}", mail.text);
    assert!(!mail.html.contains("<b>2</b>"), "the agent's text is escaped in the HTML part: {}", mail.html);
    let page = app.get(&client, &format!("/support/cases/{case}")).await;
    assert!(page.text.contains("replied to the requester") && page.text.contains("Sent from the page &#60;b&#62;2"), "{}", page.text);

    // Twenty replies a day per case, then 429 with the wait; the next day, more.
    for i in 3..=20 {
        assert_eq!(app.post_json(&client, &replies, json!({ "message": format!("reply {i}") })).await.status, 201);
    }
    assert_eq!(app.deliver().await.len(), 18);
    let limited = app.post_json(&client, &replies, json!({ "message": "one too many" })).await;
    assert_eq!((limited.status, limited.error_code().as_str()), (429, "too_many_replies"), "{}", limited.text);
    assert!(limited.header("retry-after").is_some());
    assert!(app.deliver().await.is_empty(), "a refused reply sends nothing");

    // The requester answers: the queue shows the case waits for support, until it replies.
    let waiting = |client: reqwest::Client| {
        let (app, case) = (&app, case.clone());
        async move {
            let queue = app.get(&client, "/api/v1/support/cases").await.json();
            let row = queue["cases"].as_array().unwrap().iter().find(|c| c["id"] == case.as_str()).cloned().unwrap();
            row["requester_wrote_last"].as_bool().unwrap()
        }
    };
    assert!(!waiting(client.clone()).await, "support wrote last");
    let note = json!({ "token": fresh_link, "message": "It went to BDO, last March." });
    assert_eq!(crate::recovery_requests::post_from(&app, "192.0.2.10", "/api/v1/recovery-requests/notes", note).await.status, 201);
    assert!(waiting(client.clone()).await, "the requester wrote last");
    assert!(app.get(&client, "/support").await.text.contains("the requester wrote last"));
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(app.login_as(&client, "192.0.2.23", "agent", PASSWORD).await.status, 200);
    let second = json!({ "method_id": method_id, "code": current_code(&app, &secret, 0) });
    assert_eq!(app.post_json(&client, "/api/v1/login/second-factor", second).await.status, 200);
    assert_eq!(app.post_json(&client, &replies, json!({ "message": "next day" })).await.status, 201);
    assert_eq!(only_mail(app.deliver().await, "support_reply").to, CONTACT);
    assert!(!waiting(client.clone()).await, "answered");
    assert_eq!(requester_view(&app, &first_link).await.json()["notes"].as_array().unwrap().len(), 22);
}

/// Resolving a case with a contact address tells its requester (with a link to what support
/// wrote), ends replies, and the status page says it is closed; a case without one sends
/// nothing. Links sent later expire 90 days after their email, and retention deletes them.
async fn s11_closing_a_case_tells_its_requester_and_ends_replies(backend: Backend) {
    use crate::recovery_requests::only_mail;
    use doorman_core::retention::Prunable;
    const CONTACT: &str = "new-me@example.org";
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let (case, first_link) = recovery_case(&app, CONTACT).await;
    let (client, _, _) = agent(&app, "agent", "192.0.2.23").await;
    let public = open_public_case(&app, "not me").await;
    app.deliver().await; // the agent's and the account's own security emails
    assert_eq!(app.post_json(&client, &format!("/api/v1/support/cases/{public}/resolve"), json!({})).await.status, 200);
    assert!(app.deliver().await.is_empty(), "a case without a contact address emails nobody");

    let resolved = app.post_json(&client, &format!("/api/v1/support/cases/{case}/resolve"), json!({})).await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    let mail = only_mail(app.deliver().await, "support_case_closed");
    assert_eq!(mail.to, CONTACT);
    assert!(mail.text.contains(&case) && mail.text.contains("recovery-request") && !mail.text.contains("maria"), "{}", mail.text);
    let closing_link = mail.token("recovery-request/status");
    assert_eq!(requester_view(&app, &closing_link).await.json()["status"], "resolved");
    let browser = TestApp::new_client();
    app.get(&browser, &format!("/recovery-request/status?token={closing_link}")).await;
    assert!(app.get(&browser, "/recovery-request/status").await.text.contains("<strong>closed</strong>"));

    let late = app.post_json(&client, &format!("/api/v1/support/cases/{case}/replies"), json!({ "message": "one more thing" })).await;
    assert_eq!((late.status, late.error_code().as_str()), (409, "case_resolved"), "{}", late.text);
    let again = app.post_json(&client, &format!("/api/v1/support/cases/{case}/resolve"), json!({})).await;
    assert_eq!((again.status, again.error_code().as_str()), (409, "case_resolved"));
    assert!(app.deliver().await.is_empty(), "closed once, told once");

    // A month later the first link (from the case's opening) still works; 91 days after the
    // closing email, neither does, and retention deletes the later one.
    app.clock.advance(30 * 24 * 3600);
    assert_eq!(requester_view(&app, &first_link).await.status, 200);
    app.clock.advance(61 * 24 * 3600);
    for link in [&first_link, &closing_link] {
        let expired = requester_view(&app, link).await;
        assert_eq!((expired.status, expired.error_code().as_str()), (400, "invalid_token"));
    }
    let report = app.services.retention.prune_once().await.unwrap();
    assert_eq!(report.removed_of(Prunable::CaseStatusLinks), 0, "kept a day past expiry: {report:?}");
    app.clock.advance(2 * 24 * 3600);
    let report = app.services.retention.prune_once().await.unwrap();
    assert_eq!(report.removed_of(Prunable::CaseStatusLinks), 1, "{report:?}");
}
