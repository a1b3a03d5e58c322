-- PostgreSQL form of ../0090_aliases.sql (the comments are there).
CREATE TABLE aliases (
	address TEXT PRIMARY KEY,
	address_hash TEXT NOT NULL UNIQUE,
	wkd_name TEXT NOT NULL UNIQUE,
	targets TEXT NOT NULL, -- normalised addresses, one a line
	created BIGINT NOT NULL
);
