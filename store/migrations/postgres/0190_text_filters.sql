-- PostgreSQL form of ../0190_text_filters.sql (the comments are there).
UPDATE messages SET meta = NULL
 WHERE filed = 1 AND meta IS NOT NULL AND length(meta) > 0;
