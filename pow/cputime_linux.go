package pow

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time the calling OS thread has used, so that a
// benchmark on a busy machine counts its own core-seconds, not the time
// other processes held the core (the caller locks its goroutine to the
// thread).
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
