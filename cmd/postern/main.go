// Command postern is Postern's one binary: `postern dev` runs everything in one process, `postern
// directory` and `postern edge` run cluster nodes, and the rest are operator commands over the admin API.
//
// This package parses flags, builds configuration, calls constructors and waits for signals; everything
// else lives in the packages it wires.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// usageError is a mistake in how the command was called; it is printed with a hint to --help.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"dev", "run everything in one process on an embedded directory, with the sample tenant", runDev},
		{"directory", "run a directory node (raft voter) with the admin API", runDirectory},
		{"edge", "run an edge node (raft non-voter replica) with the HTTP edge and the admin API", runEdge},
		{"apply", "create or update one tenant from a manifest", runApply},
		{"admin", "operator commands over the admin API: tenants, apps, users, groups, keys, extensions", runAdmin},
		{"ext", "ext test: run a WebAssembly extension locally and check its answer against the event's contract", runExt},
		{"cluster", "cluster certs (development mutual-TLS certificates) and cluster status", runCluster},
		{"backup", "write a backup of the directory to a file", runBackup},
		{"restore", "replace the whole directory with a backup", runRestore},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "postern %s: %v (see postern %s --help)\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "postern %s: %v\n", c.name, oneLine(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(stderr, "postern: unknown command %q (see postern --help)\n", args[0])
	return 2
}

// oneLine keeps a failure to the one line CONTRACT.md promises, except for lists of problems (a manifest's
// errors), which stay one per line.
func oneLine(s string) string {
	if strings.Count(s, "\n") > 0 && strings.HasPrefix(s, "manifest has") {
		return s
	}
	return strings.ReplaceAll(s, "\n", "; ")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "postern: customer identity at the edge\n\nUsage: postern COMMAND [FLAGS]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --help.")
}

// parseInterleaved parses flags that may come before, between or after positional arguments.
// Help goes to standard output; a flag mistake becomes a one-line usage error.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(os.Stdout)
				fs.Usage()
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseFlagsOnly parses a command that takes no positional arguments.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("postern "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: postern %s\n\n", usage)
		fs.PrintDefaults()
	}
	return fs
}
