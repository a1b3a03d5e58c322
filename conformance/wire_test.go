// Package conformance_test is an independent conformance suite for the
// ticketed protocol of docs/protocol.md §3. It plays the other implementation:
// every request, hash, proof, WKD URL, OpenPGP packet and catalog it sends
// is built here from the text of the protocol alone (docs/protocol.md, written from
// the design document), never with tollbridge's
// own seal, translate, ticketclient, pow or keyring code. tollbridge
// packages appear only where a server has to be started.
//
// A failing test names the sentence of the protocol it holds the code to.
package conformance_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/net/idna"
)

// hashAddr is hash(a) of docs/protocol.md §3 and §3.6: lowercase hex SHA-256 over the
// UTF-8 bytes of the bare addr-spec, lowercased, domain in ASCII (IDNA).
func hashAddr(t testing.TB, addr string) string {
	t.Helper()
	h, err := addrHash(addr)
	if err != nil {
		t.Fatalf("hashAddr(%q): %v", addr, err)
	}
	return h
}

func addrHash(addr string) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", fmt.Errorf("%q: no @", addr)
	}
	domain, err := idna.Lookup.ToASCII(strings.ToLower(addr[at+1:]))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(strings.ToLower(addr[:at] + "@" + domain)))
	return hex.EncodeToString(sum[:]), nil
}

// zbase32Alphabet is the z-base-32 alphabet the WKD draft uses.
const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// zbase32 encodes b five bits at a time, most significant bit first.
func zbase32(b []byte) string {
	var out strings.Builder
	nbits := len(b) * 8
	for i := 0; i < nbits; i += 5 {
		v := 0
		for j := i; j < i+5; j++ {
			v <<= 1
			if j < nbits && b[j/8]&(0x80>>(j%8)) != 0 {
				v |= 1
			}
		}
		out.WriteByte(zbase32Alphabet[v])
	}
	return out.String()
}

// wkdPath is the advanced-method WKD path and query of docs/protocol.md §3.1:
// /.well-known/openpgpkey/{domain}/hu/{zbase32(sha1(local lowercased))}?l={local}.
func wkdPath(addr string) string {
	local, domain, _ := strings.Cut(addr, "@")
	sum := sha1.Sum([]byte(strings.ToLower(local)))
	return "/.well-known/openpgpkey/" + strings.ToLower(domain) + "/hu/" + zbase32(sum[:]) + "?l=" + url.QueryEscape(local)
}

// TestHelpersKnownVectors pins this suite's own helpers to published
// values, so a failure elsewhere is the server's and not ours.
func TestHelpersKnownVectors(t *testing.T) {
	t.Parallel()
	// The WKD draft's example: Joe.Doe@example.org.
	if got, want := wkdPath("Joe.Doe@Example.ORG"), "/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe"; got != want {
		t.Errorf("wkdPath = %s, want %s", got, want)
	}
	// sha256("alice@example.org"), computed independently (coreutils sha256sum).
	if got, want := hashAddr(t, "Alice@EXAMPLE.org"), "7a64adf28737ea90719cbdf0b1a87a5effff3753b79c91d717f4f4153ead0498"; got != want {
		t.Errorf("hashAddr = %s, want %s", got, want)
	}
	if got, want := hashAddr(t, "Jörg@Bücher.example"), hashAddr(t, "jörg@xn--bcher-kva.example"); got != want {
		t.Errorf("IDNA: hashAddr = %s, want %s", got, want)
	}
}

// api is a ticket API (and WKD) base URL with an HTTPS client.
type api struct {
	t    testing.TB
	base string
	hc   *http.Client
}

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
	obj    map[string]any // the body as a JSON object (numbers as json.Number), nil if it is not one
}

// send makes one request. A nil body sends none.
func (a *api) send(method, path string, body []byte) *reply {
	a.t.Helper()
	return a.sendWith(method, path, body, nil)
}

// sendWith is send with extra request header fields.
func (a *api) sendWith(method, path string, body []byte, extra http.Header) *reply {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	if err != nil {
		a.t.Fatal(err)
	}
	switch {
	case body == nil:
	case strings.HasSuffix(path, "/catalog") || strings.Contains(path, "/blocks/") || strings.Contains(path, "/attachments/"):
		req.Header.Set("Content-Type", "application/octet-stream") // OpenPGP packets
	default:
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("%s %s: reading answer: %v", method, path, err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: raw, obj: decodeObj(raw)}
}

// decodeObj decodes a JSON object with numbers as json.Number; nil if raw
// is not one.
func decodeObj(raw []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil {
		return nil
	}
	return obj
}

// expect sends a request and stops the test unless the status is want;
// error answers must also carry docs/protocol.md §3.6's JSON {"error": …}.
func (a *api) expect(want int, method, path string, body []byte) *reply {
	a.t.Helper()
	r := a.send(method, path, body)
	if r.status != want {
		a.t.Fatalf("%s %s: HTTP %d, want %d; answer: %.400s", method, path, r.status, want, r.body)
	}
	if want >= 400 {
		checkErrorBody(a.t, method+" "+path, r)
	}
	return r
}

// expectWith is expect with extra request header fields.
func (a *api) expectWith(want int, method, path string, body []byte, extra http.Header) *reply {
	a.t.Helper()
	r := a.sendWith(method, path, body, extra)
	if r.status != want {
		a.t.Fatalf("%s %s: HTTP %d, want %d; answer: %.400s", method, path, r.status, want, r.body)
	}
	return r
}

// detachSign is the standard base64 of a detached binary signature of
// body by key, as §3.7's Tollbridge-Signature header carries it.
func detachSign(t testing.TB, key *openpgp.Entity, body []byte) string {
	t.Helper()
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, key, bytes.NewReader(body), nil); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig.Bytes())
}

// check is expect that only records a failure and carries on.
func (a *api) check(want int, method, path string, body []byte, why string) *reply {
	a.t.Helper()
	r := a.send(method, path, body)
	if r.status != want {
		a.t.Errorf("%s %s: HTTP %d, want %d (%s); answer: %.400s", method, path, r.status, want, why, r.body)
		return r
	}
	if want >= 400 {
		checkErrorBody(a.t, method+" "+path, r)
	}
	return r
}

// checkErrorBody holds an error answer to docs/protocol.md §3.6: "Errors are always
// JSON {"error": …}".
func checkErrorBody(t testing.TB, what string, r *reply) {
	t.Helper()
	media, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	if media != "application/json" {
		t.Errorf("%s: HTTP %d answered with Content-Type %q, want application/json (docs/protocol.md §3.6 \"Errors are always JSON\")", what, r.status, r.header.Get("Content-Type"))
	}
	msg, ok := r.obj["error"].(string)
	if !ok || msg == "" {
		t.Errorf("%s: HTTP %d body %q is not JSON {\"error\": \"…\"} (docs/protocol.md §3.6)", what, r.status, r.body)
	}
}

// num returns obj[key] as an integer, failing the test if it is not one.
func num(t testing.TB, obj map[string]any, key string) int64 {
	t.Helper()
	n, ok := obj[key].(json.Number)
	if !ok {
		t.Fatalf("%q is %T (%v), want a JSON integer; in %v", key, obj[key], obj[key], obj)
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("%q = %s is not an integer", key, n)
	}
	return v
}

// str returns obj[key] as a string, failing the test if it is not one.
func str(t testing.TB, obj map[string]any, key string) string {
	t.Helper()
	s, ok := obj[key].(string)
	if !ok {
		t.Fatalf("%q is %T (%v), want a string; in %v", key, obj[key], obj[key], obj)
	}
	return s
}

// sha256Hex is lowercase hex SHA-256.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// objectKeys lists a JSON object's keys in the order they appear.
func objectKeys(t testing.TB, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		t.Fatalf("not a JSON object: %.200q", raw)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
