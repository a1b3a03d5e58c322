package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"tollbridge/outbox"
)

// DKIM selectors. Each local domain has two keys, published as
// tb-ed._domainkey.DOMAIN (Ed25519, RFC 8463) and tb-rsa._domainkey.DOMAIN
// (RSA-2048, for the many verifiers without Ed25519), and legacy mail
// carries both signatures. The names are fixed, not dated: a key is
// replaced by deleting its file (a new one is made on the next start) and
// publishing the new record that `bridge dns` prints.
var dkimSelectors = []struct {
	name string
	gen  func() (crypto.Signer, error)
}{
	{"tb-ed", func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{"tb-rsa", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
}

// dkimKeyPath is where a domain's key for a selector lives:
// data_dir/keys/dkim/DOMAIN.SELECTOR.key, PKCS #8 PEM, mode 0600.
func dkimKeyPath(dataDir, domain, selector string) string {
	return filepath.Join(dataDir, "keys", "dkim", domain+"."+selector+".key")
}

// loadOrCreateDKIM returns every local domain's DKIM keys, creating those
// that do not exist yet (`bridge init`, and a domain added to the config
// later gets its keys on the next start).
func loadOrCreateDKIM(dataDir string, domains []string) (map[string][]outbox.DKIMKey, error) {
	keys := make(map[string][]outbox.DKIMKey, len(domains))
	for _, d := range domains {
		for _, sel := range dkimSelectors {
			path := dkimKeyPath(dataDir, d, sel.name)
			k, err := loadOrCreateKey(path, sel.gen)
			if err != nil {
				return nil, fmt.Errorf("DKIM key %s: %w", path, err)
			}
			keys[d] = append(keys[d], outbox.DKIMKey{Selector: sel.name, Signer: k})
		}
	}
	return keys, nil
}

// loadDKIM reads the keys of the given domains without creating any: the
// keys that `bridge dns` and `bridge check` describe must be the ones
// the bridge signs with.
func loadDKIM(dataDir string, domains []string) (map[string][]outbox.DKIMKey, error) {
	keys := make(map[string][]outbox.DKIMKey, len(domains))
	for _, d := range domains {
		for _, sel := range dkimSelectors {
			path := dkimKeyPath(dataDir, d, sel.name)
			k, err := readKey(path)
			if err != nil {
				return nil, fmt.Errorf("DKIM key %s: %w (run bridge init or bridge serve once to create it)", path, err)
			}
			keys[d] = append(keys[d], outbox.DKIMKey{Selector: sel.name, Signer: k})
		}
	}
	return keys, nil
}

func loadOrCreateKey(path string, gen func() (crypto.Signer, error)) (crypto.Signer, error) {
	k, err := readKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = gen(); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return k, writeFileSync(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM PRIVATE KEY")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

// writeFileSync writes a secret file (0600) under a temporary name,
// fsyncs it and renames it into place, so a crash leaves no half key that
// would stop the next start.
func writeFileSync(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// newResolver returns the resolver for every lookup the bridge makes:
// the [dns] resolver server when addr is set, else the system's.
//
// StrictErrors is on in both cases: a SERVFAIL or timeout must come back
// as a temporary error, not be hidden by a partial answer or by an
// NXDOMAIN for a search-list name tried after it, which the outbox would
// take as "the domain does not exist" and bounce at once.
func newResolver(addr string) *net.Resolver {
	if addr == "" {
		return &net.Resolver{StrictErrors: true}
	}
	return &net.Resolver{
		PreferGo:     true,
		StrictErrors: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}
