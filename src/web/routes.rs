//! Route registration that keeps a list of what it registered. axum cannot list a
//! `Router`'s routes, so every feature module builds its routes through [`Routes`], which
//! records each path with the methods its `MethodRouter` answers. The bad-input catalogue
//! (tests/api/catalogue.rs) walks [`all_routes`], so a new route is covered without
//! touching the test.

use crate::web::state::AppState;
use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;

/// One registered route: a method and the path as written, with `{param}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub method: Method,
    pub path: String,
}

/// A `Router` being built, and the list of the routes in it.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    entries: Vec<RouteEntry>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Router::route`, recording the path with each method it answers.
    pub fn route(mut self, path: &str, method_router: MethodRouter<AppState>) -> Self {
        for method in methods_of(&method_router) {
            self.entries.push(RouteEntry { method, path: path.to_owned() });
        }
        self.router = self.router.route(path, method_router);
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.entries.extend(other.entries);
        self.router = self.router.merge(other.router);
        self
    }

    /// The routes with `prefix` in front of every path (what `Router::nest` serves).
    pub fn prefixed(&self, prefix: &str) -> Vec<RouteEntry> {
        self.entries.iter().map(|e| RouteEntry { method: e.method.clone(), path: format!("{prefix}{}", e.path) }).collect()
    }

    pub fn entries(&self) -> &[RouteEntry] {
        &self.entries
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// The methods a `MethodRouter` answers, read from the `Allow` value it builds for its 405s
/// (exposed only through its `Debug` output). HEAD, which axum adds to every GET, is left
/// out. The unit tests below fail if a new axum prints it differently.
fn methods_of(method_router: &MethodRouter<AppState>) -> Vec<Method> {
    let debug = format!("{method_router:?}");
    let marker = "allow_header: Bytes(b\"";
    let Some(start) = debug.find(marker).map(|i| i + marker.len()) else { return Vec::new() };
    let allow = debug[start..].split('"').next().unwrap_or_default();
    allow.split(',').filter(|m| *m != "HEAD").filter_map(|m| Method::from_bytes(m.as_bytes()).ok()).collect()
}

/// Every route the application serves: pages, `/api/v1` and the health checks.
pub fn all_routes() -> Vec<RouteEntry> {
    let mut all = crate::web::pages::router().entries().to_vec();
    all.extend(crate::web::api::router().prefixed(crate::web::API_PREFIX));
    all.extend(crate::web::health_routes().entries().iter().cloned());
    all
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use axum::routing::{delete, get};

    async fn nothing() {}

    #[test]
    fn methods_are_read_from_the_method_router() {
        assert_eq!(methods_of(&get(nothing)), vec![Method::GET]);
        assert_eq!(methods_of(&get(nothing).post(nothing)), vec![Method::GET, Method::POST]);
        assert_eq!(methods_of(&delete(nothing)), vec![Method::DELETE]);
    }

    #[test]
    fn the_list_holds_every_kind_of_route() {
        let all = all_routes();
        let has = |method: Method, path: &str| all.iter().any(|e| e.method == method && e.path == path);
        assert!(has(Method::GET, "/login") && has(Method::POST, "/login"), "a page with a form");
        assert!(has(Method::POST, "/api/v1/login"), "an API route, under its prefix");
        assert!(has(Method::DELETE, "/api/v1/account/sessions/{id}"), "a DELETE with a path parameter");
        assert!(has(Method::GET, "/healthz") && has(Method::GET, "/readyz"));
        assert!(!has(Method::GET, "/api/v1/login"), "only the methods registered");
        assert!(all.len() > 120, "{} routes", all.len());
    }
}
