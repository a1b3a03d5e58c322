-- Aliases added with `bridge alias add` (DESIGN.md §4, §5): one address
-- delivered to one or more local users or other aliases. Aliases in the
-- config file are not stored here. address_hash and wkd_name let the
-- ticket API answer for an alias as it does for a user (hash(a) and the
-- WKD name "domain/zbase32(sha1(local))").
CREATE TABLE aliases (
	address TEXT PRIMARY KEY,
	address_hash TEXT NOT NULL UNIQUE,
	wkd_name TEXT NOT NULL UNIQUE,
	targets TEXT NOT NULL, -- normalised addresses, one a line
	created INTEGER NOT NULL
) WITHOUT ROWID;
