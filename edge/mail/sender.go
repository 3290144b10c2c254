package mail

import "context"

// Sender delivers messages.
//
// Implementations are safe for concurrent use. Send returns nil only once the message has been accepted
// (by the SMTP server after DATA, or written to the outbox); it returns early with an error when ctx is
// done. Errors describe what failed and never contain credentials. An SMTP reply from the server is
// wrapped as a *net/textproto.Error, so a caller can tell a temporary (4xx) refusal from a permanent (5xx)
// one with errors.As.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Interface guards.
var (
	_ Sender = (*SMTP)(nil)
	_ Sender = (*Outbox)(nil)
)
