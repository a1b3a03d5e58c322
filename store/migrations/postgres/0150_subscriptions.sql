-- PostgreSQL form of ../0150_subscriptions.sql (the comments are there).
CREATE TABLE subscriptions (
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	PRIMARY KEY (user_id, name)
);
INSERT INTO subscriptions (user_id, name) SELECT user_id, name FROM mailboxes WHERE subscribed = 1;
ALTER TABLE mailboxes DROP COLUMN subscribed;
