-- The results of the legacy checks on mail that came over the MX (SPF,
-- DKIM, DMARC; DESIGN §4), one RFC 8601 resinfo a line (for example
-- "spf=pass smtp.mailfrom=a@example.com"), shown in the bridge's own
-- Authentication-Results field beside tollbridge=. Empty for other mail
-- and for mail stored before the checks existed.
ALTER TABLE messages ADD COLUMN auth_results TEXT NOT NULL DEFAULT '';
