-- PostgreSQL form of ../0230_list_subscriptions.sql (the comments are there).
CREATE TABLE minted_subscriptions (
	id TEXT PRIMARY KEY,
	user_id BIGINT NOT NULL,
	list_address TEXT NOT NULL,
	list_hash TEXT NOT NULL,
	created BIGINT NOT NULL,
	revoked BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX minted_subscriptions_user ON minted_subscriptions(user_id, list_hash);
CREATE TABLE held_subscriptions (
	user_id BIGINT NOT NULL,
	peer_hash TEXT NOT NULL,
	peer_domain TEXT NOT NULL,
	id TEXT NOT NULL,
	created BIGINT NOT NULL,
	PRIMARY KEY (user_id, peer_hash)
);
