// Package mail sends Postern's email: the one-time codes of sign-up verification and sign-in, and any other
// message a flow asks the edge to deliver.
//
// A flow never talks to a mail server itself; it emits an effect, and the edge hands a [Message] to a
// [Sender]. Two senders exist:
//
//   - [SMTP] delivers through an SMTP server (plain to loopback only, STARTTLS, or implicit TLS; optional
//     AUTH PLAIN). It uses the standard library's net/smtp and opens one connection per message.
//   - [Outbox] is `postern dev` without --smtp: each message goes to the log (with its plain text, so a
//     developer can read the code) and to a file in DIR/outbox/.
//
// [Compose] builds the RFC 5322 bytes both senders use. It refuses CR and LF in header values, so a value
// that reached a [Message] from a form cannot inject headers.
//
// # Notes
//
//   - CONTRACT.md "Email": one-time codes are 6 to 8 digits and appear in the plain-text part.
//   - RFC 5322 (message format), RFC 2045/2046 (MIME, quoted-printable, multipart/alternative), RFC 2047
//     (encoded words in Subject and display names), RFC 3207 (STARTTLS), RFC 8314 (implicit TLS for
//     submission), RFC 4616 (SASL PLAIN), RFC 3834 (Auto-Submitted).
package mail
