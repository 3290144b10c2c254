// Command postern-bench runs Postern's benchmark scenarios and prints one markdown table of every figure
// beside its baseline (see package bench). `make bench` runs it with the defaults.
//
//	postern-bench [-run REGEX] [-duration 5s] [-users 1000000] [-writers 64] [-dir DIR] [-q] [-cpuprofile FILE]
//
// The table goes to stdout; progress (and raft's own warnings) to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"time"

	"postern.dev/postern/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	def := bench.DefaultConfig()
	fs := flag.NewFlagSet("postern-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pattern := fs.String("run", "", "run only the scenarios whose name matches this regular expression")
	duration := fs.Duration("duration", def.Duration, "how long each timed phase runs (a baseline runs as long again)")
	users := fs.Int("users", def.Users, "users loaded for the read scenarios")
	writers := fs.Int("writers", def.Writers, "concurrent proposers in the write scenarios")
	dir := fs.String("dir", "", "parent of the scenarios' temporary data directories, on the disk to measure (default: the system temp directory)")
	quiet := fs.Bool("q", false, "no progress on stderr (raft still logs its own warnings there)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	profileDir := fs.String("profile-dir", "", "write CPU profiles of the measured Postern processes (taken through the admin API) into this directory")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var re *regexp.Regexp
	if *pattern != "" {
		var err error
		if re, err = regexp.Compile(*pattern); err != nil {
			fmt.Fprintf(stderr, "postern-bench: -run: %v\n", err)
			return 2
		}
	}
	level := slog.LevelInfo
	if *quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := bench.Config{Duration: *duration, Users: *users, Writers: *writers, Dir: *dir, ProfileDir: *profileDir, Logger: log}

	scenarios := bench.Select(bench.Scenarios(cfg), re)
	if len(scenarios) == 0 {
		fmt.Fprintf(stderr, "postern-bench: no scenario matches %q\n", *pattern)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "postern-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "postern-bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report := bench.Run(ctx, scenarios, log)

	fmt.Fprintf(stdout, "postern-bench %s, %s/%s, %d CPUs, %s per phase, %d writers, %d users\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cfg.Duration,
		cfg.Writers, cfg.Users)
	if err := report.WriteMarkdown(stdout); err != nil {
		fmt.Fprintf(stderr, "postern-bench: %v\n", err)
		return 1
	}
	if report.Failed() {
		return 1
	}
	return 0
}
