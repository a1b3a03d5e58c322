// Package store is tollbridge's one persistence layer: users, remote key
// pins, tickets and their uploads, sealed messages, mailboxes, flags, UIDs
// and the outbox.
//
// Metadata lives in an embedded SQLite database (WAL, synchronous=FULL, so a
// committed transaction is on disk); encrypted message parts live in
// content-addressed files under blobs/ (or objects in an S3-compatible
// bucket, Options.S3), written and made durable before the transaction
// that references them commits. Nothing here is plaintext mail:
// callers hand over sealed bytes only.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	dir   string
	write *sql.DB // one connection: SQLite has one writer; serialising in Go avoids SQLITE_BUSY
	read  *sql.DB // a pool for concurrent readers (WAL)
	blobs *Blobs
	now   func() time.Time
	hub   *Hub
}

// Options tune Open. The zero value is fine.
type Options struct {
	// Now is the clock; time.Now when nil. Tests inject one.
	Now func() time.Time

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
	path := filepath.Join(dir, "tollbridge.db")
	write, err := openDB(path, 1)
	if err != nil {
		return nil, err
	}
	read, err := openDB(path, 8)
	if err != nil {
		write.Close()
		return nil, err
	}
	blobs, err := openBlobs(ctx, filepath.Join(dir, "blobs"), opts.S3)
	if err != nil {
		write.Close()
		read.Close()
		return nil, err
	}
	s := &Store{dir: dir, write: write, read: read, blobs: blobs, now: opts.Now, hub: newHub()}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store %s: %w", dir, err)
	}
	// SQLite creates its files 0644; they hold users' (protected) keys.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Chmod(path+suffix, 0o600)
	}
	return s, nil
}

func openDB(path string, conns int) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)",
		"busy_timeout(10000)", "cache_size(-16000)",
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
	return errors.Join(s.write.Close(), s.read.Close(), s.blobs.be.close())
}

// Dir is the data directory.
func (s *Store) Dir() string { return s.dir }

// Blobs is the content-addressed store of encrypted parts.
func (s *Store) Blobs() *Blobs { return s.blobs }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// Hub delivers change notifications (new mail, flag changes) to listeners
// in this process.
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
	// The write pool has one connection: holding it makes the pragma and
	// the transaction one unit.
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = "+sync); err != nil {
		return fmt.Errorf("begin: %w", err)
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

func (s *Store) unix() int64 { return s.now().Unix() }

// boolInt stores a bool as SQLite's 0/1.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// notFound turns sql.ErrNoRows into ErrNotFound with context.
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

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
