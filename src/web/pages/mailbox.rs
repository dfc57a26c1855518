//! `/dev/mailbox`: in demo mode only, the messages the dev outbox wrote, so that a person
//! trying doorman can open a reset link without a mail server. Absent (404) otherwise.

use super::{Chrome, render};
use crate::web::error::{ApiError, PageError};
use crate::web::routes::Routes;
use crate::web::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

pub fn router() -> Routes {
    Routes::new().route("/dev/mailbox", get(list))
}

pub struct MailView {
    pub file: String,
    pub subject: String,
    pub to: String,
    pub date: String,
    pub text: String,
    pub links: Vec<String>,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    chrome: Chrome,
    mails: Vec<MailView>,
    mail_dir: String,
}

/// Reads one `.eml` file into what the page shows.
pub fn read_eml(path: &std::path::Path) -> Option<MailView> {
    let raw = std::fs::read(path).ok()?;
    let message = mail_parser::MessageParser::default().parse(&raw)?;
    let text = message.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    let links = text.split_whitespace().filter(|w| w.starts_with("http://") || w.starts_with("https://")).map(str::to_owned).collect();
    let to = message.to().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_owned).unwrap_or_default();
    Some(MailView {
        file: path.file_name()?.to_string_lossy().into_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        to,
        date: message.date().map(|d| d.to_rfc3339()).unwrap_or_default(),
        text,
        links,
    })
}

/// The newest messages first, by when the outbox wrote each file.
pub fn read_mailbox(dir: &std::path::Path, limit: usize) -> Vec<MailView> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<_> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
    paths.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    paths.reverse();
    paths.iter().take(limit).filter_map(|p| read_eml(p)).collect()
}

/// `GET /dev/mailbox`
pub async fn list(chrome: Chrome, State(state): State<AppState>) -> Result<Response, PageError> {
    if !state.web.demo {
        return Err(PageError(ApiError::new(StatusCode::NOT_FOUND, "not_found", "There is nothing at this address.")));
    }
    let dir = state.web.mail_dir.clone();
    let mails = tokio::task::spawn_blocking(move || read_mailbox(&dir, 50)).await.unwrap_or_default();
    let page = MailboxPage { chrome, mails, mail_dir: state.web.mail_dir.display().to_string() };
    Ok(render(StatusCode::OK, &page))
}
