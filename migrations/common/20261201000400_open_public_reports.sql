-- One open public-form case per account (issue 11 §4, S3.6): a report about an account that
-- already has one is written into it as a note, found by this index whatever the table's size.
CREATE INDEX support_cases_open_account_idx ON support_cases (account_id, kind) WHERE status <> 'resolved';
