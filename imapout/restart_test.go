package imapout

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestRestartKeepsUIDsAndFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bob := e.addUser("bob@example.net")
	e.fill(bob, 4)
	r := e.rawLogin(bob)
	sel := r.ok("SELECT INBOX")
	r.ok(`STORE 1 +FLAGS (\Seen $Important)`)
	r.ok(`STORE 3:4 +FLAGS.SILENT (\Deleted)`)
	r.ok("EXPUNGE") // UIDs 3 and 4 are gone: UIDNEXT stays 5
	r.ok("COPY 2 Archive")
	before := r.ok("UID FETCH 1:* (FLAGS)")
	validity := matching(sel, `UIDVALIDITY`)

	e.restart(t)
	r = e.rawLogin(bob)
	sel = r.ok("SELECT INBOX")
	if v := matching(sel, `UIDVALIDITY`); fmt.Sprint(v) != fmt.Sprint(validity) {
		t.Errorf("UIDVALIDITY changed: %q → %q", validity, v)
	}
	if len(matching(sel, `^\* OK \[UIDNEXT 5\]`)) != 1 || len(matching(sel, `^\* 2 EXISTS$`)) != 1 {
		t.Errorf("SELECT after restart: %q", sel)
	}
	after := r.ok("UID FETCH 1:* (FLAGS)")
	strip := func(ls []string) string {
		return strings.NewReplacer(` \Recent`, "", `\Recent`, "").Replace(fmt.Sprint(ls))
	}
	if strip(after) != strip(before) {
		t.Errorf("flags changed: %q → %q", before, after)
	}
	// A new message gets UID 5, not a reused 3 or 4.
	msg := message("a@example.com", bob.Address, "after restart", "x")
	r.send("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
	lines := r.collect(`^T\d+ `)
	if l := lines[len(lines)-1]; !regexp.MustCompile(`OK \[APPENDUID \d+ 5\]`).MatchString(l) {
		t.Errorf("APPEND after restart: %q", l)
	}
	if len(matching(lines, `^\* 3 EXISTS$`)) != 1 {
		t.Errorf("no EXISTS after APPEND: %q", lines)
	}
	if got := r.ok("UID FETCH 5 (BODY.PEEK[])"); len(got) != 1 || !strings.HasSuffix(got[0], msg+")") {
		t.Errorf("appended message: %q", got)
	}
}
