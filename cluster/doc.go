// Package cluster keeps every replica of the directory consistent with hashicorp/raft.
//
// Directory nodes are raft voters; edge nodes are non-voters that hold a full replica but never count for
// quorum, so an edge far away neither slows commits nor can block them. Every node accepts writes and
// forwards them to the leader; reads are local by default, linearizable on request, and read-your-writes
// by raft index with a bounded wait. Nodes talk over one TCP port per node, with mutual TLS when a
// certificate directory is given: the first byte of each connection says whether it carries raft traffic
// or a forwarded request, so forwarding needs no second port and no HTTP.
//
// The package knows the directory only as a state machine to drive ([directory.Store]); it knows nothing
// of HTTP handlers or journeys.
package cluster
