-- Domains this bridge has delivered to over the ticketed protocol. Such a
-- domain never silently falls back to legacy SMTP: when discovery later
-- finds no SRV record for it, the mail waits and is retried (DNS trouble,
-- or someone forging NXDOMAIN), it is not relayed in the clear.
CREATE TABLE ticketed_domains (
	domain TEXT PRIMARY KEY,
	endpoint TEXT NOT NULL,
	first_delivered INTEGER NOT NULL,
	last_delivered INTEGER NOT NULL
) WITHOUT ROWID;
