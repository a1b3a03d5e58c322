-- PostgreSQL form of ../0130_accounts.sql (the comments are there).
ALTER TABLE users ADD COLUMN key_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN recovery_key BYTEA;
ALTER TABLE users ADD COLUMN retired_keys BYTEA NOT NULL DEFAULT ''::bytea;

ALTER TABLE allow_list ADD COLUMN added BIGINT NOT NULL DEFAULT 0;
