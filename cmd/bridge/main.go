// Command bridge runs tollbridge, a mail gateway that speaks SMTP and IMAP
// to ordinary mail clients and a ticketed, end-to-end encrypted protocol to
// other mail servers. This package is wiring only: the CLI of docs/rules.md §5.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"tollbridge/keyring"
)

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one subcommand: name words ("user add") and its runner.
type command struct {
	words string
	help  string
	run   func(ctx context.Context, env *env, args []string) error
}

// env is the process's outside world, passed explicitly so tests can run
// commands in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// keys protects the private keys of new and changed passwords; the
	// zero value is the production cost (keyring.Protection's defaults).
	// Tests that run commands in-process make it cheap.
	keys keyring.Protection
}

func commands() []command {
	return []command{
		{"init", "--dir DIR --domain DOMAIN [--hostname HOST]: write a config, TLS certificate and data dir", runInit},
		{"serve", "--config F [--log-format text|json]: run every listener the config enables", runServe},
		{"quickstart", "[--dir DIR] [--json]: two bridges on loopback, alice and bob, ready for a mail client", runQuickstart},
		{"check", "--config F: validate config, certificates, ports and routes", runCheck},
		{"dns", dnsUsage, runDNS},
		{"user add", "--config F --password-file P [--recovery-file R] ADDRESS: create a local user, their key and recovery code", runUserAdd},
		{"user passwd", "--config F --old-password-file O --password-file P ADDRESS: change a user's password", runUserPasswd},
		{"user recover", "--config F --recovery-file R --password-file P ADDRESS: set a new password with the recovery code (a new code is written to R)", runUserRecover},
		{"user remove", "--config F [--yes] ADDRESS: delete a user with their keys and mail", runUserRemove},
		{"user rotate-key", "--config F --password-file P [--recovery-file R] ADDRESS: make a new key certified by the old one", runUserRotateKey},
		{"user export-key", "--config F ADDRESS: print a user's armored public key", runUserExportKey},
		{"user allow", "--config F ADDRESS SENDER | --list ADDRESS | --remove ADDRESS SENDER: trust a sender, list or undo trust", runUserAllowCmd},
		{"user mobileconfig", "--config F ADDRESS [--out FILE]: write an Apple Mail configuration profile", runUserMobileconfig},
		{"user list", "--config F: list local users", runUserList},
		{"user export", "--config F --password-file P --out DIR ADDRESS: write a user's mail as one Maildir per mailbox", runUserExport},
		{"user import", "--config F --password-file P [--mailbox NAME] ADDRESS PATH: store a Maildir or mbox as a user's mail", runUserImport},
		{"alias add", "--config F ALIAS TARGET...: deliver ALIAS to local users or aliases", runAliasAdd},
		{"alias list", "--config F: list aliases, catch-alls and postmaster", runAliasList},
		{"alias remove", "--config F ALIAS: remove an alias added with alias add", runAliasRemove},
		{"keys list", "--config F: show pinned remote keys", runKeysList},
		{"keys accept", "--config F ADDRESS: accept a changed key for ADDRESS", runKeysAccept},
		{"queue retry", "--config F [ID | --all]: try message ID (or every message) now instead of at its next attempt", runQueueRetry},
		{"queue", "--config F [--done [--limit N]]: list the outbox, or recent deliveries with their receipts' checks", runQueue},
		{"receipt verify", "[--key FILE | --config F] FILE: check the receipt in a saved success notice against the receiving server's key", runReceiptVerify},
		{"store migrate", storeMigrateUsage, runStoreMigrate},
		{"pow bench", "[--seconds N] [--json]: measure the proof-of-work solver on all cores, and each worktype's cost a ticket on one core", runPowBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the drain; a second one ends the process at
	// once, the default action, for a drain that takes too long.
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	if words, ok := helpRequest(args); ok {
		return help(e, words)
	}
	cmd, rest := findCommand(args)
	if cmd == nil {
		usage(e.stderr)
		if len(args) > 0 {
			fmt.Fprintf(e.stderr, "\nbridge: unknown command %q\n", strings.Join(args, " "))
		}
		return 2
	}
	err := cmd.run(ctx, e, rest)
	var ue *usageError
	var he *helpError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		printCommandHelp(e.stdout, cmd, he.fs)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "bridge %s: %v\nusage: bridge %s %s\n", cmd.words, err, cmd.words, cmd.help)
		return 2
	}
	fmt.Fprintf(e.stderr, "bridge %s: %v\n", cmd.words, err)
	return 1
}

// helpRequest recognises the help requests that name no single command:
// "", "help [WORDS…]", "--help" and a command group followed by --help
// ("user --help"). It returns the words asked about.
func helpRequest(args []string) ([]string, bool) {
	if len(args) > 0 && args[0] == "help" {
		return args[1:], true
	}
	if len(args) == 0 || !isHelpFlag(args[len(args)-1]) {
		return nil, false
	}
	words := args[:len(args)-1]
	if cmd, _ := findCommand(words); cmd != nil {
		return nil, false // the command's own flag set answers
	}
	return words, true
}

func isHelpFlag(a string) bool { return a == "-h" || a == "--help" || a == "-help" }

// help prints what words name (every command, a group or one command) on
// stdout; words that name nothing get the full usage on stderr, status 2.
func help(e *env, words []string) int {
	prefix := strings.Join(words, " ")
	if prefix == "" {
		usage(e.stdout)
		return 0
	}
	var matched []command
	for _, c := range commands() {
		if c.words == prefix || strings.HasPrefix(c.words, prefix+" ") {
			matched = append(matched, c)
		}
	}
	if len(matched) == 0 {
		usage(e.stderr)
		fmt.Fprintf(e.stderr, "\nbridge: unknown command %q\n", prefix)
		return 2
	}
	fmt.Fprintf(e.stdout, "usage: bridge %s SUBCOMMAND [flags]\n\nsubcommands:\n", prefix)
	for _, c := range matched {
		fmt.Fprintf(e.stdout, "  %-18s %s\n", c.words, c.help)
	}
	fmt.Fprintf(e.stdout, "\nbridge %s SUBCOMMAND --help shows its flags.\n", prefix)
	return 0
}

// printCommandHelp is one command's answer to --help: its usage line, its
// flags and the subcommands under it.
func printCommandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: bridge %s %s\n", cmd.words, cmd.help)
	var flags int
	fs.VisitAll(func(*flag.Flag) { flags++ })
	if flags > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	for _, c := range commands() {
		if strings.HasPrefix(c.words, cmd.words+" ") {
			fmt.Fprintf(w, "\nsubcommand: bridge %s %s\n", c.words, c.help)
		}
	}
}

func findCommand(args []string) (*command, []string) {
	cmds := commands()
	for i := range cmds {
		words := strings.Fields(cmds[i].words)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmds[i].words {
			return &cmds[i], args[len(words):]
		}
	}
	return nil, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bridge COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-18s %s\n", c.words, c.help)
	}
}

// helpError is a command's answer to -h or --help: run prints its usage
// and flags on stdout and exits 0.
type helpError struct{ fs *flag.FlagSet }

func (e *helpError) Error() string { return "help requested" }
func (e *helpError) Unwrap() error { return flag.ErrHelp }

// parseFlags parses flags wherever they appear among the positional
// arguments ("user add ADDRESS --config F" works too) and returns the
// positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpError{fs: fs}
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
