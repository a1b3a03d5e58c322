//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// errBusy is lockFile's answer when another process holds the lock.
var errBusy = errors.New("locked by a running bridge")

// lockFile takes an flock on f without waiting: exclusive for the bridge,
// shared for bridge check's look.
func lockFile(f *os.File, exclusive bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errBusy
	}
	return err
}
