-- PostgreSQL form of ../0050_rebuild_meta_caches.sql (the comments are there).
UPDATE messages SET meta = NULL, size = -1
 WHERE filed = 1 AND source != 'append' AND meta IS NOT NULL AND length(meta) > 0;
