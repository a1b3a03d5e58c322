package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// fileBlobs keeps blobs as files under one directory: dir/ab/abcdef…,
// written in dir/tmp and renamed into place.
type fileBlobs struct {
	dir string
}

// openFileBlobs makes the directory and its tmp/. The 256 shards are made
// as blobs first land in them (see place): making them all up front cost
// 256 mkdirs per new store and 256 stats per open.
func openFileBlobs(dir string) (*fileBlobs, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("blobs %s: %w", dir, err)
	}
	return &fileBlobs{dir: dir}, nil
}

// place renames tmp to final, making final's shard first when it is
// missing. The new shard's entry is synced before the blob goes in, even
// for a blob committed unsynced (sync later fsyncs the shard, not its
// parent), so a blob made durable never sits in a directory a crash could
// lose. That is one fsync per shard in a store's life.
func (b *fileBlobs) place(tmp, final string) error {
	err := os.Rename(tmp, final)
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Mkdir(filepath.Dir(final), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := syncDir(b.dir); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// path is dir/ab/abcdef…, two levels keep directories small.
func (b *fileBlobs) path(hash string) string {
	return filepath.Join(b.dir, hash[:2], hash)
}

func (b *fileBlobs) open(hash string) (io.ReadCloser, error) {
	f, err := os.Open(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (b *fileBlobs) size(hash string) (int64, error) {
	info, err := os.Stat(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

func (b *fileBlobs) create() (blobSink, error) {
	var rnd [12]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(b.dir, "tmp", hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &fileSink{blobs: b, f: f, tmp: tmp}, nil
}

// fileSink is a blob being written to a temporary file.
type fileSink struct {
	blobs *fileBlobs
	f     *os.File
	tmp   string
}

func (w *fileSink) Write(p []byte) (int, error) { return w.f.Write(p) }

// commit renames the temporary file to the content name, with the file
// and the directory fsynced when durable.
func (w *fileSink) commit(ref BlobRef, durable bool) error {
	if durable {
		if err := w.f.Sync(); err != nil {
			w.f.Close()
			os.Remove(w.tmp)
			return fmt.Errorf("sync: %w", err)
		}
	}
	if err := w.f.Close(); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("close: %w", err)
	}
	final := w.blobs.path(ref.Hash)
	if info, err := os.Stat(final); err == nil && info.Size() == ref.Size {
		// The same bytes are stored already (an upload repeated on another
		// ticket): keep that file, which an acknowledged message may rely on,
		// rather than replace it with one not yet synced.
		os.Remove(w.tmp)
		if durable {
			return w.blobs.sync(ref)
		}
		return nil
	}
	if err := w.blobs.place(w.tmp, final); err != nil {
		os.Remove(w.tmp)
		return err
	}
	if durable {
		return syncDir(filepath.Dir(final))
	}
	return nil
}

func (w *fileSink) abort() error {
	w.f.Close()
	return os.Remove(w.tmp)
}

func (b *fileBlobs) sync(ref BlobRef) error {
	f, err := os.Open(b.path(ref.Hash))
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if info.Size() != ref.Size {
		return fmt.Errorf("%d bytes on disk, %d expected: %w", info.Size(), ref.Size, ErrNotFound)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(b.path(ref.Hash)))
}

func (b *fileBlobs) syncAll(refs []BlobRef) error {
	if err := b.syncFS(refs); err != nil {
		return err
	}
	for _, ref := range refs {
		info, err := os.Stat(b.path(ref.Hash))
		if err != nil || info.Size() != ref.Size {
			return fmt.Errorf("blob %s: not on disk with %d bytes: %w", ref.Hash, ref.Size, ErrNotFound)
		}
	}
	return nil
}

func (b *fileBlobs) remove(hash string) error {
	err := os.Remove(b.path(hash))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// walk reads every shard; files younger than cutoff are left out.
func (b *fileBlobs) walk(ctx context.Context, cutoff time.Time, fn func(hash string)) error {
	shards, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	for _, shard := range shards {
		if !shard.IsDir() || len(shard.Name()) != 2 {
			continue
		}
		files, err := os.ReadDir(filepath.Join(b.dir, shard.Name()))
		if err != nil {
			continue
		}
		for _, f := range files {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			info, err := f.Info()
			if err != nil || !ValidHash(f.Name()) || info.ModTime().After(cutoff) {
				continue
			}
			fn(f.Name())
		}
	}
	return nil
}

// sweepTmp removes temporary files left by writers that died.
func (b *fileBlobs) sweepTmp(ctx context.Context, cutoff time.Time) {
	dir := filepath.Join(b.dir, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func (b *fileBlobs) close() error { return nil }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
