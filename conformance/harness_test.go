package conformance_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"tollbridge/internal/testkit"
)

// A bridge process that exits before it listens is reported, and the
// test's cleanup still ends: waitListening used to take the exit status
// that stop then waited for forever, so a bridge failing to bind hung the
// whole package until the 10-minute test timeout.
func TestBridgeExitingEarlyIsReported(t *testing.T) {
	t.Parallel()
	b := &bridgeProc{t: t, domain: "example.invalid", done: make(chan error, 1)}
	b.cmd = exec.Command(os.Args[0], "-test.run=^$") // this binary, running no test: exits at once
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	err := b.waitListening(testkit.FreeAddr(t))
	if err == nil || !strings.Contains(err.Error(), "bridge serve exited") {
		t.Fatalf("waitListening = %v, want the exit reported", err)
	}
	stopped := make(chan struct{})
	go func() { b.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("stop still waiting for the process 30 s after it exited")
	}
}
