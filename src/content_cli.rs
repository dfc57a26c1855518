//! Command-line operations on roles, banners and the help center, and the demo's help
//! articles (content/help/*.md, built into the binary) and banners.

use crate::app;
use crate::config::Config;
use anyhow::Context;
use doorman_core::audit::RequestContext;
use doorman_core::clock::SystemClock;
use doorman_core::help::{Article, parse_article_file};
use doorman_core::roles::Role;
use doorman_core::services::Services;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// The demo help center, in our own words, describing only what doorman does today.
const DEMO_ARTICLES: [(&str, &str); 7] = [
    ("log-in.md", include_str!("../content/help/log-in.md")),
    ("forgot-password.md", include_str!("../content/help/forgot-password.md")),
    ("reset-email-not-arriving.md", include_str!("../content/help/reset-email-not-arriving.md")),
    ("after-a-password-reset.md", include_str!("../content/help/after-a-password-reset.md")),
    ("too-many-attempts.md", include_str!("../content/help/too-many-attempts.md")),
    ("no-access-to-email.md", include_str!("../content/help/no-access-to-email.md")),
    ("two-step-verification.md", include_str!("../content/help/two-step-verification.md")),
];

/// A demo banner document in the seed's format: one banner for freelancers in the Philippines.
const DEMO_BANNERS: &str = include_str!("../content/banners-demo.json");

/// `doorman user role add|remove LOGIN ROLE`
pub async fn set_role(config: &Config, login: &str, role: &str, grant: bool) -> anyhow::Result<()> {
    let role = Role::parse(role).ok_or_else(|| anyhow::anyhow!("unknown role {role:?}: the roles are admin and support"))?;
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    let changed = services.roles.set_role(login, role, grant, &RequestContext::cli()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let what = match (grant, changed) {
        (true, true) => "granted",
        (true, false) => "already had",
        (false, true) => "revoked",
        (false, false) => "did not have",
    };
    println!("{login}: {what} role {}", role.as_str());
    Ok(())
}

/// `doorman banners import FILE` (`-` reads standard input).
pub async fn import_banners(config: &Config, file: &Path) -> anyhow::Result<()> {
    let json = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        // The seed file ends with the document on its last line, after the article's text.
        if file.extension().is_some_and(|e| e == "json") { text } else { last_json_line(&text).unwrap_or(text) }
    };
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    let board = services.content.import_banners(&json, None, &RequestContext::cli()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let shown = board.document().responsive.iter().filter(|b| !b.message.trim().is_empty()).count()
        + usize::from(!board.document().global.message.trim().is_empty());
    println!("imported the banner document: {} responsive banners, {shown} with a message", board.document().responsive.len());
    Ok(())
}

/// The last line that looks like a JSON object, if the text is not one itself.
fn last_json_line(text: &str) -> Option<String> {
    if text.trim_start().starts_with('{') {
        return None;
    }
    text.lines().rev().map(str::trim).find(|l| l.starts_with('{')).map(str::to_owned)
}

/// `doorman banners export`: prints the stored document.
pub async fn export_banners(config: &Config) -> anyhow::Result<()> {
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    println!("{}", services.content.export_banners().await?);
    Ok(())
}

/// `doorman articles import DIR`: adds or updates the articles of every `*.md` file in DIR.
pub async fn import_articles(config: &Config, dir: &Path) -> anyhow::Result<()> {
    let (services, _) = app::services(config, Arc::new(SystemClock)).await?;
    let now = services.deps.clock.unix();
    let mut articles = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        articles.push(parse_article_file(&text, now).with_context(|| format!("in {}", path.display()))?);
    }
    let written = services.content.seed_articles(&articles, &RequestContext::cli()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{} articles read, {written} added or changed", articles.len());
    Ok(())
}

fn demo_articles(now: i64) -> anyhow::Result<Vec<Article>> {
    DEMO_ARTICLES.iter().map(|(name, text)| parse_article_file(text, now).with_context(|| format!("demo article {name}"))).collect()
}

/// `serve --demo`: the help center's articles (added or refreshed by slug, so running the
/// demo again changes nothing) and, when no banner document is stored yet, a demo banner.
pub async fn seed_demo_content(services: &Services) -> anyhow::Result<()> {
    let articles = demo_articles(services.deps.clock.unix())?;
    services.content.seed_articles(&articles, &RequestContext::cli()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if services.store.banner_document().await?.is_none() {
        services.content.import_banners(DEMO_BANNERS, None, &RequestContext::cli()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!(
        "Help center: {} articles at /help; admin pages at /admin (grant with `doorman user role add USERNAME admin`)",
        articles.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_articles_parse_and_link_to_each_other() {
        let articles = super::demo_articles(0).expect("demo articles");
        for a in &articles {
            for r in &a.related {
                assert!(articles.iter().any(|o| &o.slug == r), "{} relates to missing {r}", a.slug);
            }
        }
        assert!(doorman_core::banners::BannerBoard::parse_json(super::DEMO_BANNERS).is_ok());
    }

    #[test]
    fn the_seed_file_yields_its_last_line() {
        assert_eq!(super::last_json_line("text\n{\"a\":1}\n").as_deref(), Some("{\"a\":1}"));
        assert_eq!(super::last_json_line("{\"a\":1}"), None);
    }
}
