//! Retention (issue 13): what stopped mattering is pruned in batches, what is fresh stays,
//! the audit chain still verifies after old events are gone (S10.3), and resolved support
//! cases lose their personal data (S11).

use crate::helpers::{Backend, PASSWORD, TestApp, test_config};
use crate::on_both_backends;
use crate::recovery_requests::{ask, confirm, only_mail, post_from};
use doorman_core::audit_chain::ChainReport;
use doorman_core::clock::Clock;
use doorman_core::retention::Prunable;
use doorman_core::support::CaseUpdate;
use serde_json::json;
use std::process::Command;

on_both_backends!(
    finished_expired_and_stale_rows_are_pruned_and_fresh_ones_kept,
    s10_3_the_audit_chain_verifies_after_old_events_are_pruned,
    s10_3_a_verify_while_a_prune_deletes_events_finds_no_false_break,
    s11_a_resolved_cases_personal_data_is_erased_after_its_retention,
    doorman_prune_runs_the_prune_from_the_command_line,
);

const DAY: i64 = 24 * 3600;

/// One number read with SQL (a count, a sum) from the test's database.
async fn scalar(url: &str, sql: &str) -> i64 {
    use sqlx::Row;
    let store = doorman::store::SqlStore::connect(url).await.unwrap();
    let row = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(store.pool()).await.unwrap();
    let value: i64 = row.try_get(0).unwrap();
    store.pool().close().await;
    value
}

async fn execute(url: &str, sql: &str) -> u64 {
    let store = doorman::store::SqlStore::connect(url).await.unwrap();
    let done = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(store.pool()).await.unwrap();
    store.pool().close().await;
    done.rows_affected()
}

/// `count` finished jobs created at `at`, in one statement (more than two prune batches).
async fn insert_finished_jobs(url: &str, count: i64, at: i64) {
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) \
         INSERT INTO jobs (id, kind, payload, status, attempts, next_attempt_at, created_at) \
         SELECT 'bulk-' || i, 'password_reset_requested', '{{}}', 'done', 1, {at}, {at} FROM n"
    );
    assert_eq!(execute(url, &sql).await, count as u64);
}

async fn finished_expired_and_stale_rows_are_pruned_and_fresh_ones_kept(backend: Backend) {
    let config = test_config(backend).await;
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    let old = app.clock.unix();

    // Old: a reset (job, email, token), a failed then a good sign-in (counters, a session),
    // a recovery request whose code was never confirmed, and many more finished jobs.
    app.reset_mail("maria").await;
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.10", "maria", "not the password").await.status, 401);
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.10", "maria", PASSWORD).await.status, 200);
    assert_eq!(ask(&app, "192.0.2.11", "maria", "someone@example.org").await.status, 202);
    only_mail(app.deliver().await, "recovery_request_code");
    insert_finished_jobs(&url, 1200, old).await;

    // Eight days later (finished rows are kept 7), the same again, fresh.
    app.clock.advance(8 * DAY);
    let fresh = app.clock.unix();
    app.reset_mail("maria").await;
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.20", "maria", "not the password").await.status, 401);
    assert_eq!(app.login_as(&TestApp::new_client(), "192.0.2.20", "maria", PASSWORD).await.status, 200);

    let count = |table: &str, condition: String| {
        let url = url.clone();
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {condition}");
        async move { scalar(&url, &sql).await }
    };
    let old_messages = count("outbox", format!("created_at < {fresh}")).await;
    let fresh_messages = count("outbox", format!("created_at >= {fresh}")).await;
    // Counters are found by the hour they were last counted in (a cleared one holds no time of
    // its own): the old sign-ins' are gone after the prune, the fresh ones' all stay, and so
    // does a counter an older replica counted in (no hour), whose last attempt is recent.
    let fresh_hour = fresh / 3600;
    execute(
        &url,
        &format!("INSERT INTO rate_counters (key, failures, window_start, last_failure) VALUES ('ip:192.0.2.99', 3, {fresh}, {fresh})"),
    )
    .await;
    let old_counters = count("rate_counters", format!("touched_hour < {fresh_hour} AND last_failure < {fresh}")).await;
    let fresh_counters = count("rate_counters", format!("touched_hour >= {fresh_hour} OR last_failure >= {fresh}")).await;
    let old_tokens = count("recovery_tokens", format!("created_at < {fresh}")).await;
    assert_eq!(count("jobs", format!("created_at < {fresh}")).await, 1201, "the reset's job and the bulk");
    assert_eq!(count("jobs", format!("created_at >= {fresh}")).await, 1);
    assert_eq!(count("sessions", "1 = 1".into()).await, 2);
    assert_eq!(count("recovery_requests", "1 = 1".into()).await, 1);
    assert!(old_messages >= 2 && fresh_messages >= 1 && old_counters >= 1 && fresh_counters >= 1 && old_tokens >= 1);

    let report = app.services.retention.prune_once().await.unwrap();
    assert_eq!(report.removed_of(Prunable::FinishedJobs), 1201, "{report:?}");
    assert_eq!(report.removed_of(Prunable::FinishedMessages), old_messages as u64, "{report:?}");
    assert_eq!(report.removed_of(Prunable::IdleSessions) + report.removed_of(Prunable::OldSessions), 1, "{report:?}");
    assert_eq!(report.removed_of(Prunable::RateCounters), old_counters as u64, "{report:?}");
    assert_eq!(report.removed_of(Prunable::RecoveryTokens), old_tokens as u64, "{report:?}");
    assert_eq!(report.removed_of(Prunable::UnconfirmedRecoveryRequests), 1, "{report:?}");
    assert_eq!(report.audit_events, 0, "audit events are kept a year");

    for table in ["jobs", "outbox", "recovery_tokens"] {
        assert_eq!(count(table, format!("created_at < {fresh}")).await, 0, "{table}: old rows gone");
    }
    assert_eq!(count("jobs", format!("created_at >= {fresh}")).await, 1, "the fresh job stays");
    assert_eq!(count("outbox", format!("created_at >= {fresh}")).await, fresh_messages, "fresh messages stay");
    assert!(count("recovery_tokens", format!("created_at >= {fresh}")).await >= 1, "the fresh reset link stays");
    assert_eq!(count("rate_counters", format!("touched_hour < {fresh_hour} AND last_failure < {fresh}")).await, 0);
    assert_eq!(count("rate_counters", format!("touched_hour >= {fresh_hour} OR last_failure >= {fresh}")).await, fresh_counters);
    assert_eq!(count("rate_counters", "key = 'ip:192.0.2.99'".into()).await, 1, "an older replica's recent counter stays");
    assert_eq!(count("sessions", format!("created_at >= {fresh}")).await, 1, "the fresh session stays");
    assert_eq!(count("sessions", "1 = 1".into()).await, 1);
    assert_eq!(count("recovery_requests", "1 = 1".into()).await, 0);

    // Nothing left to prune: a second pass removes nothing, and the fresh sign-in still works.
    let again = app.services.retention.prune_once().await.unwrap();
    assert!(again.removed.iter().all(|(_, n)| *n == 0), "{again:?}");
    assert_eq!(app.login("maria", PASSWORD).await.status, 200);

    // A day and a half after a fresh session's idle timeout, it goes too (grace: one day).
    app.clock.advance(DAY + DAY / 2);
    let later = app.services.retention.prune_once().await.unwrap();
    assert!(later.removed_of(Prunable::IdleSessions) >= 1, "{later:?}");
    assert_eq!(count("sessions", "1 = 1".into()).await, 0);
}

async fn s10_3_the_audit_chain_verifies_after_old_events_are_pruned(backend: Backend) {
    let config = test_config(backend).await;
    let (url, key_file) = (config.database_url.clone(), config.secret_key_file.clone());
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    for _ in 0..3 {
        app.login("maria", "not the password").await;
    }
    app.clock.advance(61);
    let old_sealed = app.services.audit.seal_audit_chain().await.unwrap();
    assert_eq!(old_sealed, 4, "account created and three failures");

    // A year and a day later: new events, sealed.
    app.clock.advance(366 * DAY);
    app.login("maria", PASSWORD).await;
    app.login("maria", "not the password").await;
    app.clock.advance(61);
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 2);

    // Anchors recorded before the prune (`doorman audit verify --anchor`): the event its
    // checkpoint keeps, and one before it.
    let anchor_of = async |id: i64| doorman_core::audit_chain::ChainAnchor {
        event_id: id,
        seal: app.services.store.audit_event(id).await.unwrap().unwrap().chain_hash.unwrap(),
    };
    let (kept, gone) = (anchor_of(4).await, anchor_of(2).await);

    let report = app.services.retention.prune_once().await.unwrap();
    assert_eq!(report.audit_events, 4, "{report:?}");
    use doorman_core::audit_chain::AnchorCheck;
    assert_eq!(app.services.audit.check_anchor(&kept).await.unwrap(), AnchorCheck::Holds, "its checkpoint keeps its seal");
    assert_eq!(app.services.audit.check_anchor(&gone).await.unwrap(), AnchorCheck::Pruned);
    let forged = doorman_core::audit_chain::ChainAnchor { seal: gone.seal.clone(), ..kept.clone() };
    assert_eq!(app.services.audit.check_anchor(&forged).await.unwrap(), AnchorCheck::Differs);
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM audit_events").await, 2);
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM audit_checkpoints").await, 1);
    assert_eq!(
        app.services.audit.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { sealed: 2, unsealed: 0, pruned_through: Some(4) }
    );
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_doorman"))
            .args(["audit", "verify"])
            .env("DOORMAN_DATABASE_URL", &url)
            .env("DOORMAN_SECRET_KEY_FILE", &key_file)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let ok = verify();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success() && stdout.contains("audit chain intact: 2 events sealed") && stdout.contains("up to 4 were pruned"),
        "{ok:?}"
    );

    // Sealing goes on from the checkpoint even once every sealed event is pruned.
    app.clock.advance(366 * DAY);
    assert_eq!(app.services.retention.prune_once().await.unwrap().audit_events, 2);
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM audit_events").await, 0);
    app.login("maria", "not the password").await;
    app.clock.advance(61);
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 1);
    assert_eq!(
        app.services.audit.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { sealed: 1, unsealed: 0, pruned_through: Some(6) }
    );
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM audit_checkpoints").await, 1, "older checkpoints are dropped");
    assert!(verify().status.success());

    // Without the key no checkpoint can be made or moved: a forged one breaks the chain, and
    // so does removing it (the walk then starts from the beginning).
    let first = scalar(&url, "SELECT MIN(id) FROM audit_events").await;
    execute(&url, "UPDATE audit_checkpoints SET event_at = event_at + 1").await;
    assert_eq!(app.services.audit.verify_audit_chain().await.unwrap(), ChainReport::Broken { at_id: first, sealed_before: 0 });
    execute(&url, "DELETE FROM audit_checkpoints").await;
    assert_eq!(app.services.audit.verify_audit_chain().await.unwrap(), ChainReport::Broken { at_id: first, sealed_before: 0 });
    let broken = verify();
    assert!(!broken.status.success() && String::from_utf8_lossy(&broken.stderr).contains("BROKEN"), "{broken:?}");
}

/// A confirmed recovery request: its case id (the request's contact address, details and hints,
/// and a note from the requester).
async fn open_case(app: &TestApp, contact: &str) -> String {
    assert_eq!(ask(app, "192.0.2.30", "maria", contact).await.status, 202);
    let code = only_mail(app.deliver().await, "recovery_request_code").code();
    let confirmed = confirm(app, "192.0.2.30", contact, &code).await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.text);
    let case = confirmed.json()["case"].as_str().unwrap().to_owned();
    let token = only_mail(app.deliver().await, "recovery_request_case").token("recovery-request/status");
    let note = json!({ "token": token, "message": "My old number ended in 42." });
    assert_eq!(post_from(app, "192.0.2.30", "/api/v1/recovery-requests/notes", note).await.status, 201);
    case
}

/// `doorman audit verify` while retention deletes old events (500 a statement, with pauses):
/// the walk meets events deleted under it, which looks like a removed event; it walks again
/// from the prune's checkpoint and reports the chain intact, every time.
async fn s10_3_a_verify_while_a_prune_deletes_events_finds_no_false_break(backend: Backend) {
    let config = test_config(backend).await;
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    let old = app.clock.unix() - 400 * DAY;
    let store = doorman::store::SqlStore::connect(&url).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) \
         INSERT INTO audit_events (at, event, account_id, ip, user_agent, request_id, detail) \
         SELECT $1, 'login_failed', NULL, '192.0.2.1', 'test', 'r' || i, 'wrong_password' FROM n",
    )
    .bind(old)
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(app.services.audit.seal_audit_chain().await.unwrap(), 6000);

    let pruning = std::sync::atomic::AtomicBool::new(true);
    let prune = async {
        let report = app.services.retention.prune_once().await.unwrap();
        pruning.store(false, std::sync::atomic::Ordering::SeqCst);
        report
    };
    let verify = async {
        let mut reports = Vec::new();
        while pruning.load(std::sync::atomic::Ordering::SeqCst) {
            reports.push(app.services.audit.verify_audit_chain().await.unwrap());
        }
        reports
    };
    let (pruned, reports) = tokio::join!(prune, verify);
    assert_eq!(pruned.audit_events, 6000, "{pruned:?}");
    assert!(reports.len() >= 2, "verified while the prune ran: {reports:?}");
    let broken: Vec<_> = reports.iter().filter(|r| matches!(r, ChainReport::Broken { .. })).collect();
    assert!(broken.is_empty(), "{} of {} walks reported a break: {broken:?}", broken.len(), reports.len());
    assert_eq!(
        app.services.audit.verify_audit_chain().await.unwrap(),
        ChainReport::Intact { sealed: 0, unsealed: 0, pruned_through: Some(6000) }
    );
}

async fn s11_a_resolved_cases_personal_data_is_erased_after_its_retention(backend: Backend) {
    let config = test_config(backend).await;
    let url = config.database_url.clone();
    let app = TestApp::spawn_with(config).await;
    app.create_account("maria", "maria@example.com").await;
    let agent = app.create_account("agent", "agent@example.com").await.id;
    let store = &app.services.store;
    let case_sql = |case: &str, what: &str| format!("SELECT COUNT(*) FROM {what} WHERE case_id = '{case}'");
    let personal = |case: &str| {
        let (url, case) = (url.clone(), case.to_owned());
        async move {
            scalar(
                &url,
                &format!("SELECT COUNT(*) FROM support_cases WHERE id = '{case}' AND (contact_email IS NOT NULL OR details <> '')"),
            )
            .await
                + scalar(&url, &format!("SELECT COUNT(*) FROM support_case_notes WHERE case_id = '{case}' AND body <> ''")).await
                + scalar(
                    &url,
                    &format!("SELECT COUNT(*) FROM recovery_requests WHERE case_id = '{case}' AND (contact_email <> '' OR details <> '')"),
                )
                .await
                + scalar(&url, &format!("SELECT COUNT(*) FROM support_case_checks WHERE case_id = '{case}' AND note <> ''")).await
        }
    };

    let resolved_early = open_case(&app, "first@example.org").await;
    let still_open = open_case(&app, "second@example.org").await;
    let note = store.add_agent_note(&resolved_early, &agent, "called her back on +63 917 555 0142", app.clock.unix()).await;
    assert_eq!(note.unwrap(), CaseUpdate::Done);
    let check = doorman_core::support_actions::NewCheck {
        id: "check-1".into(),
        case_id: resolved_early.clone(),
        kind: doorman_core::support_actions::CheckKind::PayoutMethod,
        note: "BDO account ending 0142, as on file".into(),
        agent: agent.clone(),
        now: app.clock.unix(),
    };
    assert_eq!(store.add_check(&check).await.unwrap(), CaseUpdate::Done);
    assert_eq!(store.resolve_case(&resolved_early, &agent, None, app.clock.unix()).await.unwrap(), CaseUpdate::Done);
    app.clock.advance(100 * DAY);
    let resolved_later = open_case(&app, "third@example.org").await;
    assert_eq!(store.resolve_case(&resolved_later, &agent, None, app.clock.unix()).await.unwrap(), CaseUpdate::Done);

    assert_eq!(personal(&resolved_early).await, 6, "the case, two notes, the request and two checklist notes hold personal data");

    // 181 days after the first resolution (cases keep personal data 180).
    app.clock.advance(81 * DAY);
    let report = app.services.retention.prune_once().await.unwrap();
    assert_eq!(report.cases_erased, 1, "{report:?}");

    let detail = store.case_detail(&resolved_early).await.unwrap().expect("the case row stays");
    assert_eq!((detail.summary.status.as_str(), detail.details.as_str()), ("resolved", ""));
    assert!(detail.notes.iter().all(|n| n.body.is_empty()), "{detail:?}");
    assert_eq!(personal(&resolved_early).await, 0, "contact address, details, hints, notes and checklist notes blanked");
    assert_eq!(scalar(&url, &case_sql(&resolved_early, "support_case_notes")).await, 2, "the notes' rows stay, empty");
    assert_eq!(personal(&still_open).await, 4, "an open case keeps everything, however old");
    assert_eq!(personal(&resolved_later).await, 4, "resolved 81 days ago: kept");
    assert!(!store.case_detail(&still_open).await.unwrap().unwrap().details.is_empty());

    assert_eq!(
        store.erase_resolved_cases(app.clock.unix(), app.clock.unix(), 500).await.unwrap(),
        1,
        "only the later one is left to erase"
    );
    assert_eq!(app.services.retention.prune_once().await.unwrap().cases_erased, 0);
}

/// `doorman prune` prunes with the configured retention and says what it removed.
async fn doorman_prune_runs_the_prune_from_the_command_line(backend: Backend) {
    let config = test_config(backend).await;
    let (url, key_file) = (config.database_url.clone(), config.secret_key_file.clone());
    let app = TestApp::spawn_with(config).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    insert_finished_jobs(&url, 3, now - 3 * DAY).await;
    // The app stays up meanwhile, as `doorman prune` may run beside `serve`.
    assert_eq!(app.get(&TestApp::new_client(), "/readyz").await.status, 200);
    let prune = |days: &str| {
        Command::new(env!("CARGO_BIN_EXE_doorman"))
            .arg("prune")
            .env("DOORMAN_DATABASE_URL", &url)
            .env("DOORMAN_SECRET_KEY_FILE", &key_file)
            .env("DOORMAN_RETAIN_FINISHED_DAYS", days)
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    };
    let kept = prune("7");
    assert!(kept.status.success(), "{kept:?}");
    assert!(String::from_utf8_lossy(&kept.stdout).contains("finished jobs"), "{kept:?}");
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM jobs").await, 3, "3 days old, kept 7");
    let pruned = prune("2");
    let stdout = String::from_utf8_lossy(&pruned.stdout);
    assert!(pruned.status.success() && stdout.contains("finished jobs and messages 2 days"), "{pruned:?}");
    assert!(stdout.lines().any(|l| l.contains("finished jobs") && l.contains("3 removed")), "{stdout}");
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM jobs").await, 0);

    let refused = prune("0");
    assert!(!refused.status.success(), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("retain_finished_days must be between 1 and 36500"), "{refused:?}");
}
