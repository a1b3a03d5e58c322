-- Local users. private_key is the passphrase-protected OpenPGP secret key.
CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	address TEXT NOT NULL UNIQUE,
	address_hash TEXT NOT NULL UNIQUE,
	wkd_name TEXT NOT NULL UNIQUE, -- "domain/zbase32(sha1(local))", the user's WKD path
	fingerprint TEXT NOT NULL,
	public_key BLOB NOT NULL,
	private_key BLOB NOT NULL,
	uid_validity_seq INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL
);

-- Senders whose ticket requests are valid at once for a user.
CREATE TABLE allow_list (
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	sender_hash TEXT NOT NULL,
	PRIMARY KEY (user_id, sender_hash)
) WITHOUT ROWID;

-- Addresses a local user has written to: their tickets need no work.
CREATE TABLE correspondents (
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	peer_hash TEXT NOT NULL,
	last INTEGER NOT NULL,
	PRIMARY KEY (user_id, peer_hash)
) WITHOUT ROWID;

-- Remote keys pinned on first use; offered_* holds a changed key waiting
-- for an admin's `bridge keys accept`.
CREATE TABLE pinned_keys (
	address TEXT PRIMARY KEY,
	fingerprint TEXT NOT NULL,
	key BLOB NOT NULL,
	pinned INTEGER NOT NULL,
	offered_fingerprint TEXT NOT NULL DEFAULT '',
	offered_key BLOB,
	offered INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Content-addressed encrypted files under blobs/. refs is kept by the
-- triggers below; a blob with no refs is deleted by the sweeper after a
-- grace period.
CREATE TABLE blobs (
	hash TEXT PRIMARY KEY,
	size INTEGER NOT NULL,
	refs INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX blobs_unreferenced ON blobs(created) WHERE refs <= 0;

-- Tickets issued by this server's ticket API.
CREATE TABLE tickets (
	id TEXT PRIMARY KEY,
	sender_hash TEXT NOT NULL,
	recipient_hash TEXT NOT NULL,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	worktype TEXT NOT NULL,
	challenge BLOB,
	needed INTEGER NOT NULL,
	done INTEGER NOT NULL DEFAULT 0,
	valid INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	blocks INTEGER NOT NULL,
	attachments INTEGER NOT NULL,
	bytes INTEGER NOT NULL,
	created INTEGER NOT NULL,
	client_ip TEXT NOT NULL DEFAULT '',
	completed INTEGER NOT NULL DEFAULT 0,
	message_id TEXT NOT NULL DEFAULT '',
	receipt BLOB
) WITHOUT ROWID;
CREATE INDEX tickets_open_expiry ON tickets(expires) WHERE completed = 0;

CREATE TABLE ticket_proofs (
	ticket_id TEXT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
	proof TEXT NOT NULL,
	PRIMARY KEY (ticket_id, proof)
) WITHOUT ROWID;

-- Uploaded header, catalog and parts of a ticket, by name
-- ("header", "catalog", "blocks/b1", "attachments/a1").
CREATE TABLE ticket_uploads (
	ticket_id TEXT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	blob TEXT NOT NULL,
	size INTEGER NOT NULL,
	PRIMARY KEY (ticket_id, name)
) WITHOUT ROWID;

-- One sealed message stored for one local user. header is the per-recipient
-- header JSON (the session key wrapped to the user); trace holds the trace
-- fields the IMAP server puts in front (Received:); auth is '' until the
-- catalog signature was checked with the user's key unlocked. A message with
-- filed = 0 waits for its owner's key before it is put in a mailbox.
CREATE TABLE messages (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	header BLOB NOT NULL,
	source TEXT NOT NULL,
	trace BLOB NOT NULL,
	auth TEXT NOT NULL DEFAULT '',
	received INTEGER NOT NULL,
	size INTEGER NOT NULL DEFAULT -1,
	meta BLOB,
	filed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_unfiled ON messages(user_id) WHERE filed = 0;

-- The encrypted catalog ("catalog") and parts ("b1", "a1", ...) of a message.
CREATE TABLE message_blobs (
	message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	blob TEXT NOT NULL,
	PRIMARY KEY (message_id, name)
) WITHOUT ROWID;

CREATE TABLE mailboxes (
	id INTEGER PRIMARY KEY,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	special_use TEXT NOT NULL DEFAULT '',
	subscribed INTEGER NOT NULL DEFAULT 1,
	uid_validity INTEGER NOT NULL,
	uid_next INTEGER NOT NULL DEFAULT 1,
	modseq INTEGER NOT NULL DEFAULT 1,
	UNIQUE (user_id, name)
);

CREATE TABLE mailbox_messages (
	mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid INTEGER NOT NULL,
	message_id INTEGER NOT NULL REFERENCES messages(id),
	flags TEXT NOT NULL DEFAULT '',
	modseq INTEGER NOT NULL DEFAULT 1,
	PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX mailbox_messages_message ON mailbox_messages(message_id);

-- A filed message disappears with its last mailbox entry.
CREATE TRIGGER mailbox_messages_gc AFTER DELETE ON mailbox_messages
WHEN NOT EXISTS (SELECT 1 FROM mailbox_messages WHERE message_id = OLD.message_id)
BEGIN
	DELETE FROM messages WHERE id = OLD.message_id AND filed = 1;
END;

-- Blob reference counts.
CREATE TRIGGER ticket_uploads_ref AFTER INSERT ON ticket_uploads
BEGIN UPDATE blobs SET refs = refs + 1 WHERE hash = NEW.blob; END;
CREATE TRIGGER ticket_uploads_unref AFTER DELETE ON ticket_uploads
BEGIN UPDATE blobs SET refs = refs - 1 WHERE hash = OLD.blob; END;
CREATE TRIGGER ticket_uploads_reref AFTER UPDATE OF blob ON ticket_uploads
BEGIN
	UPDATE blobs SET refs = refs - 1 WHERE hash = OLD.blob;
	UPDATE blobs SET refs = refs + 1 WHERE hash = NEW.blob;
END;
CREATE TRIGGER message_blobs_ref AFTER INSERT ON message_blobs
BEGIN UPDATE blobs SET refs = refs + 1 WHERE hash = NEW.blob; END;
CREATE TRIGGER message_blobs_unref AFTER DELETE ON message_blobs
BEGIN UPDATE blobs SET refs = refs - 1 WHERE hash = OLD.blob; END;
