// Package store is tollbridge's one persistence layer: users, remote key
// pins, tickets and their uploads, sealed messages, mailboxes, flags, UIDs
// and the outbox.
//
// Metadata lives in an embedded SQLite database (WAL, synchronous=FULL, so a
// committed transaction is on disk) or, for a domain that runs several
// bridges, in one PostgreSQL database (Options.Postgres); encrypted message
// parts live in content-addressed files under blobs/ (or objects in an
// S3-compatible bucket, Options.S3), written and made durable before the
// transaction that references them commits. Nothing here is plaintext
// mail: callers hand over sealed bytes only.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open data directory.
type Store struct {
	dialect dialect
	dir     string
	write   *sql.DB // one connection: SQLite has one writer; serialising in Go avoids SQLITE_BUSY
	read    *sql.DB // a pool for concurrent readers (WAL)
	blobs   *Blobs
	now     func() time.Time
	hub     *Hub
	node    string
	lease   time.Duration
	notify  *notifier // PostgreSQL: events to and from the other nodes
	stmts   stmtCache // SQLite: prepared hot read queries (stmts.go)
	wstmts  stmtCache // SQLite: prepared hot write-transaction statements
	// writeSync is the synchronous level last set on SQLite's one write
	// connection; only a holder of that connection reads or sets it.
	writeSync string
}

// Options tune Open. The zero value is fine.
type Options struct {
	// Now is the clock; time.Now when nil. Tests inject one.
	Now func() time.Time
	// Postgres is a PostgreSQL connection string (postgres://…): the
	// metadata then lives in that database, shared with the other nodes
	// of the domain, instead of SQLite in dir. Empty: SQLite.
	Postgres string
	// Node names this process among the nodes sharing a PostgreSQL
	// store (outbox claims name it); a random name when empty.
	Node string
	// Lease is how long an outbox claim holds without being renewed
	// (ClaimDue, RenewClaims): a node that dies mid-attempt hands its
	// recipients over to the others this long after its last renewal.
	// 30 s when zero.
	Lease time.Duration

	// S3, when set, keeps sealed parts in an S3-compatible object store
	// instead of files under the data directory's blobs/.
	S3 *S3Options
}

// Open opens (creating if needed) the data directory dir, applies pending
// schema migrations and returns the store.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	s := &Store{dir: dir, now: opts.Now, hub: newHub(), node: opts.Node, lease: opts.Lease}
	if s.now == nil {
		s.now = time.Now
	}
	if s.node == "" {
		s.node = fmt.Sprintf("node-%d-%08x", os.Getpid(), rand.Uint32())
	}
	if s.lease <= 0 {
		s.lease = 30 * time.Second
	}
	var err error
	if opts.Postgres != "" {
		if err = s.openPostgres(opts.Postgres); err == nil {
			if err = s.listen(ctx, opts.Postgres); err != nil {
				s.Close()
			}
		}
	} else {
		err = s.openSQLite()
	}
	if err != nil {
		return nil, err
	}
	if s.blobs, err = openBlobs(ctx, filepath.Join(dir, "blobs"), opts.S3); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	if s.dialect == sqliteDialect {
		// SQLite creates its files 0644; they hold users' (protected) keys.
		path := filepath.Join(dir, "tollbridge.db")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Chmod(path+suffix, 0o600)
		}
	}
	return s, nil
}

func (s *Store) openSQLite() error {
	path := filepath.Join(s.dir, "tollbridge.db")
	write, err := openDB(path, 1)
	if err != nil {
		return err
	}
	read, err := openDB(path, 8)
	if err != nil {
		write.Close()
		return err
	}
	s.write, s.read = write, read
	return nil
}

// openPostgres opens one pool for writers and readers alike: PostgreSQL
// has no single writer to protect.
func (s *Store) openPostgres(dsn string) error {
	db, err := openPostgres(dsn, 16)
	if err != nil {
		return err
	}
	s.dialect, s.write, s.read = postgresDialect, db, db
	return nil
}

func openDB(path string, conns int) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)",
		"busy_timeout(10000)", "cache_size(-16000)", "mmap_size(268435456)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	return db, nil
}

// Close closes the database and ends blob reads and writes in flight.
func (s *Store) Close() error {
	s.stopListening()
	var blobErr error
	if s.blobs != nil {
		blobErr = s.blobs.be.close()
	}
	stmtErr := errors.Join(s.stmts.close(), s.wstmts.close())
	if s.write == s.read {
		return errors.Join(stmtErr, s.write.Close(), blobErr)
	}
	return errors.Join(stmtErr, s.write.Close(), s.read.Close(), blobErr)
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Blobs is the content-addressed store of encrypted parts.
func (s *Store) Blobs() *Blobs { return s.blobs }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// Hub delivers change notifications (new mail, flag changes) to listeners
// in this process: this node's changes and, on PostgreSQL, those of the
// other nodes sharing the store (LISTEN/NOTIFY).
func (s *Store) Hub() *Hub { return s.hub }

// tx runs fn in one write transaction, committed when fn returns nil and
// on disk (fsynced) when tx returns.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.txSync(ctx, "FULL", fn)
}

// laxTx is tx for state that may be lost with the machine (not with the
// process): delivery progress, tickets, uploads. Its commit skips the
// fsync; the next tx's fsync makes it durable too, as the WAL is written
// in order. Whatever the protocol acknowledges as final uses tx.
func (s *Store) laxTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.txSync(ctx, "NORMAL", fn)
}

func (s *Store) txSync(ctx context.Context, sync string, fn func(*sql.Tx) error) error {
	if s.dialect == postgresDialect {
		return s.pgTx(ctx, sync == "FULL", fn)
	}
	// The write pool has one connection: holding it makes the pragma and
	// the transaction one unit.
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	err = s.sqliteTx(ctx, conn, sync, fn)
	conn.Close()
	if s.wstmts.hasPending() {
		// The connection is free again: prepare what fn ran unprepared.
		s.wstmts.preparePending(context.WithoutCancel(ctx), s.write)
	}
	return err
}

// sqliteTx runs fn in a transaction on conn, the write connection, at
// the given synchronous level. The level is set only when it changes:
// the connection keeps it, and holding the connection serialises access
// to s.writeSync. A connection the pool opens anew starts at FULL (the
// DSN's pragma), so a stale s.writeSync can only make a lax transaction
// durable, never the reverse.
func (s *Store) sqliteTx(ctx context.Context, conn *sql.Conn, sync string, fn func(*sql.Tx) error) error {
	if s.writeSync != sync {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = "+sync); err != nil {
			s.writeSync = ""
			return fmt.Errorf("begin: %w", err)
		}
		s.writeSync = sync
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// pgTries bounds the runs of a PostgreSQL transaction that keeps losing
// serialization races.
const pgTries = 80

// pgTx runs fn in a SERIALIZABLE transaction, again when it lost a race
// with another (fn must be safe to run twice: it resets what it
// collects). A lax transaction does not wait for the WAL flush.
func (s *Store) pgTx(ctx context.Context, durable bool, fn func(*sql.Tx) error) error {
	return s.pgTxIso(ctx, durable, sql.LevelSerializable, fn)
}

func (s *Store) pgTxIso(ctx context.Context, durable bool, iso sql.IsolationLevel, fn func(*sql.Tx) error) error {
	var err error
	for try := 0; try < pgTries; try++ {
		if err = s.pgTxOnce(ctx, durable, iso, fn); !retryable(err) {
			return err
		}
		// Back off, more each time and at random, so retrying writers
		// part: up to 1 ms, doubling to 128 ms; about 5 s in all. Three
		// nodes submitting at once on a loaded machine used up the 20
		// quick tries this had before, and a submission got a 451.
		wait := time.Duration(1+rand.IntN(1<<min(try, 7))) * time.Millisecond
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return err
}

func (s *Store) pgTxOnce(ctx context.Context, durable bool, iso sql.IsolationLevel, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, &sql.TxOptions{Isolation: iso})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if !durable {
		if _, err := tx.ExecContext(ctx, "SET LOCAL synchronous_commit = off"); err != nil {
			tx.Rollback()
			return fmt.Errorf("begin: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *Store) unix() int64 { return s.now().Unix() }

// boolInt stores a bool as SQLite's 0/1.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// openBlobs opens the blob backend: the S3 bucket when o is set, else
// the files under dir.
func openBlobs(ctx context.Context, dir string, o *S3Options) (*Blobs, error) {
	if o != nil {
		be, err := openS3Blobs(ctx, *o)
		if err != nil {
			return nil, err
		}
		return &Blobs{be: be}, nil
	}
	be, err := openFileBlobs(dir)
	if err != nil {
		return nil, err
	}
	return &Blobs{be: be}, nil
}

// notFound turns sql.ErrNoRows into ErrNotFound with context.
func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
