//! The help center: articles written in Markdown and rendered without raw HTML, a ranked,
//! typo-tolerant search over the (small) set of articles held in memory, and "Was this
//! article helpful?" votes (checklist S12.1).

use crate::account::AccountId;
use pulldown_cmark::{Event, Options, Parser, html};
use serde::Serialize;

/// Longest free-text reason given with a "No" vote, in characters.
pub const MAX_REASON_CHARS: usize = 500;
const MAX_TITLE_CHARS: usize = 200;
const MAX_CATEGORY_CHARS: usize = 80;
const MAX_BODY_CHARS: usize = 100_000;
const MAX_RELATED: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArticleError {
    #[error("A slug has 1 to 80 characters: lower-case letters a-z, digits and single dashes, such as forgot-password.")]
    Slug,
    #[error("A title has 1 to 200 characters.")]
    Title,
    #[error("A category has 1 to 80 characters.")]
    Category,
    #[error("The article's text is empty or longer than 100,000 characters.")]
    Body,
    #[error("Related articles are at most 10 slugs, separated by commas: {0}")]
    Related(String),
    #[error("The article file needs a front matter between '---' lines with title, slug and category: {0}")]
    FrontMatter(String),
}

/// An article's address: `/help/{slug}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, ArticleError> {
        let value = raw.trim();
        let ok = (1..=80).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-')
            && !value.ends_with('-')
            && !value.contains("--");
        if ok { Ok(Self(value.to_owned())) } else { Err(ArticleError::Slug) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Slug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checked article. `body` is Markdown; [`render_markdown`] turns it into safe HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    pub slug: Slug,
    pub title: String,
    pub category: String,
    pub body: String,
    pub related: Vec<Slug>,
    pub updated_at: i64,
}

/// An article as typed in the admin form or read from a file, not yet checked.
#[derive(Debug, Clone, Default)]
pub struct ArticleFields {
    pub slug: String,
    pub title: String,
    pub category: String,
    pub body: String,
    /// Slugs separated by commas.
    pub related: String,
}

impl Article {
    pub fn parse(fields: &ArticleFields, updated_at: i64) -> Result<Self, ArticleError> {
        let slug = Slug::parse(&fields.slug)?;
        let title = one_line(&fields.title);
        if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
            return Err(ArticleError::Title);
        }
        let category = one_line(&fields.category);
        if category.is_empty() || category.chars().count() > MAX_CATEGORY_CHARS {
            return Err(ArticleError::Category);
        }
        let body = fields.body.replace("\r\n", "\n").trim().to_owned();
        if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
            return Err(ArticleError::Body);
        }
        let mut related = Vec::new();
        for part in fields.related.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let other = Slug::parse(part).map_err(|_| ArticleError::Related(format!("{part:?} is not a slug")))?;
            if other != slug && !related.contains(&other) {
                related.push(other);
            }
        }
        if related.len() > MAX_RELATED {
            return Err(ArticleError::Related("too many".into()));
        }
        Ok(Self { slug, title, category, body, related, updated_at })
    }

    /// The fields that would produce this article (for editing forms).
    pub fn fields(&self) -> ArticleFields {
        ArticleFields {
            slug: self.slug.to_string(),
            title: self.title.clone(),
            category: self.category.clone(),
            body: self.body.clone(),
            related: self.related.iter().map(Slug::as_str).collect::<Vec<_>>().join(", "),
        }
    }

    /// Same text, whatever the time: whether saving would change anything.
    pub fn same_content(&self, other: &Article) -> bool {
        self.slug == other.slug
            && self.title == other.title
            && self.category == other.category
            && self.body == other.body
            && self.related == other.related
    }
}

fn one_line(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads an article file: a front matter of `key: value` lines between two `---` lines
/// (`title`, `slug`, `category`, optional `related`: slugs separated by commas), then the
/// Markdown body.
pub fn parse_article_file(text: &str, updated_at: i64) -> Result<Article, ArticleError> {
    let text = text.replace("\r\n", "\n");
    let rest = text.trim_start().strip_prefix("---\n").ok_or_else(|| ArticleError::FrontMatter("it must start with '---'".into()))?;
    let (head, body) = rest.split_once("\n---\n").ok_or_else(|| ArticleError::FrontMatter("no closing '---' line".into()))?;
    let mut fields = ArticleFields { body: body.to_owned(), ..ArticleFields::default() };
    for line in head.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value) = line.split_once(':').ok_or_else(|| ArticleError::FrontMatter(format!("{line:?} is not 'key: value'")))?;
        let value = value.trim().to_owned();
        match key.trim() {
            "title" => fields.title = value,
            "slug" => fields.slug = value,
            "category" => fields.category = value,
            "related" => fields.related = value,
            other => return Err(ArticleError::FrontMatter(format!("unknown key {other:?}"))),
        }
    }
    Article::parse(&fields, updated_at)
}

/// Markdown to HTML with every raw HTML block and inline tag turned into text, so an
/// article can never inject markup or script; links keep only http(s), mailto and
/// site-relative targets.
pub fn render_markdown(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(pulldown_cmark::Tag::Link { link_type, dest_url, title, id }) => {
            let dest_url = if safe_url(&dest_url) { dest_url } else { "#".into() };
            Event::Start(pulldown_cmark::Tag::Link { link_type, dest_url, title, id })
        }
        Event::Start(pulldown_cmark::Tag::Image { link_type, dest_url, title, id }) => {
            let dest_url = if safe_url(&dest_url) { dest_url } else { "#".into() };
            Event::Start(pulldown_cmark::Tag::Image { link_type, dest_url, title, id })
        }
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:")
        || lower.starts_with('#')
        || (lower.starts_with('/') && !lower.starts_with("//"))
}

/// The words of a text, lower-cased, for search.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "at", "be", "can", "do", "does", "for", "from", "how", "i", "if", "in", "is", "it", "me", "my", "of", "on",
    "or", "the", "to", "what", "when", "why", "with", "you", "your",
];

/// An article's words, computed once when the library is loaded.
#[derive(Debug, Clone)]
pub struct SearchIndex {
    title: Vec<String>,
    category: Vec<String>,
    body: Vec<String>,
}

impl SearchIndex {
    pub fn of(article: &Article) -> Self {
        Self { title: words(&article.title), category: words(&article.category), body: words(&article.body) }
    }
}

/// How well one query word matches one indexed word: exact 3, prefix 2, one typo 1.
/// Typos (Damerau-Levenshtein distance 1: a letter added, dropped, changed or two
/// swapped) count only for words of 5 letters or more, where they rarely make another word.
fn word_match(query: &str, word: &str) -> u32 {
    if query == word {
        3
    } else if query.len() >= 3 && word.starts_with(query) {
        2
    } else if query.chars().count() >= 5 && word.chars().count() >= 4 && strsim::damerau_levenshtein(query, word) <= 1 {
        1
    } else {
        0
    }
}

fn best_match(query: &str, words: &[String]) -> u32 {
    words.iter().map(|w| word_match(query, w)).max().unwrap_or(0)
}

/// Ranks articles for a query over title, category and body. An article must match every
/// meaningful word of the query (after dropping words like "the" and "how"), each exactly,
/// as a prefix or with one typo; title matches weigh most. Best first, ties by title.
pub fn search<'a, T>(items: &'a [T], query: &str, index: impl Fn(&T) -> (&Article, &SearchIndex)) -> Vec<&'a T> {
    let all = words(query);
    let meaningful: Vec<&String> = all.iter().filter(|w| !STOP_WORDS.contains(&w.as_str())).collect();
    // At most 10 words count: a long query cannot make search expensive.
    let terms: Vec<&String> = if meaningful.is_empty() { all.iter().collect() } else { meaningful }.into_iter().take(10).collect();
    if terms.is_empty() {
        return Vec::new();
    }
    let phrase = query.trim().to_lowercase();
    let mut scored: Vec<(u32, &'a T)> = items
        .iter()
        .filter_map(|item| {
            let (article, idx) = index(item);
            let mut score = 0;
            for term in &terms {
                let title = best_match(term, &idx.title);
                let category = best_match(term, &idx.category);
                let body = best_match(term, &idx.body);
                if title + category + body == 0 {
                    return None;
                }
                score += title * 10 + category * 4 + body * 2;
            }
            if article.title.to_lowercase().contains(&phrase) {
                score += 20;
            }
            Some((score, item))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| index(a.1).0.title.cmp(&index(b.1).0.title)));
    scored.into_iter().map(|(_, item)| item).collect()
}

/// What a "No" voter may say was wrong, besides free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoChoice {
    HardToUnderstand,
    MissingInformation,
    StepsDidNotWork,
    NotWhatILookedFor,
    Other,
}

impl NoChoice {
    pub const ALL: [NoChoice; 5] =
        [Self::HardToUnderstand, Self::MissingInformation, Self::StepsDidNotWork, Self::NotWhatILookedFor, Self::Other];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw.trim())
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::HardToUnderstand => "hard_to_understand",
            Self::MissingInformation => "missing_information",
            Self::StepsDidNotWork => "steps_did_not_work",
            Self::NotWhatILookedFor => "not_what_i_looked_for",
            Self::Other => "other",
        }
    }
    pub fn label(&self) -> &'static str {
        match self {
            Self::HardToUnderstand => "It was hard to understand",
            Self::MissingInformation => "Information was missing",
            Self::StepsDidNotWork => "The steps did not work for me",
            Self::NotWhatILookedFor => "It was not what I was looking for",
            Self::Other => "Something else",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BallotError {
    #[error("A reason has at most 500 characters.")]
    ReasonTooLong,
    #[error("That is not one of the reasons offered.")]
    UnknownChoice,
}

/// One answer to "Was this article helpful?". A reason goes only with "No": with "Yes" it
/// is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ballot {
    helpful: bool,
    choice: Option<NoChoice>,
    comment: String,
}

impl Ballot {
    pub fn new(helpful: bool, choice: Option<&str>, comment: &str) -> Result<Self, BallotError> {
        let comment = comment.trim();
        if comment.chars().count() > MAX_REASON_CHARS {
            return Err(BallotError::ReasonTooLong);
        }
        let choice = match choice.map(str::trim).filter(|c| !c.is_empty()) {
            Some(raw) => Some(NoChoice::parse(raw).ok_or(BallotError::UnknownChoice)?),
            None => None,
        };
        if helpful {
            return Ok(Self { helpful, choice: None, comment: String::new() });
        }
        Ok(Self { helpful, choice, comment: comment.to_owned() })
    }
    pub fn helpful(&self) -> bool {
        self.helpful
    }
    pub fn choice(&self) -> Option<NoChoice> {
        self.choice
    }
    pub fn comment(&self) -> &str {
        &self.comment
    }
}

/// Who votes: a signed-in account, or an anonymous visitor known by the keyed hash of
/// their visitor cookie (never the cookie itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voter {
    Account(AccountId),
    Visitor(String),
}

impl Voter {
    pub fn key(&self) -> String {
        match self {
            Self::Account(id) => format!("account:{id}"),
            Self::Visitor(hash) => format!("visitor:{hash}"),
        }
    }
}

/// One voter's answer on an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MyVote {
    pub helpful: bool,
    /// A "No" that came with a reason (a choice or a comment): not asked for again.
    pub explained: bool,
}

/// "N out of M found this helpful".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub helpful: i64,
    pub total: i64,
}

/// Votes whose latest answer fell in one week (weeks start on Thursday 00:00 UTC, the
/// Unix epoch's weekday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyVotes {
    pub week_start: i64,
    pub helpful: i64,
    pub total: i64,
}

pub const WEEK_SECONDS: i64 = 7 * 24 * 3600;

/// A "No" with what the voter said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoReason {
    pub choice: Option<NoChoice>,
    pub comment: String,
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(slug: &str, title: &str, body: &str) -> Article {
        Article::parse(
            &ArticleFields { slug: slug.into(), title: title.into(), category: "Signing in".into(), body: body.into(), related: "".into() },
            0,
        )
        .unwrap()
    }

    #[test]
    fn slugs_are_plain() {
        assert!(Slug::parse("forgot-password").is_ok());
        assert!(Slug::parse("Forgot").is_err());
        assert!(Slug::parse("-a").is_err());
        assert!(Slug::parse("a--b").is_err());
        assert!(Slug::parse("../etc").is_err());
        assert!(Slug::parse("").is_err());
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = render_markdown("Hello <script>alert(1)</script>\n\n<div onclick=\"x()\">block</div>\n\n**bold**");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        let links = render_markdown("[x](javascript:alert(1)) [y](/help/login) [z](https://example.com)");
        assert!(!links.contains("javascript:"), "{links}");
        assert!(links.contains("href=\"/help/login\""), "{links}");
    }

    #[test]
    fn front_matter_is_read() {
        let a =
            parse_article_file("---\ntitle: Log in\nslug: log-in\ncategory: Signing in\nrelated: forgot-password, log-in\n---\nText.\n", 5)
                .unwrap();
        assert_eq!(a.slug.as_str(), "log-in");
        assert_eq!(a.related, vec![Slug::parse("forgot-password").unwrap()]);
        assert_eq!(a.body, "Text.");
        assert!(parse_article_file("title: x\n", 0).is_err());
        assert!(parse_article_file("---\ntitle: x\ncolour: red\n---\nb", 0).is_err());
    }

    #[test]
    fn search_ranks_titles_first_and_forgives_one_typo() {
        let items = vec![
            article("forgot-password", "Forgot your password", "Reset it by email with a link or a code."),
            article("log-in", "Logging in", "Use your username or email and your password."),
            article("throttling", "Too many attempts", "After failed logins we slow down guessing."),
        ];
        let idx: Vec<(Article, SearchIndex)> = items.into_iter().map(|a| (a.clone(), SearchIndex::of(&a))).collect();
        let slugs = |q: &str| search(&idx, q, |(a, i)| (a, i)).into_iter().map(|(a, _)| a.slug.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(slugs("password")[0], "forgot-password");
        assert_eq!(slugs("pasword")[0], "forgot-password", "one letter missing");
        assert_eq!(slugs("passwrod")[0], "forgot-password", "two letters swapped");
        assert_eq!(slugs("how do I reset my password"), vec!["forgot-password"]);
        assert_eq!(slugs("attempts")[0], "throttling");
        assert!(slugs("zebra").is_empty());
        assert!(slugs("").is_empty());
    }

    #[test]
    fn ballots_keep_reasons_only_with_no() {
        let yes = Ballot::new(true, Some("other"), "text").unwrap();
        assert_eq!((yes.choice(), yes.comment()), (None, ""));
        let no = Ballot::new(false, Some("steps_did_not_work"), " the code expired ").unwrap();
        assert_eq!((no.choice(), no.comment()), (Some(NoChoice::StepsDidNotWork), "the code expired"));
        assert_eq!(Ballot::new(false, None, &"x".repeat(501)), Err(BallotError::ReasonTooLong));
        assert!(Ballot::new(false, None, &"é".repeat(500)).is_ok(), "characters, not bytes");
        assert_eq!(Ballot::new(false, Some("bogus"), ""), Err(BallotError::UnknownChoice));
    }
}
