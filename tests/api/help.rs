//! The help center: articles, search, "Was this article helpful?" votes (S12.1, S3.6,
//! S8.1), safe Markdown, and the admin pages (303 / 403 / 200).

use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use doorman_core::audit::RequestContext;
use doorman_core::auth::NewAccountRequest;
use doorman_core::help::{Article, ArticleFields, Ballot, Voter, parse_article_file};
use doorman_core::roles::Role;
use doorman_core::{Account, Country, EmailAddress, Password, UserType, Username};
use serde_json::json;

on_both_backends!(
    articles_are_listed_shown_and_searched,
    votes_count_once_per_visitor_and_account_and_can_change,
    s12_1_vote_form_needs_a_csrf_token_and_works_without_javascript,
    s12_1_s3_6_votes_are_rate_limited_per_address,
    s12_1_the_vote_budget_is_shared_through_the_database,
    no_reasons_are_length_limited_and_reach_the_admin_page,
    markdown_raw_html_is_shown_as_text,
    admin_routes_send_anonymous_visitors_to_login_and_refuse_non_admins,
    s8_1_admin_forms_need_the_csrf_token,
    admins_create_and_edit_articles,
    product_pages_link_to_the_matching_articles,
    demo_articles_are_seeded_once,
);

pub async fn account(app: &TestApp, username: &str, user_type: UserType, country: &str) -> Account {
    app.services
        .auth
        .create_account(
            NewAccountRequest {
                username: Username::parse(username).unwrap(),
                email: EmailAddress::parse(&format!("{username}@example.com")).unwrap(),
                user_type,
                country: Country::parse(country).unwrap(),
                password: Password::new(PASSWORD).unwrap(),
            },
            &RequestContext::cli(),
        )
        .await
        .unwrap()
}

/// A signed-in client of a new account.
pub async fn signed_in(app: &TestApp, username: &str, user_type: UserType, country: &str) -> reqwest::Client {
    account(app, username, user_type, country).await;
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.50", username, PASSWORD).await.status, 200);
    client
}

/// A signed-in client of a new account with the admin role.
pub async fn admin(app: &TestApp) -> reqwest::Client {
    account(app, "admin", UserType::Client, "US").await;
    assert!(app.services.roles.set_role("admin", Role::Admin, true, &RequestContext::cli()).await.unwrap());
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.51", "admin", PASSWORD).await.status, 200);
    client
}

/// The CSRF token of the form that posts to `action` (pages may have several forms).
pub fn form_csrf(html: &str, action: &str) -> String {
    let start = html.find(&format!("action=\"{action}\"")).unwrap_or_else(|| panic!("no form posting to {action} in {html}"));
    csrf_of(&html[start..])
}

pub async fn post_form(app: &TestApp, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> Response {
    Response::read(client.post(app.url(path)).header("X-Real-IP", "192.0.2.60").form(form).send().await.unwrap()).await
}

pub async fn add_article(app: &TestApp, slug: &str, title: &str, category: &str, body: &str, related: &str) -> Article {
    let fields =
        ArticleFields { slug: slug.into(), title: title.into(), category: category.into(), body: body.into(), related: related.into() };
    let article = Article::parse(&fields, app.services.deps.clock.unix()).unwrap();
    app.services.content.save_article(&article, true, None, &RequestContext::cli()).await.unwrap();
    article
}

async fn three_articles(app: &TestApp) {
    add_article(app, "forgot-password", "Forgot your password?", "Recovery", "Reset it by **email** with a link or a code.", "log-in")
        .await;
    add_article(app, "log-in", "Logging in", "Signing in", "Use your username or email address.", "forgot-password, missing").await;
    add_article(app, "too-many-attempts", "Too many attempts", "Signing in", "After failed logins, we slow down guessing.", "").await;
}

async fn vote(app: &TestApp, client: &reqwest::Client, ip: &str, slug: &str, body: serde_json::Value) -> Response {
    let response =
        client.post(app.url(&format!("/api/v1/help/articles/{slug}/vote"))).header("X-Real-IP", ip).json(&body).send().await.unwrap();
    Response::read(response).await
}

async fn articles_are_listed_shown_and_searched(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;

    let list = app.get(&app.client, "/api/v1/help/articles").await;
    assert_eq!(list.status, 200);
    let slugs: Vec<String> = list.json()["articles"].as_array().unwrap().iter().map(|a| a["slug"].as_str().unwrap().to_owned()).collect();
    assert_eq!(slugs.len(), 3);

    let one = app.get(&app.client, "/api/v1/help/articles/forgot-password").await;
    assert_eq!(one.status, 200);
    let body = one.json();
    assert_eq!(body["title"], "Forgot your password?");
    assert_eq!(body["category"], "Recovery");
    assert!(body["body_html"].as_str().unwrap().contains("<strong>email</strong>"));
    assert_eq!(body["related"][0]["slug"], "log-in");
    assert_eq!(body["votes"], json!({"helpful": 0, "total": 0}));
    assert!(body["updated_at"].as_str().unwrap().ends_with('Z'));

    let missing = app.get(&app.client, "/api/v1/help/articles/no-such-article").await;
    assert_eq!((missing.status, missing.error_code().as_str()), (404, "not_found"));
    let missing_vote = vote(&app, &TestApp::new_client(), "192.0.2.1", "no-such-article", json!({"helpful": true})).await;
    assert_eq!((missing_vote.status, missing_vote.error_code().as_str()), (404, "not_found"));

    // Ranked search over title and body, forgiving one typo.
    let found = app.get(&app.client, "/api/v1/help/articles?q=pasword").await.json();
    assert_eq!(found["articles"][0]["slug"], "forgot-password", "{found}");
    let found = app.get(&app.client, "/api/v1/help/articles?q=guessing").await.json();
    assert_eq!(found["articles"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["articles"][0]["slug"], "too-many-attempts");

    let page = app.get(&app.client, "/help?q=forgot+pasword").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<a href=\"/help/forgot-password\">Forgot your password?</a>"), "{}", page.text);
    let none = app.get(&app.client, "/help?q=zebra").await;
    assert!(none.text.contains("id=\"no-results\""));
    let page = app.get(&app.client, "/help/log-in").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Was this article helpful?"));
    assert!(page.text.contains("href=\"/help/forgot-password\""), "related articles are linked");
    assert_eq!(app.get(&app.client, "/help/no-such-article").await.status, 404);
}

async fn votes_count_once_per_visitor_and_account_and_can_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let tally = |r: &Response| (r.status, r.json()["helpful"].as_i64().unwrap_or(-1), r.json()["total"].as_i64().unwrap_or(-1));

    // An anonymous visitor: the first vote gives them a visitor cookie.
    let visitor = TestApp::new_client();
    let first = vote(&app, &visitor, "192.0.2.1", "log-in", json!({"helpful": true})).await;
    assert_eq!(tally(&first), (200, 1, 1));
    let cookie = first.set_cookies().into_iter().find(|c| c.starts_with("doorman_visitor=")).expect("a visitor cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=31536000"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    // Voting again does not count twice; changing the answer replaces it.
    assert_eq!(tally(&vote(&app, &visitor, "192.0.2.1", "log-in", json!({"helpful": true})).await), (200, 1, 1));
    assert_eq!(tally(&vote(&app, &visitor, "192.0.2.1", "log-in", json!({"helpful": false})).await), (200, 0, 1));
    // Another visitor counts separately, as do other articles.
    assert_eq!(tally(&vote(&app, &TestApp::new_client(), "192.0.2.2", "log-in", json!({"helpful": true})).await), (200, 1, 2));
    assert_eq!(tally(&vote(&app, &visitor, "192.0.2.1", "forgot-password", json!({"helpful": true})).await), (200, 1, 1));

    // Signed in, the account votes, whichever browser it uses.
    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    assert_eq!(tally(&vote(&app, &maria, "192.0.2.3", "log-in", json!({"helpful": true})).await), (200, 2, 3));
    let maria_elsewhere = TestApp::new_client();
    assert_eq!(app.login_as(&maria_elsewhere, "192.0.2.4", "maria", PASSWORD).await.status, 200);
    assert_eq!(tally(&vote(&app, &maria_elsewhere, "192.0.2.4", "log-in", json!({"helpful": false})).await), (200, 1, 3));

    let page = app.get(&maria, "/help/log-in").await;
    assert!(page.text.contains("1 out of 3 found this helpful"), "{}", page.text);
    assert!(page.text.contains("You told us this article did not help"), "the page remembers the account's answer");
    assert_eq!(app.get(&app.client, "/api/v1/help/articles/log-in").await.json()["votes"], json!({"helpful": 1, "total": 3}));

    // A forged or foreign visitor cookie is just another visitor, never someone else's vote.
    let forger = TestApp::new_client();
    let forged = forger
        .post(app.url("/api/v1/help/articles/log-in/vote"))
        .header("Cookie", "doorman_visitor=not-a-real-visitor-id")
        .header("X-Real-IP", "192.0.2.5")
        .json(&json!({"helpful": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(tally(&Response::read(forged).await), (200, 2, 4));
}

async fn s12_1_vote_form_needs_a_csrf_token_and_works_without_javascript(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let visitor = TestApp::new_client();
    let page = app.get(&visitor, "/help/log-in").await;
    assert!(!page.text.contains("found this helpful"), "no tally before the first vote");
    let csrf = form_csrf(&page.text, "/help/log-in/vote");

    // S8.1: without the token, or with a forged one, nothing is counted.
    let missing = post_form(&app, &visitor, "/help/log-in/vote", &[("helpful", "yes")]).await;
    assert_eq!(missing.status, 403);
    let forged = post_form(&app, &visitor, "/help/log-in/vote", &[("helpful", "yes"), ("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    let other = TestApp::new_client();
    let foreign = post_form(&app, &other, "/help/log-in/vote", &[("helpful", "yes"), ("csrf", &csrf)]).await;
    assert_eq!(foreign.status, 403, "a token is bound to its visitor");
    assert_eq!(app.services.content.vote_tally(&doorman_core::help::Slug::parse("log-in").unwrap()).await.unwrap().total, 0);

    // A plain form post, then back to the article.
    let voted = post_form(
        &app,
        &visitor,
        "/help/log-in/vote",
        &[("csrf", &csrf), ("helpful", "no"), ("choice", "missing_information"), ("reason", "")],
    )
    .await;
    assert_eq!(voted.status, 303);
    assert_eq!(voted.header("location"), Some("/help/log-in#feedback"));
    let page = app.get(&visitor, "/help/log-in").await;
    assert!(page.text.contains("0 out of 1 found this helpful"), "{}", page.text);
    assert!(page.text.contains("Thanks for your feedback"));
    // The reason that goes with a No has its own send button under it (found walking the
    // page on a phone: the only buttons were Yes and No, above the reason).
    let fresh = app.get(&TestApp::new_client(), "/help/log-in").await;
    let reason = fresh.text.split("id=\"reason\"").nth(1).expect("the reason is asked for");
    assert!(reason.contains("name=\"helpful\" value=\"no\" id=\"vote-no-with-reason\""), "{}", fresh.text);
    // Changeable: the same visitor says yes after all.
    let csrf = form_csrf(&page.text, "/help/log-in/vote");
    assert_eq!(post_form(&app, &visitor, "/help/log-in/vote", &[("csrf", &csrf), ("helpful", "yes")]).await.status, 303);
    assert!(app.get(&visitor, "/help/log-in").await.text.contains("1 out of 1 found this helpful"));

    // Signed in, the token is bound to the session.
    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    let page = app.get(&maria, "/help/log-in").await;
    assert_eq!(post_form(&app, &maria, "/help/log-in/vote", &[("csrf", &csrf), ("helpful", "yes")]).await.status, 403);
    let csrf = form_csrf(&page.text, "/help/log-in/vote");
    assert_eq!(post_form(&app, &maria, "/help/log-in/vote", &[("csrf", &csrf), ("helpful", "yes")]).await.status, 303);
    assert!(app.get(&maria, "/help/log-in").await.text.contains("2 out of 2 found this helpful"));
}

async fn s12_1_s3_6_votes_are_rate_limited_per_address(backend: Backend) {
    // Chosen behaviour: a refused vote answers 429 with Retry-After (votes reveal nothing
    // worth hiding, so an honest answer is better than a silent drop).
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let mut refused = 0;
    for _ in 0..25 {
        // A new cookie jar each time: ballot stuffing by clearing cookies.
        let response = vote(&app, &TestApp::new_client(), "198.51.100.7", "log-in", json!({"helpful": true})).await;
        match response.status {
            200 => {}
            429 => {
                refused += 1;
                assert_eq!(response.error_code(), "too_many_votes");
                assert!(response.header("retry-after").is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
            }
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    assert!(refused >= 5, "only {refused} of 25 votes from one address were refused");
    let total = app.get(&app.client, "/api/v1/help/articles/log-in").await.json()["votes"]["total"].as_i64().unwrap();
    assert!(total <= 20, "{total} votes counted from one address");
    // Another address is not affected.
    assert_eq!(vote(&app, &TestApp::new_client(), "198.51.100.8", "log-in", json!({"helpful": true})).await.status, 200);

    // The page form is limited the same way.
    let visitor = TestApp::new_client();
    let page = app.get(&visitor, "/help/log-in").await;
    let csrf = form_csrf(&page.text, "/help/log-in/vote");
    let response = Response::read(
        visitor
            .post(app.url("/help/log-in/vote"))
            .header("X-Real-IP", "198.51.100.7")
            .form(&[("csrf", csrf.as_str()), ("helpful", "yes")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(response.status, 429);
    assert!(response.text.contains("Too many votes"));
}

async fn s12_1_the_vote_budget_is_shared_through_the_database(backend: Backend) {
    // Behind the in-process limit, every replica shares a budget per address in the
    // database: this drives the domain operation directly, as many replicas would.
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let ctx = RequestContext { ip: "203.0.113.9".parse().unwrap(), user_agent: "test".into(), request_id: String::new(), country: None };
    let ballot = Ballot::new(true, None, "").unwrap();
    for i in 0..doorman_core::content::VOTES_PER_ADDRESS_PER_HOUR {
        app.services.content.vote("log-in", &Voter::Visitor(format!("v{i}")), &ballot, &ctx).await.unwrap();
    }
    let refused = app.services.content.vote("log-in", &Voter::Visitor("one-more".into()), &ballot, &ctx).await;
    assert!(matches!(refused, Err(doorman_core::content::ContentError::RateLimited { .. })), "{refused:?}");
    app.clock.advance(3601);
    app.services.content.vote("log-in", &Voter::Visitor("an-hour-later".into()), &ballot, &ctx).await.unwrap();
}

async fn no_reasons_are_length_limited_and_reach_the_admin_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let long = "x".repeat(501);
    let too_long = vote(&app, &TestApp::new_client(), "192.0.2.1", "log-in", json!({"helpful": false, "reason": long})).await;
    assert_eq!((too_long.status, too_long.error_code().as_str()), (400, "reason_too_long"));
    let bad_choice = vote(&app, &TestApp::new_client(), "192.0.2.1", "log-in", json!({"helpful": false, "choice": "spam"})).await;
    assert_eq!((bad_choice.status, bad_choice.error_code().as_str()), (400, "invalid_choice"));
    let unknown_field = vote(&app, &TestApp::new_client(), "192.0.2.1", "log-in", json!({"helpful": false, "extra": 1})).await;
    assert_eq!(unknown_field.status, 400);
    assert_eq!(app.get(&app.client, "/api/v1/help/articles/log-in").await.json()["votes"]["total"], 0, "refused votes count nothing");

    let said = format!("{}<b>the code expired</b>", "é".repeat(477));
    assert_eq!(said.chars().count(), 500);
    let ok = vote(
        &app,
        &TestApp::new_client(),
        "192.0.2.1",
        "log-in",
        json!({"helpful": false, "choice": "steps_did_not_work", "reason": said}),
    )
    .await;
    assert_eq!(ok.status, 200, "500 characters are fine: {}", ok.text);

    // The page form refuses a long reason too (the textarea's maxlength aside).
    let visitor = TestApp::new_client();
    let csrf = form_csrf(&app.get(&visitor, "/help/log-in").await.text, "/help/log-in/vote");
    let response =
        post_form(&app, &visitor, "/help/log-in/vote", &[("csrf", &csrf), ("helpful", "no"), ("reason", &"y".repeat(501))]).await;
    assert_eq!(response.status, 400);

    let admin = admin(&app).await;
    let page = app.get(&admin, "/admin/help/log-in").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("The steps did not work for me"), "{}", page.text);
    assert!(page.text.contains("&#60;b&#62;the code expired&#60;/b&#62;"), "reasons are escaped");
    assert!(page.text.contains("id=\"weekly-votes\""));
}

async fn markdown_raw_html_is_shown_as_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    add_article(
        &app,
        "tricky",
        "Tricky <i>title</i>",
        "Tests",
        "Before <script>alert('x')</script> after.\n\n<img src=x onerror=alert(1)>\n\n[link](javascript:alert(1))",
        "",
    )
    .await;
    let page = app.get(&app.client, "/help/tricky").await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains("<script>alert"), "{}", page.text);
    assert!(page.text.contains("&lt;script&gt;alert("), "pulldown-cmark escapes it: {}", page.text);
    assert!(!page.text.contains("<img src=x"), "{}", page.text);
    assert!(!page.text.contains("javascript:"), "{}", page.text);
    assert!(page.text.contains("Tricky &#60;i&#62;title&#60;/i&#62;"), "the title is escaped too");
    let html = app.get(&app.client, "/api/v1/help/articles/tricky").await.json()["body_html"].as_str().unwrap().to_owned();
    assert!(!html.contains("<script") && html.contains("&lt;script&gt;"), "{html}");
}

async fn admin_routes_send_anonymous_visitors_to_login_and_refuse_non_admins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let pages = ["/admin", "/admin/help/new", "/admin/help/log-in", "/admin/banners", "/admin/banners?country=PH&usertype=client"];
    let anonymous = TestApp::new_client();
    for path in pages {
        let response = app.get(&anonymous, path).await;
        assert_eq!((response.status, response.header("location")), (303, Some("/login")), "{path}");
    }
    for path in ["/admin/help/new", "/admin/help/log-in", "/admin/banners", "/admin/banners/end"] {
        let response = post_form(&app, &anonymous, path, &[("csrf", "x")]).await;
        assert_eq!((response.status, response.header("location")), (303, Some("/login")), "POST {path}");
    }
    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    for path in pages {
        let response = app.get(&maria, path).await;
        assert_eq!(response.status, 403, "{path}");
        assert!(response.text.contains("administrators only"));
    }
    let csrf = csrf_of(&app.get(&maria, "/account").await.text);
    let refused = post_form(&app, &maria, "/admin/banners", &[("csrf", &csrf), ("document", "{}")]).await;
    assert_eq!(refused.status, 403, "a non-admin cannot change banners even with a valid token");
    let admin = admin(&app).await;
    for path in pages {
        assert_eq!(app.get(&admin, path).await.status, 200, "{path}");
    }
    // A revoked role closes the pages at once.
    app.services.roles.set_role("admin", Role::Admin, false, &RequestContext::cli()).await.unwrap();
    assert_eq!(app.get(&admin, "/admin").await.status, 403);
}

async fn s8_1_admin_forms_need_the_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let admin = admin(&app).await;
    let article = [("title", "New"), ("category", "Tests"), ("body", "Body"), ("slug", "new-one")];
    let without = post_form(&app, &admin, "/admin/help/new", &article).await;
    assert_eq!(without.status, 403);
    let mut forged = article.to_vec();
    forged.push(("csrf", "forged"));
    assert_eq!(post_form(&app, &admin, "/admin/help/new", &forged).await.status, 403);
    assert_eq!(post_form(&app, &admin, "/admin/help/log-in", &forged).await.status, 403);
    assert_eq!(post_form(&app, &admin, "/admin/banners", &[("csrf", "forged"), ("document", "{}")]).await.status, 403);
    assert_eq!(post_form(&app, &admin, "/admin/banners/end", &[("csrf", "forged"), ("slot", "global")]).await.status, 403);
    assert_eq!(post_form(&app, &admin, "/admin/banners/end", &[("slot", "global")]).await.status, 403);
    assert!(app.get(&app.client, "/api/v1/help/articles/new-one").await.status == 404, "nothing was created");
}

async fn admins_create_and_edit_articles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    three_articles(&app).await;
    let admin = admin(&app).await;
    let form = app.get(&admin, "/admin/help/new").await;
    let csrf = form_csrf(&form.text, "/admin/help/new");

    let created = post_form(
        &app,
        &admin,
        "/admin/help/new",
        &[
            ("csrf", &csrf),
            ("slug", "sessions"),
            ("title", "Your sessions"),
            ("category", "Signing in"),
            ("body", "You stay **signed in**."),
            ("related", "log-in"),
        ],
    )
    .await;
    assert_eq!((created.status, created.header("location")), (303, Some("/admin/help/sessions?saved=1")));
    let shown = app.get(&app.client, "/help/sessions").await;
    assert!(shown.text.contains("<strong>signed in</strong>"), "{}", shown.text);

    let bad_slug = post_form(
        &app,
        &admin,
        "/admin/help/new",
        &[("csrf", &csrf), ("slug", "Bad Slug"), ("title", "T"), ("category", "C"), ("body", "B")],
    )
    .await;
    assert_eq!(bad_slug.status, 400);
    assert!(bad_slug.text.contains("A slug has 1 to 80 characters"), "{}", bad_slug.text);
    assert!(bad_slug.text.contains("value=\"Bad Slug\""), "what was typed is kept");
    let taken = post_form(
        &app,
        &admin,
        "/admin/help/new",
        &[("csrf", &csrf), ("slug", "log-in"), ("title", "T"), ("category", "C"), ("body", "B")],
    )
    .await;
    assert_eq!(taken.status, 409);

    let edited = post_form(
        &app,
        &admin,
        "/admin/help/sessions",
        &[("csrf", &csrf), ("title", "Your sessions, explained"), ("category", "Signing in"), ("body", "Changed."), ("related", "")],
    )
    .await;
    assert_eq!(edited.status, 303);
    let body = app.get(&app.client, "/api/v1/help/articles/sessions").await.json();
    assert_eq!((body["title"].as_str(), body["body_markdown"].as_str()), (Some("Your sessions, explained"), Some("Changed.")));
    assert_eq!(
        post_form(&app, &admin, "/admin/help/missing", &[("csrf", &csrf), ("title", "T"), ("category", "C"), ("body", "B")]).await.status,
        404
    );

    let index = app.get(&admin, "/admin").await;
    assert!(index.text.contains("Your sessions, explained"));
    // Every change is audited with the admin's account.
    let admin_account = app.services.store.find_for_login("admin").await.unwrap().unwrap().0;
    let audit = app.services.store.audit_of(&admin_account.id, 50).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.event == doorman_core::audit::AuditEvent::HelpArticleSaved).count(), 2);
}

async fn product_pages_link_to_the_matching_articles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/login", "/forgot-password"] {
        let page = app.get(&TestApp::new_client(), path).await;
        assert!(page.text.contains("href=\"/help/forgot-password\""), "{path} links to the article");
    }
    assert!(app.get(&TestApp::new_client(), "/login").await.text.contains("href=\"/help\""), "every page links to the help center");
    let verify = include_str!("../../templates/verify.html");
    assert!(
        verify.contains("href=\"/help/two-step-verification\""),
        "the second step (security question, other methods) links to its article"
    );
}

async fn demo_articles_are_seeded_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    doorman::content_cli::seed_demo_content(&app.services).await.unwrap();
    let first = app.services.content.help();
    assert_eq!(first.articles.len(), 7);
    doorman::content_cli::seed_demo_content(&app.services).await.unwrap();
    assert_eq!(app.services.content.help().version, first.version, "seeding again changes nothing");
    // Each file of content/help parses the same way the server read it.
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/content/help/forgot-password.md")).unwrap();
    let parsed = parse_article_file(&file, 0).unwrap();
    assert!(first.get("forgot-password").unwrap().article.same_content(&parsed));
}
