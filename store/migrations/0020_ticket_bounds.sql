-- Bounds on what one client may cost the ticket API (package ticketserver).
--
-- failed_completes: completions of the ticket answered 422; after a few
-- the ticket is closed (expired, uploads deleted), so one ticket cannot be
-- used to make the server check bad headers forever.
-- client_key: the client the ticket was issued to, grouped as the limits
-- group clients (an IPv4 address, an IPv6 /64; see store.ClientKey), so
-- the bytes uploaded to a client's open tickets can be summed.
ALTER TABLE tickets ADD COLUMN failed_completes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN client_key TEXT NOT NULL DEFAULT '';
UPDATE tickets SET client_key = client_ip;
CREATE INDEX tickets_client_key ON tickets(client_key) WHERE completed = 0;
