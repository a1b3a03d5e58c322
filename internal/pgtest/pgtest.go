// Package pgtest gives tests (and benchmarks) a real PostgreSQL: the one
// named by TOLLBRIDGE_POSTGRES, or a private cluster started from Debian's
// package (/usr/lib/postgresql/N/bin) with its own data directory, port
// and socket directory under a temporary directory. PostgreSQL refuses to
// run as root, so as root the cluster runs as the user tollbridge-test
// (made by .ci/run) or else nobody.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// EnvDSN names the variable holding an existing server's connection string.
const EnvDSN = "TOLLBRIDGE_POSTGRES"

// Cluster is a private PostgreSQL server.
type Cluster struct {
	// DSN connects to its database "postgres" as superuser "postgres"
	// over TCP on 127.0.0.1.
	DSN  string
	dir  string
	proc *exec.Cmd
	done chan error
}

// BinDir finds the newest installed PostgreSQL's bin directory.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgtest: no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start makes and starts a cluster in a new temporary directory; Stop
// ends it and removes the directory.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tollbridge-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, done: make(chan error, 1)}
	if err := c.start(ctx, bin); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, bin string) error {
	cred, err := runAs(c.dir)
	if err != nil {
		return err
	}
	data, sock := filepath.Join(c.dir, "data"), c.dir
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	// Durability is not under test here: fsync off makes the cluster
	// fast on a busy machine.
	c.proc = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-k", sock, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	c.proc.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	deathSignal(c.proc.SysProcAttr)
	c.proc.Env = initdb.Env
	log, err := os.Create(filepath.Join(c.dir, "postgres.log"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer log.Close()
	c.proc.Stdout, c.proc.Stderr = log, log
	if err := c.proc.Start(); err != nil {
		return fmt.Errorf("pgtest: postgres: %w", err)
	}
	go func() { c.done <- c.proc.Wait() }()
	c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return c.waitReady(ctx)
}

// waitReady polls until the server answers, it exits, or 60 s pass.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ping(ctx, c.DSN)
		if err == nil {
			return nil
		}
		select {
		case werr := <-c.done:
			c.done <- werr
			logText, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("pgtest: postgres exited: %v: %s", werr, logText)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after 60 s: %w", err)
		}
	}
}

func ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(pctx)
}

// Stop ends the server (fast shutdown) and removes its directory.
func (c *Cluster) Stop() error {
	if c.proc != nil && c.proc.Process != nil {
		c.proc.Process.Signal(syscall.SIGINT)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.proc.Process.Kill()
			<-c.done
		}
	}
	return os.RemoveAll(c.dir)
}

// runAs returns the credentials to run PostgreSQL with (nil when not
// root) and hands dir to that user.
func runAs(dir string) (*syscall.Credential, error) {
	if os.Getuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("tollbridge-test")
	if err != nil {
		if u, err = user.Lookup("nobody"); err != nil {
			return nil, fmt.Errorf("pgtest: running as root and no unprivileged user: %w", err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Server returns the connection string of a PostgreSQL for t: the one
// TOLLBRIDGE_POSTGRES names, or a private cluster stopped when t ends.
// Without PostgreSQL the test is skipped, or fails when CI=true: CI always
// runs the PostgreSQL tests.
func Server(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	c, err := Start(context.Background())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		t.Skipf("no PostgreSQL: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c.DSN
}

// Schema makes a new, empty schema in the database at dsn and returns a
// connection string whose search_path is that schema, so tests sharing one
// server do not see each other's tables.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	name := "t_" + randomHex(8)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE SCHEMA ` + name); err != nil {
		t.Fatalf("pgtest: schema: %v", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}

// stdlib registers the "pgx" database/sql driver used above.
var _ = stdlib.GetDefaultDriver
