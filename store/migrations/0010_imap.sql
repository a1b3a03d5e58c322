-- IMAP server state (package imapout).
--
-- recent_uid: the highest UID that some session has already been told about
-- as \Recent (RFC 3501), so each message is recent in exactly one session.
-- keywords: every keyword ever set on a message of the mailbox, sorted and
-- space-separated, for the FLAGS and PERMANENTFLAGS responses.
ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN keywords TEXT NOT NULL DEFAULT '';

-- One row per expunged (or moved away) message, with the mailbox modseq of
-- the change, so every session can tell its client which of the messages
-- it knows are gone (untagged EXPUNGE) without keeping the mailbox in memory.
CREATE TABLE mailbox_expunged (
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid INTEGER NOT NULL,
	modseq INTEGER NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX mailbox_expunged_modseq ON mailbox_expunged(mailbox_id, modseq);

-- Flag changes since a session's last look.
CREATE INDEX mailbox_messages_modseq ON mailbox_messages(mailbox_id, modseq);

-- Filed messages whose encrypted metadata cache is not built yet (filed by
-- a path that had no private key at hand).
CREATE INDEX messages_unindexed ON messages(user_id, id) WHERE filed = 1 AND meta IS NULL;
