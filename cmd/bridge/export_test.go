package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestCLIExportImport: an mbox imported with bridge user import, exported
// with bridge user export, imported for another user and exported again
// gives the same Maildir files, flags included; a second import of the
// same export stores nothing; a wrong password is refused.
func TestCLIExportImport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if code, _, errs := cli(t, "", "init", "--dir", dir, "--domain", "example.org"); code != 0 {
		t.Fatalf("init: %d %s", code, errs)
	}
	cfg := filepath.Join(dir, "config.toml")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("correct horse\n"), 0o600)
	for _, u := range []string{"alice@example.org", "bob@example.org"} {
		if code, _, errs := cli(t, "", "user", "add", "--config", cfg, "--password-file", pw, u); code != 0 {
			t.Fatalf("user add: %s", errs)
		}
	}
	var mbox strings.Builder
	status := []string{"", "Status: RO\n", "Status: RO\nX-Status: A\n", "X-Status: FT\n"}
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&mbox, "From carol@example.net Mon Nov %d 10:00:00 2026\nFrom: carol@example.net\nTo: alice@example.org\nSubject: note %d\n%s\nbody %d\n>From quoted\n\n",
			1+i%28, i, status[i%len(status)], i)
	}
	mboxPath := filepath.Join(dir, "old.mbox")
	os.WriteFile(mboxPath, []byte(mbox.String()), 0o600)
	if code, out, errs := cli(t, "", "user", "import", "--config", cfg, "--password-file", pw, "--mailbox", "Archive/Old", "alice@example.org", mboxPath); code != 0 || !strings.Contains(out, "imported 40 messages") {
		t.Fatalf("import mbox: %d %s %s", code, out, errs)
	}
	exp1 := filepath.Join(dir, "exp1")
	if code, out, errs := cli(t, "", "user", "export", "--config", cfg, "--password-file", pw, "--out", exp1, "alice@example.org"); code != 0 || !strings.Contains(out, "exported 40 messages") {
		t.Fatalf("export: %d %s %s", code, out, errs)
	}
	if code, out, errs := cli(t, "", "user", "import", "bob@example.org", exp1, "--config", cfg, "--password-file", pw); code != 0 || !strings.Contains(out, "imported 40 messages") {
		t.Fatalf("import export: %d %s %s", code, out, errs)
	}
	if code, out, _ := cli(t, "", "user", "import", "--config", cfg, "--password-file", pw, "bob@example.org", exp1); code != 0 || !strings.Contains(out, "imported 0 messages") || !strings.Contains(out, "40 were imported before") {
		t.Fatalf("import again: %d %s", code, out)
	}
	exp2 := filepath.Join(dir, "exp2")
	if code, _, errs := cli(t, "", "user", "export", "--config", cfg, "--password-file", pw, "--out", exp2, "bob@example.org"); code != 0 {
		t.Fatalf("export bob: %s", errs)
	}
	a, b := exported(t, exp1), exported(t, exp2)
	if len(a) != 40 || strings.Join(a, "\x00") != strings.Join(b, "\x00") {
		t.Fatalf("exports differ: %d and %d messages", len(a), len(b))
	}
	flagged := 0
	for _, m := range a {
		if strings.HasPrefix(m, "Archive.Old/DFS/") || strings.HasPrefix(m, "Archive.Old/DF/") {
			flagged++
		}
		if strings.Contains(m, "Status:") || !strings.Contains(m, "\r\nFrom quoted\r\n") {
			t.Fatalf("message not as imported: %q", m)
		}
	}
	if flagged != 10 {
		t.Errorf("%d flagged drafts, want 10", flagged)
	}

	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("wrong\n"), 0o600)
	if code, _, errs := cli(t, "", "user", "export", "--config", cfg, "--password-file", bad, "--out", filepath.Join(dir, "x"), "alice@example.org"); code != 1 || !strings.Contains(errs, "wrong password") {
		t.Errorf("wrong password: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "user", "export", "--config", cfg, "--password-file", pw, "--out", exp1, "alice@example.org"); code != 1 || !strings.Contains(errs, "not empty") {
		t.Errorf("export into a used directory: %d %s", code, errs)
	}
	if code, _, errs := cli(t, "", "user", "import", "--config", cfg, "--password-file", pw, "alice@example.org", t.TempDir()); code != 1 || !strings.Contains(errs, "neither an mbox file nor a Maildir") {
		t.Errorf("import of an empty directory: %d %s", code, errs)
	}
	if code, out, _ := cli(t, "", "user", "import", "--help"); code != 0 || !strings.Contains(out, "usage: bridge user import") {
		t.Errorf("--help: %d %s", code, out)
	}
}

// exported lists "maildir/flags/content" of an export's files, sorted.
func exported(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(filepath.Dir(p)) != "cur" {
			return err
		}
		b, err := os.ReadFile(p)
		_, info, _ := strings.Cut(d.Name(), ":2,")
		out = append(out, filepath.Base(filepath.Dir(filepath.Dir(p)))+"/"+info+"/"+string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}
