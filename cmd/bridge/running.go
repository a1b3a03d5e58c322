package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// runningFile, in the data dir, says which bridge process serves that data
// dir and on which configured addresses. The process holds an exclusive
// lock on it while it runs; the kernel drops the lock when the process
// ends, however it ends, so a stale file never looks like a running bridge.
// bridge check reads it to tell "this bridge is running" from "another
// program holds the port" without speaking each listener's protocol.
const runningFile = "running.json"

// running is runningFile's content.
type running struct {
	PID       int               `json:"pid"`
	Config    string            `json:"config"`
	Listeners map[string]string `json:"listeners"` // name → configured address
}

// runningLock is the lock a serving bridge holds on its data dir.
type runningLock struct{ f *os.File }

// lockRunning takes the data dir's lock and writes what this process
// serves. errBusy means another live process holds it.
func lockRunning(dataDir string, r running) (*runningLock, error) {
	f, err := os.OpenFile(filepath.Join(dataDir, runningFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, true); err != nil {
		f.Close()
		return nil, err
	}
	b, _ := json.Marshal(r)
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteAt(append(b, '\n'), 0); err != nil {
		f.Close()
		return nil, err
	}
	return &runningLock{f: f}, nil
}

// release drops the lock; the file stays, unlocked, meaning "not running".
func (l *runningLock) release() {
	if l != nil {
		l.f.Close()
	}
}

// readRunning returns what the live bridge serving dataDir runs, or nil
// when none does.
func readRunning(dataDir string) (*running, error) {
	f, err := os.Open(filepath.Join(dataDir, runningFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := lockFile(f, false); err == nil {
		return nil, nil // nobody holds it: not running
	} else if !errors.Is(err, errBusy) {
		return nil, err
	}
	var r running
	if err := json.NewDecoder(f).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return &r, nil
}
