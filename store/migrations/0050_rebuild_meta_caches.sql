-- A message is no longer shown with the Authentication-Results fields that
-- claim this bridge's server.hostname (imapout, DESIGN §3.7, RFC 8601 §5),
-- so a metadata cache built before may describe bytes that are no longer
-- shown (RFC822.SIZE, header, part offsets). Forget the caches of all mail
-- shown with trace fields in front (APPEND is shown as saved), but keep the
-- empty ones that mark unreadable messages: imapout rebuilds them at the
-- owner's next login, or on first use, like those of mail filed without a
-- key at hand.
UPDATE messages SET meta = NULL, size = -1
 WHERE filed = 1 AND source != 'append' AND meta IS NOT NULL AND length(meta) > 0;
