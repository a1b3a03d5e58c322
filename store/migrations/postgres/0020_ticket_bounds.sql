-- PostgreSQL form of ../0020_ticket_bounds.sql (the comments are there).
ALTER TABLE tickets ADD COLUMN failed_completes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN client_key TEXT NOT NULL DEFAULT '';
UPDATE tickets SET client_key = client_ip;
CREATE INDEX tickets_client_key ON tickets(client_key) WHERE completed = 0;
