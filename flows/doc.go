// Package flows holds the journeys' decisions, apart from HTTP and HTML: what a sign-up form's input
// means and whether it is acceptable, given the tenant's flow configuration. The edge performs what
// follows (pages, mail, raft writes); the functions here are pure, so journeys test as tables.
//
// Today: sign-up attribute collection and validation. Sign-in steps, one-time passcodes, MFA and
// password reset join as their issues arrive.
package flows
