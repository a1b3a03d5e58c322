package main

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestHelpEveryCommand walks every command and subcommand: --help (and -h)
// prints its usage and flags on stdout and exits 0; so do the command
// groups and bridge itself.
func TestHelpEveryCommand(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		words := strings.Fields(c.words)
		for _, h := range []string{"--help", "-h"} {
			code, out, errs := runBinary(t, append(append([]string{}, words...), h)...)
			if code != 0 || !strings.Contains(out, "usage: bridge "+c.words+" ") || errs != "" {
				t.Errorf("bridge %s %s: exit %d\nstdout: %s\nstderr: %s", c.words, h, code, out, errs)
				continue
			}
			for _, f := range flagsOf(t, c) {
				if !strings.Contains(out, "-"+f) {
					t.Errorf("bridge %s %s does not show --%s:\n%s", c.words, h, f, out)
				}
			}
		}
	}
	groups := map[string]bool{}
	for _, c := range commands() {
		if w := strings.Fields(c.words); len(w) > 1 {
			groups[w[0]] = true
		}
	}
	for g := range groups {
		code, out, errs := runBinary(t, g, "--help")
		if code != 0 || !strings.Contains(out, "bridge "+g+" ") || errs != "" {
			t.Errorf("bridge %s --help: exit %d\nstdout: %s\nstderr: %s", g, code, out, errs)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "user", "add"}} {
		code, out, _ := runBinary(t, args...)
		if code != 0 || !strings.Contains(out, "user add") {
			t.Errorf("bridge %v: exit %d\n%s", args, code, out)
		}
	}
	// Mistakes stay mistakes: status 2, usage on stderr.
	for _, args := range [][]string{{}, {"user"}, {"frobnicate", "--help"}} {
		if code, out, errs := runBinary(t, args...); code != 2 || out != "" || !strings.Contains(errs, "usage: bridge") {
			t.Errorf("bridge %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
		}
	}
}

// flagsOf lists the flags command c defines, read from its own flag set
// by asking it for help in-process.
func flagsOf(t *testing.T, c command) []string {
	t.Helper()
	err := c.run(t.Context(), &env{stdin: strings.NewReader(""), stdout: new(strings.Builder), stderr: new(strings.Builder)}, []string{"--help"})
	var he *helpError
	if !errors.As(err, &he) {
		t.Fatalf("bridge %s --help in-process: %v", c.words, err)
	}
	var names []string
	he.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}
