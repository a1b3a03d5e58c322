-- PostgreSQL form of ../0010_imap.sql (the comments are there).
ALTER TABLE mailboxes ADD COLUMN recent_uid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN keywords TEXT NOT NULL DEFAULT '';

CREATE TABLE mailbox_expunged (
	mailbox_id BIGINT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid BIGINT NOT NULL,
	modseq BIGINT NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mailbox_expunged_modseq ON mailbox_expunged(mailbox_id, modseq);

CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);

CREATE INDEX messages_unindexed ON messages(user_id, id) WHERE filed = 1 AND meta IS NULL;
