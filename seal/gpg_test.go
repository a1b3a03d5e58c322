package seal

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// GnuPG interoperability (DESIGN.md §3.4: PKESK || part is a complete
// OpenPGP message GnuPG 2.2 decrypts). These tests run gpg; they skip only
// when gpg is not installed (CI installs Debian's gnupg 2.2).

// gnupg is a throwaway GnuPG home.
type gnupg struct {
	t    *testing.T
	home string
}

func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	// A short path: gpg-agent's socket lives in the home directory and
	// Unix socket paths are limited to ~107 bytes.
	home, err := os.MkdirTemp("", "sg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gnupg{t: t, home: home}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = g.env()
		kill.Run() // best effort: no agent may have started
		os.RemoveAll(home)
	})
	return g
}

func (g *gnupg) env() []string {
	return append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C")
}

// run runs gpg with stdin and returns stdout and stderr, which carries the
// status lines ([GNUPG:] ...).
func (g *gnupg) run(stdin []byte, args ...string) (stdout []byte, stderr string, err error) {
	base := []string{"--batch", "--no-tty", "--yes", "--pinentry-mode", "loopback",
		"--trust-model", "always", "--status-fd", "2", "--no-auto-key-locate"}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Env = g.env()
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.String(), err
}

func (g *gnupg) mustRun(stdin []byte, args ...string) ([]byte, string) {
	g.t.Helper()
	out, status, err := g.run(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, status)
	}
	return out, status
}

func (g *gnupg) importSecret(e *openpgp.Entity) {
	g.t.Helper()
	var buf bytes.Buffer
	if err := e.SerializePrivate(&buf, nil); err != nil {
		g.t.Fatal(err)
	}
	g.mustRun(buf.Bytes(), "--import")
}

func (g *gnupg) importPublic(e *openpgp.Entity) {
	g.t.Helper()
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		g.t.Fatal(err)
	}
	g.mustRun(buf.Bytes(), "--import")
}

func fpr(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

func wantStatus(t *testing.T, status string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(status, "[GNUPG:] "+l) {
			t.Errorf("status lacks %q:\n%s", l, status)
		}
	}
}

// TestGnuPGReadsOurs: gpg decrypts PKESK || catalog (checking the sender's
// signature) and PKESK || part, and --list-packets shows our profile.
func TestGnuPGReadsOurs(t *testing.T) {
	t.Parallel()
	g := newGnuPG(t)
	alice, bob := newEntity(t, "alice"), newEntity(t, "bob")
	g.importSecret(bob)
	g.importPublic(alice)

	s := sealMessage(t, alice, 0, 1, 3*chunkSize+17)
	h, err := s.key.NewHeader(addrHash("alice@example.org"), addrHash("bob@example.org"), bob, s.ref, s.refs)
	if err != nil {
		t.Fatal(err)
	}
	pkesk, err := h.pkesk()
	if err != nil {
		t.Fatal(err)
	}
	msg := append(bytes.Clone(pkesk), s.catalog...)
	out, status := g.mustRun(msg, "--decrypt")
	if string(out) != testCatalog {
		t.Fatalf("gpg decrypted catalog to %q", out)
	}
	wantStatus(t, status, "DECRYPTION_INFO 2 9", "GOODMDC", "DECRYPTION_OKAY",
		"GOODSIG "+fpr(alice)[24:], "VALIDSIG "+fpr(alice))
	if strings.Contains(status, "BADSIG") || strings.Contains(status, "ERRSIG") {
		t.Fatalf("bad signature:\n%s", status)
	}

	listing, _ := g.mustRun(msg, "--list-packets")
	lst := string(listing)
	for _, want := range []string{
		":pubkey enc packet: version 3, algo 18, keyid " + fmt.Sprintf("%016X", mustEncKey(t, bob).KeyId),
		":encrypted data packet:", "mdc_method: 2",
		":onepass_sig packet: keyid " + fmt.Sprintf("%016X", alice.PrimaryKey.KeyId),
		":literal data packet:", "mode b (62), created 0, name=\"\"",
		":signature packet: algo 22, keyid " + fmt.Sprintf("%016X", alice.PrimaryKey.KeyId),
		"version 4, created", "md5len 0, sigclass 0x00", "digest algo 8",
	} {
		if !strings.Contains(lst, want) {
			t.Errorf("--list-packets lacks %q:\n%s", want, lst)
		}
	}
	if strings.Contains(lst, "compressed packet") {
		t.Errorf("compression packet:\n%s", lst)
	}

	for i, part := range s.parts {
		out, status := g.mustRun(append(bytes.Clone(pkesk), part...), "--decrypt")
		if !bytes.Equal(out, s.plain[i]) {
			t.Fatalf("part %d: gpg decrypted %d bytes, want %d", i, len(out), len(s.plain[i]))
		}
		wantStatus(t, status, "DECRYPTION_INFO 2 9", "GOODMDC", "DECRYPTION_OKAY")
	}

	// Unsigned catalog: decrypts, no signature.
	unsigned := sealCatalog(t, s.key, []byte(testCatalog), nil)
	out, status = g.mustRun(append(bytes.Clone(pkesk), unsigned...), "--decrypt")
	if string(out) != testCatalog || strings.Contains(status, "SIG ") {
		t.Fatalf("unsigned catalog: %q\n%s", out, status)
	}

	// And gpg refuses a tampered part.
	bad := append(bytes.Clone(pkesk), s.parts[1]...)
	bad[len(bad)-5] ^= 1
	if _, status, err := g.run(bad, "--decrypt"); err == nil || strings.Contains(status, "GOODMDC") {
		t.Fatalf("gpg accepted a tampered part:\n%s", status)
	}
}

func mustEncKey(t *testing.T, e *openpgp.Entity) *packet.PublicKey {
	t.Helper()
	k, ok := e.EncryptionKey(timeNow())
	if !ok {
		t.Fatal("no encryption key")
	}
	return k.PublicKey
}

// TestWeReadGnuPG: gpg signs and encrypts a catalog and encrypts a part;
// we split its output into PKESK and SEIPD, Unwrap, open and verify.
func TestWeReadGnuPG(t *testing.T) {
	t.Parallel()
	g := newGnuPG(t)
	alice, bob := newEntity(t, "alice"), newEntity(t, "bob")
	g.importSecret(alice)
	g.importPublic(bob)
	// GnuPG 2.2 always writes PKESK v3 and SEIPD v1 (with MDC) for these
	// keys; no compression and AES-256 must be asked for.
	profile := []string{"--compress-algo", "none", "--cipher-algo", "AES256", "--digest-algo", "SHA256",
		"--recipient", fpr(bob)}

	out, _ := g.mustRun([]byte(testCatalog), append(profile, "--local-user", fpr(alice), "--sign", "--encrypt")...)
	pkesk, seipd := splitFirstPacket(t, out)
	k, err := Unwrap(pkesk, bob)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.OpenCatalog(bytes.NewReader(seipd), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Plaintext) != testCatalog || !c.Signed {
		t.Fatalf("catalog %q signed %v", c.Plaintext, c.Signed)
	}
	if v, err := c.Check(openpgp.EntityList{publicOnly(t, alice)}); v != VerdictPass {
		t.Fatalf("verdict %v: %v", v, err)
	}
	if v := c.Verify(openpgp.EntityList{bob}); v != VerdictFail {
		t.Fatalf("verdict with another key %v", v)
	}

	plain := pseudo(3*chunkSize+99, 21)
	out, _ = g.mustRun(plain, append(profile, "--encrypt")...)
	pkesk, seipd = splitFirstPacket(t, out)
	k, err = Unwrap(pkesk, bob)
	if err != nil {
		t.Fatal(err)
	}
	got, err := openPart(k, seipd)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("part from gpg: %v", err)
	}
	// A header carrying gpg's PKESK works too.
	h := &Header{Version: 1, From: addrHash("a"), To: addrHash("b"), KeyFingerprint: strings.ToLower(fpr(bob)),
		EncryptedKey: b64(pkesk), Catalog: RefOf(seipd)}
	b, _ := h.Marshal()
	h, err = ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SessionKey(bob); err != nil {
		t.Fatal(err)
	}
}

// splitFirstPacket splits an OpenPGP message into its first packet (which
// must be a PKESK) and the rest (which must be exactly one packet).
func splitFirstPacket(t *testing.T, msg []byte) (first, rest []byte) {
	t.Helper()
	r := bytes.NewReader(msg)
	p, err := packet.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.(*packet.EncryptedKey); !ok {
		t.Fatalf("first packet %T, want PKESK", p)
	}
	n := len(msg) - r.Len()
	first, rest = msg[:n], msg[n:]
	r = bytes.NewReader(rest)
	p, err = packet.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	se, ok := p.(*packet.SymmetricallyEncrypted)
	if !ok || se.Version != 1 || !se.IntegrityProtected {
		t.Fatalf("second packet %T %+v, want SEIPD v1", p, p)
	}
	if _, err := io.Copy(io.Discard, se.Contents); err != nil || r.Len() != 0 {
		t.Fatalf("more than one packet after the PKESK (%d bytes left, %v)", r.Len(), err)
	}
	return first, rest
}
