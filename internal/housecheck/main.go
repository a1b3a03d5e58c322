// Command housecheck holds the code to the rules of the house in
// docs/rules.md §2: a package imports only the rooms its row names, no
// function is longer than 80 lines and no file longer than 600. Test
// files, the conformance suite (an independent implementation by design)
// and internal test helpers are not held to the table; no other code may
// import those helpers (testOnly).
//
// Run it from the module root: go run ./internal/housecheck. It prints one
// line per breach and exits 1 when there is any.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// module is the module path every internal import starts with.
const module = "tollbridge"

// Limits of the house.
const (
	maxFuncLines = 80
	maxFileLines = 600
)

// rooms is docs/rules.md §2's table: the module's packages each may import.
// keyring is open to every package that logs a user in or names an
// address, so it is listed where that is so. A package missing here may
// import nothing of the module.
var rooms = map[string][]string{
	"cmd/bridge":   {"*"},
	"config":       {},
	"translate":    {},
	"seal":         {"keyring"},
	"keyring":      {},
	"pow":          {},
	"protocol":     {},
	"ticketserver": {"protocol", "pow", "store", "keyring"},
	"ticketclient": {"protocol", "pow"},
	"intake":       {"translate", "seal", "store", "keyring"},
	"outbox":       {"protocol", "store", "ticketclient", "seal", "keyring"},
	"store":        {},
	"smtpin":       {"intake", "outbox", "store", "keyring"},
	"imapout":      {"store", "seal", "translate", "keyring"},
}

// leaves are stdlib-only packages any room may use: the protocol's wire
// names and formats (as keyring is open to every package that names an
// address, protocol is to every package that names a part, a header or a
// hash), and the one TLS profile of every listener and client. docs/rules.md §2
// does not say so yet.
var leaves = map[string]bool{"protocol": true, "internal/tlsprofile": true}

// testOnly are the shared test helpers (one per concern: clock and
// certificate, store setup, DNS, GnuPG, fail2ban, private Postfix and
// Dovecot): only test files may
// import them, even in cmd/bridge, which may import everything else.
var testOnly = map[string]bool{
	"internal/testkit": true, "internal/teststore": true, "internal/dnstest": true,
	"internal/gpgtest": true, "internal/fail2bantest": true, "internal/mtatest": true,
}

// exempt are trees not held to the table.
var exempt = []string{"conformance", "internal"}

func main() {
	breaches, err := check(".")
	if err != nil {
		fmt.Fprintln(os.Stderr, "housecheck:", err)
		os.Exit(2)
	}
	for _, b := range breaches {
		fmt.Println(b)
	}
	if len(breaches) > 0 {
		fmt.Printf("housecheck: %d breaches of the house rules (docs/rules.md §2)\n", len(breaches))
		os.Exit(1)
	}
	fmt.Println("housecheck: ok")
}

// check walks the module at root and returns every breach, sorted.
func check(root string) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "third_party") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := checkFile(fset, root, path)
		out = append(out, b...)
		return err
	})
	sort.Strings(out)
	return out, err
}

// checkFile returns the breaches of one source file.
func checkFile(fset *token.FileSet, root, path string) ([]string, error) {
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return nil, err
	}
	rel = filepath.ToSlash(rel)
	var out []string
	if n := fset.Position(f.End()).Line; n > maxFileLines {
		out = append(out, fmt.Sprintf("%s: %d lines, at most %d", rel, n, maxFileLines))
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		start, end := fset.Position(fn.Pos()).Line, fset.Position(fn.End()).Line
		if n := end - start + 1; n > maxFuncLines {
			out = append(out, fmt.Sprintf("%s:%d: func %s is %d lines, at most %d", rel, start, funcName(fn), n, maxFuncLines))
		}
	}
	pkg := filepath.ToSlash(filepath.Dir(rel))
	if isExempt(pkg) {
		return out, nil
	}
	for _, imp := range f.Imports {
		p := strings.Trim(imp.Path.Value, `"`)
		if !strings.HasPrefix(p, module+"/") {
			continue
		}
		if dep := strings.TrimPrefix(p, module+"/"); !allowed(pkg, dep) {
			out = append(out, fmt.Sprintf("%s:%d: %s imports %s, which docs/rules.md §2 does not give it",
				rel, fset.Position(imp.Pos()).Line, pkg, dep))
		}
	}
	return out, nil
}

func isExempt(pkg string) bool {
	for _, e := range exempt {
		if pkg == e || strings.HasPrefix(pkg, e+"/") {
			return true
		}
	}
	return false
}

// allowed reports whether package pkg may import the module's package dep.
func allowed(pkg, dep string) bool {
	if testOnly[dep] {
		return false
	}
	if leaves[dep] {
		return true
	}
	for _, d := range rooms[pkg] {
		if d == "*" || d == dep {
			return true
		}
	}
	return false
}

// funcName is a function's name with its receiver's type, if any.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
