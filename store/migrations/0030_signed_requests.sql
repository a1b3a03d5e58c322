-- Signed ticket requests (docs/protocol.md §3.7).
--
-- Trust is granted only to a signed request from the domain of the trusted
-- address, so the allow list and the correspondents keep the plain address
-- beside its hash. Rows from before this migration have '' and grant no
-- trust until the address is noted again (the user writes to it again, or
-- an admin allows it again).
ALTER TABLE allow_list ADD COLUMN sender_address TEXT NOT NULL DEFAULT '';
ALTER TABLE correspondents ADD COLUMN peer_address TEXT NOT NULL DEFAULT '';

-- no_work is 1 for a message that came on a ticket issued valid at once
-- (trusted sender, no work): such mail must be signed, or it is fail.
ALTER TABLE messages ADD COLUMN no_work INTEGER NOT NULL DEFAULT 0;

-- Digests of signed ticket request bodies seen recently: a body is honoured
-- once within the replay window.
CREATE TABLE seen_requests (
	digest TEXT PRIMARY KEY,
	expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX seen_requests_expires ON seen_requests(expires);
