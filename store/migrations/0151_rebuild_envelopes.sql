-- imapout's metadata caches move to version 3: ENVELOPE keeps address
-- groups and the header's own strings (encoded words stay encoded, issue
-- 13). Forget the older caches (all of them: the version is inside the
-- sealed cache) so imapout rebuilds them at the owner's next login, in the
-- background, rather than one by one at first FETCH; keep the empty ones
-- that mark unreadable messages.
UPDATE messages SET meta = NULL
 WHERE filed = 1 AND meta IS NOT NULL AND length(meta) > 0;
