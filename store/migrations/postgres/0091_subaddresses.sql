-- PostgreSQL form of ../0091_subaddresses.sql (the comments are there).
CREATE TABLE subaddresses (
	address_hash TEXT PRIMARY KEY,
	address TEXT NOT NULL,
	seen BIGINT NOT NULL
);
CREATE INDEX subaddresses_seen ON subaddresses(seen);
