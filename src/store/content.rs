//! Help articles, votes, the banner document and account roles.

use super::{SqlStore, backend_error};
use async_trait::async_trait;
use doorman_core::account::AccountId;
use doorman_core::content::{ContentStore, ContentVersions};
use doorman_core::help::{Article, ArticleFields, Ballot, MyVote, NoChoice, NoReason, Slug, Tally, WEEK_SECONDS, WeeklyVotes};
use doorman_core::roles::{Role, RoleStore};
use doorman_core::store::StoreError;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("stored help article has an invalid {what}").into())
}

fn article_from_row(row: &AnyRow) -> Result<Article, StoreError> {
    let get = |name: &str| row.try_get::<String, _>(name).map_err(backend_error);
    let fields = ArticleFields {
        slug: get("slug")?,
        title: get("title")?,
        category: get("category")?,
        body: get("body")?,
        related: get("related")?,
    };
    let updated_at: i64 = row.try_get("updated_at").map_err(backend_error)?;
    Article::parse(&fields, updated_at).map_err(|e| corrupt(&e.to_string()))
}

async fn bump_version(conn: &mut AnyConnection, name: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE content_versions SET version = version + 1, updated_at = $1 WHERE name = $2")
        .bind(now)
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(backend_error)?;
    Ok(())
}

#[async_trait]
impl ContentStore for SqlStore {
    async fn content_versions(&self) -> Result<ContentVersions, StoreError> {
        let rows = sqlx::query("SELECT name, version FROM content_versions").fetch_all(&self.pool).await.map_err(backend_error)?;
        let mut versions = ContentVersions::default();
        for row in rows {
            let name: String = row.try_get("name").map_err(backend_error)?;
            let version: i64 = row.try_get("version").map_err(backend_error)?;
            match name.as_str() {
                "help" => versions.help = version,
                "banners" => versions.banners = version,
                _ => {}
            }
        }
        Ok(versions)
    }

    async fn help_articles(&self) -> Result<Vec<Article>, StoreError> {
        let rows = sqlx::query("SELECT slug, title, category, body, related, updated_at FROM help_articles ORDER BY slug")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        rows.iter().map(article_from_row).collect()
    }

    async fn save_help_article(&self, a: &Article, create_only: bool) -> Result<bool, StoreError> {
        macro_rules! insert_article {
            ($on_conflict:literal) => {
                concat!(
                    "INSERT INTO help_articles (slug, title, category, body, related, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (slug) ",
                    $on_conflict
                )
            };
        }
        let sql = if create_only {
            insert_article!("DO NOTHING")
        } else {
            insert_article!(
                "DO UPDATE SET title = excluded.title, category = excluded.category, body = excluded.body, \
                 related = excluded.related, updated_at = excluded.updated_at"
            )
        };
        let related = a.related.iter().map(Slug::as_str).collect::<Vec<_>>().join(",");
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql)
            .bind(a.slug.as_str())
            .bind(&a.title)
            .bind(&a.category)
            .bind(&a.body)
            .bind(related)
            .bind(a.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        bump_version(&mut tx, "help", a.updated_at).await?;
        tx.commit().await.map_err(backend_error)?;
        Ok(true)
    }

    async fn record_vote(&self, slug: &Slug, voter: &str, ballot: &Ballot, now: i64) -> Result<Tally, StoreError> {
        // One atomic upsert: concurrent votes of one voter leave exactly one row.
        sqlx::query(
            "INSERT INTO help_votes (article_slug, voter, helpful, choice, comment, voted_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (article_slug, voter) DO UPDATE SET helpful = excluded.helpful, choice = excluded.choice, \
             comment = excluded.comment, voted_at = excluded.voted_at",
        )
        .bind(slug.as_str())
        .bind(voter)
        .bind(i64::from(ballot.helpful()))
        .bind(ballot.choice().map(|c| c.as_str().to_owned()))
        .bind(ballot.comment())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        self.vote_tally(slug).await
    }

    async fn vote_tally(&self, slug: &Slug) -> Result<Tally, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(helpful), 0) AS BIGINT) AS helpful, CAST(COUNT(*) AS BIGINT) AS total \
             FROM help_votes WHERE article_slug = $1",
        )
        .bind(slug.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(Tally { helpful: row.try_get("helpful").map_err(backend_error)?, total: row.try_get("total").map_err(backend_error)? })
    }

    async fn vote_of(&self, slug: &Slug, voter: &str) -> Result<Option<MyVote>, StoreError> {
        let row = sqlx::query(
            "SELECT helpful, CAST(CASE WHEN choice IS NOT NULL OR comment <> '' THEN 1 ELSE 0 END AS BIGINT) AS explained \
             FROM help_votes WHERE article_slug = $1 AND voter = $2",
        )
        .bind(slug.as_str())
        .bind(voter)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_error)?;
        let Some(row) = row else { return Ok(None) };
        let flag = |name: &str| row.try_get::<i64, _>(name).map(|v| v == 1).map_err(backend_error);
        Ok(Some(MyVote { helpful: flag("helpful")?, explained: flag("explained")? }))
    }

    async fn weekly_votes(&self, slug: &Slug) -> Result<Vec<WeeklyVotes>, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(voted_at / $2 AS BIGINT) AS week, CAST(COALESCE(SUM(helpful), 0) AS BIGINT) AS helpful, \
             CAST(COUNT(*) AS BIGINT) AS total FROM help_votes WHERE article_slug = $1 GROUP BY 1 ORDER BY 1",
        )
        .bind(slug.as_str())
        .bind(WEEK_SECONDS)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                Ok(WeeklyVotes {
                    week_start: row.try_get::<i64, _>("week").map_err(backend_error)? * WEEK_SECONDS,
                    helpful: row.try_get("helpful").map_err(backend_error)?,
                    total: row.try_get("total").map_err(backend_error)?,
                })
            })
            .collect()
    }

    async fn no_reasons(&self, slug: &Slug, limit: i64) -> Result<Vec<NoReason>, StoreError> {
        let rows = sqlx::query(
            "SELECT choice, comment, voted_at FROM help_votes WHERE article_slug = $1 AND helpful = 0 \
             AND (choice IS NOT NULL OR comment <> '') ORDER BY voted_at DESC LIMIT $2",
        )
        .bind(slug.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        rows.iter()
            .map(|row| {
                let choice: Option<String> = row.try_get("choice").map_err(backend_error)?;
                Ok(NoReason {
                    choice: choice.as_deref().and_then(NoChoice::parse),
                    comment: row.try_get("comment").map_err(backend_error)?,
                    at: row.try_get("voted_at").map_err(backend_error)?,
                })
            })
            .collect()
    }

    async fn banner_document(&self) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT document FROM banner_document WHERE id = 1").fetch_optional(&self.pool).await.map_err(backend_error)?;
        row.map(|r| r.try_get::<String, _>("document").map_err(backend_error)).transpose()
    }

    async fn save_banner_document(&self, json: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO banner_document (id, document, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        bump_version(&mut tx, "banners", now).await?;
        tx.commit().await.map_err(backend_error)
    }
}

#[async_trait]
impl RoleStore for SqlStore {
    async fn grant_role(&self, account: &AccountId, role: Role, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO account_roles (account_id, role, granted_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(account.as_str())
            .bind(role.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_role(&self, account: &AccountId, role: Role) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM account_roles WHERE account_id = $1 AND role = $2")
            .bind(account.as_str())
            .bind(role.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn roles_of(&self, account: &AccountId) -> Result<Vec<Role>, StoreError> {
        let rows = sqlx::query("SELECT role FROM account_roles WHERE account_id = $1 ORDER BY role")
            .bind(account.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(rows.iter().filter_map(|r| r.try_get::<String, _>("role").ok()).filter_map(|r| Role::parse(&r)).collect())
    }
}
