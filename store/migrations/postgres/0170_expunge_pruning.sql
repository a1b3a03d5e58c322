-- PostgreSQL form of ../0170_expunge_pruning.sql (the comments are there).
ALTER TABLE mailbox_expunged ADD COLUMN at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN expunged_floor BIGINT NOT NULL DEFAULT 0;
