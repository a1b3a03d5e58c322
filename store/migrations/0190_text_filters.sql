-- imapout's metadata caches gain a text filter (issue 13: SEARCH BODY and
-- TEXT skip the messages whose filter rules the needle out, sealed with
-- the rest of the cache under the owner's data key). Forget the caches
-- built without one so imapout rebuilds them at the owner's next login,
-- in the background; keep the empty ones that mark unreadable messages.
UPDATE messages SET meta = NULL
 WHERE filed = 1 AND meta IS NOT NULL AND length(meta) > 0;
