// Package imapbench holds the Dovecot yardstick of issue 13: a benchmark
// that runs the bridge (`bridge serve`, a separate process) and a private
// Dovecot (Debian's dovecot-imapd, its own config and base_dir in a temp
// folder) side by side, APPENDs the same mixed mailbox to both and times
// the operations mail clients use, printing bridge/Dovecot for each.
//
// Run it with
//
//	go test ./internal/imapbench -run '^$' -bench Yardstick -benchtime 10x
//
// (3x is quicker, but a garbage collection or a checkpoint in one round
// moves a ratio by tens of percent.)
// TOLLBRIDGE_YARD_MESSAGES sets the mailbox size (default 10000;
// 1000 gives a run of under a minute). Without dovecot installed the
// benchmark skips. The package has no code of its own: it is this
// benchmark and its helpers.
package imapbench
