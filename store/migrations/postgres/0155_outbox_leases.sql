-- PostgreSQL form of ../0155_outbox_leases.sql (the comments are there).
ALTER TABLE outbox_recipients ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_recipients ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
