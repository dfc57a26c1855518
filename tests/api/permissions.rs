//! The permission matrix (issue 13): every route the router lists, walked as an anonymous
//! visitor, a signed-in account, a support agent and an admin, against the table in
//! docs/SECURITY.md ("Who may reach what"), so that a new route is checked as soon as it exists
//! and a change of rule shows in the document and the test together.

use crate::helpers::{Backend, PASSWORD, Response, TestApp};
use crate::on_both_backends;
use crate::two_step::enrol_totp;
use doorman::web::routes::all_routes;
use doorman_core::audit::RequestContext;
use doorman_core::roles::Role;
use reqwest::Method;

on_both_backends!(s11_every_route_answers_each_kind_of_visitor_as_the_permission_matrix_says);

const SECURITY_MD: &str = include_str!("../../docs/SECURITY.md");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// API 401 `not_authenticated`, page 303 to `/login`.
    Login,
    Forbidden,
    /// A GET gets past every gate.
    Yes,
    /// Open to everyone: nothing to check here.
    Open,
}

/// The table between the `permission-matrix` markers: prefix, then one expectation per visitor.
fn matrix() -> Vec<(String, [Expect; 4])> {
    let start = SECURITY_MD.find("<!-- permission-matrix -->").expect("the matrix in docs/SECURITY.md");
    let end = SECURITY_MD.find("<!-- /permission-matrix -->").expect("the matrix's end");
    let rows: Vec<(String, [Expect; 4])> = SECURITY_MD[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 5, "{line}");
            let parse = |cell: &str| match cell {
                "login" => Expect::Login,
                "403" => Expect::Forbidden,
                "yes" => Expect::Yes,
                "–" => Expect::Open,
                other => panic!("unknown cell {other:?} in {line}"),
            };
            (cells[0].trim_matches('`').to_owned(), [parse(cells[1]), parse(cells[2]), parse(cells[3]), parse(cells[4])])
        })
        .collect();
    assert!(rows.len() > 5 && rows[0].0 == "*", "the matrix starts with its default row: {rows:?}");
    rows
}

/// The row of the longest prefix that matches `path`.
fn expectations(matrix: &[(String, [Expect; 4])], path: &str) -> [Expect; 4] {
    let matches = |prefix: &str| {
        prefix == "*"
            || if prefix.ends_with('/') { path.starts_with(prefix) } else { path == prefix || path.starts_with(&format!("{prefix}/")) }
    };
    matrix
        .iter()
        .filter(|(p, _)| matches(p))
        .max_by_key(|(p, _)| if p == "*" { 0 } else { p.len() })
        .map(|(_, e)| *e)
        .unwrap_or([Expect::Open; 4])
}

/// A path with its parameters filled (ids that do not exist: the gates come before the lookup).
fn concrete(path: &str) -> String {
    path.split('/').map(|part| if part.starts_with('{') { "x" } else { part }).collect::<Vec<_>>().join("/")
}

async fn request(app: &TestApp, client: &reqwest::Client, method: &Method, path: &str) -> Response {
    let mut builder = client.request(method.clone(), app.url(path)).header("X-Real-IP", "192.0.2.90");
    if *method != Method::GET && *method != Method::HEAD {
        builder = if path.starts_with("/api/") { builder.json(&serde_json::json!({})) } else { builder.form(&[("csrf", "x")]) };
    }
    Response::read(builder.send().await.expect("request")).await
}

/// A signed-in account with an authenticator, verified just now, with `role` if any.
async fn visitor(app: &TestApp, name: &str, role: Option<Role>) -> reqwest::Client {
    app.create_account(name, &format!("{name}@example.com")).await;
    if let Some(role) = role {
        assert!(app.services.roles.set_role(name, role, true, &RequestContext::cli()).await.unwrap());
    }
    let client = TestApp::new_client();
    assert_eq!(app.login_as(&client, "192.0.2.91", name, PASSWORD).await.status, 200);
    enrol_totp(app, &client).await;
    client
}

async fn s11_every_route_answers_each_kind_of_visitor_as_the_permission_matrix_says(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let matrix = matrix();
    let visitors = [
        ("anonymous", TestApp::new_client()),
        ("account", visitor(&app, "plain", None).await),
        ("agent", visitor(&app, "agent", Some(Role::Support)).await),
        ("admin", visitor(&app, "boss", Some(Role::Admin)).await),
    ];
    let routes = all_routes();
    assert!(routes.len() > 100, "the router lists its routes: {}", routes.len());
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in &routes {
        // Logging out would end the visitors' sessions for the routes after it.
        if route.path.ends_with("/logout") {
            continue;
        }
        let path = concrete(&route.path);
        let expected = expectations(&matrix, &route.path);
        for (i, (who, client)) in visitors.iter().enumerate() {
            let expect = expected[i];
            if expect == Expect::Open || (expect == Expect::Yes && route.method != Method::GET) {
                continue;
            }
            let answer = request(&app, client, &route.method, &path).await;
            let api = path.starts_with("/api/");
            let to_login = answer.status == 303 && answer.header("location").is_some_and(|l| l.starts_with("/login"));
            let ok = match expect {
                Expect::Login if api => answer.status == 401 && answer.error_code() == "not_authenticated",
                Expect::Login => to_login,
                Expect::Forbidden => answer.status == 403,
                Expect::Yes => answer.status != 401 && answer.status != 403 && !to_login,
                Expect::Open => true,
            };
            checked += 1;
            if !ok {
                failures.push(format!(
                    "{who} {} {path}: expected {expect:?}, got {} {:?}",
                    route.method,
                    answer.status,
                    answer.text.chars().take(120).collect::<String>()
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} checks");
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
}
