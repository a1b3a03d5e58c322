package conformance_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPFrameworkErrors: §3.6 "Errors are always JSON {"error": …}" for
// everything the API answers. A request so malformed that Go's HTTP server
// refuses it before any handler runs (a bad escape in the request target, a
// Content-Length that is not a number, a header over the size limit) gets
// the right 4xx status but net/http's own plain-text body: there is no hook
// to change that, and the connection is closed anyway. A malformed body,
// which the API itself reads, gets JSON.
func TestHTTPFrameworkErrors(t *testing.T) {
	t.Parallel()
	b := startBridge(t, buildBridge(t, t.TempDir()), "example.net", nil, 8, 2, nil, "")
	for what, c := range map[string]struct {
		raw    string
		status int
		json   bool
	}{
		"bad escape in the path": {"GET /v1/tickets/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
		"32 KiB header":          {"GET /v1/tickets HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 32<<10) + "\r\n\r\n", 431, false},
		"bad Content-Length":     {"POST /v1/tickets HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400, false},
		"bad chunked body":       {"POST /v1/tickets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, true},
	} {
		r := rawRequest(t, b, c.raw)
		if r.status != c.status {
			t.Errorf("%s: HTTP %d, want %d", what, r.status, c.status)
		}
		if c.json {
			checkErrorBody(t, what, r)
		}
	}
}

// rawRequest sends raw bytes as one HTTP/1.1 request to b's ticket API.
func rawRequest(t *testing.T, b *bridgeProc, raw string) *reply {
	t.Helper()
	tr := b.ticket.hc.Transport.(*http.Transport)
	c, err := tls.Dial("tcp", strings.TrimPrefix(b.ticket.base, "https://"), &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(raw))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &reply{status: resp.StatusCode, header: resp.Header, body: body, obj: decodeObj(body)}
}
