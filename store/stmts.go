package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmtCache keeps a pool's prepared statements: on the read pool, the
// queries an IMAP session runs on every FETCH (MailboxState,
// MessageRows); on the write pool, the fixed statements of the write
// transactions (execW). SQLite otherwise parses and plans a query's text
// on every call, which costs more than reading a few rows. PostgreSQL's
// driver caches statements itself, so only SQLite uses it.
//
// It holds at most maxStmts statements: queries whose text depends on
// their arguments (IN lists) are prepared only while there is room, then
// run unprepared.
type stmtCache struct {
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool // write statements to prepare (lookup)
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
		if st != nil {
			errs = append(errs, st.Close())
		}
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

// readStmt is the read pool's prepared statement of q: nil on
// PostgreSQL, whose driver caches statements itself, or when the cache
// is full.
func (s *Store) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s.dialect != sqliteDialect {
		return nil, nil
	}
	return s.stmts.get(ctx, s.read, q)
}

// The write pool has one connection, so a statement prepared on it once
// serves every later write transaction (Tx.StmtContext finds it on the
// transaction's connection instead of preparing again). The ticket,
// upload and outbox paths run a handful of fixed statements per message:
// parsing them anew was a sixth of a delivering bridge's CPU. A statement
// cannot be prepared on the pool while a transaction holds its one
// connection, so a miss is noted and prepared after the transaction
// (preparePending); until then it runs unprepared.

// execW runs a fixed statement q in tx, a write transaction, prepared
// once on SQLite. q must not vary with the arguments.
func (s *Store) execW(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.writeStmt(q); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// queryW is execW for a query.
func (s *Store) queryW(ctx context.Context, tx *sql.Tx, q string, args ...any) (*sql.Rows, error) {
	if st := s.writeStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, q, args...)
}

// queryRowW is execW for a query of one row.
func (s *Store) queryRowW(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.writeStmt(q); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// writeStmt is the write pool's prepared statement of q, or nil (on
// PostgreSQL, or not prepared yet: then q is noted for preparePending).
func (s *Store) writeStmt(q string) *sql.Stmt {
	if s.dialect != sqliteDialect {
		return nil
	}
	return s.wstmts.lookup(q)
}

// lookup returns q's statement, or nil after noting q for
// preparePending while the cache has room.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if len(c.m)+len(c.pending) < maxStmts {
		if c.pending == nil {
			c.pending = map[string]bool{}
		}
		c.pending[q] = true
	}
	return nil
}

// preparePending prepares on db the statements lookup missed. It must
// not hold the lock while preparing: that waits for the write
// connection, which a transaction calling lookup may hold. A statement
// that fails to prepare is kept as nil and runs unprepared from then on
// (reporting its error there).
func (c *stmtCache) preparePending(ctx context.Context, db *sql.DB) {
	c.mu.Lock()
	var qs []string
	for q := range c.pending {
		qs = append(qs, q)
	}
	clear(c.pending)
	c.mu.Unlock()
	for _, q := range qs {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			st = nil
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]*sql.Stmt{}
		}
		if _, dup := c.m[q]; dup && st != nil {
			st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

// hasPending tells whether preparePending has work.
func (c *stmtCache) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0
}
