-- Messages `bridge user import` has stored, by a mark keyed with the
-- user's data key (HMAC of the source's mailbox, the message's place in
-- its source and its bytes), so an interrupted import run again skips
-- what it already stored. The admin learns nothing of the content from it.
CREATE TABLE import_marks (
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	mark BLOB NOT NULL,
	PRIMARY KEY (user_id, mark)
) WITHOUT ROWID;
