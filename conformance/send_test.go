package conformance_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// submit sends msg through a submission listener with AUTH PLAIN.
func submit(t *testing.T, addr, user, pass string, rcpts []string, msg string) {
	t.Helper()
	submitAs(t, addr, user, pass, user, rcpts, msg)
}

// submitAs is submit with another MAIL FROM; an empty user skips AUTH
// (legacy MX).
func submitAs(t *testing.T, addr, user, pass, mailFrom string, rcpts []string, msg string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if user != "" {
		if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
			t.Fatalf("AUTH %s: %v", user, err)
		}
	}
	if err := c.SendMail(mailFrom, rcpts, strings.NewReader(msg)); err != nil {
		t.Fatalf("submit: %v", err)
	}
	c.Quit()
}

// wantKeys checks a JSON object's keys and their order.
func wantKeys(t *testing.T, what string, raw []byte, want ...string) {
	t.Helper()
	if got := objectKeys(t, raw); !slices.Equal(got, want) {
		t.Errorf("%s keys %v, want %v in that order", what, got, want)
	}
}

// wantKeySet checks a JSON object's keys, in any order.
func wantKeySet(t *testing.T, what string, raw []byte, want ...string) {
	t.Helper()
	got := objectKeys(t, raw)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys %v, want %v", what, got, want)
	}
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// checkSent holds what our sending bridge uploaded to an independent
// receiver (tk) to docs/protocol.md §3.2–3.6. rcpt is the recipient's unlocked key,
// sender the sender's public key as its WKD serves it; submitted is what
// the sender's mail client sent.
// checkSigned checks §3.7 on a bridge's ticket request: created near now,
// and Tollbridge-Signature the standard base64 of a detached binary
// signature over the exact body bytes by server, the key the sending
// bridge's WKD serves for receipts@DOMAIN.
func checkSigned(t *testing.T, tk *peerTicket, server *openpgp.Entity) {
	t.Helper()
	created, err := decodeObj(tk.request)["created"].(json.Number).Int64()
	if err != nil || time.Since(time.Unix(created, 0)).Abs() > 300*time.Second {
		t.Errorf("ticket request created %v is not within 300 s of now (§3.7)", decodeObj(tk.request)["created"])
	}
	sig, err := base64.StdEncoding.DecodeString(tk.signature)
	if err != nil || tk.signature == "" {
		t.Fatalf("Tollbridge-Signature %q is not standard base64 (§3.7): %v", tk.signature, err)
	}
	p, err := packet.Read(bytes.NewReader(sig))
	if sp, ok := p.(*packet.Signature); err != nil || !ok || sp.SigType != packet.SigTypeBinary {
		t.Errorf("Tollbridge-Signature is not a binary document signature packet (§3.7): %T %v", p, err)
	}
	if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{server}, bytes.NewReader(tk.request), bytes.NewReader(sig), nil); err != nil {
		t.Errorf("Tollbridge-Signature does not verify over the body with the server key of the sending domain (§3.7): %v", err)
	}
}

func checkSent(t *testing.T, tk *peerTicket, from, to string, rcpt, sender *openpgp.Entity, submitted string, want catalogWant) {
	t.Helper()
	// The ticket request (§3.2, §3.6).
	wantKeySet(t, "ticket request", tk.request, "sender", "recipient", "preference", "parts", "sender_domain", "created")
	q := decodeObj(tk.request)
	if d := from[strings.LastIndexByte(from, '@')+1:]; q["sender_domain"] != strings.ToLower(d) {
		t.Errorf("ticket request sender_domain %v, want %s, the envelope sender's domain (§3.7)", q["sender_domain"], d)
	}
	if q["sender"] != hashAddr(t, from) || q["recipient"] != hashAddr(t, to) {
		t.Errorf("ticket request sender/recipient %v/%v, want hash(%s)/hash(%s)", q["sender"], q["recipient"], from, to)
	}
	if pref, _ := q["preference"].([]any); !slices.Contains(pref, any("pow")) {
		t.Errorf("ticket request preference %v lacks pow", q["preference"])
	}
	ann := q["parts"].(map[string]any)
	wantKeySet(t, "ticket request parts", rawField(t, tk.request, "parts"), "blocks", "attachments", "bytes")

	// The header (§3.3, §3.6): shape, order, values.
	raw := tk.complete
	wantKeys(t, "header", raw, "version", "from", "to", "key_fingerprint", "encrypted_key", "catalog", "parts")
	h := decodeObj(raw)
	if h["version"] != json.Number("1") || h["from"] != hashAddr(t, from) || h["to"] != hashAddr(t, to) {
		t.Errorf("header version/from/to %v/%v/%v, want 1/hash(%s)/hash(%s)", h["version"], h["from"], h["to"], from, to)
	}
	if h["key_fingerprint"] != fingerprint(rcpt) {
		t.Errorf("header key_fingerprint %v, want %s (§3.6 \"primary key v4 fingerprint in lowercase hex\")", h["key_fingerprint"], fingerprint(rcpt))
	}
	cref := h["catalog"].(map[string]any)
	wantKeys(t, "header catalog", rawField(t, raw, "catalog"), "size", "sha256")
	if !uploadMatches(tk.uploads["catalog"], cref) {
		t.Errorf("header catalog %v does not match the uploaded catalog (%d bytes)", cref, len(tk.uploads["catalog"]))
	}
	key := openPKESK(t, h["encrypted_key"].(string), rcpt)

	// The catalog: SEIPD v1 holding one-pass signature, literal, signature.
	cat := openSEIPD(t, "catalog", tk.uploads["catalog"], key)
	if !slices.Equal(cat.other, []string{"one-pass signature", "signature"}) {
		t.Errorf("catalog packets besides the literal data: %v, want one-pass signature and signature only (§3.6, no compression)", cat.other)
	}
	if cat.ops == nil || cat.ops.SigType != packet.SigTypeBinary || !cat.ops.IsLast {
		t.Errorf("catalog one-pass signature %+v, want a binary document signature (§3.6)", cat.ops)
	}
	if cat.sig != nil {
		sp, _ := packet.Read(bytes.NewReader(cat.sig))
		if s, ok := sp.(*packet.Signature); !ok || s.SigType != packet.SigTypeBinary {
			t.Errorf("catalog signature type is not binary document (§3.6)")
		}
		if _, err := openpgp.CheckDetachedSignature(openpgp.EntityList{sender}, bytes.NewReader(cat.data), bytes.NewReader(cat.sig), nil); err != nil {
			t.Errorf("catalog signature does not verify with %s's WKD key: %v", from, err)
		}
	}
	checkCatalog(t, cat.data, tk, h, key, submitted, want)

	// parts.bytes (§3.6): catalog and parts as uploaded, header excluded.
	total := int64(len(tk.uploads["catalog"]))
	blocks, attachments := int64(0), int64(0)
	for _, x := range h["parts"].([]any) {
		p := x.(map[string]any)
		total += int64(len(tk.uploads[p["kind"].(string)+"s/"+p["id"].(string)]))
		if p["kind"] == "block" {
			blocks++
		} else {
			attachments++
		}
	}
	if num(t, ann, "bytes") != total || num(t, ann, "blocks") != blocks || num(t, ann, "attachments") != attachments {
		t.Errorf("ticket request parts %v, want blocks %d attachments %d bytes %d (§3.6 \"parts.bytes is the total of the encrypted catalog and parts\")", ann, blocks, attachments, total)
	}
}

// catalogWant is what the catalog of a submitted message must say.
type catalogWant struct {
	fields map[string]any    // string fields (and version)
	lists  map[string]string // list fields, as compact JSON
	parts  []string          // "kind type name" of every part, sorted
}

// checkCatalog holds the decrypted catalog to §3.4/§3.6 and rebuilds the
// message from it.
func checkCatalog(t *testing.T, plain []byte, tk *peerTicket, h map[string]any, key []byte, submitted string, want catalogWant) {
	t.Helper()
	wantKeys(t, "catalog", plain, "version", "from", "to", "cc", "subject", "date", "message_id", "in_reply_to", "references", "parts", "mime")
	c := decodeObj(plain)
	if c == nil {
		t.Fatalf("catalog is not a JSON object: %.300q", plain)
	}
	for k, w := range want.fields {
		if c[k] != w {
			t.Errorf("catalog %s = %#v, want %#v (§3.6 Catalog fields)", k, c[k], w)
		}
	}
	for k, w := range want.lists {
		if got := string(mustJSON(t, c[k])); got != w {
			t.Errorf("catalog %s = %s, want %s (§3.6 Catalog fields)", k, got, w)
		}
	}
	// parts: one per leaf, text/* as block, the rest as attachment, each
	// the same id and kind as in the header, with plaintext size and SHA-256.
	hparts := map[string]string{}
	for _, x := range h["parts"].([]any) {
		p := x.(map[string]any)
		hparts[p["id"].(string)] = p["kind"].(string)
	}
	plainParts := map[string][]byte{}
	var kinds []string
	for _, x := range c["parts"].([]any) {
		p := x.(map[string]any)
		id, kind := p["id"].(string), p["kind"].(string)
		wantKeys(t, "catalog part "+id, mustJSONOrdered(t, plain, id), "id", "kind", "type", "name", "size", "sha256")
		if hparts[id] != kind {
			t.Errorf("catalog part %s (%s) is %q in the header", id, kind, hparts[id])
		}
		up := tk.uploads[kind+"s/"+id]
		ref := openSEIPD(t, "part "+id, up, key)
		if len(ref.other) != 0 {
			t.Errorf("part %s: packets besides the literal data: %v (§3.4 \"holding one literal data packet\")", id, ref.other)
		}
		if num(t, p, "size") != int64(len(ref.data)) || p["sha256"] != sha256Hex(ref.data) {
			t.Errorf("catalog part %s size/sha256 %v/%v, want the plaintext's %d/%s", id, p["size"], p["sha256"], len(ref.data), sha256Hex(ref.data))
		}
		plainParts[id] = ref.data
		kinds = append(kinds, fmt.Sprintf("%s %s %q", kind, p["type"], p["name"]))
	}
	if len(hparts) != len(plainParts) {
		t.Errorf("header names %d parts, catalog %d", len(hparts), len(plainParts))
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, want.parts) {
		t.Errorf("catalog parts (kind type name) %q, want %q (§3.4 \"every leaf body its own part (text/* bodies as block, the rest as attachment)\"; §3.6 \"type the whole unfolded Content-Type value; name from the filename or name parameter, RFC 2231/2047 decoded\")", kinds, want.parts)
	}
	if got, want := string(rebuildFromCatalog(t, c, plainParts)), withoutBcc(submitted); got != want {
		t.Errorf("rebuilt message differs from what the client submitted less Bcc: (§3.4, §3.5):\ngot:  %q\nwant: %q", got, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// rawField returns the raw JSON of obj's top-level field name.
func rawField(t *testing.T, obj []byte, name string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

// mustJSONOrdered returns the raw JSON of the catalog part with id, as
// written (so its key order shows).
func mustJSONOrdered(t *testing.T, catalog []byte, id string) []byte {
	t.Helper()
	var parts []json.RawMessage
	if err := json.Unmarshal(rawField(t, catalog, "parts"), &parts); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		var x struct{ ID string }
		json.Unmarshal(p, &x)
		if x.ID == id {
			return p
		}
	}
	t.Fatalf("no part %s", id)
	return nil
}

// gpgDecrypts checks §3.4 "encrypted_key followed by any part is a
// complete OpenPGP message that GnuPG 2.2 decrypts with the recipient's
// secret key" with the gpg on PATH.
func gpgDecrypts(t *testing.T, tk *peerTicket, rcpt, sender *openpgp.Entity) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not on PATH")
	}
	home, err := os.MkdirTemp("", "cg")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	gpg := func(stdin []byte, args ...string) ([]byte, string, error) {
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch", "--no-tty", "--status-fd", "2", "--trust-model", "always", "--no-auto-key-locate", "--pinentry-mode", "loopback"}, args...)...)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.Bytes(), errb.String(), err
	}
	defer exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
	var sec bytes.Buffer
	if err := rcpt.SerializePrivate(&sec, nil); err != nil {
		t.Fatal(err)
	}
	if _, st, err := gpg(append(sec.Bytes(), publicKey(t, sender)...), "--import"); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, st)
	}
	h := decodeObj(tk.complete)
	pkesk, err := decodeB64(h["encrypted_key"].(string))
	if err != nil {
		t.Fatal(err)
	}
	items := map[string][]byte{"catalog": tk.uploads["catalog"]}
	for _, x := range h["parts"].([]any) {
		p := x.(map[string]any)
		items[p["id"].(string)] = tk.uploads[p["kind"].(string)+"s/"+p["id"].(string)]
	}
	for name, b := range items {
		_, st, err := gpg(append(append([]byte{}, pkesk...), b...), "--decrypt")
		if err != nil || !strings.Contains(st, "[GNUPG:] DECRYPTION_OKAY") || !strings.Contains(st, "[GNUPG:] GOODMDC") {
			t.Errorf("GnuPG does not decrypt encrypted_key + %s (§3.4): %v\n%s", name, err, st)
		}
		if name == "catalog" && !strings.Contains(st, "[GNUPG:] GOODSIG") {
			t.Errorf("GnuPG finds no good signature in the catalog (§3.4):\n%s", st)
		}
	}
}
