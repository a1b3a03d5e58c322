package main

import (
	"crypto/ed25519"
	"crypto/rsa"
	"os"
	"testing"
)

// Each domain gets an Ed25519 and an RSA-2048 key, in 0600 files, made
// once and read back unchanged; loadDKIM never makes one.
func TestDKIMKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := loadDKIM(dir, []string{"example.org"}); err == nil {
		t.Fatal("loadDKIM made or found keys in an empty data dir")
	}
	first, err := loadOrCreateDKIM(dir, []string{"example.org"})
	if err != nil {
		t.Fatal(err)
	}
	ks := first["example.org"]
	if len(ks) != 2 || ks[0].Selector != "tb-ed" || ks[1].Selector != "tb-rsa" {
		t.Fatalf("keys %+v", ks)
	}
	if _, ok := ks[0].Signer.(ed25519.PrivateKey); !ok {
		t.Errorf("tb-ed is %T", ks[0].Signer)
	}
	if k, ok := ks[1].Signer.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("tb-rsa is %T", ks[1].Signer)
	}
	for _, sel := range []string{"tb-ed", "tb-rsa"} {
		fi, err := os.Stat(dkimKeyPath(dir, "example.org", sel))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", sel, fi.Mode(), err)
		}
	}
	again, err := loadDKIM(dir, []string{"example.org"})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range again["example.org"] {
		r1, _ := k.Record()
		r2, _ := ks[i].Record()
		if r1 != r2 {
			t.Errorf("%s changed on reload", k.Selector)
		}
	}
}
