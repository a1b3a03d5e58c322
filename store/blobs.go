package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Blobs is the content-addressed store of sealed (encrypted) parts. A
// blob's name is the lowercase hex SHA-256 of its bytes, which is also the
// sha256 the ticketed protocol's header names, so an uploaded part needs no
// renaming.
//
// Two backends keep the bytes: files under the data directory's blobs/
// (the default) and an S3-compatible object store (Options.S3), which
// several bridges can share. Either way a blob is complete and durable
// when Commit returns, before the transaction that references it commits,
// and both stream: no whole part is held in memory.
type Blobs struct {
	be blobBackend
}

// blobBackend keeps blobs' bytes under their content names.
type blobBackend interface {
	// create starts writing a blob whose name is known only at the end.
	create() (blobSink, error)
	// open reads a blob; ErrNotFound when there is none.
	open(hash string) (io.ReadCloser, error)
	// size is a stored blob's size; ErrNotFound when there is none.
	size(hash string) (int64, error)
	// sync makes a blob committed unsynced durable, checking its size.
	sync(ref BlobRef) error
	// syncAll is sync for a group of blobs written together.
	syncAll(refs []BlobRef) error
	// remove deletes a blob; nil when there is none.
	remove(hash string) error
	// walk calls fn with each stored blob last written before cutoff.
	walk(ctx context.Context, cutoff time.Time, fn func(hash string)) error
	// sweepTmp removes unfinished writes begun before cutoff.
	sweepTmp(ctx context.Context, cutoff time.Time)
	// close ends what is in flight (reads, writes) and frees the backend.
	close() error
}

// blobSink receives one blob's bytes until commit or abort.
type blobSink interface {
	io.Writer
	// commit stores the bytes written as the blob ref (its name and size
	// computed by BlobWriter), durable unless durable is false and the
	// backend can defer it.
	commit(ref BlobRef, durable bool) error
	// abort discards the bytes written.
	abort() error
}

// BlobRef names one stored blob.
type BlobRef struct {
	Hash string // lowercase hex SHA-256 of the content
	Size int64
}

// ValidHash reports whether h is a 64-character lowercase hex string.
func ValidHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Open opens a blob for reading. The reader streams: on S3 the object is
// read as the caller reads (and Close ends the request).
func (b *Blobs) Open(hash string) (io.ReadCloser, error) {
	if !ValidHash(hash) {
		return nil, fmt.Errorf("blob %q: invalid name", hash)
	}
	r, err := b.be.open(hash)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", hash, err)
	}
	return r, nil
}

// Create starts writing a new blob. The caller writes the content, then
// Commits (durable, name known) or Aborts.
func (b *Blobs) Create() (*BlobWriter, error) {
	sink, err := b.be.create()
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &BlobWriter{sink: sink, h: sha256.New()}, nil
}

// BlobWriter writes one blob.
type BlobWriter struct {
	sink blobSink
	h    hash.Hash
	n    int64
	done bool
}

// Write appends to the blob.
func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.sink.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Size is the number of bytes written so far.
func (w *BlobWriter) Size() int64 { return w.n }

// Commit makes the blob durable under its content name and returns it. The
// blob is not yet referenced: it must be registered by the transaction that
// uses it, or the sweeper removes it.
func (w *BlobWriter) Commit() (BlobRef, error) { return w.commit(true) }

// CommitUnsynced is Commit without the fsyncs, for data that may be lost
// with the machine until Blobs.Sync is called (an upload, synced when its
// message completes). On S3 it is Commit: a stored object is durable.
func (w *BlobWriter) CommitUnsynced() (BlobRef, error) { return w.commit(false) }

func (w *BlobWriter) commit(durable bool) (BlobRef, error) {
	if w.done {
		return BlobRef{}, errors.New("blob: already finished")
	}
	w.done = true
	ref := BlobRef{Hash: hex.EncodeToString(w.h.Sum(nil)), Size: w.n}
	if err := w.sink.commit(ref, durable); err != nil {
		return BlobRef{}, fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	return ref, nil
}

// Abort discards the blob. It is safe after Commit (then it does nothing).
func (w *BlobWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	return w.sink.abort()
}

// Put writes r as one blob and commits it.
func (b *Blobs) Put(r io.Reader) (BlobRef, error) {
	w, err := b.Create()
	if err != nil {
		return BlobRef{}, err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return BlobRef{}, fmt.Errorf("blob: %w", err)
	}
	return w.Commit()
}

// Sync makes a blob committed with CommitUnsynced durable, checking it is
// there with its size (after a machine crash it may not be).
func (b *Blobs) Sync(ref BlobRef) error {
	if !ValidHash(ref.Hash) {
		return fmt.Errorf("blob %q: invalid name", ref.Hash)
	}
	if err := b.be.sync(ref); err != nil {
		return fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	return nil
}

// SyncAll makes a group of blobs committed with CommitUnsynced durable
// at once (for files on Linux with one syncfs(2) for the lot), checking
// each is there with its size. It is for many small blobs written together
// (an import), where an fsync per file would dominate.
func (b *Blobs) SyncAll(refs []BlobRef) error {
	if len(refs) == 0 {
		return nil
	}
	if err := b.be.syncAll(refs); err != nil {
		return fmt.Errorf("blobs sync: %w", err)
	}
	return nil
}

// Remove deletes a blob that no committed row references (a sealing that
// failed before its transaction). Referenced blobs are only removed by
// the sweeper.
func (b *Blobs) Remove(hash string) error {
	if !ValidHash(hash) {
		return fmt.Errorf("blob %q: invalid name", hash)
	}
	if err := b.be.remove(hash); err != nil {
		return fmt.Errorf("blob %s: %w", hash, err)
	}
	return nil
}

// checkSize is nil when the blob is stored with ref's size.
func (b *Blobs) checkSize(ref BlobRef) error {
	n, err := b.be.size(ref.Hash)
	if err != nil {
		return err
	}
	if n != ref.Size {
		return fmt.Errorf("%d bytes stored, %d expected: %w", n, ref.Size, ErrNotFound)
	}
	return nil
}

// registerBlob records a committed blob in tx so references to it count.
func (s *Store) registerBlob(ctx context.Context, tx *sql.Tx, ref BlobRef) error {
	_, err := s.execW(ctx, tx,
		`INSERT INTO blobs (hash, size, created) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
		ref.Hash, ref.Size, s.unix())
	if err != nil {
		return fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	// The sweeper deletes blobs inside its own transaction, which is
	// serialised with ours: if the blob is here now, it stays.
	if _, err := s.blobs.be.size(ref.Hash); err != nil {
		return fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	return nil
}

// SweepBlobs deletes blobs that nothing has referenced for at least grace,
// and unfinished writes (temporary files, S3 uploads) older than grace. It
// returns how many blobs it removed.
func (s *Store) SweepBlobs(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	hashes, err := s.unreferencedBlobs(ctx, cutoff.Unix())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range hashes {
		var deleted bool
		err := s.tx(ctx, func(tx *sql.Tx) error {
			res, err := s.execW(ctx, tx, `DELETE FROM blobs WHERE hash = ? AND refs <= 0`, h)
			if err != nil {
				return err
			}
			c, _ := res.RowsAffected()
			deleted = c == 1
			if deleted {
				// Removed inside the transaction: a concurrent writer that
				// re-registers the hash waits for us and then rewrites it.
				return s.blobs.be.remove(h)
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("sweep blob %s: %w", h, err)
		}
		if deleted {
			n++
		}
	}
	s.blobs.be.sweepTmp(ctx, cutoff)
	return n, nil
}

// unreferencedBlobs lists up to 1000 blobs unreferenced since before cutoff.
func (s *Store) unreferencedBlobs(ctx context.Context, cutoff int64) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT hash FROM blobs WHERE refs <= 0 AND created < ? LIMIT 1000`, cutoff)
	if err != nil {
		return nil, fmt.Errorf("sweep blobs: %w", err)
	}
	defer rows.Close()
	var hashes []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("sweep blobs: %w", err)
		}
		hashes = append(hashes, h)
	}
	return hashes, rows.Err()
}

// SweepOrphanBlobs removes blobs older than grace that no transaction ever
// registered: left by a sealing or an upload that failed (or a process
// that died) between writing its blobs and committing. It lists every
// stored blob, so it runs rarely. It returns how many blobs it removed.
func (s *Store) SweepOrphanBlobs(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	n := 0
	err := s.blobs.be.walk(ctx, cutoff, func(hash string) {
		var one int
		err := s.read.QueryRowContext(ctx, `SELECT 1 FROM blobs WHERE hash = ?`, hash).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) && s.blobs.be.remove(hash) == nil {
			n++
		}
	})
	if err != nil {
		return n, fmt.Errorf("sweep orphans: %w", err)
	}
	return n, nil
}
