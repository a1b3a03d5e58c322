// Command bridge runs tollbridge, a mail gateway that speaks SMTP and IMAP
// to ordinary mail clients and a ticketed, end-to-end encrypted protocol to
// other mail servers. This package is wiring only: the CLI of DESIGN.md §5.
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
}

func commands() []command {
	return []command{
		{"init", "--dir DIR --domain DOMAIN [--hostname HOST]: write a config, TLS certificate and data dir", runInit},
		{"serve", "--config F [--log-format text|json]: run every listener the config enables", runServe},
		{"quickstart", "[--dir DIR] [--json]: two bridges on loopback, alice and bob, ready for a mail client", runQuickstart},
		{"check", "--config F: validate config, certificates, ports and routes", runCheck},
		{"user add", "--config F --password-file P ADDRESS: create a local user and their key", runUserAdd},
		{"user export-key", "--config F ADDRESS: print a user's armored public key", runUserExportKey},
		{"user allow", "--config F ADDRESS SENDER: let SENDER's mail reach ADDRESS without work", runUserAllow},
		{"user mobileconfig", "--config F ADDRESS [--out FILE]: write an Apple Mail configuration profile", runUserMobileconfig},
		{"user list", "--config F: list local users", runUserList},
		{"user export", "--config F --password-file P --out DIR ADDRESS: write a user's mail as one Maildir per mailbox", runUserExport},
		{"user import", "--config F --password-file P [--mailbox NAME] ADDRESS PATH: store a Maildir or mbox as a user's mail", runUserImport},
		{"alias add", "--config F ALIAS TARGET...: deliver ALIAS to local users or aliases", runAliasAdd},
		{"alias list", "--config F: list aliases, catch-alls and postmaster", runAliasList},
		{"alias remove", "--config F ALIAS: remove an alias added with alias add", runAliasRemove},
		{"keys list", "--config F: show pinned remote keys", runKeysList},
		{"keys accept", "--config F ADDRESS: accept a changed key for ADDRESS", runKeysAccept},
		{"queue", "--config F: list the outbox", runQueue},
		{"pow bench", "[--seconds N] [--json]: measure the proof-of-work solver on all cores", runPowBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	cmd, rest := findCommand(args)
	if cmd == nil {
		usage(e.stderr)
		if len(args) > 0 && args[0] != "help" && args[0] != "-h" && args[0] != "--help" {
			fmt.Fprintf(e.stderr, "\nbridge: unknown command %q\n", strings.Join(args, " "))
		}
		return 2
	}
	err := cmd.run(ctx, e, rest)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(e.stdout, "usage: bridge %s %s\n", cmd.words, cmd.help)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "bridge %s: %v\nusage: bridge %s %s\n", cmd.words, err, cmd.words, cmd.help)
		return 2
	}
	fmt.Fprintf(e.stderr, "bridge %s: %v\n", cmd.words, err)
	return 1
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

// parseFlags parses flags wherever they appear among the positional
// arguments ("user add ADDRESS --config F" works too) and returns the
// positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
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
