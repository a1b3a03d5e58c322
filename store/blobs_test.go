package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"tollbridge/internal/testkit"

	"github.com/minio/minio-go/v7"

	"tollbridge/internal/s3test"
)

// blobBackends are the backends every blob test runs on.
var blobBackends = []string{"files", "s3"}

// blobStore is a store on one blob backend, its clock set to the real
// time (the S3 server stamps objects with it) and its options, to open
// the same store again.
type blobStore struct {
	*Store
	clk  *testkit.Clock
	dir  string
	opts Options
}

// eachBlobs runs fn on a new store of each blob backend, in parallel.
func eachBlobs(t *testing.T, fn func(t *testing.T, s *blobStore)) {
	for _, backend := range blobBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, openBlobStore(t, backend))
		})
	}
}

func openBlobStore(t *testing.T, backend string) *blobStore {
	t.Helper()
	clk := testkit.NewClock(time.Now())
	bs := &blobStore{clk: clk, dir: t.TempDir(), opts: Options{Now: clk.Now}}
	if backend == "s3" {
		b := s3test.New(t)
		bs.opts.S3 = &S3Options{Endpoint: b.Endpoint, Bucket: b.Name, AccessKey: b.AccessKey, SecretKey: b.SecretKey}
	}
	bs.reopen(t)
	return bs
}

// reopen opens the store (again) on the same directory and bucket.
func (bs *blobStore) reopen(t *testing.T) {
	t.Helper()
	s, err := Open(context.Background(), bs.dir, bs.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	bs.Store = s
}

// leftovers counts unfinished writes: temporary files, or temporary
// objects and multipart uploads.
func (bs *blobStore) leftovers(t *testing.T) int {
	t.Helper()
	switch be := bs.blobs.be.(type) {
	case *fileBlobs:
		entries, err := os.ReadDir(filepath.Join(be.dir, "tmp"))
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	case *s3Blobs:
		ctx := context.Background()
		n := 0
		for obj := range be.c.ListObjects(ctx, be.bucket, minio.ListObjectsOptions{Prefix: s3TmpPrefix, Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			n++
		}
		for up := range be.c.ListIncompleteUploads(ctx, be.bucket, "", true) {
			if up.Err != nil {
				t.Fatal(up.Err)
			}
			n++
		}
		return n
	}
	t.Fatalf("backend %T", bs.blobs.be)
	return 0
}

// pattern is n bytes that differ per seed, without holding them all.
func pattern(seed byte, n int64) io.Reader {
	block := bytes.Repeat([]byte{seed, 'x', seed ^ 0x55, '\n'}, 8192)
	return io.LimitReader(&repeatReader{block: block}, n)
}

type repeatReader struct {
	block []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	return n, nil
}

func sumOf(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

func TestBlobsPutOpen(t *testing.T) {
	t.Parallel()
	eachBlobs(t, func(t *testing.T, s *blobStore) {
		// Empty, small (one PUT on S3) and larger than one part (a
		// multipart upload of several parts, then a copy).
		for i, size := range []int64{0, 1000, s3SmallBlob + 1, 2*DefaultS3PartSize + 12345} {
			want, _ := sumOf(pattern(byte(i), size))
			ref, err := s.Blobs().Put(pattern(byte(i), size))
			if err != nil {
				t.Fatalf("put %d bytes: %v", size, err)
			}
			if ref.Hash != want || ref.Size != size {
				t.Fatalf("put %d bytes: %+v, want %s", size, ref, want)
			}
			r, err := s.Blobs().Open(ref.Hash)
			if err != nil {
				t.Fatal(err)
			}
			got, n := sumOf(r)
			r.Close()
			if got != want || n != size {
				t.Fatalf("read back %d bytes %s, want %d %s", n, got, size, want)
			}
			// The same bytes again: the same blob, still readable.
			if again, err := s.Blobs().Put(pattern(byte(i), size)); err != nil || again != ref {
				t.Fatalf("put again: %+v %v", again, err)
			}
			if err := s.Blobs().Sync(ref); err != nil {
				t.Fatal(err)
			}
		}
		if s.leftovers(t) != 0 {
			t.Fatal("temporary data left after commits")
		}
		missing := strings.Repeat("ab", 32)
		if _, err := s.Blobs().Open(missing); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing blob: %v", err)
		}
		if _, err := s.Blobs().Open("../x"); err == nil {
			t.Fatal("invalid name opened")
		}
	})
}

func TestBlobWriterAbort(t *testing.T) {
	t.Parallel()
	eachBlobs(t, func(t *testing.T, s *blobStore) {
		for _, size := range []int64{4, DefaultS3PartSize + 1} {
			w, err := s.Blobs().Create()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, pattern(1, size)); err != nil {
				t.Fatal(err)
			}
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			if n := s.leftovers(t); n != 0 {
				t.Fatalf("%d bytes aborted: %d temporary left", size, n)
			}
		}
	})
}

// A process that dies mid-write leaves an unfinished write (a temporary
// file, an unfinished multipart upload); the sweeper removes it once it
// is older than the grace period.
func TestSweepUnfinishedWrites(t *testing.T) {
	t.Parallel()
	eachBlobs(t, func(t *testing.T, s *blobStore) {
		w, err := s.Blobs().Create()
		if err != nil {
			t.Fatal(err)
		}
		// Past one part: on S3 the first part is uploaded when this returns.
		if _, err := io.Copy(w, pattern(2, DefaultS3PartSize+1)); err != nil {
			t.Fatal(err)
		}
		// Closing the store ends its requests, as a crash would: the
		// upload is neither completed nor aborted.
		s.Close()
		s.reopen(t)
		if n := s.leftovers(t); n != 1 {
			t.Fatalf("unfinished writes after the crash = %d, want 1", n)
		}
		ctx := context.Background()
		if _, err := s.SweepBlobs(ctx, time.Hour); err != nil || s.leftovers(t) != 1 {
			t.Fatalf("a young unfinished write is swept (%v)", err)
		}
		s.clk.Add(2 * time.Hour)
		if _, err := s.SweepBlobs(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := s.leftovers(t); n != 0 {
			t.Fatalf("%d unfinished writes left after the sweep", n)
		}
	})
}

func TestSweepOrphanBlobs(t *testing.T) {
	t.Parallel()
	eachBlobs(t, func(t *testing.T, s *blobStore) {
		ctx := context.Background()
		orphan := putBlob(t, s.Store, "never registered")
		kept := putBlob(t, s.Store, "registered")
		u := testUser(t, s.Store, "bob@example.net")
		if _, err := s.DeliverMessage(ctx, &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceMX, Blobs: map[string]BlobRef{"catalog": kept}}); err != nil {
			t.Fatal(err)
		}
		// Blobs younger than the grace period stay.
		if n, err := s.SweepOrphanBlobs(ctx, time.Hour); n != 0 || err != nil {
			t.Fatalf("young blobs removed: %d, %v", n, err)
		}
		s.clk.Add(48 * time.Hour)
		if n, err := s.SweepOrphanBlobs(ctx, 24*time.Hour); n != 1 || err != nil {
			t.Fatalf("removed %d, %v", n, err)
		}
		if _, err := s.Blobs().Open(orphan.Hash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("orphan still there: %v", err)
		}
		if _, err := s.Blobs().Open(kept.Hash); err != nil {
			t.Fatal("registered blob removed")
		}
	})
}

// A blob whose last reference went is removed by SweepBlobs after the
// grace period, with its row.
func TestSweepUnreferencedBlob(t *testing.T) {
	t.Parallel()
	eachBlobs(t, func(t *testing.T, s *blobStore) {
		ctx := context.Background()
		u := testUser(t, s.Store, "bob@example.net")
		s.CreateTicket(ctx, &Ticket{ID: "t_1", UserID: u.ID, Valid: true, Expires: s.clk.Now().Add(time.Minute), Blocks: 1, Bytes: 100})
		ref := putBlob(t, s.Store, "part")
		if err := s.PutUpload(ctx, "t_1", "blocks/b1", ref); err != nil {
			t.Fatal(err)
		}
		s.clk.Add(time.Minute)
		if up, _, err := s.SweepTickets(ctx, time.Hour); err != nil || up != 1 {
			t.Fatalf("sweep tickets = %d, %v", up, err)
		}
		s.clk.Add(2 * time.Hour)
		if n, err := s.SweepBlobs(ctx, time.Hour); err != nil || n != 1 {
			t.Fatalf("SweepBlobs = %d, %v", n, err)
		}
		if _, err := s.Blobs().Open(ref.Hash); !errors.Is(err, ErrNotFound) {
			t.Fatalf("swept blob still there: %v", err)
		}
	})
}

func TestBlobsSyncAll(t *testing.T) {
	t.Parallel()
	eachBlobs(t, func(t *testing.T, s *blobStore) {
		var refs []BlobRef
		for _, c := range []string{"one", "two"} {
			w, err := s.Blobs().Create()
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(c))
			ref, err := w.CommitUnsynced()
			if err != nil {
				t.Fatal(err)
			}
			refs = append(refs, ref)
		}
		if err := s.Blobs().SyncAll(refs); err != nil {
			t.Fatal(err)
		}
		s.Blobs().Remove(refs[1].Hash)
		if err := s.Blobs().SyncAll(refs); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a missing blob: %v", err)
		}
		if err := s.Blobs().Sync(refs[1]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Sync of a missing blob: %v", err)
		}
	})
}

// A message cannot reference a blob that is not stored: the transaction
// fails and nothing is half stored.
func TestRegisterMissingBlob(t *testing.T) {
	t.Parallel()
	eachBlobs(t, func(t *testing.T, s *blobStore) {
		ctx := context.Background()
		u := testUser(t, s.Store, "bob@example.net")
		ref := putBlob(t, s.Store, "gone")
		s.Blobs().Remove(ref.Hash)
		_, err := s.DeliverMessage(ctx, &NewMessage{UserID: u.ID, Header: []byte("{}"), Source: SourceMX, Blobs: map[string]BlobRef{"catalog": ref}})
		if err == nil {
			t.Fatal("a message with a missing blob was stored")
		}
		var n int
		s.read.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d messages stored", n)
		}
	})
}
