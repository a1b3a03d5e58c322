package conformance_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"
	"time"
)

// TestUploadsDeletedAfterExpiry: §3.3 "Uploads of a ticket that never
// completes are deleted after the ticket expires." Catalog and parts are
// uploaded on a valid ticket that is never completed; the site's clock
// then passes the ticket's expiry and the sweeps run as `bridge serve`
// runs them every minute. The upload rows go at expiry, the blob files
// once unreferenced for the sweeper's grace, and the ticket answers 410
// until it is forgotten 24 h later, 404 after (§3.3.2 "this
// implementation").
func TestUploadsDeletedAfterExpiry(t *testing.T) {
	t.Parallel()
	s := newSite(t, siteOptions{bits: 8, count: 1})
	ctx := context.Background()
	m := s.sample(nil)
	before := blobFiles(t, s.dir)
	id := s.validTicket(m)
	s.api.expect(200, "PUT", "/v1/tickets/"+id+"/catalog", m.catalog)
	for _, p := range m.parts {
		s.api.expect(200, "PUT", "/v1/tickets/"+id+"/"+p.kind+"s/"+p.id, p.sealed)
	}
	var uploaded []string
	for f := range blobFiles(t, s.dir) {
		if !before[f] {
			uploaded = append(uploaded, f)
		}
	}
	if ups, err := s.st.Uploads(ctx, id); err != nil || len(ups) != 1+len(m.parts) || len(uploaded) != 1+len(m.parts) {
		t.Fatalf("after the uploads: %d upload rows (%v), %d new blob files; want %d of each", len(ups), err, len(uploaded), 1+len(m.parts))
	}
	put := func(want int, when string) {
		t.Helper()
		s.api.check(want, "PUT", "/v1/tickets/"+id+"/catalog", m.catalog, "§3.3 upload "+when)
	}

	// Not yet expired: the sweeps leave everything.
	s.clock.Add(expiry - time.Second)
	s.sweep()
	if ups, _ := s.st.Uploads(ctx, id); len(ups) != 1+len(m.parts) {
		t.Fatalf("a second before expiry the sweep left %d of %d uploads", len(ups), 1+len(m.parts))
	}
	put(200, "a second before expiry")

	s.clock.Add(time.Second) // now = expires: expired (§3.2.2)
	s.sweep()
	if ups, err := s.st.Uploads(ctx, id); err != nil || len(ups) != 0 {
		t.Errorf("at expiry the sweep left %d uploads (%v) of a ticket that never completed (§3.3)", len(ups), err)
	}
	put(410, "on an expired ticket")

	s.clock.Add(time.Hour + time.Minute)
	s.sweep()
	for f := range blobFiles(t, s.dir) {
		for _, u := range uploaded {
			if f == u {
				t.Errorf("blob file %s of an expired ticket's upload still there an hour after expiry (§3.3)", f)
			}
		}
	}
	put(410, "an hour after expiry")

	s.clock.Add(24 * time.Hour)
	s.sweep()
	put(404, "a day after expiry (the ticket is forgotten)")
}

// sweep runs the store's sweeps as `bridge serve` does every minute
// (cmd/bridge serve.go maintain): tickets kept 24 h after expiry, blobs
// unreferenced for an hour.
func (s *site) sweep() {
	s.t.Helper()
	ctx := context.Background()
	if _, _, err := s.st.SweepTickets(ctx, 24*time.Hour); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.st.SweepBlobs(ctx, time.Hour); err != nil {
		s.t.Fatal(err)
	}
}

// blobFiles lists the blob files under dir/data/blobs (not the unfinished
// writes under tmp), by path relative to it.
func blobFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	root := filepath.Join(dir, "data", "blobs")
	out := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "tmp" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			out[rel] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
