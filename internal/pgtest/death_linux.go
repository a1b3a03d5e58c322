package pgtest

import "syscall"

// deathSignal is what the postmaster gets when the test binary dies
// without stopping it: SIGQUIT, PostgreSQL's immediate shutdown, which
// ends its children too.
func deathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
