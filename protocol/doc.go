// Package protocol holds the ticketed protocol's wire formats and exact
// rules, as docs/protocol.md §3 specifies them: the ticket request and
// answer (§3.2), the header (§3.3.4), the delivery receipt (§3.3.2), the
// address hash and part kinds (§3.6), the names of upload paths (§3.3.1)
// and the signature header of signed requests (§3.7).
//
// Server (ticketserver) and client (ticketclient) share these types, the
// way go-imap v2's imap package serves imapserver and imapclient, so the
// two sides cannot drift apart. The package uses the standard library
// only; cryptography (wrapping session keys, signatures) lives in seal.
//
// Parsers are strict where §3.6 says so (the header) and lenient where it
// says so (unknown members of a ticket request are ignored). Errors about
// bytes from the wire wrap [ErrMalformed].
package protocol
