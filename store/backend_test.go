package store

import (
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"tollbridge/internal/pgtest"
)

// envSuiteDSN is set by TestPostgresSuite for the test binary it runs
// again: every store test then opens its store on PostgreSQL, in a
// schema of its own on that server.
const envSuiteDSN = "TOLLBRIDGE_STORE_SUITE_POSTGRES"

// testOptions are the Options every store test opens with: SQLite, or
// PostgreSQL when this binary runs the suite for TestPostgresSuite.
// Each call makes a new, empty PostgreSQL schema.
func testOptions(t testing.TB) Options {
	t.Helper()
	dsn := os.Getenv(envSuiteDSN)
	if dsn == "" {
		return Options{}
	}
	return Options{Postgres: pgtest.Schema(t, dsn)}
}

// TestPostgresSuite runs this package's whole test suite again with every
// store on PostgreSQL (a private cluster, or TOLLBRIDGE_POSTGRES).
func TestPostgresSuite(t *testing.T) {
	if os.Getenv(envSuiteDSN) != "" {
		t.Skip("this is the suite's run on PostgreSQL")
	}
	dsn := pgtest.Server(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.skip", "^TestPostgresSuite$|^TestSQLiteOnly"}
	// -run narrows the suite on PostgreSQL as it does here, unless it
	// names this test alone (then the whole suite runs).
	if f := flag.Lookup("test.run"); f != nil && strings.Trim(f.Value.String(), "^$") != "TestPostgresSuite" {
		args = append(args, "-test.run", f.Value.String())
	}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envSuiteDSN+"="+dsn)
	out, err := cmd.CombinedOutput()
	if err != nil || testing.Verbose() {
		t.Logf("store suite on PostgreSQL:\n%s", out)
	}
	if err != nil {
		t.Fatalf("store suite on PostgreSQL: %v", err)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("store suite on PostgreSQL ran nothing:\n%s", out)
	}
}

// TestMigrationsHavePostgresForms: every SQLite migration has its
// PostgreSQL form, with the same number and name, and no other.
func TestMigrationsHavePostgresForms(t *testing.T) {
	t.Parallel()
	names := func(dir string) map[string]bool {
		entries, err := fs.ReadDir(migrations, dir)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, e := range entries {
			if !e.IsDir() {
				m[e.Name()] = true
			}
		}
		return m
	}
	lite, pg := names(migrationDir(sqliteDialect)), names(migrationDir(postgresDialect))
	for n := range lite {
		if !pg[n] {
			t.Errorf("migration %s has no PostgreSQL form in %s/", n, migrationDir(postgresDialect))
		}
	}
	for n := range pg {
		if !lite[n] {
			t.Errorf("PostgreSQL migration %s has no SQLite form in %s/", n, migrationDir(sqliteDialect))
		}
	}
	if _, err := loadMigrations(postgresDialect); err != nil {
		t.Fatal(err)
	}
}

func TestRebind(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`SELECT a FROM t WHERE b = ? AND c = ?`:           `SELECT a FROM t WHERE b = $1 AND c = $2`,
		`WHERE x = ?1 AND y = ?2 OR z = ?1`:               `WHERE x = $1 AND y = $2 OR z = $1`,
		`WHERE x = '?' AND "a?" = ? -- why?` + "\n ?":     `WHERE x = '?' AND "a?" = $1 -- why?` + "\n $2",
		`SET e = ?3 WHERE a = ?1 AND b = ?`:               `SET e = $3 WHERE a = $1 AND b = $4`,
		`instr(' ' || flags || ' ', ' \Seen ') = 0 AND ?`: `instr(' ' || flags || ' ', ' \Seen ') = 0 AND $1`,
	} {
		if got := rebind(in); got != want {
			t.Errorf("rebind(%q) = %q, want %q", in, got, want)
		}
	}
}

func withClock(o Options, now func() time.Time) Options {
	o.Now = now
	return o
}
