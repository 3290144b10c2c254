// Package edge serves Postern over HTTP with fasthttp: the edge listener that customers and apps reach
// (sign-in, OpenID Connect, the proxy) and, in sub-package admin, the operators' API.
//
// Every read on the edge is a read of the local directory replica; writes go through the cluster, which
// forwards them to the leader. The package knows the cluster only through the small interfaces it
// declares, never raft or Badger themselves.
package edge
