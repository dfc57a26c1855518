//! Statements written once and run either alone or together with others as one write.
//!
//! On PostgreSQL every statement is a round trip, and every round trip costs the server a
//! wake-up, a parse of the message and a reply: a login's writes as a transaction of eight
//! statements cost ten round trips (BEGIN and COMMIT included), on the cores the hashing needs
//! (issue 12). [`SqlStore::run_together`] sends them as one statement of data-modifying `WITH`
//! parts instead: one round trip, one commit, and atomic as the transaction was. SQLite runs
//! them as one script in a transaction: sqlx runs each call on the connection's own thread,
//! and each call is two thread switches, which took CPU from the hashing threads (issue 12: a
//! login's writes were ten calls, now three).
//!
//! Statements run together must not depend on each other's effects: PostgreSQL runs the
//! parts of one statement on one snapshot, and none sees another's rows. They may not touch
//! the same row twice either.

use super::{Backend, SqlStore, backend_error};
use doorman_core::store::StoreError;
use sqlx::AnyConnection;
use std::borrow::Cow;

/// A value bound to a statement's placeholder.
#[derive(Debug, Clone)]
enum Arg {
    Int(i64),
    Text(Option<String>),
}

/// One statement with `$1..$n` placeholders, and the values for them in order.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

impl Statement {
    pub(crate) fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    pub(crate) fn int(mut self, value: i64) -> Self {
        self.args.push(Arg::Int(value));
        self
    }

    pub(crate) fn text(mut self, value: impl Into<String>) -> Self {
        self.args.push(Arg::Text(Some(value.into())));
        self
    }

    pub(crate) fn maybe_text(mut self, value: Option<impl Into<String>>) -> Self {
        self.args.push(Arg::Text(value.map(Into::into)));
        self
    }

    /// The text, for tests of what other modules write.
    #[cfg(test)]
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// The text values in order (an integer as `None`), for tests of what other modules write.
    #[cfg(test)]
    pub(crate) fn texts(&self) -> Vec<Option<&str>> {
        self.args.iter().map(|arg| if let Arg::Text(Some(v)) = arg { Some(v.as_str()) } else { None }).collect()
    }

    pub(crate) async fn execute(self, conn: &mut AnyConnection) -> Result<u64, StoreError> {
        // Only numbered placeholders are ever written into the text; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql.into_owned()));
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        Ok(query.execute(conn).await.map_err(backend_error)?.rows_affected())
    }
}

/// `rows` rows of `width` numbered placeholders each, for a `VALUES` list:
/// `($1, $2), ($3, $4)` for two rows of two.
pub(crate) fn value_rows(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| {
            let values: Vec<String> = (1..=width).map(|column| format!("${}", row * width + column)).collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statements as one PostgreSQL statement: each a `WITH` part, its placeholders shifted
/// past those of the parts before it.
fn together(statements: Vec<Statement>) -> Statement {
    let (parts, args) = shifted(statements);
    let parts: Vec<String> = parts.iter().enumerate().map(|(i, sql)| format!("w{i} AS ({sql})")).collect();
    Statement { sql: format!("WITH {} SELECT 1", parts.join(", ")).into(), args }
}

/// The statements as one SQLite script, run in one call to SQLite's thread: its `$n` name the
/// script's values whichever statement they are in.
fn script(statements: Vec<Statement>) -> Statement {
    let (parts, args) = shifted(statements);
    Statement { sql: parts.join("; ").into(), args }
}

/// Each statement's text with its placeholders shifted past those of the ones before it, and
/// all their values in order.
fn shifted(statements: Vec<Statement>) -> (Vec<String>, Vec<Arg>) {
    let mut parts = Vec::with_capacity(statements.len());
    let mut args = Vec::new();
    for statement in statements {
        parts.push(shift_placeholders(&statement.sql, args.len()));
        args.extend(statement.args);
    }
    (parts, args)
}

/// `sql` with every placeholder `$n` written as `$(n + by)`. Our statements hold no `$` in
/// literals or identifiers, so every `$` followed by digits is a placeholder.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

impl SqlStore {
    /// Runs `statements` as one atomic write: one round trip on PostgreSQL, a transaction on
    /// SQLite. See the module's note on what may run together.
    pub(crate) async fn run_together(&self, mut statements: Vec<Statement>) -> Result<(), StoreError> {
        let one = match (statements.len(), self.backend) {
            (0, _) => return Ok(()),
            // One statement is atomic by itself.
            (1, _) => statements.pop(),
            (_, Backend::Postgres) => Some(together(statements)),
            // In a transaction, so that a statement that fails rolls back the ones before it.
            (_, Backend::Sqlite) => {
                let mut tx = self.begin_write().await?;
                script(statements).execute(&mut tx).await?;
                return tx.commit().await.map_err(backend_error);
            }
        };
        let mut conn = self.pool.acquire().await.map_err(backend_error)?;
        match one {
            Some(statement) => statement.execute(&mut conn).await.map(drop),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_shifted_past_the_parts_before() {
        assert_eq!(shift_placeholders("SELECT $1, $2 WHERE a IN ($10)", 3), "SELECT $4, $5 WHERE a IN ($13)");
        assert_eq!(shift_placeholders("no placeholders", 3), "no placeholders");
        assert_eq!(shift_placeholders("a $ alone, $", 2), "a $ alone, $");
    }

    #[test]
    fn value_rows_number_their_placeholders_row_by_row() {
        assert_eq!(value_rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(value_rows(1, 3), "($1, $2, $3)");
    }

    #[test]
    fn statements_together_are_one_with_their_values_in_order() {
        let first = Statement::new("INSERT INTO t (a, b) VALUES ($1, $2)").int(1).text("x");
        let second = Statement::new("DELETE FROM u WHERE id = $1").maybe_text(None::<String>);
        let one = together(vec![first, second]);
        assert_eq!(one.sql, "WITH w0 AS (INSERT INTO t (a, b) VALUES ($1, $2)), w1 AS (DELETE FROM u WHERE id = $3) SELECT 1");
        assert_eq!(one.args.len(), 3);
        assert!(matches!(one.args[2], Arg::Text(None)));
        let first = Statement::new("INSERT INTO t (a, b) VALUES ($1, $2)").int(1).text("x");
        let second = Statement::new("DELETE FROM u WHERE id = $1").text("y");
        let script = script(vec![first, second]);
        assert_eq!(script.sql, "INSERT INTO t (a, b) VALUES ($1, $2); DELETE FROM u WHERE id = $3");
        assert_eq!(script.args.len(), 3);
    }
}
