//go:build !linux

package s3test

import "os/exec"

// setDeathSignal does nothing where Pdeathsig is missing: Main stops the S3 server.
func setDeathSignal(cmd *exec.Cmd) {}
