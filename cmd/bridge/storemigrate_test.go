package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"tollbridge/internal/pgtest"
	"tollbridge/internal/s3test"
)

// mailboxView is what a mail client keeps of INBOX: resync is needed when
// any of it changes.
type mailboxView struct {
	UIDValidity uint32
	UIDs        []imap.UID
	Flagged     []imap.UID
	Bodies      map[imap.UID]string
}

func viewInbox(t *testing.T, addr, user, pass string, flag imap.UID) mailboxView {
	t.Helper()
	c, sel := selectInbox(t, addr, user, pass)
	defer c.Close()
	if flag != 0 {
		if err := c.Store(imap.UIDSetNum(flag), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	v := mailboxView{UIDValidity: sel.UIDValidity, Bodies: map[imap.UID]string{}}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		v.UIDs = append(v.UIDs, m.UID)
		if containsFlag(m.Flags, imap.FlagFlagged) {
			v.Flagged = append(v.Flagged, m.UID)
		}
		for _, b := range m.BodySection {
			v.Bodies[m.UID] = string(b.Bytes)
		}
	}
	return v
}

// TestStoreMigrate: bob's bridge on SQLite + files holds mail with a flag;
// `bridge store migrate` copies it to PostgreSQL (+ S3 when there is a
// server); served from there, bob's INBOX has the same UIDVALIDITY, UIDs,
// flags and bytes, and new mail continues the UIDs.
func TestStoreMigrate(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Schema(t, pgtest.Server(t))
	storeConf := fmt.Sprintf("\n[store]\npostgres = %q\n", dsn)
	var b s3test.Bucket
	if t.Run("s3", func(t *testing.T) { b = s3test.New(t) }) && b.Name != "" {
		storeConf += fmt.Sprintf("s3_endpoint = %q\ns3_bucket = %q\ns3_tls = false\n", b.Endpoint, b.Name)
	}
	l := processLayout(t, 8, 1)
	org := serveProcess(t, l.configPath(l.Sites[0]))
	netPath := l.configPath(l.Sites[1])
	nett := serveProcess(t, netPath)
	for i := range 3 {
		msg := plainMessage("alice@example.org", "bob@example.net", fmt.Sprintf("before.%d", i))
		if err := submitRaw(org.cfg.SMTP.Submission, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "mail at bob", 60*time.Second, func() bool {
		return len(imapMessageIDs(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net")) == 3
	})
	before := viewInbox(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net", 2)
	nett.stop()

	text, _ := os.ReadFile(netPath)
	pgPath := filepath.Join(filepath.Dir(netPath), "config-pg.toml")
	if err := os.WriteFile(pgPath, append(text, storeConf...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runBinaryEnv(t, b.Env(), "store", "migrate", "--from", netPath, "--to", pgPath)
	if code != 0 || !strings.Contains(out, "every count matches") {
		t.Fatalf("store migrate: %d\n%s\n%s", code, out, stderr)
	}
	t.Logf("store migrate:\n%s", out)
	nett = serveProcessEnv(t, pgPath, b.Env())
	after := viewInbox(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net", 0)
	if fmt.Sprint(after) != fmt.Sprint(before) || len(after.Flagged) != 1 {
		t.Fatalf("INBOX on PostgreSQL:\n%+v\nbefore:\n%+v", after, before)
	}
	msg := plainMessage("alice@example.org", "bob@example.net", "after")
	if err := submitRaw(org.cfg.SMTP.Submission, "alice@example.org", "pw-alice@example.org", []string{"bob@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	var now mailboxView
	waitFor(t, "new mail at bob on PostgreSQL", 60*time.Second, func() bool {
		now = viewInbox(t, nett.cfg.IMAP.Listen, "bob@example.net", "pw-bob@example.net", 0)
		return len(now.UIDs) == 4
	})
	if now.UIDValidity != before.UIDValidity || now.UIDs[3] <= before.UIDs[2] {
		t.Fatalf("after new mail: %+v", now)
	}
	org.stop()
	nett.stop()
}
