package imapout

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// mbsyncVersion returns isync's major and minor version.
func mbsyncVersion(t *testing.T, bin string) (int, int) {
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		out, _ = exec.Command(bin, "--version").CombinedOutput()
	}
	m := regexp.MustCompile(`(\d+)\.(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("mbsync version: %q", out)
	}
	var major, minor int
	fmt.Sscan(m[1], &major)
	fmt.Sscan(m[2], &minor)
	return major, minor
}

func runMbsync(t *testing.T, bin, rc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", rc, "-a").CombinedOutput()
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
}

// maildirFiles maps each message file of a Maildir to its content.
func maildirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, en := range entries {
			p := filepath.Join(dir, sub, en.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = string(b)
		}
	}
	return out
}

func TestMbsync(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mbsync")
	if err != nil {
		t.Skip("mbsync not installed (Debian: isync)")
	}
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	alice := e.remoteSender("alice@example.org")
	inbox := []string{
		message("Alice <alice@example.org>", "bob@example.net", "first", "Hello Bob"),
		strings.Replace(multipartMessage, "Bcc: secret@example.net\r\n", "", 1), // the sender's bridge strips Bcc
		crlf("From: alice@example.org\nTo: bob@example.net\nSubject: no final newline\n\nlast line"),
	}
	for _, m := range inbox {
		e.deliver(bob, m, delivery{signer: alice, from: "alice@example.org"})
	}
	c := e.login(bob) // files them
	sent := message("bob@example.net", "alice@example.org", "my reply", "Thanks!")
	app := c.Append("Sent", int64(len(sent)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	app.Write([]byte(sent))
	app.Close()
	if _, err := app.Wait(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(e.addr)
	security := "SSLType None"
	if major, minor := mbsyncVersion(t, bin); major > 1 || major == 1 && minor >= 5 {
		security = "TLSType None"
	}
	if err := os.MkdirAll(filepath.Join(dir, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "mbsyncrc")
	writeFile(t, rc, fmt.Sprintf(`IMAPAccount test
Host %s
Port %s
User %s
Pass %s
%s
AuthMechs LOGIN PLAIN

IMAPStore remote
Account test

MaildirStore local
Path %s/mail/
Inbox %s/mail/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Near
Sync All
SyncState *
`, host, port, bob.Address, password(bob.Address), security, dir, dir))
	runMbsync(t, bin, rc)

	trace := regexp.MustCompile(`\A(?:Received: [^\n]*\n)*Authentication-Results: ` + regexp.QuoteMeta(hostname) + `; tollbridge=pass\n`)
	tuid := regexp.MustCompile(`(?m)^X-TUID: [^\n]*\n`)
	lf := func(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
	check := func(box string, want []string, prefixed bool) map[string]string {
		files := maildirFiles(t, filepath.Join(dir, "mail", box))
		if len(files) != len(want) {
			t.Errorf("%s: %d files, want %d", box, len(files), len(want))
		}
		for p, content := range files {
			if prefixed {
				loc := trace.FindStringIndex(content)
				if loc == nil {
					t.Errorf("%s: no trace fields in front: %q", p, content)
					continue
				}
				content = content[loc[1]:]
			}
			// isync 1.x marks the messages it copies with an X-TUID field
			// of its own, at the end of the header.
			content = tuid.ReplaceAllString(content, "")
			found := false
			for _, w := range want {
				found = found || content == lf(w)
			}
			if !found {
				t.Errorf("%s differs from every sent message: %q", p, content)
			}
		}
		return files
	}
	files := check("INBOX", inbox, true)
	check("Sent", []string{sent}, false)

	// Mark the first message seen locally and sync back.
	for p, content := range files {
		if !strings.Contains(content, "Subject: first") {
			continue
		}
		name := filepath.Base(p)
		if i := strings.Index(name, ":2,"); i >= 0 {
			name = name[:i]
		}
		if err := os.Rename(p, filepath.Join(filepath.Dir(filepath.Dir(p)), "cur", name+":2,FS")); err != nil {
			t.Fatal(err)
		}
	}
	runMbsync(t, bin, rc)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	res, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen, imap.FlagFlagged}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(res.All, &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "first" {
		t.Errorf("flags did not sync back: %v %v", msgs, err)
	}
}
