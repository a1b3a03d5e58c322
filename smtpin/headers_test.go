package smtpin

import (
	"strings"
	"testing"
)

// submit sends msg from alice to bob over a fresh authenticated session.
func (e *env) submit(msg string) error {
	e.t.Helper()
	c := e.dial(e.sub, true)
	if err := c.Mail("alice@example.org", nil); err != nil {
		e.t.Fatal(err)
	}
	if err := c.Rcpt("bob@example.net", nil); err != nil {
		e.t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		e.t.Fatal(err)
	}
	return w.Close()
}

// padding is header fields of about n bytes in all.
func padding(n int) string {
	line := "X-Pad: " + strings.Repeat("a", 990) + "\r\n"
	return strings.Repeat(line, n/len(line)+1)
}

// A From: hidden behind more than 1 MiB of header fields is not let
// through unchecked: the header section is refused as too large.
func TestSubmissionRefusesHugeHeaderSection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4<<20, 10)
	e.t = t
	msg := "From: alice@example.org\r\n" + padding(1<<20) + "From: boss@legacy.example\r\nSubject: pay\r\n\r\nx\r\n"
	e.expectCode(e.submit(msg), 552, "5.3.4")

	// Under the bound, the whole section is read: the second From: is seen
	// however far down it is.
	msg = "From: alice@example.org\r\n" + padding(1<<20-4096) + "From: boss@legacy.example\r\n\r\nx\r\n"
	e.expectCode(e.submit(msg), 550, "5.6.0")

	// A big body under a small header is fine, and so is a message that
	// is all header.
	if err := e.submit("From: alice@example.org\r\nSubject: big\r\n\r\n" + padding(2<<20)); err != nil {
		t.Fatalf("big body refused: %v", err)
	}
	if err := e.submit("From: alice@example.org\r\nSubject: no body\r\n"); err != nil {
		t.Fatalf("header-only message refused: %v", err)
	}
}

// Sender:, Resent-From: and Resent-Sender: must name the user too.
func TestSubmissionChecksSenderFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 10)
	e.t = t
	const from = "From: Alice <alice@example.org>\r\n"
	for _, f := range []string{
		"Sender: bob@example.net\r\n",
		"Sender: Alice <alice@example.org>, bob@example.net\r\n",
		"Resent-From: bob@example.net\r\n",
		"Resent-Date: Mon, 1 Dec 2026 10:00:00 +0000\r\nResent-From: alice@example.org\r\nResent-Sender: ceo@example.org\r\n",
		"Resent-From: alice@example.org\r\nResent-From: =?utf-8?q?Alice?= <bob@example.net>\r\n",
	} {
		err := e.submit(from + f + "Subject: x\r\n\r\nx\r\n")
		if c, enh := code(err); c != 550 || enh != "5.7.1" {
			t.Errorf("%q: got %v, want 550 5.7.1", f, err)
		}
	}
	e.expectCode(e.submit(from+"Sender: <>\r\n\r\nx\r\n"), 550, "5.6.0")
	for _, f := range []string{
		"Sender: alice@example.org\r\n",
		"Resent-From: \"Alice A.\" <Alice@Example.org>\r\nResent-Sender: alice@example.org\r\n",
	} {
		if err := e.submit(from + f + "Subject: x\r\n\r\nx\r\n"); err != nil {
			t.Errorf("%q refused: %v", f, err)
		}
	}
}
