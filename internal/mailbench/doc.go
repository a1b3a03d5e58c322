// Package mailbench holds the mail-flow yardstick: alice@example.org sends
// 500 messages of a realistic size mix to bob@example.net, once through
// two `bridge serve` processes (each its own data dir, proof-of-work at
// its default) and once through Postfix relaying to Postfix that delivers
// by LMTP to Dovecot, and prints messages per second for each and the
// ratio bridge/Postfix for every round.
//
// Both sides run as separate processes on loopback with TLS on every hop:
// the client submits with STARTTLS and AUTH PLAIN over 4 connections
// (alice's Postfix checks the password with Dovecot); the bridges talk
// HTTPS to each other; alice's Postfix relays to bob's with mandatory
// STARTTLS. Postfix, Dovecot and the bridges run as configured out of the
// box apart from ports, folders and the route; the bridges' ticket
// requests are not rate-limited, as in cmd/bridge's process tests. The clock starts before the first connection and stops when
// bob's INBOX holds all 500 messages, as an IMAP STATUS over STARTTLS
// (one logged-in session, polled every 50 ms) reports it.
//
// Run it (as root: a private Postfix drops to its mail_owner) with
//
//	go test ./internal/mailbench -run '^$' -bench MailFlow -benchtime 2x
//
// (-benchtime Nx is N rounds, the servers set up once; on two shared
// cores a bridge round of 500 messages takes 6 to 8 minutes, alice's
// proof-of-work being nearly all of it.)
// Each round sends 500 new messages (TOLLBRIDGE_MAILBENCH_MESSAGES sets
// another count) to the same mailboxes and waits for INBOX to grow by
// that many. Every round also prints the CPU seconds each bridge process
// used and alice's proof-of-work seconds (from its /metrics).
// TOLLBRIDGE_MAILBENCH_POW=BITS,COUNT sets the work both bridges ask
// (bridge init's default is 20,4, about 0.4 s of one core a message);
// "8,1" times the mail path itself.
// TOLLBRIDGE_MAILBENCH_PPROF=DIR builds the bridge with net/http/pprof
// added (a build overlay; the repo's code is unchanged) and writes a CPU
// profile of each bridge process for the first round into DIR.
//
// Without postfix or dovecot installed, or when not root, the benchmark
// skips. The package has no code of its own: it is this benchmark and
// its helpers.
package mailbench
