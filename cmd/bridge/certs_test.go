package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCertReloadsAfterRenewal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := selfSigned(cert, key, "mail.example.org"); err != nil {
		t.Fatal(err)
	}
	r, err := newCertReloader(cert, key, testLog())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.GetCertificate(nil)
	if err := selfSigned(cert, key, "mail.example.org"); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(cert, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if same, _ := r.GetCertificate(nil); !bytes.Equal(same.Certificate[0], first.Certificate[0]) {
		t.Fatal("reloaded within the minute")
	}
	r.mu.Lock()
	r.checked = time.Time{}
	r.mu.Unlock()
	renewed, err := r.GetCertificate(nil)
	if err != nil || bytes.Equal(renewed.Certificate[0], first.Certificate[0]) {
		t.Fatalf("renewed certificate not served: %v", err)
	}
	// A broken renewal keeps the last good certificate.
	os.WriteFile(cert, []byte("garbage"), 0o600)
	os.Chtimes(cert, time.Now().Add(2*time.Minute), time.Now().Add(2*time.Minute))
	r.mu.Lock()
	r.checked = time.Time{}
	r.mu.Unlock()
	if kept, err := r.GetCertificate(nil); err != nil || !bytes.Equal(kept.Certificate[0], renewed.Certificate[0]) {
		t.Fatalf("broken renewal: %v", err)
	}
}
