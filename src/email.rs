//! Email content from templates: every email has a plain-text and an HTML part, both
//! escaped by askama (HTML) or free of markup (text). Header fields are built later by
//! lettre from typed addresses, so nothing here can inject a header.

use askama::Template;
use doorman_core::notice::{Composer, Notice};
use doorman_core::outbox::MessageContent;

#[derive(Debug, Clone)]
pub struct TemplateComposer {
    pub product_name: String,
    pub base_url: String,
}

#[derive(Template)]
#[template(path = "email/password_reset.txt")]
struct ResetText<'a> {
    product: &'a str,
    base_url: &'a str,
    username: &'a str,
    link: &'a str,
    code: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/password_reset.html")]
struct ResetHtml<'a> {
    product: &'a str,
    base_url: &'a str,
    username: &'a str,
    link: &'a str,
    code: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/password_changed.txt")]
struct ChangedText<'a> {
    product: &'a str,
    base_url: &'a str,
    username: &'a str,
    when: &'a str,
    ip: &'a str,
    device: &'a str,
    report_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/password_changed.html")]
struct ChangedHtml<'a> {
    product: &'a str,
    base_url: &'a str,
    username: &'a str,
    when: &'a str,
    ip: &'a str,
    device: &'a str,
    report_link: &'a str,
}

/// The HTML part of short notices: their text, paragraph by paragraph, escaped.
#[derive(Template)]
#[template(path = "email/simple.html")]
struct SimpleHtml<'a> {
    paragraphs: Vec<&'a str>,
}

fn simple_html(text: &str) -> Result<String, askama::Error> {
    SimpleHtml { paragraphs: text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).collect() }.render()
}

#[derive(Template)]
#[template(path = "email/security_change.txt")]
struct SecurityChangeText<'a> {
    product: &'a str,
    base_url: &'a str,
    username: &'a str,
    change: &'a str,
    when: &'a str,
    ip: &'a str,
    report_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/account_locked.txt")]
struct AccountLockedText<'a> {
    product: &'a str,
    username: &'a str,
    when: &'a str,
    case_id: &'a str,
    reset_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/verification_code.txt")]
struct CodeText<'a> {
    product: &'a str,
    username: &'a str,
    code: &'a str,
    purpose: &'a str,
}

#[derive(Template)]
#[template(path = "email/email_change.txt")]
struct EmailChangeText<'a> {
    product: &'a str,
    username: &'a str,
    link: &'a str,
    new_email: &'a str,
}

#[derive(Template)]
#[template(path = "email/email_in_use.txt")]
struct EmailInUseText<'a> {
    product: &'a str,
    base_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/logins_paused.txt")]
struct LoginsPausedText<'a> {
    product: &'a str,
    username: &'a str,
    when: &'a str,
    reset_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/two_step_reset.txt")]
struct TwoStepResetText<'a> {
    product: &'a str,
    username: &'a str,
    body: &'a str,
}

#[derive(Template)]
#[template(path = "email/answer_reset.txt")]
struct AnswerResetText<'a> {
    product: &'a str,
    username: &'a str,
    link: &'a str,
    valid_for: &'a str,
    when: &'a str,
    ip: &'a str,
    report_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/new_device.txt")]
struct NewDeviceText<'a> {
    product: &'a str,
    base_url: &'a str,
    username: &'a str,
    when: &'a str,
    place: &'a str,
    ip: &'a str,
    device: &'a str,
    report_link: &'a str,
}

impl Composer for TemplateComposer {
    fn compose(&self, notice: &Notice<'_>) -> Result<MessageContent, String> {
        let product = self.product_name.as_str();
        let base_url = self.base_url.as_str();
        let (subject, text, html) = match *notice {
            Notice::PasswordReset { username, link, code, valid_for } => (
                format!("Reset your {product} password"),
                ResetText { product, base_url, username, link, code, valid_for }.render(),
                ResetHtml { product, base_url, username, link, code, valid_for }.render(),
            ),
            Notice::PasswordChanged { username, when, ip, device, report_link } => (
                format!("Your {product} password was changed"),
                ChangedText { product, base_url, username, when, ip, device, report_link }.render(),
                ChangedHtml { product, base_url, username, when, ip, device, report_link }.render(),
            ),
            Notice::SecurityChange { username, change, when, ip, report_link } => {
                let text = SecurityChangeText { product, base_url, username, change, when, ip, report_link }
                    .render()
                    .map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("Security change on your {product} account"), Ok(text), html)
            }
            Notice::AccountLocked { username, when, case_id, reset_link } => {
                let text = AccountLockedText { product, username, when, case_id, reset_link }.render().map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("Your {product} account is locked"), Ok(text), html)
            }
            Notice::EmailChangeConfirm { username, link, new_email } => {
                let text = EmailChangeText { product, username, link, new_email }.render().map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("Confirm your new {product} email address"), Ok(text), html)
            }
            Notice::EmailInUse { .. } => {
                let text = EmailInUseText { product, base_url }.render().map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("Someone tried to use this address on {product}"), Ok(text), html)
            }
            Notice::LoginsPaused { username, when, reset_link } => {
                let text = LoginsPausedText { product, username, when, reset_link }.render().map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("Sign-in to your {product} account was paused"), Ok(text), html)
            }
            Notice::Personal { username, subject, body } => {
                let text = TwoStepResetText { product, username, body }.render().map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("{subject} ({product})"), Ok(text), html)
            }
            Notice::TwoStepResetText { text } => (product.to_owned(), Ok(format!("{product}: {text}")), Ok(String::new())),
            Notice::AnswerReset { username, link, valid_for, when, ip, report_link } => {
                let text =
                    AnswerResetText { product, username, link, valid_for, when, ip, report_link }.render().map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("Set a new security question for your {product} account"), Ok(text), html)
            }
            Notice::Plain { subject, body } => {
                let text = format!("Hello,\n\n{body}\n\n{product}\n");
                let html = simple_html(&text);
                (format!("{subject} ({product})"), Ok(text), html)
            }
            Notice::NewDeviceSignIn { username, when, place, ip, device, report_link } => {
                let text = NewDeviceText { product, base_url, username, when, place, ip, device, report_link }
                    .render()
                    .map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("New sign-in to your {product} account"), Ok(text), html)
            }
            // An SMS carries only the short text; email gets both parts.
            Notice::VerificationCode { code, sms: true, .. } => {
                let text = format!("{product} code: {code}. It expires in 10 minutes. Never share it; we will never ask for it.");
                (format!("{product} code"), Ok(text), Ok(String::new()))
            }
            Notice::VerificationCode { username, code, purpose, sms: false } => {
                let text = CodeText { product, username, code, purpose }.render().map_err(|e| e.to_string())?;
                let html = simple_html(&text);
                (format!("Your {product} verification code"), Ok(text), html)
            }
        };
        Ok(MessageContent { subject, text: text.map_err(|e| e.to_string())?, html: html.map_err(|e| e.to_string())? })
    }
}
