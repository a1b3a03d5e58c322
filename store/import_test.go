package store

import (
	"context"
	"errors"
	"testing"
)

func TestBlobsSyncAll(t *testing.T) {
	t.Parallel()
	st, err := Open(context.Background(), t.TempDir(), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var refs []BlobRef
	for _, s := range []string{"one", "two"} {
		w, err := st.Blobs().Create()
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(s))
		ref, err := w.CommitUnsynced()
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	if err := st.Blobs().SyncAll(refs); err != nil {
		t.Fatal(err)
	}
	st.Blobs().Remove(refs[1].Hash)
	if err := st.Blobs().SyncAll(refs); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a missing blob: %v", err)
	}
}
