-- PostgreSQL form of ../0040_ticketed_domains.sql (the comments are there).
CREATE TABLE ticketed_domains (
	domain TEXT PRIMARY KEY,
	endpoint TEXT NOT NULL,
	first_delivered BIGINT NOT NULL,
	last_delivered BIGINT NOT NULL
);
