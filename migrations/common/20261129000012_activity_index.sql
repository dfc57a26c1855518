-- The security activity page (issue 11 §5): an account's sign-ins and security changes,
-- newest first, paged by id. A partial index over exactly those events keeps each page one
-- index range read, however many other events (failed logins, mail sent) an account has.
-- The event list is crates/core/src/activity.rs ACTIVITY_EVENTS and src/store/activity.rs.
CREATE INDEX audit_events_activity_idx ON audit_events (account_id, id)
    WHERE event IN ('login_succeeded', 'new_device_sign_in', 'password_reset_completed', 'password_changed',
                    'email_changed', 'factor_added', 'factor_removed', 'recovery_codes_regenerated',
                    'recovery_code_used', 'answer_reset_completed', 'sessions_revoked');
