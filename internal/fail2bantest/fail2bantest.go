// Package fail2bantest reads contrib/fail2ban's filter as Go regular
// expressions, so that tests can check it against the log lines the real
// listeners write.
package fail2bantest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// addr is what fail2ban puts for <ADDR> (fail2ban/server/failregex.py,
// R_HOST[RI_ADDR], with IPAddr.IP_4_RE and IP_6_RE), in Go's syntax.
// fail2ban's IPv6 pattern ends in a lookbehind, "(?<=:):", which Go's
// regexp lacks; ":" in its place matches a little more (a trailing ":"
// after a single one), never less, so it cannot hide a line fail2ban
// would miss for any other reason. Python and Go both take the leftmost
// alternative first, so the groups capture the same text.
const addr = `\[?(?:(?:::f{4,6}:)?(?P<ip4>(?:\d{1,3}\.){3}\d{1,3})|(?P<ip6>(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|:)))\]?`

// FilterPath is the filter's path in the checkout.
func FilterPath(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "contrib", "fail2ban", "filter.d", "tollbridge.conf")
}

// Failregexes returns the filter's failregex lines compiled as fail2ban
// would, with <ADDR> expanded. A regex that Go cannot compile fails the
// test: it would most likely be Python-only syntax.
func Failregexes(t testing.TB) []*regexp.Regexp {
	t.Helper()
	lines := failregexLines(t, FilterPath(t))
	if len(lines) == 0 {
		t.Fatal("filter has no failregex")
	}
	var res []*regexp.Regexp
	for _, l := range lines {
		if strings.Contains(l, "<HOST>") {
			t.Fatalf("failregex %q uses <HOST>: the bridge logs addresses, use <ADDR> (no DNS lookups)", l)
		}
		re, err := regexp.Compile(strings.ReplaceAll(l, "<ADDR>", addr))
		if err != nil {
			t.Fatalf("failregex %q: %v", l, err)
		}
		res = append(res, re)
	}
	return res
}

// failregexLines parses the [Definition] failregex value: the rest of
// the "failregex =" line and the indented continuation lines after it
// (Python's configparser rules, as fail2ban reads them).
func failregexLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "failregex"):
			_, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: %q", path, l)
			}
			in = true
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		case in && l != "" && (l[0] == ' ' || l[0] == '\t'):
			if v := strings.TrimSpace(l); v != "" && !strings.HasPrefix(v, "#") {
				out = append(out, v)
			}
		default:
			in = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Match returns the address fail2ban would ban for line (fail2ban
// searches each line with each failregex in turn), and whether any
// matched.
func Match(res []*regexp.Regexp, line string) (string, bool) {
	for _, re := range res {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		for _, g := range []string{"ip4", "ip6"} {
			if v := m[re.SubexpIndex(g)]; v != "" {
				return v, true
			}
		}
		return "", true
	}
	return "", false
}

// CheckLines needs n "login failed" lines in logs, each matched by the
// filter with address ip, and no other line matched.
func CheckLines(t testing.TB, logs string, n int, ip string) {
	t.Helper()
	res := Failregexes(t)
	got := 0
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		host, ok := Match(res, l)
		failed := strings.Contains(l, "login failed")
		switch {
		case failed && !ok:
			t.Errorf("filter misses %s", l)
		case !failed && ok:
			t.Errorf("filter matches %s", l)
		case ok && host != ip:
			t.Errorf("filter finds %q, want %s, in %s", host, ip, l)
		}
		if failed {
			got++
		}
	}
	if got != n {
		t.Errorf("%d failed logins logged, want %d:\n%s", got, n, logs)
	}
}
