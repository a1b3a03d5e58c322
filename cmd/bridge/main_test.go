package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tollbridge/internal/s3test"
)

// TestMain removes the bridge binary built (once) by bridgeBinary, and
// stops the S3 server (internal/s3test) if a test started one.
func TestMain(m *testing.M) {
	code := s3test.Main(m)
	if bin, err := bridgeBinary(); err == nil && strings.HasPrefix(filepath.Base(filepath.Dir(bin)), "bridge-bin") {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// runBinary runs the built bridge binary with args and returns its exit
// status, stdout and stderr; after a minute it is killed.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runBinaryEnv(t, nil, args...)
}

// runBinaryEnv is runBinary with env added to the environment.
func runBinaryEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	bin, err := bridgeBinary()
	if err != nil {
		t.Fatal(err)
	}
	// A command that should fail at once but serves instead is stopped.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatal(err)
	return 0, "", ""
}
