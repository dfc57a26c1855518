//! Status banners, in the seed's document format:
//!
//! ```json
//! {"global": {"message","icon","start","end"},
//!  "responsive": [{"message","country","usertype","icon","start","end"}, ...]}
//! ```
//!
//! The document is kept exactly as imported (same keys in the same order, values as
//! written) so that export gives back what came in; [`BannerBoard`] is its checked,
//! compiled form. Meaning: an empty `message` is no banner; `country` is an ISO 3166-1
//! alpha-2 code, "" or "All" meaning every country; `usertype` is all, client, freelancer
//! or agency; `start` and `end` are ISO 8601 times ("" for no bound; `end` excluded);
//! `icon` is info, warning, error or success. Who sees a banner is decided here from what
//! the server knows of the viewer, never from what a client says (S12.2).

use crate::account::{Country, UserType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// At most this many responsive banners, and this many characters per message.
pub const MAX_RESPONSIVE: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// The document as stored and served. Field order is the seed's, so serialising gives the
/// same shape back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BannerDocument {
    pub global: GlobalBanner,
    pub responsive: Vec<ResponsiveBanner>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalBanner {
    pub message: String,
    pub icon: String,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponsiveBanner {
    pub message: String,
    pub country: String,
    pub usertype: String,
    pub icon: String,
    pub start: String,
    pub end: String,
}

impl Default for BannerDocument {
    /// No banners at all.
    fn default() -> Self {
        Self {
            global: GlobalBanner { message: String::new(), icon: "info".into(), start: String::new(), end: String::new() },
            responsive: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BannerError {
    #[error("The banner document is not valid: {0}")]
    Json(String),
    #[error("The banner document has {} problem{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.join("; "))]
    Invalid(Vec<String>),
    #[error("There is no banner {0}.")]
    NoSuchBanner(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Icon {
    Info,
    Warning,
    Error,
    Success,
}

impl Icon {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "error" => Some(Self::Error),
            "success" => Some(Self::Success),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Success => "success",
        }
    }
    /// The ARIA role a page gives the banner: warnings and errors interrupt, the rest wait.
    pub fn aria_role(&self) -> &'static str {
        match self {
            Self::Warning | Self::Error => "alert",
            Self::Info | Self::Success => "status",
        }
    }
}

/// Which banner of the document: the global one, or a responsive one by position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Global,
    Responsive(usize),
}

impl Slot {
    /// "global" or "responsive[3]".
    pub fn name(&self) -> String {
        match self {
            Self::Global => "global".into(),
            Self::Responsive(i) => format!("responsive[{i}]"),
        }
    }
    /// "global" or "3", as forms send it.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim() {
            "global" => Some(Self::Global),
            other => other.parse().ok().map(Self::Responsive),
        }
    }
    pub fn form_value(&self) -> String {
        match self {
            Self::Global => "global".into(),
            Self::Responsive(i) => i.to_string(),
        }
    }
}

/// What the server knows of whoever is looking: the account's country and type when signed
/// in; for anonymous visitors at most a country from a trusted proxy header, and no type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Viewer {
    pub country: Option<Country>,
    pub user_type: Option<UserType>,
}

impl Viewer {
    /// A signed-in account: its country and type.
    pub fn account(account: &crate::account::Account) -> Self {
        Self { country: Some(account.country), user_type: Some(account.user_type) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    slot: Slot,
    message: String,
    icon: Icon,
    /// `None`: every country.
    country: Option<Country>,
    /// `None`: every user type (`all`).
    user_type: Option<UserType>,
    start: Option<i64>,
    end: Option<i64>,
}

impl Rule {
    fn applies(&self, viewer: &Viewer, now: i64) -> bool {
        !self.message.trim().is_empty()
            && self.in_window(now)
            && self.country.is_none_or(|c| viewer.country == Some(c))
            && self.user_type.is_none_or(|t| viewer.user_type == Some(t))
    }
    fn in_window(&self, now: i64) -> bool {
        self.start.is_none_or(|s| s <= now) && self.end.is_none_or(|e| now < e)
    }
}

/// A banner that applies to a viewer now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveBanner {
    #[serde(skip)]
    pub slot: Slot,
    /// Changes when the text changes: what a dismissal remembers.
    pub id: String,
    pub message: String,
    pub icon: Icon,
}

/// Where a banner stands, for the admin pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BannerStatus {
    /// Empty message: shows nothing.
    Empty,
    Scheduled,
    Live,
    Ended,
}

impl BannerStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Scheduled => "scheduled",
            Self::Live => "live",
            Self::Ended => "ended",
        }
    }
}

/// A checked banner document: proof that every banner in it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BannerBoard {
    document: BannerDocument,
    rules: Vec<Rule>,
}

impl Default for BannerBoard {
    fn default() -> Self {
        // The empty document is valid by construction.
        Self::new(BannerDocument::default()).unwrap_or(Self { document: BannerDocument::default(), rules: Vec::new() })
    }
}

/// The short id of a banner text (hex of the first 8 bytes of its SHA-256).
pub fn text_id(message: &str) -> String {
    hex::encode(&Sha256::digest(message.as_bytes())[..8])
}

impl BannerBoard {
    /// Reads a document in the seed's format and checks every banner; the errors name each
    /// problem and where it is.
    pub fn parse_json(json: &str) -> Result<Self, BannerError> {
        let document: BannerDocument = serde_json::from_str(json.trim()).map_err(|e| BannerError::Json(e.to_string()))?;
        Self::new(document)
    }

    pub fn new(document: BannerDocument) -> Result<Self, BannerError> {
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        if document.responsive.len() > MAX_RESPONSIVE {
            problems.push(format!("at most {MAX_RESPONSIVE} responsive banners"));
        }
        let g = &document.global;
        if let Some(rule) = check(Slot::Global, &g.message, "All", "all", &g.icon, &g.start, &g.end, &mut problems) {
            rules.push(rule);
        }
        for (i, b) in document.responsive.iter().enumerate() {
            if let Some(rule) = check(Slot::Responsive(i), &b.message, &b.country, &b.usertype, &b.icon, &b.start, &b.end, &mut problems) {
                rules.push(rule);
            }
        }
        if problems.is_empty() { Ok(Self { document, rules }) } else { Err(BannerError::Invalid(problems)) }
    }

    pub fn document(&self) -> &BannerDocument {
        &self.document
    }

    /// The document as JSON, in the seed's shape.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.document).unwrap_or_else(|_| String::from("{}"))
    }

    /// Whether any banner has text (whatever its window or audience).
    pub fn has_messages(&self) -> bool {
        self.rules.iter().any(|r| !r.message.trim().is_empty())
    }

    /// The banners that apply to this viewer at `now` (Unix seconds), global first, each
    /// text once.
    pub fn active(&self, viewer: &Viewer, now: i64) -> Vec<ActiveBanner> {
        let mut out: Vec<ActiveBanner> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.applies(viewer, now)) {
            let id = text_id(&rule.message);
            if !out.iter().any(|b| b.id == id) {
                out.push(ActiveBanner { slot: rule.slot, id, message: rule.message.clone(), icon: rule.icon });
            }
        }
        out
    }

    /// Every banner's place in the document and where it stands at `now`.
    pub fn statuses(&self, now: i64) -> Vec<(Slot, BannerStatus)> {
        self.rules
            .iter()
            .map(|r| {
                let status = if r.message.trim().is_empty() {
                    BannerStatus::Empty
                } else if r.start.is_some_and(|s| now < s) {
                    BannerStatus::Scheduled
                } else if r.end.is_some_and(|e| e <= now) {
                    BannerStatus::Ended
                } else {
                    BannerStatus::Live
                };
                (r.slot, status)
            })
            .collect()
    }

    /// The document with one banner ended at `now` (a scheduled one is cancelled: its
    /// start moves to `now` too).
    pub fn ended_now(&self, slot: Slot, now: i64) -> Result<BannerDocument, BannerError> {
        let stamp = format_time(now);
        let mut document = self.document.clone();
        let (start, end) = match slot {
            Slot::Global => (&mut document.global.start, &mut document.global.end),
            Slot::Responsive(i) => {
                let b = document.responsive.get_mut(i).ok_or_else(|| BannerError::NoSuchBanner(slot.name()))?;
                (&mut b.start, &mut b.end)
            }
        };
        if parse_time(start).ok().flatten().is_some_and(|s| s > now) {
            *start = stamp.clone();
        }
        *end = stamp;
        Ok(document)
    }
}

#[allow(clippy::too_many_arguments)]
fn check(
    slot: Slot,
    message: &str,
    country: &str,
    usertype: &str,
    icon: &str,
    start: &str,
    end: &str,
    problems: &mut Vec<String>,
) -> Option<Rule> {
    let at = slot.name();
    let before = problems.len();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        problems.push(format!("{at}.message is longer than {MAX_MESSAGE_CHARS} characters"));
    }
    let icon_raw = icon;
    let icon = Icon::parse(icon_raw);
    if icon.is_none() {
        problems.push(format!("{at}.icon {:?} is not one of info, warning, error, success", truncate(icon_raw, 40)));
    }
    let country = match country.trim() {
        "" => None,
        c if c.eq_ignore_ascii_case("all") => None,
        c => match Country::parse(c) {
            Ok(c) => Some(c),
            Err(_) => {
                problems.push(format!(
                    "{at}.country {:?} is not an ISO 3166-1 alpha-2 code (such as PH or US), \"All\" or \"\"",
                    truncate(c, 40)
                ));
                None
            }
        },
    };
    let user_type = if usertype.trim().eq_ignore_ascii_case("all") {
        None
    } else {
        match UserType::parse(usertype) {
            Ok(t) => Some(t),
            Err(_) => {
                problems.push(format!("{at}.usertype {:?} is not one of all, client, freelancer, agency", truncate(usertype, 40)));
                None
            }
        }
    };
    let mut time_of = |field: &str, raw: &str| match parse_time(raw) {
        Ok(t) => t,
        Err(BadTime) => {
            problems.push(format!(
                "{at}.{field} {:?} is not an ISO 8601 time (such as 2026-11-26T09:00:00Z or 2026-11-26T17:00:00+08:00) or \"\"",
                truncate(raw, 40)
            ));
            None
        }
    };
    let start = time_of("start", start);
    let end = time_of("end", end);
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        problems.push(format!("{at}.end is before its start"));
    }
    if problems.len() > before {
        return None;
    }
    Some(Rule { slot, message: message.to_owned(), icon: icon?, country, user_type, start, end })
}

/// Quoted values in error messages are cut short.
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A start or end that is not an ISO 8601 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadTime;

/// An ISO 8601 time: with an offset (`2026-11-26T09:00:00Z`, `...+08:00`), or without one
/// (read as UTC: `2026-11-26T09:00`, `2026-11-26T09:00:00`), or a date (midnight UTC).
/// `Ok(None)` for "" (no bound).
pub fn parse_time(raw: &str) -> Result<Option<i64>, BadTime> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(Some(t.unix_timestamp()));
    }
    if let Ok(t) = OffsetDateTime::parse(raw, &Iso8601::DEFAULT) {
        return Ok(Some(t.unix_timestamp()));
    }
    if let Ok(t) = PrimitiveDateTime::parse(raw, &Iso8601::DEFAULT) {
        return Ok(Some(t.assume_utc().unix_timestamp()));
    }
    if let Ok(d) = Date::parse(raw, &Iso8601::DEFAULT) {
        return Ok(Some(PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc().unix_timestamp()));
    }
    Err(BadTime)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-26T09:00:00Z`).
pub fn format_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"global":{"message":"Looking into reports.","icon":"info","start":"","end":""},"responsive":[{"message":"","country":"","usertype":"all","icon":"info","start":"","end":""},{"message":"","country":"All","usertype":"all","icon":"info","start":"","end":""}]}"#;

    fn viewer(country: Option<&str>, user_type: Option<UserType>) -> Viewer {
        Viewer { country: country.map(|c| Country::parse(c).unwrap()), user_type }
    }

    #[test]
    fn the_seed_shape_round_trips() {
        let board = BannerBoard::parse_json(SEED).unwrap();
        assert_eq!(board.to_json(), SEED);
        assert_eq!(board.active(&Viewer::default(), 0).len(), 1, "the global banner; empty messages show nothing");
    }

    #[test]
    fn problems_are_named() {
        let bad = SEED
            .replace(r#""icon":"info","start":"","end":""}]"#, r#""icon":"blue","start":"soon","end":""}]"#)
            .replace(r#""country":"All""#, r#""country":"XX""#);
        let err = BannerBoard::parse_json(&bad).unwrap_err().to_string();
        assert!(err.contains("responsive[1].icon"), "{err}");
        assert!(err.contains("responsive[1].country \"XX\""), "{err}");
        assert!(err.contains("responsive[1].start \"soon\""), "{err}");
        assert!(BannerBoard::parse_json("{\"global\":{}}").is_err());
        assert!(BannerBoard::parse_json(&SEED.replace("\"usertype\":\"all\"", "\"usertype\":\"admin\"")).is_err());
    }

    #[test]
    fn targeting_by_country_and_user_type() {
        let doc = r#"{"global":{"message":"","icon":"info","start":"","end":""},"responsive":[
            {"message":"PH freelancers","country":"PH","usertype":"freelancer","icon":"warning","start":"","end":""},
            {"message":"Everyone","country":"All","usertype":"all","icon":"info","start":"","end":""},
            {"message":"US anyone","country":"us","usertype":"all","icon":"error","start":"","end":""}]}"#;
        let board = BannerBoard::parse_json(doc).unwrap();
        let shown = |v: Viewer| board.active(&v, 0).into_iter().map(|b| b.message).collect::<Vec<_>>();
        assert_eq!(shown(viewer(Some("PH"), Some(UserType::Freelancer))), ["PH freelancers", "Everyone"]);
        assert_eq!(shown(viewer(Some("PH"), Some(UserType::Client))), ["Everyone"]);
        assert_eq!(shown(viewer(Some("US"), Some(UserType::Client))), ["Everyone", "US anyone"]);
        assert_eq!(shown(viewer(Some("PH"), None)), ["Everyone"], "anonymous visitors see only `all`");
        assert_eq!(shown(viewer(None, None)), ["Everyone"]);
    }

    #[test]
    fn time_windows() {
        let doc = r#"{"global":{"message":"Maintenance","icon":"warning","start":"2026-12-01T10:00:00Z","end":"2026-12-01T12:00:00+00:00"},"responsive":[]}"#;
        let board = BannerBoard::parse_json(doc).unwrap();
        let at = |s: &str| parse_time(s).unwrap().unwrap();
        assert!(board.active(&Viewer::default(), at("2026-12-01T09:59:59Z")).is_empty());
        assert_eq!(board.active(&Viewer::default(), at("2026-12-01T10:00:00Z")).len(), 1);
        assert!(board.active(&Viewer::default(), at("2026-12-01T12:00:00Z")).is_empty(), "end is excluded");
        assert_eq!(at("2026-12-01T18:00:00+08:00"), at("2026-12-01T10:00:00Z"));
        assert_eq!(at("2026-12-01T10:00"), at("2026-12-01T10:00:00Z"), "no offset: UTC");
        assert_eq!(at("2026-12-01"), at("2026-12-01T00:00:00Z"));
        let ended = board.ended_now(Slot::Global, at("2026-12-01T11:00:00Z")).unwrap();
        assert_eq!(ended.global.end, "2026-12-01T11:00:00Z");
        let early = board.ended_now(Slot::Global, at("2026-11-01T00:00:00Z")).unwrap();
        assert_eq!((early.global.start.as_str(), early.global.end.as_str()), ("2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z"));
        assert!(BannerBoard::new(early).unwrap().active(&Viewer::default(), at("2026-12-01T11:00:00Z")).is_empty());
    }
}
