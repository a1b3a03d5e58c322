//go:build !linux

package s3test

import "os/exec"

// setDeathSignal does nothing where Pdeathsig is missing: Main stops weed.
func setDeathSignal(cmd *exec.Cmd) {}
