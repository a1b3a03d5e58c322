package imapout

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-imap/v2/imapclient"

	"tollbridge/internal/teststore"
	"tollbridge/keyring"
	"tollbridge/protocol"
	"tollbridge/seal"
	"tollbridge/store"
	"tollbridge/translate"
)

const hostname = "mx.test"

// env is a store, a server on a loopback listener and its users.
type env struct {
	t      testing.TB
	dir    string
	st     *store.Store
	srv    *Server
	addr   string
	cancel context.CancelFunc
	cfg    Options
	keys   map[string]*openpgp.Entity // every address's unlocked key (users and remote senders)
	served chan struct{}
	logs   io.Writer // server log output (discarded when nil)
	// jsonLogs, when set, gets the log in JSON too (set it, then restart).
	jsonLogs io.Writer
}

type envOption func(*Options)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvLogging(t, nil, opts...)
}

func newEnvLogging(t testing.TB, logs io.Writer, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), keys: map[string]*openpgp.Entity{}, logs: logs}
	var err error
	if e.st, err = store.Open(context.Background(), e.dir, store.Options{}); err != nil {
		t.Fatal(err)
	}
	// Decoys for unknown users are protected as test users' keys are, so
	// they cost what real users do here; that a decoy costs what a real
	// key costs is keyring's TestUnlockerUnknownUserCostsOneDerivation.
	unlocker := keyring.NewUnlocker(2)
	unlocker.Protection = teststore.Cheap
	e.cfg = Options{
		Hostname:   hostname,
		Unlocker:   unlocker,
		SpoolDir:   t.TempDir(),
		Guard:      &keyring.Guard{Delay: 50 * time.Millisecond},
		SenderKeys: e.senderKey,
	}
	e.cfg.Seal = e.appendSeal
	for _, o := range opts {
		o(&e.cfg)
	}
	e.start(t)
	t.Cleanup(e.stop)
	return e
}

func (e *env) start(t testing.TB) {
	t.Helper()
	logs := e.logs
	if logs == nil {
		logs = io.Discard
	}
	var h slog.Handler = slog.NewTextHandler(logs, nil)
	if e.jsonLogs != nil {
		h = slog.NewMultiHandler(h, slog.NewJSONHandler(e.jsonLogs, nil))
	}
	opts := e.cfg
	opts.Store, opts.Logger = e.st, slog.New(h)
	e.srv = New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.served = make(chan struct{})
	go func() {
		defer close(e.served)
		if err := e.srv.Serve(ctx, ln); err != nil {
			t.Error(err)
		}
	}()
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.served
	e.srv.Close()
	e.st.Close()
	e.cancel = nil
}

// restart closes server and store and opens them again on the same data.
func (e *env) restart(t testing.TB) {
	t.Helper()
	e.stop()
	var err error
	if e.st, err = store.Open(context.Background(), e.dir, store.Options{}); err != nil {
		t.Fatal(err)
	}
	e.start(t)
}

func (e *env) senderKey(_ context.Context, address string) (*openpgp.Entity, error) {
	k, ok := e.keys[address]
	if !ok {
		return nil, fmt.Errorf("no key for %s: %w", address, keyring.ErrNoSuchUser)
	}
	return k, nil
}

var testKeys sync.Map // address -> *keyring.UserKey + entity, generated once per test binary

type cachedKey struct {
	uk *keyring.UserKey
	e  *openpgp.Entity
}

func userKey(t testing.TB, addr, password string) cachedKey {
	t.Helper()
	if k, ok := testKeys.Load(addr + "\x00" + password); ok {
		return k.(cachedKey)
	}
	uk, ent, err := keyring.Generate(addr, []byte(password), teststore.Cheap)
	if err != nil {
		t.Fatal(err)
	}
	k := cachedKey{uk, ent}
	testKeys.Store(addr+"\x00"+password, k)
	return k
}

// addUser creates a local user with password "secret-"+address.
func (e *env) addUser(addr string) *store.User {
	e.t.Helper()
	k := userKey(e.t, addr, password(addr))
	hash, _ := keyring.AddressHash(addr)
	u := &store.User{Address: k.uk.Address, AddressHash: hash, WKDName: addr, Fingerprint: k.uk.Fingerprint,
		PublicKey: k.uk.Public, PrivateKey: k.uk.Private}
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	e.keys[u.Address] = k.e
	return u
}

func password(addr string) string { return "secret-" + addr }

// remoteSender makes a signing key for an address that is not local.
func (e *env) remoteSender(addr string) *openpgp.Entity {
	e.t.Helper()
	k := userKey(e.t, addr, "x")
	e.keys[addr] = k.e
	return k.e
}

// sealed holds a sealed message's parts before it is stored.
type blobSink struct {
	blobs *store.Blobs
	key   *seal.SessionKey
	refs  map[string]store.BlobRef
	parts []protocol.HeaderPart
}

type blobPart struct {
	sink *blobSink
	id   string
	kind string
	bw   *store.BlobWriter
	enc  io.WriteCloser
}

func (s *blobSink) CreatePart(id, kind string) (translate.PartWriter, error) {
	bw, err := s.blobs.Create()
	if err != nil {
		return nil, err
	}
	enc, err := s.key.EncryptPart(bw)
	if err != nil {
		bw.Abort()
		return nil, err
	}
	return &blobPart{sink: s, id: id, kind: kind, bw: bw, enc: enc}, nil
}

func (p *blobPart) Write(b []byte) (int, error) { return p.enc.Write(b) }
func (p *blobPart) Abort() error                { return p.bw.Abort() }
func (p *blobPart) Commit() error {
	if err := p.enc.Close(); err != nil {
		p.bw.Abort()
		return err
	}
	ref, err := p.bw.Commit()
	if err != nil {
		return err
	}
	p.sink.refs[p.id] = ref
	p.sink.parts = append(p.sink.parts, protocol.HeaderPart{ID: p.id, Kind: p.kind, Size: ref.Size, SHA256: ref.Hash})
	return nil
}

// sealMessage seals raw to recipient's key as sent by from (signed by
// signer when not nil), the way the ticketed protocol carries it.
func sealMessage(blobs *store.Blobs, raw []byte, from, to string, recipient, signer *openpgp.Entity, stripBcc bool) (*store.NewMessage, error) {
	key, err := seal.NewSessionKey()
	if err != nil {
		return nil, err
	}
	sink := &blobSink{blobs: blobs, key: key, refs: map[string]store.BlobRef{}}
	cat, err := translate.Split(bytes.NewReader(raw), int64(len(raw)), sink, translate.Options{StripBcc: stripBcc})
	if err != nil {
		return nil, err
	}
	plain, err := cat.Marshal()
	if err != nil {
		return nil, err
	}
	var enc bytes.Buffer
	if err := key.SealCatalog(&enc, plain, signer); err != nil {
		return nil, err
	}
	ref, err := blobs.Put(bytes.NewReader(enc.Bytes()))
	if err != nil {
		return nil, err
	}
	sink.refs["catalog"] = ref
	h, err := key.NewHeader(recipient, protocol.Header{From: addrHash(from), To: addrHash(to), Catalog: protocol.RefOf(enc.Bytes()), Parts: sink.parts})
	if err != nil {
		return nil, err
	}
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	return &store.NewMessage{Header: hb, Blobs: sink.refs}, nil
}

func addrHash(a string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(a)))
	return hex.EncodeToString(sum[:])
}

// appendSeal is Options.Seal for tests: seal to the user's own key, unsigned.
func (e *env) appendSeal(_ context.Context, u *store.User, src io.ReaderAt, size int64) (*store.NewMessage, error) {
	pub, err := keyring.ReadKey(u.PublicKey)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, size)
	if _, err := src.ReadAt(raw, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return sealMessage(e.st.Blobs(), raw, u.Address, u.Address, pub, nil, false)
}

// delivery describes a message to deliver.
type delivery struct {
	from     string          // envelope sender (default: the From: address)
	signer   *openpgp.Entity // nil: unsigned
	source   string          // default ticket
	trace    string
	mailbox  string // "" delivers unfiled
	received time.Time
	noWork   bool // came on a ticket issued without work
	// authResults are the legacy checks' results stored with MX mail.
	authResults string
}

// deliver stores raw for u as it arrives (unfiled unless d.mailbox is set).
func (e *env) deliver(u *store.User, raw string, d delivery) *store.Delivered {
	e.t.Helper()
	if d.from == "" {
		d.from = fromOf(raw)
	}
	if d.source == "" {
		d.source = store.SourceTicket
	}
	if d.trace == "" {
		d.trace = "Received: from peer.example by " + hostname + "; Tue, 24 Nov 2026 10:00:00 +0000\r\n"
	}
	pub, err := keyring.ReadKey(u.PublicKey)
	if err != nil {
		e.t.Fatal(err)
	}
	nm, err := sealMessage(e.st.Blobs(), []byte(raw), d.from, u.Address, pub, d.signer, true)
	if err != nil {
		e.t.Fatal(err)
	}
	nm.UserID, nm.Source, nm.Trace, nm.Mailbox, nm.Received = u.ID, d.source, []byte(d.trace), d.mailbox, d.received
	nm.NoWork, nm.AuthResults = d.noWork, d.authResults
	del, err := e.st.DeliverMessage(context.Background(), nm)
	if err != nil {
		e.t.Fatal(err)
	}
	return del
}

var fromRE = regexp.MustCompile(`(?mi)^From:.*?<?([^<>\s]+@[^<>\s]+)>?\s*$`)

func fromOf(raw string) string {
	m := fromRE.FindStringSubmatch(raw)
	if m == nil {
		return "nobody@example.net"
	}
	return strings.ToLower(m[1])
}

// message builds a small test message.
func message(from, to, subject, body string) string {
	return crlf(fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nDate: Tue, 24 Nov 2026 10:00:00 +0000\nMessage-ID: <%s@test>\n\n%s\n",
		from, to, subject, strings.ReplaceAll(subject, " ", "."), body))
}

// login dials the server and logs in.
func (e *env) login(u *store.User, opts ...*imapclient.Options) *imapclient.Client {
	e.t.Helper()
	var o *imapclient.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c, err := imapclient.DialInsecure(e.addr, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(u.Address, password(u.Address)).Wait(); err != nil {
		e.t.Fatalf("login %s: %v", u.Address, err)
	}
	return c
}

// raw is a line-level IMAP connection for checking exact responses.
type raw struct {
	t   testing.TB
	c   net.Conn
	br  *bufio.Reader
	tag int
}

func (e *env) raw() *raw {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	r := &raw{t: e.t, c: c, br: bufio.NewReader(c)}
	r.line() // greeting
	return r
}

func (e *env) rawLogin(u *store.User) *raw {
	r := e.raw()
	r.ok("LOGIN %q %q", u.Address, password(u.Address))
	return r
}

// line reads one response line, literals included inline.
func (r *raw) line() string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read: %v (so far %q)", err, b.String()+l)
		}
		b.WriteString(l)
		m := literalRE.FindStringSubmatch(l)
		if m == nil {
			return strings.TrimRight(b.String(), "\r\n")
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := io.ReadFull(r.br, lit); err != nil {
			r.t.Fatal(err)
		}
		b.Write(lit)
	}
}

var literalRE = regexp.MustCompile(`~?\{(\d+)\+?\}\r\n$`)

// send sends a command and returns its tag.
func (r *raw) send(format string, args ...any) string {
	r.t.Helper()
	r.tag++
	tag := fmt.Sprintf("T%d", r.tag)
	fmt.Fprintf(r.c, "%s %s\r\n", tag, fmt.Sprintf(format, args...))
	return tag
}

// do sends a command and returns the untagged responses and the tagged one.
func (r *raw) do(format string, args ...any) ([]string, string) {
	r.t.Helper()
	tag := r.send(format, args...)
	var untagged []string
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok is do that expects OK.
func (r *raw) ok(format string, args ...any) []string {
	r.t.Helper()
	u, status := r.do(format, args...)
	if !strings.HasPrefix(status, "OK") {
		r.t.Fatalf("%s: %s (after %q)", fmt.Sprintf(format, args...), status, u)
	}
	return u
}

// expect reads lines until one matches want (a regexp), failing on timeout.
func (r *raw) expect(want string) string {
	r.t.Helper()
	re := regexp.MustCompile(want)
	for {
		l := r.line()
		if re.MatchString(l) {
			return l
		}
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
