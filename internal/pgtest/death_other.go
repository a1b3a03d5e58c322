//go:build !linux

package pgtest

import "syscall"

// deathSignal does nothing where Pdeathsig is missing: Stop ends the
// server.
func deathSignal(*syscall.SysProcAttr) {}
