package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"postern.dev/postern/cluster"
)

func runCluster(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("need a subcommand: certs or status")
	}
	switch args[0] {
	case "certs":
		fs := newFlagSet("cluster certs", "cluster certs --out DIR [--host HOST,...] [--overwrite]")
		out := fs.String("out", "", "directory to write ca.pem, ca-key.pem, node.pem, node-key.pem into")
		hosts := fs.String("host", "", "extra host names or IPs for the node certificate, comma separated")
		overwrite := fs.Bool("overwrite", false, "replace an existing node certificate")
		if err := parseFlagsOnly(fs, args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return usagef("--out DIR is required")
		}
		var hs []string
		if *hosts != "" {
			hs = strings.Split(*hosts, ",")
		}
		if err := cluster.GenerateDevCerts(*out, hs, *overwrite); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote a development CA and node certificate to %s; give every node a copy with --tls-dir\n", *out)
		return nil
	case "status":
		fs := newFlagSet("cluster status", "cluster status --server URL [--token T]")
		var cf clientFlags
		cf.add(fs)
		if err := parseFlagsOnly(fs, args[1:]); err != nil {
			return err
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		var st any
		if err := c.json("GET", "/admin/v1/cluster", nil, &st); err != nil {
			return err
		}
		return printJSON(stdout, st, true)
	}
	return usagef("unknown subcommand %q: certs or status", args[0])
}

// runBackup writes a consistent backup of the directory (every committed write) to a file.
func runBackup(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", "backup -o FILE [--server URL] [--token T]")
	out := fs.String("o", "", "file to write the backup to")
	var cf clientFlags
	cf.add(fs)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("-o FILE is required")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	resp, err := c.do("GET", "/admin/v1/backup?consistency=linearizable", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tmp := *out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the backup: %w", err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d bytes to %s (raft index %s)\n", n, *out, resp.Header.Get("X-Postern-Index"))
	return nil
}

// runRestore replaces the whole directory, on every node, with a backup. Send it to the leader.
func runRestore(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "restore -f FILE [--server URL] [--token T]")
	in := fs.String("f", "", "the backup file")
	var cf clientFlags
	cf.add(fs)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return usagef("-f FILE is required")
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out any
	resp, err := c.do("POST", "/admin/v1/restore", f, "application/octet-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	_ = out
	fmt.Fprintf(stdout, "restored %s\n", *in)
	return nil
}
