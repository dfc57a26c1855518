//! The bad-input catalogue (issue 13): every route the router lists (`all_routes`, so a new
//! route is covered without touching this file) gets hostile input for each of its methods,
//! anonymously, signed in as an admin, and as staff (support and admin, TOTP enrolled): bad
//! path parameters and query strings; bodies that are invalid UTF-8, deeply nested, of the wrong type, with duplicate keys or arrays for
//! objects, too large, in the wrong content type; and every field set to NUL and control
//! characters, CR/LF header injection, SQL and HTML metacharacters and Unicode look-alikes.
//! Page forms go with and without their CSRF token. No answer may be a 5xx; every 4xx is in
//! our error shape (JSON for /api, an error page otherwise); and nothing is stored. Forms need
//! their token (S8.1). docs/SECURITY.md, "The bad-input catalogue", describes it.

use crate::help::admin;
use crate::helpers::{Backend, PASSWORD, Response, TestApp, csrf_of};
use crate::on_both_backends;
use crate::support::agent;
use doorman::web::routes::{RouteEntry, all_routes};
use doorman_core::audit::RequestContext;
use doorman_core::roles::Role;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};

on_both_backends!(every_route_answers_bad_input_in_kind);

/// Requests in flight at once: enough to finish in time on two cores, few enough that the
/// password-hashing queue is not what answers.
const CONCURRENCY: usize = 8;

/// Filled into `{param}` placeholders, already percent-encoded as they go in the URL.
fn path_values() -> Vec<String> {
    vec![
        "1".into(),
        "x".repeat(3000),
        "..%2F..%2Fetc%2Fpasswd".into(),
        "%00".into(),
        "%FF%FE".into(),
        "%0D%0ASet-Cookie:%20a=b".into(),
        "%27%20OR%20%271%27=%271".into(),
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
        // "аdmin" with a Cyrillic а, and a right-to-left override.
        "%D0%B0dmin".into(),
        "%E2%80%AEabc".into(),
        "-1".into(),
        "99999999999999999999999999".into(),
    ]
}

/// Query strings for GET routes (tokens and searches come in the query).
fn queries() -> Vec<String> {
    vec![
        "?token=%00".into(),
        "?token=%FF%FE".into(),
        "?token=a&token=b&q=%3Cscript%3E".into(),
        format!("?token={}&q={}", "A".repeat(5000), "q".repeat(5000)),
        "?%0D%0A=1&token=a%0D%0ALocation:%20http://evil.test".into(),
        "?q=%27%3B%20DROP%20TABLE%20accounts%3B--&slug=%D0%B0".into(),
    ]
}

/// Strings every field is set to in turn.
fn hostile_strings() -> Vec<String> {
    vec![
        "a\u{0}b".into(),
        "\u{7}\u{1b}[31m\u{8}".into(),
        "x\r\nSet-Cookie: doorman_session=stolen\r\n\r\n<h1>".into(),
        "' OR '1'='1'; DROP TABLE accounts; --".into(),
        "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>".into(),
        "аdmin@ехample.com".into(),
        "\u{202e}gnp.exe\u{200b}\u{feff}".into(),
        "ａｄｍｉｎ＠ｅｘａｍｐｌｅ．ｃｏｍ".into(),
        "e\u{301}\u{301}\u{301}\u{301}🙂".into(),
        "x".repeat(10_000),
        String::new(),
    ]
}

/// The field names of every form in templates/, so forms get values for their own fields.
fn form_field_names() -> Vec<String> {
    let mut names = BTreeSet::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for piece in text.split("name=\"").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != "csrf" && name != "viewport" {
                names.insert(name);
            }
        }
    }
    assert!(names.contains("login") && names.contains("password"), "{names:?}");
    names.into_iter().collect()
}

#[derive(Clone)]
struct Case {
    label: String,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Case {
    fn new(label: impl Into<String>, method: &Method, path: &str) -> Self {
        Self { label: label.into(), method: method.clone(), path: path.to_owned(), content_type: None, body: Vec::new() }
    }
    /// Over the server's body limit (64 KiB by default).
    fn oversized(&self) -> bool {
        self.body.len() > 64 * 1024
    }
    fn body(mut self, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type);
        self.body = body.into();
        self
    }
}

fn fill(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').map(|i| start + i + 1).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

struct Run<'a> {
    app: &'a TestApp,
    client: &'a reqwest::Client,
    who: &'static str,
    csrf: String,
    form_fields: &'a [String],
    next_ip: AtomicU32,
    /// How often each (status, error code) answered, to show how far the cases got.
    tally: std::sync::Mutex<BTreeMap<(u16, String), usize>>,
}

impl Run<'_> {
    async fn send(&self, case: &Case) -> Result<Response, String> {
        // A new address each time, so per-address limits do not answer instead of the route.
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        let ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        let mut request = self.client.request(case.method.clone(), self.app.url(&case.path)).header("X-Real-IP", ip);
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        if case.oversized() {
            // The server may answer before reading such a body and then close the
            // connection: it must not go back to the pool for the next case.
            request = request.header("connection", "close");
        }
        if !case.body.is_empty() || case.content_type.is_some() {
            request = request.body(case.body.clone());
        }
        match request.send().await {
            Ok(response) => {
                let response = Response::read(response).await;
                let code = serde_json::from_str::<Value>(&response.text).ok().and_then(|v| v["error"].as_str().map(str::to_owned));
                *self.tally.lock().unwrap().entry((response.status, code.unwrap_or_default())).or_default() += 1;
                Ok(response)
            }
            Err(e) => Err(format!("no answer: {e:?}")),
        }
    }

    /// What is wrong with the answer to `case`, if anything.
    fn judge(case: &Case, answer: &Result<Response, String>) -> Option<String> {
        let response = match answer {
            Ok(response) => response,
            // Refusing a body over the limit by closing the connection is an answer too.
            Err(_) if case.oversized() => return None,
            Err(e) => return Some(e.clone()),
        };
        if case.oversized() && response.status < 300 {
            return Some(format!("{} to a body over the limit", response.status));
        }
        if response.status >= 500 {
            return Some(format!("{}: {}", response.status, response.text.chars().take(300).collect::<String>()));
        }
        if (400..500).contains(&response.status) {
            if case.path.starts_with("/api/") {
                let body: Value = serde_json::from_str(&response.text).unwrap_or(Value::Null);
                let shaped =
                    body["error"].as_str().is_some_and(|e| !e.is_empty()) && body["message"].as_str().is_some_and(|m| !m.is_empty());
                if !shaped {
                    return Some(format!(
                        "{} not in the JSON error shape: {}",
                        response.status,
                        response.text.chars().take(200).collect::<String>()
                    ));
                }
            } else if !response.header("content-type").is_some_and(|t| t.starts_with("text/html")) {
                return Some(format!("{} is not an error page: {:?}", response.status, response.header("content-type")));
            }
        }
        None
    }

    /// The fields an API route wants, learned from its own "missing field" answers.
    async fn json_fields(&self, method: &Method, path: &str) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        for _ in 0..10 {
            let body: serde_json::Map<String, Value> = fields.iter().map(|f| (f.clone(), json!("x"))).collect();
            let case = Case::new("discover", method, path).body("application/json", Value::Object(body).to_string());
            let Ok(response) = self.send(&case).await else { break };
            let Some(field) = response.text.split("missing field `").nth(1).and_then(|rest| rest.split('`').next()) else { break };
            if fields.iter().any(|f| f == field) {
                break;
            }
            fields.push(field.to_owned());
        }
        fields
    }

    async fn cases_for(&self, route: &RouteEntry) -> Vec<Case> {
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let api = route.path.starts_with("/api/");
        let path = fill(&route.path, "1");
        let mut cases = Vec::new();
        if route.path.contains('{') {
            for value in path_values() {
                cases.push(Case::new(format!("path {}", value.chars().take(40).collect::<String>()), &method, &fill(&route.path, &value)));
            }
        }
        if method == Method::GET {
            for query in queries() {
                cases.push(Case::new(format!("query {}", query.chars().take(40).collect::<String>()), &method, &format!("{path}{query}")));
            }
            return cases;
        }
        // Bodies in the wrong shape or the wrong content type, for every route that takes one.
        let raw: Vec<(&str, &'static str, Vec<u8>)> = vec![
            ("invalid UTF-8", "application/json", b"{\"login\": \"\xff\xfe\"}".to_vec()),
            ("invalid UTF-8 form", "application/x-www-form-urlencoded", b"csrf=\xff&login=\xfe\x00".to_vec()),
            ("deep arrays", "application/json", format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes()),
            ("deep objects", "application/json", format!("{}1{}", "{\"a\":".repeat(3000), "}".repeat(3000)).into_bytes()),
            ("an array", "application/json", b"[{\"login\": \"x\"}]".to_vec()),
            ("a string", "application/json", b"\"x\"".to_vec()),
            ("null", "application/json", b"null".to_vec()),
            ("truncated", "application/json", b"{\"login\": ".to_vec()),
            ("lone surrogate", "application/json", br#"{"login": "\ud800"}"#.to_vec()),
            ("oversized", "application/json", format!("{{\"x\": \"{}\"}}", "x".repeat(200_000)).into_bytes()),
            ("oversized form", "application/x-www-form-urlencoded", format!("csrf=a&x={}", "x".repeat(200_000)).into_bytes()),
            ("plain text", "text/plain", b"login=x".to_vec()),
            (
                "multipart",
                "multipart/form-data; boundary=x",
                b"--x\r\nContent-Disposition: form-data; name=\"login\"\r\n\r\nx\r\n--x--".to_vec(),
            ),
            ("utf-16 label", "application/json; charset=utf-16", b"{}".to_vec()),
        ];
        for (label, content_type, body) in raw {
            cases.push(Case::new(label, &method, &path).body(content_type, body));
        }
        cases.push(Case::new("no body", &method, &path));
        if api {
            let fields = self.json_fields(&method, &path).await;
            let with = |value: Value| -> String { Value::Object(fields.iter().map(|f| (f.clone(), value.clone())).collect()).to_string() };
            for (label, value) in [
                ("numbers", json!(12345678901234567890u64)),
                ("floats", json!(-1.5e300)),
                ("arrays", json!(["x", "y"])),
                ("objects", json!({"$gt": ""})),
                ("nulls", Value::Null),
                ("booleans", json!(true)),
            ] {
                cases.push(Case::new(format!("fields as {label}"), &method, &path).body("application/json", with(value)));
            }
            for value in hostile_strings() {
                let label = format!("fields = {:?}", value.chars().take(20).collect::<String>());
                cases.push(Case::new(label, &method, &path).body("application/json", with(json!(value))));
            }
            if let Some(first) = fields.first() {
                let duplicate = format!("{{\"{first}\": \"a\", \"{first}\": \"b\"}}");
                cases.push(Case::new("duplicate keys", &method, &path).body("application/json", duplicate));
            }
            cases.push(
                Case::new("unknown field", &method, &path).body("application/json", with(json!("x")).replacen('{', "{\"admin\": true,", 1)),
            );
        } else {
            let form = |csrf: &str, value: &str| -> String {
                let mut pairs: Vec<(&str, &str)> = self.form_fields.iter().map(|f| (f.as_str(), value)).collect();
                if !csrf.is_empty() {
                    pairs.push(("csrf", csrf));
                }
                serde_urlencoded::to_string(pairs).unwrap()
            };
            const FORM: &str = "application/x-www-form-urlencoded";
            for value in hostile_strings() {
                let label = format!("{:?}", value.chars().take(20).collect::<String>());
                cases.push(Case::new(format!("form without csrf, fields = {label}"), &method, &path).body(FORM, form("", &value)));
                cases.push(Case::new(format!("form with csrf, fields = {label}"), &method, &path).body(FORM, form(&self.csrf, &value)));
            }
            let csrf = &self.csrf;
            cases.push(Case::new("duplicate fields", &method, &path).body(FORM, format!("csrf={csrf}&login=a&login=b&id=1&id=2")));
            cases.push(Case::new("NUL in a field name", &method, &path).body(FORM, format!("csrf={csrf}&lo%00gin=a")));
            cases.push(Case::new("bad escapes", &method, &path).body(FORM, format!("csrf={csrf}&login=%ZZ%&%FF=%")));
            cases.push(Case::new("a JSON body", &method, &path).body("application/json", json!({"csrf": csrf, "login": "x"}).to_string()));
        }
        cases
    }

    /// Every case of every route; the failures, one line each.
    async fn walk(&self, routes: &[RouteEntry]) -> (usize, Vec<String>) {
        let per_route = futures::stream::iter(routes)
            .map(|route| async move {
                let mut failures = Vec::new();
                let cases = self.cases_for(route).await;
                for case in &cases {
                    if let Some(problem) = Self::judge(case, &self.send(case).await) {
                        failures.push(format!("[{}] {} {} ({}): {problem}", self.who, route.method, route.path, case.label));
                    }
                }
                (cases.len(), failures)
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        per_route.into_iter().fold((0, Vec::new()), |(n, mut all), (count, failures)| {
            all.extend(failures);
            (n + count, all)
        })
    }
}

/// Routes that end the signed-in run's own session are walked anonymously only.
fn ends_the_session(route: &RouteEntry) -> bool {
    route.path.ends_with("/logout")
}

async fn every_route_answers_bad_input_in_kind(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_account("maria", "maria@example.com").await;
    let admin = admin(&app).await;
    // Staff with TOTP enrolled get past the two-step requirement of support and admin pages.
    let (staff, _, _) = agent(&app, "staff", "192.0.2.70").await;
    assert!(app.services.roles.set_role("staff", Role::Admin, true, &RequestContext::cli()).await.unwrap());
    let routes = all_routes();
    assert!(routes.len() > 100, "the router lists its routes: {}", routes.len());

    // The list agrees with what the server answers: each listed method is routed (not 405).
    for route in &routes {
        let response = admin.request(Method::OPTIONS, app.url(&fill(&route.path, "1"))).send().await.unwrap();
        assert_eq!(response.status(), 405, "{} {} is routed", route.method, route.path);
        let allow = response.headers().get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(
            allow.split(',').any(|m| m == route.method.as_str()),
            "{} {} is listed but the server allows {allow:?}",
            route.method,
            route.path
        );
    }

    let articles_before = app.get(&admin, "/api/v1/help/articles").await.text;
    let banners_before = app.get(&admin, "/api/v1/banners").await.text;
    let form_fields = form_field_names();

    let anonymous = TestApp::new_client();
    let anonymous_csrf = csrf_of(&app.get(&anonymous, "/login").await.text);
    let admin_csrf = csrf_of(&app.get(&admin, "/account").await.text);
    let staff_csrf = csrf_of(&app.get(&staff, "/account").await.text);
    let mut total = 0;
    let mut failures = Vec::new();
    for (who, client, csrf) in [("anonymous", &anonymous, anonymous_csrf), ("admin", &admin, admin_csrf), ("staff", &staff, staff_csrf)] {
        let run = Run { app: &app, client, who, csrf, form_fields: &form_fields, next_ip: AtomicU32::new(1), tally: Default::default() };
        let walked: Vec<RouteEntry> = routes.iter().filter(|r| who == "anonymous" || !ends_the_session(r)).cloned().collect();
        let (count, found) = run.walk(&walked).await;
        let tally = run.tally.into_inner().unwrap();
        eprintln!("{backend:?} {who}: {count} cases on {} routes, answers (status, code): {tally:?}", walked.len());
        // The cases got past the front door: the domain's own refusals answered some of them.
        let domain_answers = tally.keys().filter(|(status, code)| *status == 400 && !code.is_empty() && code != "invalid_body").count();
        assert!(domain_answers >= 3, "{who}: only {tally:?}");
        total += count;
        failures.extend(found);
    }
    assert!(total > 5000, "{total} cases");
    assert!(failures.is_empty(), "{} of {total} cases answered badly:\n{}", failures.len(), failures.join("\n"));

    // Nothing was stored: no article or banner, the admin is still signed in, maria's
    // password still works.
    assert_eq!(app.get(&admin, "/api/v1/help/articles").await.text, articles_before);
    assert_eq!(app.get(&admin, "/api/v1/banners").await.text, banners_before);
    assert_eq!(app.get(&admin, "/api/v1/session").await.status, 200);
    assert_eq!(app.get(&staff, "/api/v1/session").await.status, 200);
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);
}
