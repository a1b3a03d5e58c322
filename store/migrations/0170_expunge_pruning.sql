-- Expunge records are pruned (RFC 7162 §3.2.5.2, §4): each records when
-- it was made (at, unix seconds; 0 for records older than this column,
-- stamped at the first prune), and each mailbox the highest mod-sequence
-- of a forgotten record (expunged_floor). Every expunge after the floor
-- is still recorded; a resynchronization from before it is answered from
-- the UIDs that no longer exist.
ALTER TABLE mailbox_expunged ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN expunged_floor INTEGER NOT NULL DEFAULT 0;
