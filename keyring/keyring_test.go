package keyring

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/internal/gpgtest"
)

// cheap keeps Argon2 fast in tests; production uses the defaults.
var cheap = Protection{MemoryKiB: 1024, Passes: 1}

func TestNormalizeAndHash(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"Alice@Example.ORG":              "alice@example.org",
		"Alice <Alice@Example.org>":      "alice@example.org",
		" bob@example.net ":              "bob@example.net",
		"jürgen@bücher.example":          "jürgen@xn--bcher-kva.example",
		`"Doe, Jane" <Jane@Example.com>`: "jane@example.com",
	}
	for in, want := range cases {
		got, err := NormalizeAddress(in)
		if err != nil || got != want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "alice", "@example.org", "alice@", "a b@example.org", "<>", "a@b..c", "a@-x.example"} {
		if _, err := NormalizeAddress(bad); !errors.Is(err, ErrBadAddress) {
			t.Errorf("NormalizeAddress(%q) err = %v", bad, err)
		}
	}
	// printf alice@example.org | sha256sum
	h, _ := AddressHash("Alice@EXAMPLE.org")
	if h != "7a64adf28737ea90719cbdf0b1a87a5effff3753b79c91d717f4f4153ead0498" {
		t.Errorf("AddressHash = %s", h)
	}
}

func TestWKD(t *testing.T) {
	t.Parallel()
	// The example of draft-koch-openpgp-webkey-service.
	if got := WKDHash("Joe.Doe"); got != "iy9q119eutrkn8s1mk4r39qejnbu3n5q" {
		t.Errorf("WKDHash = %s", got)
	}
	u, _ := WKDURL("https://mail.example.org:8443/", "Joe.Doe@Example.ORG")
	want := "https://mail.example.org:8443/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=joe.doe"
	if u != want {
		t.Errorf("WKDURL = %s", u)
	}
	r, err := ParseWKDPath("/.well-known/openpgpkey/Example.ORG/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q")
	if err != nil || r.Domain != "example.org" || r.Hash != "iy9q119eutrkn8s1mk4r39qejnbu3n5q" {
		t.Errorf("ParseWKDPath = %+v, %v", r, err)
	}
	if r, err := ParseWKDPath("/.well-known/openpgpkey/example.org/policy"); err != nil || !r.Policy {
		t.Errorf("policy = %+v, %v", r, err)
	}
	for _, bad := range []string{
		"/.well-known/openpgpkey/example.org/hu/short",
		"/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q/x",
		"/.well-known/openpgpkey//hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q",
		"/.well-known/openpgpkey/ex ample.org/policy",
		"/.well-known/openpgpkey/example.org/hu/IY9Q119EUTRKN8S1MK4R39QEJNBU3N5Q",
		"/v1/tickets",
	} {
		if _, err := ParseWKDPath(bad); err == nil {
			t.Errorf("ParseWKDPath(%q) accepted", bad)
		}
	}
}

func FuzzParseWKDPath(f *testing.F) {
	f.Add("/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q")
	f.Add("/.well-known/openpgpkey/example.org/policy")
	f.Add("/.well-known/openpgpkey/%2e%2e/hu/x")
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParseWKDPath(p)
		if err != nil {
			return
		}
		if !validDomain(r.Domain) {
			t.Fatalf("bad domain accepted: %q", r.Domain)
		}
		if !r.Policy && !validZBase32Hash(r.Hash) {
			t.Fatalf("bad hash accepted: %q", r.Hash)
		}
		if strings.Contains(r.Domain, "..") || strings.Contains(r.Domain, "/") {
			t.Fatalf("path traversal in domain: %q", r.Domain)
		}
	})
}

func TestGenerateUnlock(t *testing.T) {
	t.Parallel()
	k, e, err := Generate("Alice@Example.org", []byte("s3cret"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	if k.Address != "alice@example.org" || k.Fingerprint != Fingerprint(e) || len(k.Fingerprint) != 40 {
		t.Fatalf("key = %+v", k)
	}
	pub, err := ReadKey(k.Public)
	if err != nil || pub.PrivateKey != nil || !HasAddress(pub, "alice@example.org") {
		t.Fatalf("public key: %v", err)
	}
	if pub.PrimaryKey.Version != 4 || pub.PrimaryKey.PubKeyAlgo != 22 || len(pub.Subkeys) != 1 || pub.Subkeys[0].PublicKey.PubKeyAlgo != 18 {
		t.Fatalf("key shape: v%d algo %d subkeys %d", pub.PrimaryKey.Version, pub.PrimaryKey.PubKeyAlgo, len(pub.Subkeys))
	}
	if bytes.Contains(k.Private, SerializeUnprotected(e)[20:60]) {
		t.Fatal("private key stored in the clear")
	}
	if _, err := Unlock(k.Private, []byte("wrong")); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	u, err := Unlock(k.Private, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	dk1, _ := DataKey(u)
	dk2, _ := DataKey(e)
	if dk1 != dk2 {
		t.Fatal("data key differs between unlocks")
	}
	armored, _ := ArmorPublic(k.Public)
	if !strings.HasPrefix(armored, "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		t.Fatalf("armor: %s", armored)
	}
}

func TestUnlockerSharesAndDrops(t *testing.T) {
	t.Parallel()
	k, _, _ := Generate("bob@example.net", []byte("pw"), cheap)
	u := NewUnlocker(2)
	ctx := context.Background()
	a, releaseA, err := u.Acquire(ctx, k.Address, k.Private, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Acquire(ctx, k.Address, k.Private, []byte("bad")); !errors.Is(err, ErrBadPassword) {
		t.Fatalf("cached wrong password: %v", err)
	}
	b, releaseB, err := u.Acquire(ctx, k.Address, k.Private, []byte("pw"))
	if err != nil || a != b {
		t.Fatalf("second session does not share the key: %v", err)
	}
	releaseA()
	releaseA() // idempotent
	if _, ok := u.Get(k.Address); !ok {
		t.Fatal("key dropped while a session is open")
	}
	releaseB()
	if _, ok := u.Get(k.Address); ok {
		t.Fatal("key kept after the last session closed")
	}
}

type memPins struct {
	mu      sync.Mutex
	pins    map[string][]byte
	offered map[string]string
}

func (m *memPins) PinnedKey(_ context.Context, a string) (string, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.pins[a]
	if !ok {
		return "", nil, ErrNoPin
	}
	e, _ := ReadKey(k)
	return Fingerprint(e), k, nil
}

func (m *memPins) PinKey(ctx context.Context, a, fp string, key []byte) (string, []byte, error) {
	m.mu.Lock()
	if _, ok := m.pins[a]; !ok {
		m.pins[a] = key
	}
	m.mu.Unlock()
	return m.PinnedKey(ctx, a)
}

func (m *memPins) OfferKey(_ context.Context, a, fp string, _ []byte) error {
	m.mu.Lock()
	m.offered[a] = fp
	m.mu.Unlock()
	return nil
}

func (m *memPins) ReplaceKey(_ context.Context, a, old, _ string, key []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, _ := ReadKey(m.pins[a])
	if e == nil || Fingerprint(e) != old {
		return errors.New("pin changed")
	}
	m.pins[a] = key
	return nil
}

// transitionKey makes a new key for addr whose user ID is certified by
// certifier (nil: none), as `bridge user rotate-key` does.
func transitionKey(t *testing.T, addr string, certifier *openpgp.Entity) []byte {
	t.Helper()
	_, next, err := Generate(addr, []byte("x"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	if certifier != nil {
		for name := range next.Identities {
			if err := next.SignIdentity(name, certifier, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := PublicBytes(next)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRemoteLookupFollowsTransition: a changed key whose user ID the
// pinned key certified replaces the pin without an admin (§3.1.4); one
// certified by any other key, or not at all, is still refused.
func TestRemoteLookupFollowsTransition(t *testing.T) {
	t.Parallel()
	_, old, err := Generate("carol@example.com", []byte("x"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := Generate("carol@example.com", []byte("x"), cheap)
	oldPub, _ := PublicBytes(old)
	var mu sync.Mutex
	serve := oldPub
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(serve)
	}))
	defer srv.Close()
	set := func(b []byte) { mu.Lock(); serve = b; mu.Unlock() }
	pins := &memPins{pins: map[string][]byte{}, offered: map[string]string{}}
	r := &Remote{Pins: pins}
	ctx := context.Background()
	if _, err := r.Lookup(ctx, srv.Client(), srv.URL, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	for what, key := range map[string][]byte{
		"certified by another key": transitionKey(t, "carol@example.com", other),
		"not certified":            transitionKey(t, "carol@example.com", nil),
	} {
		set(key)
		if _, err := r.Lookup(ctx, srv.Client(), srv.URL, "carol@example.com"); !errors.Is(err, ErrKeyChanged) {
			t.Errorf("%s: %v, want ErrKeyChanged", what, err)
		}
	}
	next := transitionKey(t, "carol@example.com", old)
	set(next)
	e, err := r.Lookup(ctx, srv.Client(), srv.URL, "carol@example.com")
	if err != nil {
		t.Fatalf("key certified by the pinned key: %v", err)
	}
	if p, _ := r.Pinned(ctx, "carol@example.com"); p == nil || Fingerprint(p) != Fingerprint(e) {
		t.Error("the new key is not pinned in place of the old")
	}
}

func TestRemoteLookupPinsAndRefusesChange(t *testing.T) {
	t.Parallel()
	k1, _, _ := Generate("carol@example.com", []byte("x"), cheap)
	k2, _, _ := Generate("carol@example.com", []byte("x"), cheap)
	var mu sync.Mutex
	serve := k1.Public
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := ParseWKDPath(r.URL.Path)
		if err != nil || req.Hash != WKDHash("carol") || r.URL.Query().Get("l") != "carol" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		w.Write(serve)
		mu.Unlock()
	}))
	defer srv.Close()
	pins := &memPins{pins: map[string][]byte{}, offered: map[string]string{}}
	r := &Remote{Pins: pins}
	ctx := context.Background()
	e, err := r.Lookup(ctx, srv.Client(), srv.URL, "Carol@Example.com")
	if err != nil || Fingerprint(e) != k1.Fingerprint {
		t.Fatalf("first lookup: %v", err)
	}
	mu.Lock()
	serve = k2.Public
	mu.Unlock()
	if _, err := r.Lookup(ctx, srv.Client(), srv.URL, "carol@example.com"); !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("changed key: %v", err)
	}
	if pins.offered["carol@example.com"] != k2.Fingerprint {
		t.Fatal("changed key not offered to the admin")
	}
	if p, err := r.Pinned(ctx, "carol@example.com"); err != nil || Fingerprint(p) != k1.Fingerprint {
		t.Fatalf("pinned: %v", err)
	}
	if _, err := r.Lookup(ctx, srv.Client(), srv.URL, "dave@example.com"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("unknown user: %v", err)
	}
	// A key that names no address of the domain is refused; one naming
	// another address of it (an alias's target) is the domain's word.
	k3, _, _ := Generate("mallory@example.org", []byte("x"), cheap)
	mu.Lock()
	serve = k3.Public
	mu.Unlock()
	var fe *FetchError
	if _, err := r.Lookup(ctx, srv.Client(), srv.URL, "carol@example.com"); !errors.As(err, &fe) || fe.Temporary() {
		t.Fatalf("foreign key: %v", err)
	}
}

// TestGnuPGUsesGeneratedKey imports a generated key into GnuPG, has gpg
// encrypt to it and sign with it, and checks both with go-crypto.
func TestGnuPGUsesGeneratedKey(t *testing.T) {
	t.Parallel()
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		t.Skip("gpg not installed")
	}
	k, e, err := Generate("erin@example.org", []byte("pw"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	defer exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
	run := func(stdin []byte, args ...string) []byte {
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always"}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	run(SerializeUnprotected(e), "--import")
	ct := run([]byte("hello from gnupg"), "--encrypt", "--recipient", "erin@example.org")
	md, err := openpgp.ReadMessage(bytes.NewReader(ct), openpgp.EntityList{e}, nil, nil)
	if err != nil {
		t.Fatalf("go-crypto cannot read gpg's message: %v", err)
	}
	pt, _ := io.ReadAll(md.UnverifiedBody)
	if string(pt) != "hello from gnupg" {
		t.Fatalf("plaintext = %q", pt)
	}
	sig := run([]byte("signed text"), "--detach-sign", "--local-user", k.Fingerprint)
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{e}, strings.NewReader("signed text"), bytes.NewReader(sig), nil); err != nil {
		t.Fatalf("gpg's signature does not verify: %v", err)
	}
}

// TestGnuPGChecksTransition: GnuPG verifies the certification a key
// transition rests on (§3.1.4): with the old key imported, `gpg
// --check-sigs` reports the new key's user ID certified by it as good.
func TestGnuPGChecksTransition(t *testing.T) {
	t.Parallel()
	g := gpgtest.New(t)
	_, old, err := Generate("carol@example.com", []byte("x"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	g.ImportPublic(old)
	next := transitionKey(t, "carol@example.com", old)
	g.MustRun(next, "--import")
	e, err := ReadKey(next)
	if err != nil {
		t.Fatal(err)
	}
	// Only the new key's signatures: the old key's own self-signature
	// must not count.
	out, _ := g.MustRun(nil, "--with-colons", "--check-sigs", Fingerprint(e))
	want := "sig:!::"
	oldID := strings.ToUpper(Fingerprint(old)[24:])
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, want) && strings.Contains(line, oldID) {
			found = true
		}
	}
	if !found {
		t.Fatalf("gpg finds no good certification by the old key %s:\n%s", oldID, out)
	}
}

// TestRemoteLookupAliasKey: for an alias the domain's server serves its
// target user's key, which names the user, not the alias; it is accepted
// and pinned for the alias (docs/protocol.md §3.1.2).
func TestRemoteLookupAliasKey(t *testing.T) {
	t.Parallel()
	carol, _, err := Generate("carol@example.com", []byte("x"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(carol.Public) }))
	defer srv.Close()
	r := &Remote{Pins: &memPins{pins: map[string][]byte{}, offered: map[string]string{}}}
	e, err := r.Lookup(context.Background(), srv.Client(), srv.URL, "sales@example.com")
	if err != nil || Fingerprint(e) != carol.Fingerprint {
		t.Fatalf("alias sales@example.com served carol's key: %v", err)
	}
	if _, err := r.Lookup(context.Background(), srv.Client(), srv.URL, "sales@example.net"); err == nil {
		t.Fatal("a key naming only example.com accepted for an example.net address")
	}
}

// TestRemoteServerKeySignsOnly: a server key (receipts@DOMAIN, §3.7) need
// not encrypt, as another implementation's Ed25519-only key does not; it
// must name receipts@ itself, not just an address of the domain.
func TestRemoteServerKeySignsOnly(t *testing.T) {
	t.Parallel()
	signOnly, err := openpgp.NewEntity("", "", "receipts@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	signOnly.Subkeys = nil // primary Ed25519/RSA key only: it signs, it cannot encrypt
	signOnlyPub, _ := PublicBytes(signOnly)
	user, _, _ := Generate("carol@example.com", []byte("x"), cheap)
	var mu sync.Mutex
	serve := signOnlyPub
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(serve)
	}))
	defer srv.Close()
	r := &Remote{Pins: &memPins{pins: map[string][]byte{}, offered: map[string]string{}}}
	if _, err := r.Lookup(context.Background(), srv.Client(), srv.URL, "receipts@example.com"); err != nil {
		t.Fatalf("sign-only server key refused: %v", err)
	}
	mu.Lock()
	serve = user.Public
	mu.Unlock()
	r = &Remote{Pins: &memPins{pins: map[string][]byte{}, offered: map[string]string{}}}
	if _, err := r.Lookup(context.Background(), srv.Client(), srv.URL, "receipts@example.com"); err == nil {
		t.Fatal("a user's key accepted as the server key of its domain")
	}
}
