-- PostgreSQL form of ../0120_auth_results.sql (the comments are there).
ALTER TABLE messages ADD COLUMN auth_results TEXT NOT NULL DEFAULT '';
