-- Receipts both sides can prove (docs/protocol.md §3.3.3) and success
-- notices (RFC 3461).
--
-- receipt_check: the sender's verification of the receipt against the
-- receiving server's key: "pass", "fail: why" or "unchecked: why" ('' for
-- deliveries without a receipt or from before this migration).
ALTER TABLE deliveries ADD COLUMN receipt_check TEXT NOT NULL DEFAULT '';

-- RFC 3461 parameters given at submission: ENVID and RET per message,
-- NOTIFY (comma-separated, upper case; '' = not given) and ORCPT
-- ("type;address") per recipient.
ALTER TABLE outbox ADD COLUMN dsn_envid TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN dsn_ret TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_recipients ADD COLUMN dsn_notify TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_recipients ADD COLUMN dsn_orcpt TEXT NOT NULL DEFAULT '';
