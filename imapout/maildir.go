package imapout

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Maildir layout of an export (and the first layout Import reads): one
// Maildir per mailbox, DIR/NAME/{cur,new,tmp}. NAME is the mailbox name
// with each hierarchy level escaped and the levels joined by ".", as
// Maildir++ does but without its leading dot: "Archive/2026" is
// "Archive.2026". Inside a level, "%", ".", "/" and control characters are
// written %XX (uppercase hex), and so is a first "~" (a home directory to
// shells); so no directory name is ".", "..", hidden, or ambiguous.

// maildirFlags maps Maildir info letters (in ASCII order, as the spec
// wants them written) to IMAP flags. P (passed: resent or forwarded) has
// no system flag; it is the $Forwarded keyword (RFC 5788).
var maildirFlags = []struct {
	letter byte
	flag   string
}{
	{'D', string(imap.FlagDraft)},
	{'F', string(imap.FlagFlagged)},
	{'P', "$Forwarded"},
	{'R', string(imap.FlagAnswered)},
	{'S', string(imap.FlagSeen)},
	{'T', string(imap.FlagDeleted)},
}

// maildirName is the directory name of a mailbox.
func maildirName(mailbox string) string {
	levels := strings.Split(mailbox, string(delim))
	for i, l := range levels {
		var b strings.Builder
		for j := 0; j < len(l); j++ {
			c := l[j]
			if c == '%' || c == '.' || c == '/' || c < 0x20 || c == 0x7f || j == 0 && c == '~' {
				fmt.Fprintf(&b, "%%%02X", c)
				continue
			}
			b.WriteByte(c)
		}
		levels[i] = b.String()
	}
	return strings.Join(levels, ".")
}

// mailboxFromMaildir is the inverse of maildirName. It also reads
// Maildir++ folder names (".Sent", ".Archive.2026": the leading dot
// dropped by the caller), which do not escape.
func mailboxFromMaildir(dir string) (string, error) {
	levels := strings.Split(dir, ".")
	for i, l := range levels {
		if l == "" {
			return "", fmt.Errorf("maildir %q: empty hierarchy level", dir)
		}
		var b strings.Builder
		for j := 0; j < len(l); j++ {
			if l[j] == '%' && j+2 < len(l) {
				if v, err := strconv.ParseUint(l[j+1:j+3], 16, 8); err == nil {
					b.WriteByte(byte(v))
					j += 2
					continue
				}
			}
			b.WriteByte(l[j])
		}
		levels[i] = b.String()
	}
	name := strings.Join(levels, string(delim))
	if !validName(name) {
		return "", fmt.Errorf("maildir %q: %q is not a valid mailbox name", dir, name)
	}
	return name, nil
}

// maildirInfo is the ":2,FLAGS" suffix of a message with flags: the
// system flags as letters in ASCII order, then the keywords that have a
// letter in letters (a-z, as Dovecot's dovecot-keywords file numbers them).
// Flags without a letter are returned apart.
func maildirInfo(flags []string, letters map[string]byte) (string, []string) {
	var std []byte
	var kw []byte
	var dropped []string
	for _, f := range flags {
		found := false
		for _, mf := range maildirFlags {
			if strings.EqualFold(f, mf.flag) {
				std, found = append(std, mf.letter), true
			}
		}
		if found {
			continue
		}
		if l, ok := letters[strings.ToLower(f)]; ok {
			kw = append(kw, l)
		} else if !strings.EqualFold(f, `\Recent`) {
			dropped = append(dropped, f)
		}
	}
	sort.Slice(std, func(i, j int) bool { return std[i] < std[j] })
	sort.Slice(kw, func(i, j int) bool { return kw[i] < kw[j] })
	return ":2," + string(std) + string(kw), dropped
}

// parseMaildirInfo reads the flags of a message file name: the letters
// after ":2,", keywords by keywords (letter to name). Unknown letters and
// experimental ":1," info are ignored, as the spec asks.
func parseMaildirInfo(name string, keywords map[byte]string) []string {
	i := strings.LastIndex(name, ":2,")
	if i < 0 {
		return nil
	}
	var out []string
	for _, c := range []byte(name[i+3:]) {
		for _, mf := range maildirFlags {
			if c == mf.letter {
				out = append(out, mf.flag)
			}
		}
		if kw, ok := keywords[c]; ok {
			out = append(out, kw)
		}
	}
	return out
}

// maildirKeywords assigns the letters a-z to a mailbox's keywords (at most
// 26, as in Dovecot's dovecot-keywords file). $Forwarded has its own
// letter, P.
func maildirKeywords(keywords []string) (names []string, letters map[string]byte) {
	letters = map[string]byte{}
	for _, k := range keywords {
		if strings.EqualFold(k, "$Forwarded") || len(names) == 26 {
			continue
		}
		if _, dup := letters[strings.ToLower(k)]; dup {
			continue
		}
		letters[strings.ToLower(k)] = byte('a' + len(names))
		names = append(names, k)
	}
	return names, letters
}

// readDovecotKeywords reads a Maildir's dovecot-keywords file ("N name"
// lines, N from 0 for the letter a); no file means no keywords.
func readDovecotKeywords(dir string) (map[byte]string, error) {
	out := map[byte]string{}
	f, err := os.Open(filepath.Join(dir, "dovecot-keywords"))
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		num, name, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || n >= 26 || !validKeyword(name) {
			continue
		}
		out[byte('a'+n)] = name
	}
	return out, sc.Err()
}

// writeDovecotKeywords writes a Maildir's dovecot-keywords file.
func writeDovecotKeywords(dir string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var b strings.Builder
	for i, n := range names {
		fmt.Fprintf(&b, "%d %s\n", i, n)
	}
	return os.WriteFile(filepath.Join(dir, "dovecot-keywords"), []byte(b.String()), 0o600)
}

// isMaildir reports whether dir holds a Maildir (a cur subdirectory).
func isMaildir(dir string) bool {
	info, err := os.Stat(filepath.Join(dir, "cur"))
	return err == nil && info.IsDir()
}

// maildirFile is one message file of a Maildir.
type maildirFile struct {
	path string
	base string // the unique name, without the info suffix
	new  bool   // in new/: not yet seen by a mail reader
}

// listMaildir lists a Maildir's messages (new and cur, not tmp) in
// delivery order: unique names start with the delivery time, then a
// sequence or microseconds, so numbers inside names compare as numbers.
func listMaildir(dir string) ([]maildirFile, error) {
	var out []maildirFile
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if os.IsNotExist(err) && sub == "new" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("maildir %s: %w", dir, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			base, _, _ := strings.Cut(e.Name(), ":")
			out = append(out, maildirFile{path: filepath.Join(dir, sub, e.Name()), base: base, new: sub == "new"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return naturalLess(out[i].base, out[j].base) })
	return out, nil
}

// naturalLess compares strings with runs of digits compared as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// maildirHost is the host part of unique names: "/" and ":" are written
// \057 and \072, as the Maildir spec asks.
func maildirHost(h string) string {
	if h == "" {
		h = "localhost"
	}
	return strings.NewReplacer("/", `\057`, ":", `\072`).Replace(h)
}
