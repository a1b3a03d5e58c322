package imapout

import (
	"bytes"
	"io"
	"math/rand"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestSpoolEncryptsOnDisk(t *testing.T) {
	t.Parallel()
	plain := make([]byte, 300_001)
	rand.New(rand.NewSource(1)).Read(plain[1000:])
	copy(plain, bytes.Repeat([]byte("secret "), 140))
	sp := newSpool(t.TempDir(), 1000)
	defer sp.Close()
	for rest := plain; len(rest) > 0; {
		n := min(len(rest), 777)
		if _, err := sp.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if sp.f == nil {
		t.Fatal("not spooled to disk")
	}
	onDisk := make([]byte, len(plain))
	if _, err := sp.f.ReadAt(onDisk, 0); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(onDisk, []byte("secret")) {
		t.Error("plaintext on disk")
	}
	for _, r := range [][2]int64{{0, 10}, {15, 33}, {999, 1002}, {4095, 70000}, {299_990, 300_001}} {
		got, err := io.ReadAll(sp.Section(r[0], r[1]-r[0]))
		if err != nil || !bytes.Equal(got, plain[r[0]:r[1]]) {
			t.Errorf("range %v: %v", r, err)
		}
	}
}

func TestLargeMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	c := e.login(bob)
	body := make([]byte, 6<<20)
	rand.New(rand.NewSource(2)).Read(body)
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
