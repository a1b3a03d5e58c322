// Package imapout is tollbridge's IMAP server: it shows the sealed
// messages of the store to ordinary mail clients, rebuilt byte for byte
// (docs/rules.md §1, §3.4), and files newly arrived mail once its owner's key
// is unlocked by a login.
//
// It is a go-imap v2 imapserver backend offering IMAP4rev1 and IMAP4rev2
// with IDLE, UIDPLUS, MOVE, NAMESPACE, UNSELECT, ESEARCH, SEARCHRES,
// LIST-EXTENDED, LIST-STATUS, STATUS=SIZE, SPECIAL-USE, CREATE-SPECIAL-USE,
// LITERAL+, APPENDLIMIT, BINARY and CHILDREN.
//
// Logins. LOGIN and AUTHENTICATE PLAIN check the password by unlocking the
// user's private key (keyring.Unlocker, shared by the user's sessions).
// Without TLS, logins are only accepted from loopback addresses; others see
// LOGINDISABLED until STARTTLS. Failures are answered after a delay and
// counted per client address; too many get the address refused for a while.
// Each failed or refused login is logged by keyring.LogLoginFailed, in the
// form SMTP uses too and contrib/fail2ban's filter matches.
//
// Filing. Mail waits unfiled (store messages.filed = 0) until its owner's
// key is available: at login, before LOGIN's OK, and at once while a
// session is open. Filing opens the catalog, checks the sender (docs/protocol.md
// §3.6) and the signature, and files into INBOX, or Junk when it fails.
// Each message is filed in one transaction, with its metadata cache.
//
// What the client sees. For mail the client saved itself (APPEND) it is
// the rebuilt message; for everything else the stored trace fields, then
// "Authentication-Results: HOST; tollbridge=pass|fail|none" (for MX mail
// followed by the spf=, dkim= and dmarc= results stored with it, docs/rules.md
// §4), then the rebuilt message less the top-level Authentication-Results fields that
// claim HOST as their authserv-id (RFC 8601 §5: nobody else may speak in
// this bridge's name). NUL, which no ordinary literal may carry (RFC 9051
// §4.3), goes out as 0x80 in BODY items, as Dovecot sends it; BINARY
// items (literal8) carry it as stored. Before any byte of a message is
// sent, every part is decrypted and checked (MDC, size and SHA-256
// against the catalog); the result is held in memory, or beyond 4 MiB in
// a temporary file encrypted with a key that exists only in memory. A
// message that fails is left out of a FETCH answer and named in its final
// NO; the rest keeps working. One that another session expunged meanwhile
// is left out as expunged (EXPUNGEISSUED), not reported as damaged.
//
// Metadata cache. What listing needs (RFC822.SIZE, ENVELOPE, BODYSTRUCTURE
// with byte offsets of every part, the top-level header, the text parts
// for SEARCH BODY) is computed once from the verified message and stored
// in messages.meta, sealed with AES-256-GCM under the user's data key and
// bound to the message id. Listing a mailbox never decrypts its messages,
// and FETCH, STORE and SEARCH read it in batches, so memory does not grow
// with the mailbox.
//
// Sessions and changes. A session's view of its selected mailbox is the
// list of UIDs its client knows. Every change in the store raises the
// mailbox's modseq and stamps the rows it touches (expunges leave
// tombstones), so each session finds what changed since it last told its
// client, without shared locks, and tells it when IMAP allows: EXPUNGE
// only outside FETCH, STORE and SEARCH, numbered in the client's view.
// IDLE reports changes as the store's hub announces them, and polls every
// second in case an announcement was missed.
package imapout
