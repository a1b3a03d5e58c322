// Package s3test gives tests a bucket on a real S3-compatible server: the
// Versity S3 Gateway (versitygw, Apache-2.0) serving buckets as folders
// of a temporary directory, started once per test binary on a free
// loopback port with a root key and secret it makes up. No mock: the
// store's blobs and a bridge with S3 config talk to it with minio-go as
// they would to any object store.
//
// The versitygw binary is $TOLLBRIDGE_S3GW, else the one .ci/s3gw
// installs into the user's cache directory, else versitygw on PATH. With
// TOLLBRIDGE_S3 = "host:port" (and AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY) tests use that server instead. Without either,
// tests skip, except in CI (CI=true), where .ci/run installs versitygw
// and a missing server fails the test.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// GatewayVersion is the versitygw module version .ci/s3gw installs; the
// cached binary's path names it, so a new version is installed anew.
const GatewayVersion = "v1.8.0"

// Bucket is one test's empty bucket and how to reach it.
type Bucket struct {
	Endpoint  string // host:port, plain HTTP
	Name      string
	AccessKey string
	SecretKey string
}

// server is a running (or external) S3 server.
type server struct {
	endpoint, accessKey, secretKey string
	cmd                            *exec.Cmd
	exited                         chan struct{} // closed when the server has exited
	dir                            string
}

// shared is the test binary's one server, started by the first test that
// asks (a package variable, like a TestMain's: the server takes a moment to
// start and serves every test's buckets).
var shared struct {
	once sync.Once
	srv  *server
	err  error
}

// New makes an empty bucket for t on the shared server, removed with its
// objects when t ends. It skips t when no server can be had, unless CI=true.
func New(t testing.TB) Bucket {
	t.Helper()
	shared.once.Do(func() { shared.srv, shared.err = start() })
	if shared.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("s3test: %v", shared.err)
		}
		t.Skipf("s3test: %v", shared.err)
	}
	s := shared.srv
	b := Bucket{Endpoint: s.endpoint, Name: "tb-" + randomHex(8), AccessKey: s.accessKey, SecretKey: s.secretKey}
	c, err := b.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.MakeBucket(ctx, b.Name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("s3test: make bucket %s: %v", b.Name, err)
	}
	t.Cleanup(func() { empty(c, b.Name) })
	return b
}

// Env is the environment a bridge process needs to reach the bucket: the
// server's credentials, as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// It is nil for no bucket (Name empty). Tests pass it to the processes
// they start instead of setting their own environment, so that they can
// run in parallel.
func (b Bucket) Env() []string {
	if b.Name == "" {
		return nil
	}
	return []string{"AWS_ACCESS_KEY_ID=" + b.AccessKey, "AWS_SECRET_ACCESS_KEY=" + b.SecretKey}
}

// Client is a minio-go client of the bucket's server, for tests that
// look at objects directly.
func (b Bucket) Client() (*minio.Client, error) {
	c, err := minio.New(b.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(b.AccessKey, b.SecretKey, "")})
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	return c, nil
}

// Main runs the tests and then stops the shared server, if one was
// started: call it from TestMain as os.Exit(s3test.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.stop()
	}
	return code
}

// empty removes a bucket's objects, unfinished uploads and the bucket,
// best effort: the server's directory goes with it anyway.
func empty(c *minio.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			break
		}
		c.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{})
	}
	for up := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err != nil {
			break
		}
		c.RemoveIncompleteUpload(ctx, bucket, up.Key)
	}
	c.RemoveBucket(ctx, bucket)
}

// start uses TOLLBRIDGE_S3 when set, else starts versitygw.
func start() (*server, error) {
	if ep := os.Getenv("TOLLBRIDGE_S3"); ep != "" {
		s := &server{endpoint: ep, accessKey: os.Getenv("AWS_ACCESS_KEY_ID"), secretKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}
		return s, s.wait(30 * time.Second)
	}
	bin, err := gatewayBinary()
	if err != nil {
		return nil, err
	}
	return startGateway(bin)
}

// gatewayBinary finds the versitygw command.
func gatewayBinary() (string, error) {
	if p := os.Getenv("TOLLBRIDGE_S3GW"); p != "" {
		return p, nil
	}
	if p := CachedGateway(); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("no versitygw binary: install it with .ci/s3gw, or set TOLLBRIDGE_S3GW or TOLLBRIDGE_S3")
}

// CachedGateway is where .ci/s3gw puts the binary of GatewayVersion:
// $XDG_CACHE_HOME or ~/.cache, then tollbridge/versitygw-VERSION/versitygw.
func CachedGateway() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "tollbridge", "versitygw-"+GatewayVersion, "versitygw")
}

// startGateway runs versitygw's POSIX backend on a free loopback port,
// its buckets as folders in a new temporary directory, and waits until
// S3 answers.
func startGateway(bin string) (*server, error) {
	dir, err := os.MkdirTemp("", "s3gw")
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	s := &server{dir: dir, accessKey: "tb" + randomHex(8), secretKey: randomHex(20)}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("s3test: %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	// The credentials go in the environment, not argv, where any local
	// user's ps would show them.
	s.cmd = exec.Command(bin, "--port", s.endpoint, "--quiet", "posix", data)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.accessKey, "ROOT_SECRET_ACCESS_KEY="+s.secretKey)
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.wait(60 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// run starts the process, its output in server.log.
func (s *server) run() error {
	log, err := os.Create(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return fmt.Errorf("s3test: %w", err)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.Dir = s.dir
	setDeathSignal(s.cmd)
	err = s.cmd.Start()
	log.Close()
	if err != nil {
		return fmt.Errorf("s3test: start %s: %w", s.cmd.Path, err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.exited) }()
	return nil
}

// wait polls the S3 endpoint until it lists buckets, or fails after
// limit or when the server exits.
func (s *server) wait(limit time.Duration) error {
	c, err := minio.New(s.endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.accessKey, s.secretKey, "")})
	if err != nil {
		return fmt.Errorf("s3test: %w", err)
	}
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if s.gone() || time.Now().After(deadline) {
			return fmt.Errorf("s3test: S3 at %s not answering after %v: %v%s", s.endpoint, limit, err, s.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// gone reports whether the server this started has exited.
func (s *server) gone() bool {
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// logTail is the end of the server's log, for a failure message.
func (s *server) logTail() string {
	if s.dir == "" {
		return ""
	}
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nserver.log:\n" + string(b)
}

// stop ends the server (politely, then not) and removes its directory.
func (s *server) stop() {
	if s.exited != nil {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// freePorts reserves n loopback ports at once and frees them for the server.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("s3test: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
