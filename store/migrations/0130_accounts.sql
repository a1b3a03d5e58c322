-- Accounts that change (issue 14).
--
-- key_generation grows whenever the user's protected key changes (a new
-- password, a recovery, a rotation): sessions logged in with what was
-- stored before compare it and end. recovery_key is the same secret key as
-- private_key, protected with the user's one-time recovery code instead of
-- the password (NULL for users made before recovery codes existed).
-- retired_keys holds the user's rotated-out keys, oldest first, sealed
-- under a key derived from the current secret key (keyring.SealRetired);
-- empty when the key never rotated.
ALTER TABLE users ADD COLUMN key_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN recovery_key BLOB;
ALTER TABLE users ADD COLUMN retired_keys BLOB NOT NULL DEFAULT x'';

-- When an allow-list entry was made (0: before this was kept).
ALTER TABLE allow_list ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
