package store

import (
	"context"
	"testing"
)

// BenchmarkOpenNew opens a store in a new directory and closes it: what
// every test that starts from an empty store pays (making the blob
// directory, applying every migration).
func BenchmarkOpenNew(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		s, err := Open(ctx, b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
