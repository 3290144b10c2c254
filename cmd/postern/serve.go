package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// runDirectory runs a voter: directory replica and admin API.
func runDirectory(args []string, stdout, stderr io.Writer) error {
	return runClusterNode("directory", true, args, stdout)
}

// runEdge runs a non-voter: directory replica, the HTTP edge and the admin API.
func runEdge(args []string, stdout, stderr io.Writer) error {
	return runClusterNode("edge", false, args, stdout)
}

func runClusterNode(role string, voter bool, args []string, stdout io.Writer) error {
	usage := role + " --data DIR --node-id ID --raft-addr HOST:PORT --admin-listen ADDR (--bootstrap | --join URL) [--region R] [--tls-dir DIR] [--kek-file FILE]"
	if !voter {
		usage = "edge --data DIR --node-id ID --raft-addr HOST:PORT --listen ADDR --admin-listen ADDR --join URL [--region R] [--tls-dir DIR] [--kek-file FILE]"
	}
	fs := newFlagSet(role, usage)
	o := nodeOptions{voter: voter}
	fs.StringVar(&o.dataDir, "data", "", "data directory (required)")
	fs.StringVar(&o.nodeID, "node-id", "", "this node's id, unique in the cluster (required)")
	fs.StringVar(&o.raftAddr, "raft-addr", "", "host:port for traffic between nodes, listened on and advertised (required)")
	fs.StringVar(&o.adminListen, "admin-listen", "127.0.0.1:8081", "address of the admin API")
	fs.StringVar(&o.join, "join", "", "admin URL of any member, to join an existing cluster")
	fs.StringVar(&o.region, "region", "", "region label, shown in the cluster status")
	fs.StringVar(&o.tlsDir, "tls-dir", "", "directory with ca.pem, node.pem and node-key.pem for mutual TLS between nodes (see postern cluster certs)")
	fs.StringVar(&o.kekFile, "kek-file", "", "key-encryption key file (or set POSTERN_KEK); the same on every node")
	fs.Uint64Var(&o.snapThresh, "snapshot-threshold", 0, "raft log entries between snapshots (0: raft's default, 8192)")
	fs.Uint64Var(&o.trailing, "trailing-logs", 0, "raft log entries kept after a snapshot (0: raft's default, 10240)")
	fs.IntVar(&o.segSize, "raft-segment-size", 0, "bytes per raft log segment file; the log is freed a whole segment at a time (0: 64 MiB)")
	fs.DurationVar(&o.snapEvery, "snapshot-interval", 0, "how often raft checks whether the log has grown by --snapshot-threshold entries and takes a snapshot (0: raft's default, 2m)")
	if voter {
		fs.BoolVar(&o.bootstrap, "bootstrap", false, "start a new cluster with this node alone")
	} else {
		fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of the edge listener")
		fs.StringVar(&o.publicURL, "public-url", "", "public base URL of the edge (default http://<listen>)")
		fs.StringVar(&o.smtp, "smtp", "", "SMTP server HOST:PORT for sign-up codes (default: write mail to the log and DIR/outbox/); POSTERN_SMTP_USERNAME and POSTERN_SMTP_PASSWORD for AUTH")
		fs.StringVar(&o.smtpTLS, "smtp-tls", "", "none, starttls or tls (default: none to a loopback server, else starttls)")
		fs.StringVar(&o.smtpFrom, "smtp-from", "", "From address of outgoing mail")
	}
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	switch {
	case o.dataDir == "":
		return usagef("--data is required")
	case o.nodeID == "":
		return usagef("--node-id is required")
	case o.raftAddr == "":
		return usagef("--raft-addr is required")
	case o.bootstrap && o.join != "":
		return usagef("--bootstrap and --join exclude each other")
	}
	if !o.bootstrap && o.join == "" && !hasRaftState(o.dataDir) {
		if voter {
			return usagef("a new node needs --bootstrap (a new cluster) or --join URL (an existing one)")
		}
		return usagef("a new edge needs --join URL (the admin URL of any member)")
	}
	o.adminToken = os.Getenv("POSTERN_ADMIN_TOKEN")
	log := newLogger()
	rn, err := startNode(o, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "postern %s %s: raft %s, admin http://%s", role, o.nodeID, o.raftAddr, rn.adminAddr)
	if rn.edgeAddr != "" {
		fmt.Fprintf(stdout, ", edge http://%s", rn.edgeAddr)
	}
	fmt.Fprintln(stdout)
	sig := waitForSignal()
	log.Info("stopping", "signal", sig.String())
	rn.stop()
	return nil
}

// hasRaftState reports whether dir holds a node's raft state from an earlier run.
func hasRaftState(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, "raft", "wal"))
	return err == nil && len(entries) > 0
}
