package store

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A new file store makes no shard directories (256 mkdirs per store
// were most of what opening one cost); a shard is made, and its entry
// synced, when the first blob lands in it, for blobs committed durable
// or unsynced, and the blobs are found again after a reopen.
func TestFileBlobsMakeShardsOnFirstUse(t *testing.T) {
	t.Parallel()
	dir, opts := t.TempDir(), testOptions(t)
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	blobs := filepath.Join(dir, "blobs")
	if shards := shardDirs(t, blobs); len(shards) != 0 {
		t.Fatalf("a new store has %d shard directories, want none", len(shards))
	}
	durable, err := s.Blobs().Put(strings.NewReader("durable"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Blobs().Create()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("unsynced"))
	unsynced, err := w.CommitUnsynced()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Blobs().Sync(unsynced); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{durable.Hash[:2]: true, unsynced.Hash[:2]: true}
	if got := shardDirs(t, blobs); len(got) != len(want) || !want[got[0]] || !want[got[len(got)-1]] {
		t.Errorf("shards %v, want those of %s and %s", got, durable.Hash, unsynced.Hash)
	}
	s.Close()
	if s, err = Open(context.Background(), dir, opts); err != nil {
		t.Fatal(err)
	}
	for ref, content := range map[BlobRef]string{durable: "durable", unsynced: "unsynced"} {
		r, err := s.Blobs().Open(ref.Hash)
		if err != nil {
			t.Fatalf("%s after reopen: %v", content, err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if string(got) != content {
			t.Errorf("blob %s holds %q, want %q", ref.Hash, got, content)
		}
	}
}

// shardDirs lists the two-letter directories under a file store's blobs.
func shardDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var shards []string
	for _, e := range entries {
		if e.IsDir() && len(e.Name()) == 2 {
			shards = append(shards, e.Name())
		}
	}
	return shards
}
