-- PostgreSQL form of ../0030_signed_requests.sql (the comments are there).
ALTER TABLE allow_list ADD COLUMN sender_address TEXT NOT NULL DEFAULT '';
ALTER TABLE correspondents ADD COLUMN peer_address TEXT NOT NULL DEFAULT '';

ALTER TABLE messages ADD COLUMN no_work BIGINT NOT NULL DEFAULT 0;

CREATE TABLE seen_requests (
	digest TEXT PRIMARY KEY,
	expires BIGINT NOT NULL
);
CREATE INDEX seen_requests_expires ON seen_requests(expires);
