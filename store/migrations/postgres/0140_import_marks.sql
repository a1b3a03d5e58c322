-- PostgreSQL form of ../0140_import_marks.sql (the comments are there).
CREATE TABLE import_marks (
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	mark BYTEA NOT NULL,
	PRIMARY KEY (user_id, mark)
);
