//! Help articles and banners as the server serves them: held in memory, so the banner
//! endpoints (the hottest path) and the help pages never read the database for content.
//! Every change bumps a version in storage; each replica polls the versions (every ~2 s,
//! see the server's start-up) and reloads what moved, so an admin's change reaches every
//! replica within seconds without a restart.

use crate::account::AccountId;
use crate::audit::{AuditEvent, RequestContext};
use crate::banners::{BannerBoard, BannerError, Slot};
use crate::clock::in_words;
use crate::deps::Deps;
use crate::help::{
    Article, ArticleError, Ballot, BallotError, MyVote, NoReason, SearchIndex, Slug, Tally, Voter, WeeklyVotes, render_markdown, search,
};
use crate::store::StoreError;
use crate::throttle::{ThrottleKey, ThrottleRule};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::sync::{Arc, RwLock};

crate::storage_trait! {
    /// The storage `Content` reads and writes.
    pub trait ContentStorage: ContentStore
}

/// Votes allowed per client address per hour, across replicas (S3.6, S12.1). The web layer
/// also applies its in-process per-address limit first.
pub const VOTES_PER_ADDRESS_PER_HOUR: i64 = 60;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentVersions {
    pub help: i64,
    pub banners: i64,
}

#[async_trait]
pub trait ContentStore: Send + Sync {
    async fn content_versions(&self) -> Result<ContentVersions, StoreError>;
    async fn help_articles(&self) -> Result<Vec<Article>, StoreError>;
    /// Inserts, or replaces the article with the same slug unless `create_only`; bumps the
    /// help version. `false` when `create_only` and the slug is taken.
    async fn save_help_article(&self, article: &Article, create_only: bool) -> Result<bool, StoreError>;
    /// One vote per voter and article: a second vote replaces the first. Returns the new tally.
    async fn record_vote(&self, slug: &Slug, voter: &str, ballot: &Ballot, now: i64) -> Result<Tally, StoreError>;
    async fn vote_tally(&self, slug: &Slug) -> Result<Tally, StoreError>;
    /// The voter's current answer, if any.
    async fn vote_of(&self, slug: &Slug, voter: &str) -> Result<Option<MyVote>, StoreError>;
    /// Votes by the week of their latest answer, oldest first.
    async fn weekly_votes(&self, slug: &Slug) -> Result<Vec<WeeklyVotes>, StoreError>;
    /// "No" answers that say something, newest first.
    async fn no_reasons(&self, slug: &Slug, limit: i64) -> Result<Vec<NoReason>, StoreError>;
    /// The stored banner document, as imported.
    async fn banner_document(&self) -> Result<Option<String>, StoreError>;
    /// Replaces the banner document; bumps the banners version.
    async fn save_banner_document(&self, json: &str, now: i64) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("There is no help article at this address.")]
    NotFound,
    #[error(transparent)]
    Article(#[from] ArticleError),
    #[error("An article with that slug already exists.")]
    SlugTaken,
    #[error(transparent)]
    Ballot(#[from] BallotError),
    #[error(transparent)]
    Banners(#[from] BannerError),
    #[error("Too many votes from your network. Try again in {}.", in_words(*retry_after_seconds))]
    RateLimited { retry_after_seconds: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The banner document as served: checked, with its JSON and ETag computed once per change.
#[derive(Debug)]
pub struct BannerState {
    pub board: BannerBoard,
    /// `-1` until loaded from storage.
    pub version: i64,
    pub json: String,
    /// A strong ETag from the JSON's hash: equal on every replica for equal content.
    pub etag: String,
}

impl BannerState {
    fn new(board: BannerBoard, version: i64) -> Self {
        let json = board.to_json();
        let etag = etag_of(json.as_bytes());
        Self { board, version, json, etag }
    }
}

/// `"<first 16 hex digits of SHA-256>"`, quoted as an ETag is.
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..8]))
}

/// An article with its rendered HTML and search words.
#[derive(Debug)]
pub struct LibraryArticle {
    pub article: Article,
    /// Safe HTML (raw HTML in the Markdown became text).
    pub html: String,
    index: SearchIndex,
}

#[derive(Debug, Default)]
pub struct HelpLibrary {
    /// `-1` until loaded from storage.
    pub version: i64,
    /// Ordered by category, then title.
    pub articles: Vec<LibraryArticle>,
}

impl HelpLibrary {
    fn new(version: i64, mut articles: Vec<Article>) -> Self {
        articles.sort_by(|a, b| a.category.cmp(&b.category).then_with(|| a.title.cmp(&b.title)));
        let articles = articles
            .into_iter()
            .map(|article| LibraryArticle { html: render_markdown(&article.body), index: SearchIndex::of(&article), article })
            .collect();
        Self { version, articles }
    }

    pub fn get(&self, slug: &str) -> Option<&LibraryArticle> {
        self.articles.iter().find(|a| a.article.slug.as_str() == slug)
    }

    /// Best match first; see [`crate::help::search`].
    pub fn search(&self, query: &str) -> Vec<&LibraryArticle> {
        search(&self.articles, query, |a| (&a.article, &a.index))
    }

    /// Articles grouped by category, in order.
    pub fn by_category(&self) -> Vec<(&str, Vec<&LibraryArticle>)> {
        let mut groups: Vec<(&str, Vec<&LibraryArticle>)> = Vec::new();
        for a in &self.articles {
            match groups.last_mut() {
                Some((category, list)) if *category == a.article.category => list.push(a),
                _ => groups.push((&a.article.category, vec![a])),
            }
        }
        groups
    }

    /// The related articles that exist, in the order given.
    pub fn related(&self, article: &Article) -> Vec<&LibraryArticle> {
        article.related.iter().filter_map(|slug| self.get(slug.as_str())).collect()
    }
}

struct Snapshot {
    banners: Arc<BannerState>,
    help: Arc<HelpLibrary>,
}

/// The in-memory copy, shared by every request of one process. Readers clone an `Arc`
/// under a short read lock; a reload swaps it.
#[derive(Clone)]
pub struct ContentCache(Arc<RwLock<Snapshot>>);

impl Default for ContentCache {
    fn default() -> Self {
        Self(Arc::new(RwLock::new(Snapshot {
            banners: Arc::new(BannerState::new(BannerBoard::default(), -1)),
            help: Arc::new(HelpLibrary { version: -1, articles: Vec::new() }),
        })))
    }
}

impl std::fmt::Debug for ContentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (banners, help) = (self.banners(), self.help());
        f.debug_struct("ContentCache").field("banners_version", &banners.version).field("help_version", &help.version).finish()
    }
}

impl ContentCache {
    pub fn banners(&self) -> Arc<BannerState> {
        // A poisoned lock still holds a complete snapshot (writers only swap an Arc).
        self.0.read().unwrap_or_else(|e| e.into_inner()).banners.clone()
    }
    pub fn help(&self) -> Arc<HelpLibrary> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).help.clone()
    }
    fn set_banners(&self, state: BannerState) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).banners = Arc::new(state);
    }
    fn set_help(&self, library: HelpLibrary) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).help = Arc::new(library);
    }
}

fn vote_address_key(ctx: &RequestContext) -> ThrottleKey {
    ThrottleKey {
        key: format!("vote:ip:{}", crate::throttle::address_key(ctx.ip)),
        rule: ThrottleRule::Budget { limit: VOTES_PER_ADDRESS_PER_HOUR, window: 3600, cooldown: 3600 },
    }
}

/// Help articles and banners: served from memory, changed by admins, voted on by readers.
#[derive(Debug, Clone)]
pub struct Content {
    deps: Deps,
    store: Arc<dyn ContentStorage>,
    cache: ContentCache,
}

impl Content {
    pub fn new(deps: Deps, store: Arc<dyn ContentStorage>) -> Self {
        Self { store, deps, cache: ContentCache::default() }
    }

    /// The help articles in memory.
    pub fn help(&self) -> Arc<HelpLibrary> {
        self.cache.help()
    }

    /// The banner document in memory.
    pub fn banners(&self) -> Arc<BannerState> {
        self.cache.banners()
    }

    /// A voter's current answer on an article, if any.
    pub async fn vote_of(&self, slug: &Slug, voter: &Voter) -> Result<Option<MyVote>, StoreError> {
        self.store.vote_of(slug, &voter.key()).await
    }

    /// Votes by week, for the admin pages.
    pub async fn weekly_votes(&self, slug: &Slug) -> Result<Vec<WeeklyVotes>, StoreError> {
        self.store.weekly_votes(slug).await
    }

    /// "No" answers that say something, newest first, for the admin pages.
    pub async fn no_reasons(&self, slug: &Slug, limit: i64) -> Result<Vec<NoReason>, StoreError> {
        self.store.no_reasons(slug, limit).await
    }

    /// Loads articles and banners whose stored version differs from the copy in memory
    /// (everything, the first time). Returns whether anything was reloaded.
    pub async fn refresh_content(&self) -> Result<bool, StoreError> {
        // The version is read before the content: a change landing in between is at worst
        // loaded twice, never missed.
        let versions = self.store.content_versions().await?;
        let mut changed = false;
        if versions.banners != self.cache.banners().version {
            self.load_banners(versions.banners).await?;
            changed = true;
        }
        if versions.help != self.cache.help().version {
            self.load_help(versions.help).await?;
            changed = true;
        }
        Ok(changed)
    }

    async fn load_banners(&self, version: i64) -> Result<(), StoreError> {
        let board = match self.store.banner_document().await? {
            Some(json) => BannerBoard::parse_json(&json).unwrap_or_else(|e| {
                // Only checked documents are stored; should one not parse (a newer version's
                // format?), show no banners rather than fail every page.
                tracing::error!(error = %e, "the stored banner document does not parse; showing no banners");
                BannerBoard::default()
            }),
            None => BannerBoard::default(),
        };
        self.cache.set_banners(BannerState::new(board, version));
        Ok(())
    }

    async fn load_help(&self, version: i64) -> Result<(), StoreError> {
        let articles = self.store.help_articles().await?;
        self.cache.set_help(HelpLibrary::new(version, articles));
        Ok(())
    }

    /// After a change made here: reload at once rather than at the next poll.
    async fn reload_now(&self) -> Result<(), StoreError> {
        let versions = self.store.content_versions().await?;
        self.load_banners(versions.banners).await?;
        self.load_help(versions.help).await
    }

    /// Replaces the banner document (CLI import, admin pages) after checking it.
    pub async fn import_banners(&self, json: &str, actor: Option<&AccountId>, ctx: &RequestContext) -> Result<BannerBoard, ContentError> {
        let board = BannerBoard::parse_json(json)?;
        self.save_banners(&board, actor, ctx, "import").await?;
        Ok(board)
    }

    async fn save_banners(
        &self,
        board: &BannerBoard,
        actor: Option<&AccountId>,
        ctx: &RequestContext,
        detail: &str,
    ) -> Result<(), ContentError> {
        self.store.save_banner_document(&board.to_json(), self.deps.clock.unix()).await?;
        self.deps.audit(AuditEvent::BannersChanged, actor, ctx, detail).await?;
        self.reload_now().await?;
        Ok(())
    }

    /// Ends one banner now (a scheduled one is cancelled).
    pub async fn end_banner(&self, slot: Slot, actor: Option<&AccountId>, ctx: &RequestContext) -> Result<(), ContentError> {
        let document = self.cache.banners().board.ended_now(slot, self.deps.clock.unix())?;
        let board = BannerBoard::new(document)?;
        self.save_banners(&board, actor, ctx, &format!("end {}", slot.name())).await
    }

    /// The stored banner document as JSON, read from storage (for `doorman banners export`).
    pub async fn export_banners(&self) -> Result<String, StoreError> {
        Ok(match self.store.banner_document().await? {
            Some(json) => json,
            None => BannerBoard::default().to_json(),
        })
    }

    /// Creates (`create = true`, refusing a taken slug) or updates an article.
    pub async fn save_article(
        &self,
        article: &Article,
        create: bool,
        actor: Option<&AccountId>,
        ctx: &RequestContext,
    ) -> Result<(), ContentError> {
        if !create && self.store.help_articles().await?.iter().all(|a| a.slug != article.slug) {
            return Err(ContentError::NotFound);
        }
        if !self.store.save_help_article(article, create).await? {
            return Err(ContentError::SlugTaken);
        }
        self.deps.audit(AuditEvent::HelpArticleSaved, actor, ctx, article.slug.as_str()).await?;
        self.reload_now().await?;
        Ok(())
    }

    /// Adds or refreshes articles by slug (the demo's articles), leaving unchanged ones
    /// alone so their "updated" time stays true. Returns how many were written.
    pub async fn seed_articles(&self, articles: &[Article], ctx: &RequestContext) -> Result<usize, ContentError> {
        let stored = self.store.help_articles().await?;
        let mut written = 0;
        for article in articles {
            if stored.iter().any(|s| s.same_content(article)) {
                continue;
            }
            self.store.save_help_article(article, false).await?;
            self.deps.audit(AuditEvent::HelpArticleSaved, None, ctx, article.slug.as_str()).await?;
            written += 1;
        }
        self.reload_now().await?;
        Ok(written)
    }

    /// Records a vote (one per voter and article, replacing an earlier one) within the
    /// per-address budget shared by every replica (S3.6, S12.1).
    pub async fn vote(&self, slug: &str, voter: &Voter, ballot: &Ballot, ctx: &RequestContext) -> Result<Tally, ContentError> {
        let library = self.cache.help();
        let article = library.get(slug).ok_or(ContentError::NotFound)?;
        let now = self.deps.clock.unix();
        let key = vote_address_key(ctx);
        if let Some(wait) = self.deps.claim(std::slice::from_ref(&key)).await? {
            return Err(ContentError::RateLimited { retry_after_seconds: wait });
        }
        Ok(self.store.record_vote(&article.article.slug, &voter.key(), ballot, now).await?)
    }

    pub async fn vote_tally(&self, slug: &Slug) -> Result<Tally, StoreError> {
        self.store.vote_tally(slug).await
    }
}

/// How often each replica checks the stored versions.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Polls the content versions forever, reloading what changed (run by `doorman serve`).
pub async fn refresh_forever(content: Content) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = content.refresh_content().await {
            tracing::warn!(error = %e, "reloading help articles and banners failed; serving the copy in memory");
        }
    }
}
