-- Subscriptions are names, not mailboxes (RFC 3501 §6.3.6, RFC 9051
-- §6.3.7): CREATE does not add one, DELETE does not remove one, and a
-- subscribed name that no longer exists is listed as \NonExistent until
-- the client unsubscribes it.
CREATE TABLE subscriptions (
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	PRIMARY KEY (user_id, name)
) WITHOUT ROWID;
INSERT INTO subscriptions (user_id, name) SELECT user_id, name FROM mailboxes WHERE subscribed = 1;
ALTER TABLE mailboxes DROP COLUMN subscribed;
