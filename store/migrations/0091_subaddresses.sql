-- Subaddresses (user+tag@) the ticket API's WKD has answered for, by
-- hash(a): a ticket request names its recipient by hash only, and a hash
-- does not give back its tag. A sender looks the key up (with ?l=) before
-- each ticket request, so a row is kept 30 days after it was last seen.
CREATE TABLE subaddresses (
	address_hash TEXT PRIMARY KEY,
	address TEXT NOT NULL,
	seen INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX subaddresses_seen ON subaddresses(seen);
