//! The support console's actions (issue 11 §6; checklist S11): one-person actions with a
//! reason, an email and an audit entry; the identity checklist; the two-person rule with its
//! 24-hour approval window and cooling-off period; and the owner's cancel.

use crate::helpers::{Backend, Mail, PASSWORD, TestApp};
use crate::on_both_backends;
use crate::recovery_requests::{ask, confirm, only_mail};
use crate::support::{agent, open_public_case};
use crate::two_step::{current_code, enrol_totp};
use doorman_core::account::AccountId;
use doorman_core::audit::AuditEvent;
use doorman_core::factors::TotpSecret;
use serde_json::{Value, json};

on_both_backends!(
    s11_one_agent_actions_take_a_reason_are_emailed_and_audited,
    s11_an_unlock_by_support_ends_with_a_new_password,
    s11_a_lost_email_is_moved_by_two_agents_after_two_kinds_of_evidence_and_a_cooling_off,
    s11_a_proposal_expires_after_24_hours_and_one_action_waits_per_account,
    s11_the_owner_cancels_a_pending_support_change_by_link_or_from_a_session,
    s1_12_a_report_that_takes_every_method_away_is_lifted_by_support_only,
);

const CONTACT: &str = "new-me@example.org";

/// An agent's client with what it needs to step up again after the clock moved.
struct AgentClient {
    client: reqwest::Client,
    name: String,
    secret: TotpSecret,
    method_id: String,
}

impl AgentClient {
    async fn new(app: &TestApp, name: &str, ip: &str) -> Self {
        let (client, secret, method_id) = agent(app, name, ip).await;
        Self { client, name: name.to_owned(), secret, method_id }
    }

    /// Signs in again with the password and the app (after the clock moved past the
    /// session's life): a fresh second step is a fresh step-up.
    async fn sign_in_again(&self, app: &TestApp) {
        let login = app.login_as(&self.client, "192.0.2.99", &self.name, PASSWORD).await;
        assert_eq!(login.status, 200, "{}", login.text);
        let body = json!({ "method_id": self.method_id, "code": current_code(app, &self.secret, 0) });
        let second = app.post_json(&self.client, "/api/v1/login/second-factor", body).await;
        assert_eq!(second.status, 200, "{}", second.text);
    }

    async fn act(&self, app: &TestApp, case: &str, action: &str, reason: &str) -> crate::helpers::Response {
        let path = format!("/api/v1/support/cases/{case}/actions");
        app.post_json(&self.client, &path, json!({ "action": action, "reason": reason })).await
    }

    async fn check(&self, app: &TestApp, case: &str, kind: &str, note: &str) -> crate::helpers::Response {
        app.post_json(&self.client, &format!("/api/v1/support/cases/{case}/checks"), json!({ "kind": kind, "note": note })).await
    }

    async fn approve(&self, app: &TestApp, action_id: &str, reason: &str) -> crate::helpers::Response {
        app.post_json(&self.client, &format!("/api/v1/support/actions/{action_id}/approve"), json!({ "reason": reason })).await
    }

    async fn case(&self, app: &TestApp, case: &str) -> Value {
        let answer = app.get(&self.client, &format!("/api/v1/support/cases/{case}")).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()
    }
}

async fn account_id(app: &TestApp, login: &str) -> AccountId {
    app.services.store.find_for_login(login).await.unwrap().expect("the account").0.id
}

async fn audited(app: &TestApp, who: &str, event: AuditEvent, needle: &str) -> bool {
    let id = account_id(app, who).await;
    app.services.store.audit_of(&id, 200).await.unwrap().iter().any(|e| e.event == event && e.detail.contains(needle))
}

fn mails_of<'a>(mails: &'a [Mail], kind: &str) -> Vec<&'a Mail> {
    mails.iter().filter(|m| m.kind == kind).collect()
}

/// A recovery request for maria from CONTACT, confirmed: its case number.
async fn lost_email_case(app: &TestApp) -> String {
    app.deliver().await;
    assert_eq!(ask(app, "192.0.2.60", "maria", CONTACT).await.status, 202);
    let code = only_mail(app.deliver().await, "recovery_request_code").code();
    let confirmed = confirm(app, "192.0.2.60", CONTACT, &code).await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.text);
    app.deliver().await;
    confirmed.json()["case"].as_str().expect("a case").to_owned()
}

/// Revoke sessions, lock and send a reset link: done at once (200 `done`), each with its
/// written reason in the audit log under the agent, and each emailed to the owner. A missing
/// reason or an unknown action is a 400 naming the field, and changes nothing.
async fn s11_one_agent_actions_take_a_reason_are_emailed_and_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let case = open_public_case(&app, "someone is in my account").await;
    let owner = TestApp::new_client();
    assert_eq!(app.login_as(&owner, "192.0.2.61", "maria", PASSWORD).await.status, 200);
    let ana = AgentClient::new(&app, "ana", "192.0.2.62").await;
    app.deliver().await;

    let no_reason = ana.act(&app, &case, "revoke_sessions", "  ").await;
    assert_eq!((no_reason.status, no_reason.error_code().as_str()), (400, "invalid_reason"), "{}", no_reason.text);
    assert_eq!(no_reason.json()["field"], "reason");
    let unknown = ana.act(&app, &case, "delete_account", "because").await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (400, "invalid_action"));
    assert_eq!(app.get(&owner, "/api/v1/account/sessions").await.status, 200, "nothing happened yet");

    let revoked = ana.act(&app, &case, "revoke_sessions", "Owner says a stranger is signed in").await;
    assert_eq!((revoked.status, revoked.json()), (200, json!({ "status": "done" })), "{}", revoked.text);
    assert_eq!(app.get(&owner, "/api/v1/account/sessions").await.status, 401, "the owner's session ended");
    let mails = app.deliver().await;
    let told = mails_of(&mails, "support_action");
    assert_eq!(told.len(), 1, "{mails:?}");
    assert_eq!(told[0].to, "maria@example.com");
    assert!(told[0].text.contains("signed out every session") && told[0].text.contains(&case), "{}", told[0].text);
    assert!(audited(&app, "ana", AuditEvent::SupportActionDone, "action=revoke_sessions reason=Owner says a stranger is signed in").await);

    let locked = ana.act(&app, &case, "lock", "Payout details changed by someone else").await;
    assert_eq!(locked.status, 200, "{}", locked.text);
    let refused = app.login("maria", PASSWORD).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (403, "account_locked"));
    assert_eq!(app.login("maria", "not the password at all").await.status, 401, "the lock shows only after the password");
    assert_eq!(mails_of(&app.deliver().await, "support_action").len(), 1);

    let reset = ana.act(&app, &case, "send_reset_link", "Owner asked for a new link").await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let mails = app.deliver().await;
    let links = mails_of(&mails, "password_reset");
    assert_eq!((links.len(), links[0].to.as_str()), (1, "maria@example.com"), "{mails:?}");
    assert!(audited(&app, "ana", AuditEvent::SupportActionDone, "action=send_reset_link").await);

    // Nobody acts on their own account through the console.
    let cases = app.services.store.open_cases(200).await.unwrap();
    let ana_case = {
        app.services
            .compromise
            .report_publicly(&doorman_core::account::LoginIdentifier::new("ana"), "ana's own", &doorman_core::audit::RequestContext::cli())
            .await
            .unwrap();
        let after = app.services.store.open_cases(200).await.unwrap();
        after.into_iter().find(|c| !cases.iter().any(|o| o.id == c.id)).expect("a new case").id
    };
    let self_service = ana.act(&app, &ana_case, "revoke_sessions", "testing").await;
    assert_eq!((self_service.status, self_service.error_code().as_str()), (403, "own_account"));
}

/// Unlocking removes the lock, but the old password no longer works: the owner sets a new one
/// with the reset link support sends (issue 11 §4: "unlocking ends with a new password").
async fn s11_an_unlock_by_support_ends_with_a_new_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let case = open_public_case(&app, "locked out").await;
    let ana = AgentClient::new(&app, "ana", "192.0.2.63").await;
    let not_locked = ana.act(&app, &case, "unlock", "Owner proved who she is").await;
    assert_eq!((not_locked.status, not_locked.error_code().as_str()), (409, "not_locked"));
    assert_eq!(ana.act(&app, &case, "lock", "Reported takeover").await.status, 200);
    app.deliver().await;

    let unlocked = ana.act(&app, &case, "unlock", "Owner proved who she is on a call").await;
    assert_eq!(unlocked.status, 200, "{}", unlocked.text);
    let old = app.login("maria", PASSWORD).await;
    assert_eq!((old.status, old.error_code().as_str()), (401, "invalid_credentials"), "the old password is gone");
    let mails = app.deliver().await;
    assert_eq!(mails_of(&mails, "support_action").len(), 1, "{mails:?}");
    let link = mails_of(&mails, "password_reset");
    assert_eq!(link.len(), 1, "{mails:?}");
    let token = link[0].token("reset-password");
    let done = app.reset(json!({ "token": token, "new_password": "a brand new passphrase 7" })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(app.login("maria", "a brand new passphrase 7").await.status, 200);
    assert!(audited(&app, "maria", AuditEvent::AccountUnlocked, "support").await);
}

/// The lost-email walk over the API: the contact address proved by its code is on the
/// checklist but does not count; two checks of different kinds are needed before an email
/// change can be proposed; the proposer cannot approve; a second agent can. The change waits
/// for the cooling-off period (the old address gets a cancel link, the new one a notice),
/// then moves the account, ends every session and removes 2-step, and both addresses are told.
/// A reset link then goes to the new address.
async fn s11_a_lost_email_is_moved_by_two_agents_after_two_kinds_of_evidence_and_a_cooling_off(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let owner = TestApp::new_client();
    assert_eq!(app.login_as(&owner, "192.0.2.64", "maria", PASSWORD).await.status, 200);
    enrol_totp(&app, &owner).await;
    let case = lost_email_case(&app).await;
    let ana = AgentClient::new(&app, "ana", "192.0.2.65").await;
    let ben = AgentClient::new(&app, "ben", "192.0.2.66").await;
    app.deliver().await;

    let checks = ana.case(&app, &case).await["checks"].clone();
    assert_eq!(checks.as_array().map(Vec::len), Some(1), "{checks}");
    assert_eq!((checks[0]["kind"].as_str(), checks[0]["counts"].as_bool()), (Some("contact_verified"), Some(false)));

    let early = ana.act(&app, &case, "change_email", "Owner lost her mailbox").await;
    assert_eq!((early.status, early.error_code().as_str()), (409, "checks_missing"), "{}", early.text);
    let by_hand = ana.check(&app, &case, "contact_verified", "I saw the code").await;
    assert_eq!((by_hand.status, by_hand.error_code().as_str()), (400, "invalid_kind"));
    let empty = ana.check(&app, &case, "last_sign_in", "").await;
    assert_eq!((empty.status, empty.error_code().as_str()), (400, "invalid_note"));
    for note in ["Said last March from Manila; the log agrees", "Repeated it on the call"] {
        let recorded = ana.check(&app, &case, "last_sign_in", note).await;
        assert_eq!((recorded.status, recorded.json()), (201, json!({ "status": "recorded" })));
    }
    let one_kind = ana.act(&app, &case, "change_email", "Owner lost her mailbox").await;
    assert_eq!(one_kind.error_code(), "checks_missing", "two checks of one kind are one kind of evidence");
    assert_eq!(ben.check(&app, &case, "payout_method", "Bank transfer to BDO, as on file").await.status, 201);

    let proposed = ana.act(&app, &case, "change_email", "Owner lost her mailbox; checks done").await;
    assert_eq!(proposed.status, 202, "{}", proposed.text);
    assert_eq!(proposed.json()["status"], "awaiting_approval");
    let action_id = proposed.json()["action_id"].as_str().expect("an action id").to_owned();
    let listed = ana.case(&app, &case).await["actions"][0].clone();
    assert_eq!((listed["action"].as_str(), listed["target"].as_str()), (Some("change_email"), Some(CONTACT)));
    assert_eq!((listed["status"].as_str(), listed["proposed_by"].as_str()), (Some("awaiting_approval"), Some("ana")));

    let own = ana.approve(&app, &action_id, "I checked it myself").await;
    assert_eq!((own.status, own.error_code().as_str()), (403, "same_agent"), "{}", own.text);
    let no_reason = ben.approve(&app, &action_id, "").await;
    assert_eq!(no_reason.error_code(), "invalid_reason");
    assert!(app.deliver().await.is_empty(), "nothing is sent before an approval");

    let approved = ben.approve(&app, &action_id, "Read the checklist; agree").await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.json()["status"], "approved");
    assert!(approved.json()["effective_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{}", approved.text);
    let again = ben.approve(&app, &action_id, "twice").await;
    assert_eq!((again.status, again.error_code().as_str()), (409, "not_awaiting_approval"));
    let mails = app.deliver().await;
    let pending = mails_of(&mails, "support_action_approved");
    assert_eq!(pending.len(), 2, "{mails:?}");
    let old = pending.iter().find(|m| m.to == "maria@example.com").expect("the old address is told");
    assert!(old.text.contains("support-action/cancel?token=") && old.text.contains(CONTACT), "{}", old.text);
    let new = pending.iter().find(|m| m.to == CONTACT).expect("the new address is told");
    assert!(!new.text.contains("cancel?token="), "the new address gets no cancel link: {}", new.text);

    // During the cooling-off period nothing changes.
    app.clock.advance(23 * 3600);
    assert!(app.deliver().await.is_empty());
    let maria = app.services.store.get_account(&account_id(&app, "maria").await).await.unwrap().unwrap();
    assert_eq!(maria.email.as_str(), "maria@example.com");
    assert!(!app.services.store.factors_of(&maria.id).await.unwrap().is_empty());

    app.clock.advance(3600 + 60);
    let mails = app.deliver().await;
    let applied = mails_of(&mails, "support_action_applied");
    let mut to: Vec<&str> = applied.iter().map(|m| m.to.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, vec!["maria@example.com", CONTACT], "{mails:?}");
    let to_new = applied.iter().find(|m| m.to == CONTACT).unwrap();
    assert!(to_new.text.contains("/forgot-password with this address"), "the way back in, without an agent: {}", to_new.text);
    assert!(!to_new.text.contains("report-compromise"), "the person who asked is not told to report it: {}", to_new.text);
    let to_old = applied.iter().find(|m| m.to == "maria@example.com").unwrap();
    assert!(!to_old.text.contains("forgot-password"), "{}", to_old.text);
    let maria = app.services.store.get_account(&account_id(&app, "maria").await).await.unwrap().unwrap();
    assert_eq!(maria.email.as_str(), CONTACT);
    assert_eq!(app.get(&owner, "/api/v1/account/sessions").await.status, 401, "every session ended");
    assert!(app.services.store.factors_of(&maria.id).await.unwrap().is_empty(), "2-step removed");
    let history = crate::two_step::stored_history(&app, &maria.id).await;
    assert_eq!(history, [("totp", "added", "owner"), ("totp", "removed", "support")], "S10.4");
    assert!(audited(&app, "maria", AuditEvent::SupportActionApplied, &action_id).await);
    assert!(audited(&app, "ana", AuditEvent::SupportActionProposed, &action_id).await);
    assert!(audited(&app, "ben", AuditEvent::SupportActionApproved, &action_id).await);

    // "Forgot password" reaches the new address now, as the email says...
    assert_eq!(app.reset_mail(CONTACT).await.to, CONTACT);
    // ...and so does a reset link an agent sends; maria signs in with no 2-step.
    ana.sign_in_again(&app).await;
    assert_eq!(ana.act(&app, &case, "send_reset_link", "Finish the move").await.status, 200);
    let mails = app.deliver().await;
    let link = mails_of(&mails, "password_reset");
    assert_eq!((link.len(), link[0].to.as_str()), (1, CONTACT));
    let done = app.reset(json!({ "token": link[0].token("reset-password"), "new_password": "back in at last 2026" })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let signed_in = app.login("maria", "back in at last 2026").await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.text);
}

/// A proposal waits 24 hours for its second agent, then expires (409 `action_expired`); one
/// action waits per account at a time (409 `action_waiting`), and an expired one makes room.
async fn s11_a_proposal_expires_after_24_hours_and_one_action_waits_per_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let case = lost_email_case(&app).await;
    let ana = AgentClient::new(&app, "ana", "192.0.2.67").await;
    let ben = AgentClient::new(&app, "ben", "192.0.2.68").await;
    assert_eq!(ana.check(&app, &case, "account_age", "Made in 2024, she said 2024").await.status, 201);
    assert_eq!(ana.check(&app, &case, "sign_in_country", "Philippines").await.status, 201);

    let first = ana.act(&app, &case, "reset_two_step", "Lost phone").await;
    assert_eq!(first.status, 202, "{}", first.text);
    let first_id = first.json()["action_id"].as_str().unwrap().to_owned();
    let second = ana.act(&app, &case, "change_email", "And the email").await;
    assert_eq!((second.status, second.error_code().as_str()), (409, "action_waiting"));

    app.clock.advance(24 * 3600 + 1);
    ben.sign_in_again(&app).await;
    let late = ben.approve(&app, &first_id, "Looks fine").await;
    assert_eq!((late.status, late.error_code().as_str()), (409, "action_expired"), "{}", late.text);
    ana.sign_in_again(&app).await;
    let listed = ana.case(&app, &case).await["actions"][0].clone();
    assert_eq!(listed["status"], "expired");
    let fresh = ana.act(&app, &case, "change_email", "Again, after expiry").await;
    assert_eq!(fresh.status, 202, "{}", fresh.text);
    let unknown = ben.approve(&app, "no-such-action", "?").await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "not_found"));
}

/// The owner sees an approved change on their account and cancels it from a signed-in
/// session; or, with the link the old address got, from anywhere (a page with a button, the
/// API with the token). A cancelled change never applies, its case gets a note, and the link
/// works once.
async fn s11_the_owner_cancels_a_pending_support_change_by_link_or_from_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    app.create_account("stranger", "stranger@example.com").await;
    let owner = TestApp::new_client();
    assert_eq!(app.login_as(&owner, "192.0.2.69", "maria", PASSWORD).await.status, 200);
    enrol_totp(&app, &owner).await;
    let case = lost_email_case(&app).await;
    let ana = AgentClient::new(&app, "ana", "192.0.2.70").await;
    let ben = AgentClient::new(&app, "ben", "192.0.2.71").await;
    assert_eq!(ana.check(&app, &case, "last_sign_in", "Yesterday").await.status, 201);
    assert_eq!(ana.check(&app, &case, "other", "Knew the last withdrawal's amount").await.status, 201);
    app.deliver().await;

    let propose_and_approve = async || {
        let proposed = ana.act(&app, &case, "reset_two_step", "Lost phone").await;
        assert_eq!(proposed.status, 202, "{}", proposed.text);
        let id = proposed.json()["action_id"].as_str().unwrap().to_owned();
        assert_eq!(ben.approve(&app, &id, "Agree").await.status, 200);
        id
    };

    // By link: the page shows a button and changes nothing; the API cancels once.
    let first = propose_and_approve().await;
    let mails = app.deliver().await;
    let token = mails_of(&mails, "support_action_approved")[0].token("support-action/cancel");
    let page = app.get(&TestApp::new_client(), &format!("/support-action/cancel?token={token}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<form") && page.text.contains("Cancel this change"), "{}", page.text);
    let cancelled = app.post_json(&TestApp::new_client(), "/api/v1/support-actions/cancel", json!({ "token": token })).await;
    assert_eq!((cancelled.status, cancelled.json()), (200, json!({ "status": "cancelled" })), "{}", cancelled.text);
    let reused = app.post_json(&TestApp::new_client(), "/api/v1/support-actions/cancel", json!({ "token": token })).await;
    assert_eq!((reused.status, reused.error_code().as_str()), (400, "invalid_token"));
    assert_eq!(mails_of(&app.deliver().await, "support_action_cancelled").len(), 1);
    let detail = ana.case(&app, &case).await;
    assert_eq!(detail["actions"][0]["id"].as_str(), Some(first.as_str()));
    assert_eq!(detail["actions"][0]["status"], "cancelled");
    assert!(detail["notes"].as_array().unwrap().iter().any(|n| n["comment"].as_str().unwrap().contains("cancelled")), "{detail}");

    // From a session: listed for the owner only, cancelled once.
    let second = propose_and_approve().await;
    let listed = app.get(&owner, "/api/v1/account/support-actions").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["actions"][0]["id"].as_str(), Some(second.as_str()));
    assert!(listed.json()["actions"][0]["effective_at"].as_str().is_some());
    let stranger = TestApp::new_client();
    assert_eq!(app.login_as(&stranger, "192.0.2.72", "stranger", PASSWORD).await.status, 200);
    assert_eq!(app.get(&stranger, "/api/v1/account/support-actions").await.json()["actions"], json!([]));
    let not_theirs = app.post_json(&stranger, &format!("/api/v1/account/support-actions/{second}/cancel"), json!({})).await;
    assert_eq!((not_theirs.status, not_theirs.error_code().as_str()), (404, "not_found"));
    let mine = app.post_json(&owner, &format!("/api/v1/account/support-actions/{second}/cancel"), json!({})).await;
    assert_eq!((mine.status, mine.json()), (200, json!({ "status": "cancelled" })), "{}", mine.text);

    // Neither ever applies: maria keeps her method and her session.
    app.clock.advance(3 * 24 * 3600);
    let mails = app.deliver().await;
    assert!(mails_of(&mails, "support_action_applied").is_empty(), "{mails:?}");
    let maria = account_id(&app, "maria").await;
    assert!(!app.services.store.factors_of(&maria).await.unwrap().is_empty(), "the method stays");
}

/// S1.12, S11.5: a report must not leave an account easier to take than before it. Found by
/// an outside attack: someone who only reads the owner's mailbox reported the "an
/// authenticator app was added" email; the lock removed the app (added after the reported
/// event), which left 2-step off, and a reset by email then unlocked the account for them
/// with no password and no method. Now such a lock (it took every method away) is lifted
/// by support only: the reset says so and changes nothing, and two agents, after their
/// checks and the cooling-off, lift it with a reset of 2-step.
async fn s1_12_a_report_that_takes_every_method_away_is_lifted_by_support_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let owner = TestApp::new_client();
    assert_eq!(app.login_as(&owner, "192.0.2.64", "maria", PASSWORD).await.status, 200);
    enrol_totp(&app, &owner).await;
    let added = app.deliver().await.into_iter().find(|m| m.text.contains("was added")).expect("the method-added email");

    app.clock.advance(60);
    let mailbox_reader = TestApp::new_client();
    let locked = app.post_json(&mailbox_reader, "/api/v1/report-compromise", json!({ "token": added.token("report-not-me") })).await;
    assert_eq!((locked.status, &locked.json()["status"]), (200, &json!("locked")), "{}", locked.text);
    let case = locked.json()["case"].as_str().unwrap().to_owned();
    assert_eq!(locked.json()["unlock"], "support", "{}", locked.text);
    app.deliver().await;

    let token = app.reset_mail("maria").await.token("reset-password");
    let refused = app.reset(json!({ "token": token, "new_password": "attacker owns this now 4711" })).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (409, "support_unlock_required"), "{}", refused.text);
    assert!(refused.json()["message"].as_str().unwrap().contains("/recovery-request"), "{}", refused.text);
    let page = app.get(&mailbox_reader, &format!("/reset-password?token={token}")).await;
    assert_eq!(page.status, 303);
    let page = app.get(&mailbox_reader, "/reset-password").await;
    assert!(page.text.contains("id=\"support-unlock-required\"") && page.text.contains("href=\"/recovery-request\""), "{}", page.text);
    assert!(!page.text.contains("name=\"new_password\""), "no form to type a password into for nothing");
    let theirs = app.login("maria", "attacker owns this now 4711").await;
    assert_eq!((theirs.status, theirs.error_code().as_str()), (401, "invalid_credentials"), "the password did not change");
    // The owner, with her password, is sent to support, on the API and on the login page.
    let hers = app.login("maria", PASSWORD).await;
    assert_eq!((hers.status, hers.error_code().as_str()), (403, "account_locked_for_support"), "{}", hers.text);
    let browser = TestApp::new_client();
    let form = app.get(&browser, "/login").await;
    let fields = [("csrf", crate::helpers::csrf_of(&form.text)), ("login", "maria".to_owned()), ("password", PASSWORD.to_owned())];
    let page = crate::helpers::Response::read(browser.post(app.url("/login")).form(&fields).send().await.unwrap()).await;
    assert!(page.text.contains("id=\"locked-support-link\"") && !page.text.contains("id=\"locked-reset-link\""), "{}", page.text);

    // One agent cannot unlock it: that would hand the account to whoever reads its email, as
    // removing 2-step would (S11.4). Two agents, after their checks and the cooling-off, do.
    let ana = AgentClient::new(&app, "ana", "192.0.2.65").await;
    let ben = AgentClient::new(&app, "ben", "192.0.2.66").await;
    let alone = ana.act(&app, &case, "unlock", "Owner proved who she is on a call").await;
    assert_eq!((alone.status, alone.error_code().as_str()), (409, "two_agents_needed"), "{}", alone.text);
    assert_eq!(ana.check(&app, &case, "last_sign_in", "Yesterday, Manila").await.status, 201);
    assert_eq!(ana.check(&app, &case, "other", "Knew the last withdrawal's amount").await.status, 201);
    let proposed = ana.act(&app, &case, "reset_two_step", "Owner locked out by a report that took her app").await;
    assert_eq!(proposed.status, 202, "{}", proposed.text);
    let id = proposed.json()["action_id"].as_str().unwrap().to_owned();
    assert_eq!(ben.approve(&app, &id, "Checks hold").await.status, 200);
    app.deliver().await;
    let early = app.reset(json!({ "token": token, "new_password": "a brand new passphrase 7" })).await;
    assert_eq!((early.status, early.error_code().as_str()), (409, "support_unlock_required"), "during the cooling-off: {}", early.text);
    app.clock.advance(24 * 3600 + 60);
    app.deliver().await;
    // Applied, the lock stays, but a reset lifts it: the password from before the lock (an
    // attacker may know it) still does not sign in.
    let before = app.login("maria", PASSWORD).await;
    assert_eq!((before.status, before.error_code().as_str()), (403, "account_locked"), "{}", before.text);
    let link = app.reset_mail("maria").await;
    let done = app.reset(json!({ "token": link.token("reset-password"), "new_password": "a brand new passphrase 7" })).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(app.login("maria", "a brand new passphrase 7").await.status, 200);
}
