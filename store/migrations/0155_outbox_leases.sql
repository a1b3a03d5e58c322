-- Outbox claims for several nodes on one database (issue 15).
--
-- A node that claims a recipient names itself in claimed_by and holds the
-- claim until lease_until (unix seconds), renewing it while the attempt
-- runs and clearing it (0) when the attempt ends. A lease that ran out
-- while still set means its node died mid-attempt: another node takes the
-- recipient over at once. 0: not claimed.
ALTER TABLE outbox_recipients ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox_recipients ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
