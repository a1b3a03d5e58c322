-- One accepted message waiting for delivery. The message is kept only
-- sealed: its catalog and parts are blobs (outbox_blobs), its session key
-- is wrapped (PKESK) to the bridge's outbox key. The row and its blobs go
-- when the last recipient is done.
CREATE TABLE outbox (
	id INTEGER PRIMARY KEY,
	user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
	sender TEXT NOT NULL,
	session_key BLOB NOT NULL,
	parts TEXT NOT NULL,
	size INTEGER NOT NULL,
	client_ip TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL
);

CREATE TABLE outbox_blobs (
	outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	blob TEXT NOT NULL,
	PRIMARY KEY (outbox_id, name)
) WITHOUT ROWID;

CREATE TRIGGER outbox_blobs_ref AFTER INSERT ON outbox_blobs
BEGIN UPDATE blobs SET refs = refs + 1 WHERE hash = NEW.blob; END;
CREATE TRIGGER outbox_blobs_unref AFTER DELETE ON outbox_blobs
BEGIN UPDATE blobs SET refs = refs - 1 WHERE hash = OLD.blob; END;

-- One recipient of an outbox message. next_attempt is committed before
-- each attempt starts, so a crash never turns into a hot retry loop.
-- header holds the per-recipient header once made (the receipt signs it),
-- ticket the current ticket's JSON so an interrupted upload resumes.
CREATE TABLE outbox_recipients (
	id INTEGER PRIMARY KEY,
	outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
	recipient TEXT NOT NULL,
	route TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL DEFAULT 'waiting',
	tries INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	progress TEXT NOT NULL DEFAULT '',
	header BLOB,
	endpoint TEXT NOT NULL DEFAULT '',
	ticket BLOB,
	done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_recipients_due ON outbox_recipients(next_attempt) WHERE done = 0;
CREATE INDEX outbox_recipients_message ON outbox_recipients(outbox_id);

-- What happened to each recipient, kept after the outbox row is gone:
-- the receiving server's signed receipt over the header it accepted.
CREATE TABLE deliveries (
	id INTEGER PRIMARY KEY,
	user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
	sender TEXT NOT NULL,
	recipient TEXT NOT NULL,
	outcome TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	remote_id TEXT NOT NULL DEFAULT '',
	header BLOB,
	receipt BLOB,
	at INTEGER NOT NULL
);
CREATE INDEX deliveries_user ON deliveries(user_id, at);
