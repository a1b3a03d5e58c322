package imapout

import (
	"bytes"
	"math/rand"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestLargeMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	c := e.login(bob)
	body := make([]byte, 6<<20)
	rand.New(rand.NewSource(2)).Read(body)
	// BODY[] sends NUL as 0x80 (TestNoNULInLiterals): keep the bytes
	// a literal can carry.
	for i, c := range body {
		if c == 0 {
			body[i] = 1
		}
	}
	var b bytes.Buffer
	b.WriteString("Subject: big\r\nContent-Type: application/octet-stream\r\n\r\n")
	b.Write(body)
	msg := b.Bytes()
	app := c.Append("INBOX", int64(len(msg)), nil)
	app.Write(msg)
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// Fetched in chunks, as Thunderbird does.
	var got []byte
	for off := int64(0); off < int64(len(msg)); off += 1 << 20 {
		sec := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: off, Size: 1 << 20}}
		m, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		if err != nil || len(m) != 1 {
			t.Fatal(err)
		}
		got = append(got, m[0].FindBodySection(sec)...)
	}
	if !bytes.Equal(got, msg) {
		t.Error("large message differs")
	}
}
