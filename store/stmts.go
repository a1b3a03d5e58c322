package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmtCache keeps the read pool's prepared statements of the queries an
// IMAP session runs on every FETCH (MailboxState, MessageRows): SQLite
// otherwise parses and plans a query's text on every call, which costs
// more than reading a few rows. PostgreSQL's driver caches statements
// itself, so only SQLite uses it.
//
// It holds at most maxStmts statements: queries whose text depends on
// their arguments (IN lists) are prepared only while there is room, then
// run unprepared.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxStmts bounds a stmtCache.
const maxStmts = 64

// get returns the statement prepared from q on db, preparing it once;
// nil when the cache is full.
func (c *stmtCache) get(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	if len(c.m) >= maxStmts {
		return nil, nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

// close closes every statement; the cache stays usable.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.m {
		errs = append(errs, st.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// queryRead runs a read query, prepared once on SQLite.
func (s *Store) queryRead(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.readStmt(ctx, q)
	if st == nil || err != nil {
		return s.read.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

// queryReadRow is queryRead for one row.
func (s *Store) queryReadRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.readStmt(ctx, q)
	if st == nil || err != nil {
		// A failed prepare fails again here, with the query's context.
		return s.read.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// queryTx runs a query in a read transaction of the read pool, with the
// statement prepared once on SQLite.
func (s *Store) queryTx(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	st, err := s.readStmt(ctx, q)
	if st == nil || err != nil {
		return tx.QueryContext(ctx, q, args...)
	}
	return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
}

// readStmt is the read pool's prepared statement of q: nil on
// PostgreSQL, whose driver caches statements itself, or when the cache
// is full.
func (s *Store) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s.dialect != sqliteDialect {
		return nil, nil
	}
	return s.stmts.get(ctx, s.read, q)
}
