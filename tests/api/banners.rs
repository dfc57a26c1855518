//! Status banners: the seed's document round-trips, targeting by country and user type
//! decided on the server (S12.2), time windows on the injectable clock, escaping, caching,
//! the admin pages, dismissal (S8.1) and propagation to other replicas.

use crate::help::{account, admin, form_csrf, post_form, signed_in};
use crate::helpers::{Backend, Response, TestApp, eventually, eventually_within, test_config};
use crate::on_both_backends;
use doorman_core::UserType;
use doorman_core::audit::RequestContext;
use doorman_core::banners::format_time;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

on_both_backends!(
    the_seed_document_round_trips_unchanged,
    the_command_line_imports_and_exports_the_seed,
    s12_2_banners_target_country_and_user_type_from_the_account,
    banners_follow_their_time_window_on_the_clock,
    s12_2_the_country_header_is_trusted_only_when_configured,
    s12_2_banner_text_is_escaped_and_announced_by_icon,
    banner_endpoints_are_served_with_etags_and_cache_control,
    invalid_documents_are_refused_with_clear_errors,
    admins_preview_schedule_and_end_banners,
    changes_reach_every_replica_within_seconds,
    s8_1_dismissed_banners_stay_hidden_until_their_text_changes,
    error_pages_show_the_viewers_own_header_and_banners,
);

/// The seed page's banner document, kept as a fixture (tests/fixtures/README.md).
const SEED_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-banners.json");

fn seed_line() -> String {
    std::fs::read_to_string(SEED_FILE).expect("tests/fixtures/seed-banners.json").trim().to_owned()
}

/// A document in the seed's format: `(message, country, usertype, icon, start, end)` each.
fn document(global: (&str, &str, &str, &str), responsive: &[(&str, &str, &str, &str, &str, &str)]) -> String {
    let responsive: Vec<Value> = responsive
        .iter()
        .map(|(message, country, usertype, icon, start, end)| {
            json!({"message": message, "country": country, "usertype": usertype, "icon": icon, "start": start, "end": end})
        })
        .collect();
    json!({"global": {"message": global.0, "icon": global.1, "start": global.2, "end": global.3}, "responsive": responsive}).to_string()
}

async fn import(app: &TestApp, json: &str) {
    app.services.content.import_banners(json, None, &RequestContext::cli()).await.unwrap();
}

/// The messages `/api/v1/banners/active` gives this client (with extra request headers).
async fn active(app: &TestApp, client: &reqwest::Client, headers: &[(&str, &str)]) -> Vec<String> {
    let mut request = client.get(app.url("/api/v1/banners/active"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = Response::read(request.send().await.unwrap()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()["banners"].as_array().unwrap().iter().map(|b| b["message"].as_str().unwrap().to_owned()).collect()
}

const TARGETED: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("PH freelancers", "PH", "freelancer", "warning", "", ""),
    ("Everyone (All)", "All", "all", "info", "", ""),
    ("Every client (empty country)", "", "client", "info", "", ""),
    ("US, anyone", "US", "all", "error", "", ""),
    ("", "", "all", "info", "", ""),
];

async fn the_seed_document_round_trips_unchanged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let empty = app.get(&app.client, "/api/v1/banners").await;
    assert_eq!(empty.json(), json!({"global": {"message": "", "icon": "info", "start": "", "end": ""}, "responsive": []}));

    let seed = seed_line();
    import(&app, &seed).await;
    let served = app.get(&app.client, "/api/v1/banners").await;
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert_eq!(serde_json::from_str::<Value>(&served.text).unwrap(), serde_json::from_str::<Value>(&seed).unwrap());
    assert_eq!(served.text, seed, "same keys in the same order");

    // The seed's global message shows to everyone; its responsive banners are empty.
    let shown = active(&app, &TestApp::new_client(), &[]).await;
    assert_eq!(shown.len(), 1);
    assert!(shown[0].starts_with("We are currently looking into some reports"));
}

fn doorman(config: &doorman::Config, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_doorman"))
        .args(args)
        .env("DOORMAN_DATABASE_URL", &config.database_url)
        .env("DOORMAN_SECRET_KEY_FILE", &config.secret_key_file)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

async fn the_command_line_imports_and_exports_the_seed(backend: Backend) {
    let config = test_config(backend).await;
    let app = TestApp::spawn_with(config.clone()).await;

    // The seed file itself: its last line is read.
    let imported = doorman(&config, &["banners", "import", SEED_FILE]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let exported = doorman(&config, &["banners", "export"]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let exported: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(exported, serde_json::from_str::<Value>(&seed_line()).unwrap());

    // The running server sees the import within seconds (it polls the stored version).
    eventually("the server to serve the imported banners", 15, async || {
        let served: Value = app.get(&app.client, "/api/v1/banners").await.json();
        (served == exported).then_some(())
    })
    .await;

    let bad = config.mail_dir.with_file_name("bad.json");
    std::fs::write(&bad, seed_line().replace("\"icon\":\"info\"", "\"icon\":\"rainbow\"")).unwrap();
    let refused = doorman(&config, &["banners", "import", bad.to_str().unwrap()]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("icon \"rainbow\" is not one of info, warning, error, success"), "{stderr}");
    let still: Value = serde_json::from_slice(&doorman(&config, &["banners", "export"]).stdout).unwrap();
    assert_eq!(still, exported, "a refused import changes nothing");
}

async fn s12_2_banners_target_country_and_user_type_from_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(&app, &document(("", "info", "", ""), TARGETED)).await;

    let ph_freelancer = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    assert_eq!(active(&app, &ph_freelancer, &[]).await, ["PH freelancers", "Everyone (All)"]);
    let ph_client = signed_in(&app, "carlos", UserType::Client, "PH").await;
    assert_eq!(active(&app, &ph_client, &[]).await, ["Everyone (All)", "Every client (empty country)"]);
    let us_client = signed_in(&app, "jordan", UserType::Client, "US").await;
    assert_eq!(active(&app, &us_client, &[]).await, ["Everyone (All)", "Every client (empty country)", "US, anyone"]);
    let gb_agency = signed_in(&app, "northwind", UserType::Agency, "GB").await;
    assert_eq!(active(&app, &gb_agency, &[]).await, ["Everyone (All)"]);
    // Anonymous visitors see only `all` banners for every country.
    assert_eq!(active(&app, &TestApp::new_client(), &[]).await, ["Everyone (All)"]);

    // What the account says wins over anything the client sends.
    let body = app.get(&us_client, "/api/v1/banners/active?country=PH&usertype=freelancer").await.json();
    assert_eq!(body["viewer"], json!({"country": "US", "usertype": "client"}));
    assert_eq!(active(&app, &us_client, &[("CF-IPCountry", "PH")]).await, ["Everyone (All)", "Every client (empty country)", "US, anyone"]);

    // Pages show the same banners at the top.
    let page = app.get(&ph_freelancer, "/account").await;
    assert!(page.text.contains("PH freelancers") && page.text.contains("Everyone (All)"));
    assert!(!page.text.contains("US, anyone"));
    let page = app.get(&us_client, "/account").await;
    assert!(page.text.contains("US, anyone") && !page.text.contains("PH freelancers"));
}

async fn banners_follow_their_time_window_on_the_clock(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = app.services.deps.clock.unix();
    let (start, end) = (format_time(now + 3600), format_time(now + 7200));
    import(&app, &document(("Maintenance tonight", "warning", &start, &end), &[("PH only, no end", "PH", "all", "info", &start, "")]))
        .await;
    let visitor = TestApp::new_client();
    assert!(active(&app, &visitor, &[]).await.is_empty(), "not yet");
    assert!(!app.get(&visitor, "/login").await.text.contains("Maintenance tonight"));

    app.clock.advance(3600);
    assert_eq!(active(&app, &visitor, &[]).await, ["Maintenance tonight"], "from its start");
    assert!(app.get(&visitor, "/login").await.text.contains("Maintenance tonight"));
    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    assert_eq!(active(&app, &maria, &[]).await, ["Maintenance tonight", "PH only, no end"]);

    app.clock.advance(3599);
    assert_eq!(active(&app, &visitor, &[]).await, ["Maintenance tonight"], "a second before its end");
    app.clock.advance(1);
    assert!(active(&app, &visitor, &[]).await.is_empty(), "its end is excluded");
    app.clock.advance(86_400 * 365);
    let maria = TestApp::new_client();
    assert_eq!(app.login_as(&maria, "192.0.2.70", "maria", crate::helpers::PASSWORD).await.status, 200);
    assert_eq!(active(&app, &maria, &[]).await, ["PH only, no end"], "\"\" is no bound");

    // Times with an offset and dates without a time are ISO 8601 too.
    let offset = time::OffsetDateTime::from_unix_timestamp(app.services.deps.clock.unix() - 60)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    import(&app, &document(("Started a minute ago in Manila time", "info", &offset, "2999-01-01"), &[])).await;
    assert_eq!(active(&app, &visitor, &[]).await, ["Started a minute ago in Manila time"]);
}

async fn s12_2_the_country_header_is_trusted_only_when_configured(backend: Backend) {
    let doc = document(
        ("", "info", "", ""),
        &[("For the Philippines", "PH", "all", "info", "", ""), ("PH freelancers", "PH", "freelancer", "info", "", "")],
    );

    // Not configured: a client that sets the header itself is ignored.
    let app = TestApp::spawn(backend).await;
    import(&app, &doc).await;
    let visitor = TestApp::new_client();
    assert!(active(&app, &visitor, &[("CF-IPCountry", "PH")]).await.is_empty());
    let body = app.get(&visitor, "/api/v1/banners/active").await.json();
    assert_eq!(body["viewer"], json!({"country": null, "usertype": null}));
    let page = Response::read(visitor.get(app.url("/login")).header("CF-IPCountry", "PH").send().await.unwrap()).await;
    assert!(!page.text.contains("For the Philippines"));

    // Configured (the operator's proxy sets it): anonymous visitors get its country, and
    // still only the banners for every user type.
    let config = doorman::Config { country_header: Some("CF-IPCountry".into()), ..test_config(backend).await };
    let app = TestApp::spawn_with(config).await;
    import(&app, &doc).await;
    assert_eq!(active(&app, &visitor, &[("CF-IPCountry", "PH")]).await, ["For the Philippines"]);
    assert_eq!(active(&app, &visitor, &[("CF-IPCountry", "ph")]).await, ["For the Philippines"]);
    assert!(active(&app, &visitor, &[("CF-IPCountry", "US")]).await.is_empty());
    assert!(active(&app, &visitor, &[("CF-IPCountry", "XX")]).await.is_empty(), "unknown countries are no country");
    assert!(active(&app, &visitor, &[("X-Country", "PH")]).await.is_empty(), "only the configured header");
    let page = Response::read(visitor.get(app.url("/login")).header("CF-IPCountry", "PH").send().await.unwrap()).await;
    assert!(page.text.contains("For the Philippines") && !page.text.contains("PH freelancers"));
    let response = Response::read(visitor.get(app.url("/api/v1/banners/active")).send().await.unwrap()).await;
    assert_eq!(response.header("vary"), Some("Cookie, cf-ipcountry"));
    // A signed-in account's own country wins over the header.
    account(&app, "jordan", UserType::Client, "US").await;
    let jordan = TestApp::new_client();
    app.login_as(&jordan, "192.0.2.9", "jordan", crate::helpers::PASSWORD).await;
    assert!(active(&app, &jordan, &[("CF-IPCountry", "PH")]).await.is_empty());
}

async fn s12_2_banner_text_is_escaped_and_announced_by_icon(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(
        &app,
        &document(
            ("<script>alert(\"x\")</script> & <b>bold</b>", "error", "", ""),
            &[
                ("Resolved: all good", "All", "all", "success", "", ""),
                ("Heads up", "", "all", "warning", "", ""),
                ("FYI", "", "all", "info", "", ""),
            ],
        ),
    )
    .await;
    for path in ["/login", "/help", "/forgot-password", "/no-such-page"] {
        let page = app.get(&TestApp::new_client(), path).await;
        assert!(page.text.contains("&#60;script&#62;alert("), "{path}: {}", page.text);
        assert!(!page.text.contains("<script>alert"), "{path}");
        assert!(page.text.contains("&#38; &#60;b&#62;bold&#60;/b&#62;"), "{path}");
    }
    let page = app.get(&TestApp::new_client(), "/login").await;
    let role_of = |text: &str| {
        let at = page.text.find(text).unwrap();
        let open = page.text[..at].rfind("<div class=\"banner ").unwrap();
        page.text[open..at].split("role=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
    };
    assert_eq!(role_of("&#60;script&#62;"), "alert", "errors interrupt");
    assert_eq!(role_of("Heads up"), "alert", "warnings interrupt");
    assert_eq!(role_of("Resolved: all good"), "status");
    assert_eq!(role_of("FYI"), "status");
    // The JSON carries the text as data.
    let body = app.get(&TestApp::new_client(), "/api/v1/banners/active").await.json();
    assert_eq!(body["banners"][0]["message"], "<script>alert(\"x\")</script> & <b>bold</b>");
    assert_eq!(body["banners"][0]["icon"], "error");
}

async fn banner_endpoints_are_served_with_etags_and_cache_control(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(&app, &seed_line()).await;
    let first = app.get(&app.client, "/api/v1/banners").await;
    let etag = first.header("etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert_eq!(first.header("cache-control"), Some("public, max-age=5"));
    let again = Response::read(app.client.get(app.url("/api/v1/banners")).header("If-None-Match", &etag).send().await.unwrap()).await;
    assert_eq!((again.status, again.text.as_str()), (304, ""));
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let active = app.get(&app.client, "/api/v1/banners/active").await;
    assert_eq!(active.header("cache-control"), Some("private, max-age=5"));
    let active_etag = active.header("etag").unwrap().to_owned();
    let again =
        Response::read(app.client.get(app.url("/api/v1/banners/active")).header("If-None-Match", &active_etag).send().await.unwrap()).await;
    assert_eq!(again.status, 304);

    // A change gives a new ETag.
    import(&app, &document(("Changed", "info", "", ""), &[])).await;
    let changed = Response::read(app.client.get(app.url("/api/v1/banners")).header("If-None-Match", &etag).send().await.unwrap()).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    // Other answers keep `no-store`.
    assert_eq!(app.get(&app.client, "/api/v1/help/articles").await.header("cache-control"), Some("no-store"));
}

async fn invalid_documents_are_refused_with_clear_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(&app, &seed_line()).await;
    let admin = admin(&app).await;
    let page = app.get(&admin, "/admin/banners").await;
    let csrf = form_csrf(&page.text, "/admin/banners");
    assert!(page.text.contains("We are currently looking into some reports"), "the document is in the form");

    let bad = document(
        ("", "info", "", ""),
        &[
            ("a", "ZZ", "all", "info", "", ""),
            ("b", "PH", "admin", "info", "", ""),
            ("c", "PH", "all", "purple", "", ""),
            ("d", "PH", "all", "info", "tomorrow", ""),
            ("e", "PH", "all", "info", "2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z"),
        ],
    );
    let refused = post_form(&app, &admin, "/admin/banners", &[("csrf", &csrf), ("document", &bad)]).await;
    assert_eq!(refused.status, 400);
    for problem in [
        "responsive[0].country &#34;ZZ&#34; is not an ISO 3166-1 alpha-2 code",
        "responsive[1].usertype &#34;admin&#34; is not one of all, client, freelancer, agency",
        "responsive[2].icon &#34;purple&#34; is not one of info, warning, error, success",
        "responsive[3].start &#34;tomorrow&#34; is not an ISO 8601 time",
        "responsive[4].end is before its start",
    ] {
        assert!(refused.text.contains(problem), "missing {problem:?} in {}", refused.text);
    }
    assert!(refused.text.contains("tomorrow"), "the typed document is kept for correcting");
    let not_json = post_form(&app, &admin, "/admin/banners", &[("csrf", &csrf), ("document", "{\"global\": ")]).await;
    assert_eq!(not_json.status, 400);
    assert!(not_json.text.contains("not valid"));
    let unknown_key = post_form(
        &app,
        &admin,
        "/admin/banners",
        &[("csrf", &csrf), ("document", &seed_line().replace("\"end\":\"\"}", "\"end\":\"\",\"colour\":\"red\"}"))],
    )
    .await;
    assert_eq!(unknown_key.status, 400);
    assert!(unknown_key.text.contains("colour"));
    assert_eq!(app.get(&app.client, "/api/v1/banners").await.text, seed_line(), "nothing changed");

    // The admin form takes the seed's line as it is.
    let saved = post_form(&app, &admin, "/admin/banners", &[("csrf", &csrf), ("document", &seed_line())]).await;
    assert_eq!((saved.status, saved.header("location")), (303, Some("/admin/banners?saved=1")));
}

async fn admins_preview_schedule_and_end_banners(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = admin(&app).await;
    let page = app.get(&admin, "/admin/banners").await;
    let csrf = form_csrf(&page.text, "/admin/banners");
    let later = format_time(app.services.deps.clock.unix() + 600);
    let doc = document(
        ("Global now", "info", "", ""),
        &[("PH freelancers", "PH", "freelancer", "warning", "", ""), ("Later", "All", "all", "info", &later, "")],
    );
    assert_eq!(post_form(&app, &admin, "/admin/banners", &[("csrf", &csrf), ("document", &doc)]).await.status, 303);

    let page = app.get(&admin, "/admin/banners").await;
    assert!(page.text.contains("status-scheduled"), "the later banner is scheduled");
    let preview = app.get(&admin, "/admin/banners?country=PH&usertype=freelancer").await;
    let shown = preview.text.split("id=\"preview\"").nth(1).unwrap().split("</div>\n  ").next().unwrap().to_owned();
    assert!(shown.contains("Global now") && shown.contains("PH freelancers") && !shown.contains("Later"), "{shown}");
    let preview = app.get(&admin, "/admin/banners?country=US&usertype=anonymous").await;
    let shown = preview.text.split("id=\"preview\"").nth(1).unwrap().to_owned();
    assert!(!shown.split("<h2>").next().unwrap().contains("PH freelancers"));
    assert_eq!(app.get(&admin, "/admin/banners?country=XX&usertype=client").await.status, 200);

    // End the PH banner now: it disappears for its audience at once.
    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    assert_eq!(active(&app, &maria, &[]).await, ["Global now", "PH freelancers"]);
    assert_eq!(post_form(&app, &admin, "/admin/banners/end", &[("csrf", &csrf), ("slot", "0")]).await.status, 303);
    assert_eq!(active(&app, &maria, &[]).await, ["Global now"]);
    let stored: Value = app.get(&app.client, "/api/v1/banners").await.json();
    assert_eq!(stored["responsive"][0]["end"], format_time(app.services.deps.clock.unix()));
    // Ending a scheduled banner cancels it; ending the global one ends it.
    assert_eq!(post_form(&app, &admin, "/admin/banners/end", &[("csrf", &csrf), ("slot", "1")]).await.status, 303);
    assert_eq!(post_form(&app, &admin, "/admin/banners/end", &[("csrf", &csrf), ("slot", "global")]).await.status, 303);
    assert!(active(&app, &maria, &[]).await.is_empty());
    app.clock.advance(600);
    assert!(active(&app, &maria, &[]).await.is_empty(), "the cancelled banner does not start later");
    assert_eq!(post_form(&app, &admin, "/admin/banners/end", &[("csrf", &csrf), ("slot", "9")]).await.status, 400);

    let admin_account = app.services.store.find_for_login("admin").await.unwrap().unwrap().0;
    let audit = app.services.store.audit_of(&admin_account.id, 50).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.event == doorman_core::audit::AuditEvent::BannersChanged).count(), 4);
}

async fn changes_reach_every_replica_within_seconds(backend: Backend) {
    // Two replicas on one database: an admin's change on one is served by the other
    // within seconds, without a restart.
    let config = test_config(backend).await;
    let first = TestApp::spawn_with(config.clone()).await;
    let second = TestApp::spawn_with(config).await;
    let admin = admin(&first).await;
    let csrf = form_csrf(&first.get(&admin, "/admin/banners").await.text, "/admin/banners");
    let doc = document(("Seen everywhere", "info", "", ""), &[]);
    let started = Instant::now();
    assert_eq!(post_form(&first, &admin, "/admin/banners", &[("csrf", &csrf), ("document", &doc)]).await.status, 303);
    assert_eq!(active(&first, &TestApp::new_client(), &[]).await, ["Seen everywhere"], "at once where it was made");
    let within = Duration::from_secs(10).saturating_sub(started.elapsed());
    eventually_within("the other replica to pick up the change", within, async || {
        (active(&second, &TestApp::new_client(), &[]).await == ["Seen everywhere"]).then_some(())
    })
    .await;
    // Articles too.
    crate::help::add_article(&first, "new-one", "New one", "Tests", "Body", "").await;
    eventually("the other replica to pick up the article", 10, async || {
        (second.get(&second.client, "/api/v1/help/articles/new-one").await.status == 200).then_some(())
    })
    .await;
}

async fn s8_1_dismissed_banners_stay_hidden_until_their_text_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    import(&app, &document(("Scheduled maintenance", "warning", "", ""), &[("Another notice", "", "all", "info", "", "")])).await;
    let visitor = TestApp::new_client();
    let page = app.get(&visitor, "/login").await;
    assert!(page.text.contains("Scheduled maintenance"));
    let id = page.text.split("data-banner=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let csrf = form_csrf(&page.text, "/banners/dismiss");

    let forged = post_form(&app, &visitor, "/banners/dismiss", &[("csrf", "forged"), ("banner", &id), ("back", "/login")]).await;
    assert_eq!(forged.status, 403);
    let dismissed = post_form(&app, &visitor, "/banners/dismiss", &[("csrf", &csrf), ("banner", &id), ("back", "/login")]).await;
    assert_eq!((dismissed.status, dismissed.header("location")), (303, Some("/login")));
    let page = app.get(&visitor, "/login").await;
    assert!(!page.text.contains("Scheduled maintenance"));
    assert!(page.text.contains("Another notice"), "only that banner is hidden");
    // The login form still works with the same pre-session cookie (one binding, not two).
    let login_csrf = form_csrf(&page.text, "/login");
    assert_eq!(login_csrf, csrf);

    // Back only to this site.
    let elsewhere = post_form(&app, &visitor, "/banners/dismiss", &[("csrf", &csrf), ("banner", &id), ("back", "//evil.example/")]).await;
    assert_eq!(elsewhere.header("location"), Some("/"));

    // A new text shows again.
    import(&app, &document(("Scheduled maintenance, moved to Friday", "warning", "", ""), &[])).await;
    assert!(app.get(&visitor, "/login").await.text.contains("Scheduled maintenance, moved to Friday"));

    // Signed in, the form is bound to the session.
    let maria = signed_in(&app, "maria", UserType::Freelancer, "PH").await;
    let page = app.get(&maria, "/account").await;
    let csrf = form_csrf(&page.text, "/banners/dismiss");
    assert_eq!(csrf, form_csrf(&page.text, "/logout"), "the same token as the page's own forms");
    let id = page.text.split("data-banner=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert_eq!(post_form(&app, &maria, "/banners/dismiss", &[("csrf", &csrf), ("banner", &id), ("back", "/account")]).await.status, 303);
    assert!(!app.get(&maria, "/account").await.text.contains("moved to Friday"));
}

/// An error page is rendered in the same layout as every page: a signed-in visitor sees
/// their own name (not "Log in") and their banners on a 404 or a refused form, and the
/// configured product name; an anonymous visitor sees the anonymous version.
async fn error_pages_show_the_viewers_own_header_and_banners(backend: Backend) {
    let mut config = test_config(backend).await;
    config.product_name = "Freelance Hub".into();
    let app = TestApp::spawn_with(config).await;
    import(&app, &document(("", "info", "", ""), TARGETED)).await;
    let freelancer = signed_in(&app, "pedro", UserType::Freelancer, "PH").await;

    let missing = app.get(&freelancer, "/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text.contains("Page not found") && missing.text.contains("Freelance Hub"), "{}", missing.text);
    assert!(missing.text.contains(">pedro</a>") && !missing.text.contains(">Log in</a>"), "{}", missing.text);
    assert!(missing.text.contains("PH freelancers") && missing.text.contains("Everyone (All)"), "{}", missing.text);

    // A form refused before its handler ran (no CSRF token) gets the same layout.
    let refused = post_form(&app, &freelancer, "/account/sessions/revoke", &[("session", "x")]).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains(">pedro</a>") && refused.text.contains("PH freelancers"), "{}", refused.text);

    let anonymous = app.get(&TestApp::new_client(), "/no/such/page").await;
    assert_eq!(anonymous.status, 404);
    assert!(anonymous.text.contains(">Log in</a>") && !anonymous.text.contains("pedro"), "{}", anonymous.text);
    assert!(anonymous.text.contains("Everyone (All)") && !anonymous.text.contains("PH freelancers"), "{}", anonymous.text);
}
