-- Subscriptions (docs/protocol.md §3.2.1).
--
-- minted_subscriptions: the recipient's side. A local user subscribed to a
-- list (by mailing its -subscribe address); the id this server minted for
-- it and handed to the list's server. A request from the list's address
-- that names a live id earns a no-work ticket (signed, §3.7). Revoked rows
-- are kept so a revoked id is never minted or taken as an offer again.
CREATE TABLE minted_subscriptions (
	id TEXT PRIMARY KEY,
	user_id INTEGER NOT NULL,
	list_address TEXT NOT NULL,
	list_hash TEXT NOT NULL,
	created INTEGER NOT NULL,
	revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX minted_subscriptions_user ON minted_subscriptions(user_id, list_hash);

-- held_subscriptions: the list's side. An id a subscriber's server offered
-- in a signed request to a local user (the list), kept to be sent back in
-- that user's ticket requests to the subscriber.
CREATE TABLE held_subscriptions (
	user_id INTEGER NOT NULL,
	peer_hash TEXT NOT NULL,
	peer_domain TEXT NOT NULL,
	id TEXT NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (user_id, peer_hash)
);
