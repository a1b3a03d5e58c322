package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Blobs is the directory of content-addressed encrypted files. A blob's name
// is the lowercase hex SHA-256 of its bytes, which is also the sha256 the
// ticketed protocol's header names, so an uploaded part needs no renaming.
type Blobs struct {
	dir string
}

// BlobRef names one stored blob.
type BlobRef struct {
	Hash string // lowercase hex SHA-256 of the content
	Size int64
}

// openBlobs makes the directory with its 256 shards (and syncs it once),
// so committing a blob never creates a directory whose entry could be lost.
func openBlobs(dir string) (*Blobs, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("blobs %s: %w", dir, err)
	}
	created := false
	for i := 0; i < 256; i++ {
		shard := filepath.Join(dir, fmt.Sprintf("%02x", i))
		if _, err := os.Stat(shard); err == nil {
			continue
		}
		if err := os.Mkdir(shard, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("blobs %s: %w", dir, err)
		}
		created = true
	}
	if created {
		if err := syncDir(dir); err != nil {
			return nil, fmt.Errorf("blobs %s: %w", dir, err)
		}
	}
	return &Blobs{dir: dir}, nil
}

// path is dir/ab/abcdef…, two levels keep directories small.
func (b *Blobs) path(hash string) string {
	return filepath.Join(b.dir, hash[:2], hash)
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

// Open opens a blob for reading.
func (b *Blobs) Open(hash string) (*os.File, error) {
	if !ValidHash(hash) {
		return nil, fmt.Errorf("blob %q: invalid name", hash)
	}
	f, err := os.Open(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", hash, ErrNotFound)
	}
	return f, err
}

// Create starts writing a new blob. The caller writes the content, then
// Commits (file and directory fsynced, name known) or Aborts.
func (b *Blobs) Create() (*BlobWriter, error) {
	var rnd [12]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(b.dir, "tmp", hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	return &BlobWriter{blobs: b, f: f, tmp: tmp, h: sha256.New()}, nil
}

// BlobWriter writes one blob.
type BlobWriter struct {
	blobs *Blobs
	f     *os.File
	tmp   string
	h     hash.Hash
	n     int64
	done  bool
}

// Write appends to the blob.
func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
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
// message completes).
func (w *BlobWriter) CommitUnsynced() (BlobRef, error) { return w.commit(false) }

func (w *BlobWriter) commit(durable bool) (BlobRef, error) {
	if w.done {
		return BlobRef{}, errors.New("blob: already finished")
	}
	w.done = true
	ref := BlobRef{Hash: hex.EncodeToString(w.h.Sum(nil)), Size: w.n}
	if durable {
		if err := w.f.Sync(); err != nil {
			w.f.Close()
			os.Remove(w.tmp)
			return BlobRef{}, fmt.Errorf("blob sync: %w", err)
		}
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.tmp)
		return BlobRef{}, fmt.Errorf("blob close: %w", err)
	}
	final := w.blobs.path(ref.Hash)
	dir := filepath.Dir(final)
	if info, err := os.Stat(final); err == nil && info.Size() == ref.Size {
		// The same bytes are stored already (an upload repeated on another
		// ticket): keep that file, which an acknowledged message may rely on,
		// rather than replace it with one not yet synced.
		os.Remove(w.tmp)
		if durable {
			return ref, w.blobs.Sync(ref)
		}
		return ref, nil
	}
	if err := os.Rename(w.tmp, final); err != nil {
		os.Remove(w.tmp)
		return BlobRef{}, fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	if durable {
		if err := syncDir(dir); err != nil {
			return BlobRef{}, fmt.Errorf("blob %s: %w", ref.Hash, err)
		}
	}
	return ref, nil
}

// Sync makes a blob committed with CommitUnsynced durable, checking it is
// there with its size (after a machine crash it may not be).
func (b *Blobs) Sync(ref BlobRef) error {
	f, err := b.Open(ref.Hash)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() != ref.Size {
		return fmt.Errorf("blob %s: %d bytes on disk, %d expected: %w", ref.Hash, info.Size(), ref.Size, ErrNotFound)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(b.path(ref.Hash)))
}

// SyncAll makes a group of blobs committed with CommitUnsynced durable
// at once (on Linux with one syncfs(2) for the lot), checking each is
// there with its size. It is for many small blobs written together (an
// import), where an fsync per file would dominate.
func (b *Blobs) SyncAll(refs []BlobRef) error {
	if len(refs) == 0 {
		return nil
	}
	if err := b.syncFS(refs); err != nil {
		return fmt.Errorf("blobs sync: %w", err)
	}
	for _, ref := range refs {
		info, err := os.Stat(b.path(ref.Hash))
		if err != nil || info.Size() != ref.Size {
			return fmt.Errorf("blob %s: not on disk with %d bytes: %w", ref.Hash, ref.Size, ErrNotFound)
		}
	}
	return nil
}

// Abort discards the blob. It is safe after Commit (then it does nothing).
func (w *BlobWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.tmp)
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

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// registerBlob records a committed blob in tx so references to it count.
func (s *Store) registerBlob(ctx context.Context, tx *sql.Tx, ref BlobRef) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO blobs (hash, size, created) VALUES (?, ?, ?) ON CONFLICT (hash) DO NOTHING`,
		ref.Hash, ref.Size, s.unix())
	if err != nil {
		return fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	// The sweeper deletes files inside its own transaction, which is
	// serialised with ours: if the file is here now, it stays.
	if _, err := os.Stat(s.blobs.path(ref.Hash)); err != nil {
		return fmt.Errorf("blob %s: %w", ref.Hash, err)
	}
	return nil
}

// SweepBlobs deletes blobs that nothing has referenced for at least grace,
// and stray temporary files older than grace. It returns how many blobs it
// removed.
func (s *Store) SweepBlobs(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace).Unix()
	rows, err := s.read.QueryContext(ctx, `SELECT hash FROM blobs WHERE refs <= 0 AND created < ? LIMIT 1000`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("sweep blobs: %w", err)
	}
	var hashes []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return 0, err
		}
		hashes = append(hashes, h)
	}
	rows.Close()
	n := 0
	for _, h := range hashes {
		var deleted bool
		err := s.tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM blobs WHERE hash = ? AND refs <= 0`, h)
			if err != nil {
				return err
			}
			c, _ := res.RowsAffected()
			deleted = c == 1
			if deleted {
				// Removed inside the transaction: a concurrent writer that
				// re-registers the hash waits for us and then rewrites it.
				if err := os.Remove(s.blobs.path(h)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
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
	s.sweepTmp(cutoff)
	return n, nil
}

func (s *Store) sweepTmp(cutoff int64) {
	dir := filepath.Join(s.blobs.dir, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().Unix() < cutoff {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Remove deletes a blob file that no committed row references (a sealing
// that failed before its transaction). Referenced blobs are only removed
// by the sweeper.
func (b *Blobs) Remove(hash string) error {
	if !ValidHash(hash) {
		return fmt.Errorf("blob %q: invalid name", hash)
	}
	err := os.Remove(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// SweepOrphanBlobs removes blob files older than grace that no transaction
// ever registered: left by a sealing or an upload that failed between
// writing its files and committing. It walks the whole blob directory, so
// it runs rarely. It returns how many files it removed.
func (s *Store) SweepOrphanBlobs(ctx context.Context, grace time.Duration) (int, error) {
	cutoff := s.now().Add(-grace)
	shards, err := os.ReadDir(s.blobs.dir)
	if err != nil {
		return 0, fmt.Errorf("sweep orphans: %w", err)
	}
	n := 0
	for _, shard := range shards {
		if !shard.IsDir() || len(shard.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(s.blobs.dir, shard.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			info, err := f.Info()
			if err != nil || !ValidHash(f.Name()) || info.ModTime().After(cutoff) {
				continue
			}
			var one int
			err = s.read.QueryRowContext(ctx, `SELECT 1 FROM blobs WHERE hash = ?`, f.Name()).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) && s.blobs.Remove(f.Name()) == nil {
				n++
			}
		}
	}
	return n, nil
}
