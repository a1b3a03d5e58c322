// Package pow holds the worktypes a ticket can demand before a message may be
// delivered (docs/protocol.md §3.2, §3.6): the server makes a challenge and checks what
// the sender submits; the sender solves the challenge on all its cores.
//
// The HTTP layers (ticketserver, ticketclient) only see [Worktype] and
// [Registry], which deal in JSON, so a new worktype (docs/rules.md §6) needs no
// change there. The one worktype of protocol version 1 is [HashWork], named
// "pow": find count distinct 64-bit proofs p such that
// SHA-256(data || uint64_big_endian(p)) starts with bits zero bits.
package pow
