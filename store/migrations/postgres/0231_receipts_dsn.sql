-- PostgreSQL form of ../0231_receipts_dsn.sql (the comments are there).
ALTER TABLE deliveries ADD COLUMN receipt_check TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN dsn_envid TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN dsn_ret TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_recipients ADD COLUMN dsn_notify TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_recipients ADD COLUMN dsn_orcpt TEXT NOT NULL DEFAULT '';
