// Package seal encrypts and decrypts the parts of a ticketed message with
// OpenPGP (docs/protocol.md §3.3–3.6).
//
// A message has one random AES-256 [SessionKey]. The catalog and every block
// and attachment are each one OpenPGP message body under that key, in this
// exact profile, which GnuPG 2.2 reads:
//
//   - a part is one Symmetrically Encrypted Integrity Protected Data packet
//     (tag 18, version 1, with a Modification Detection Code) holding one
//     literal data packet (format 'b', empty file name, date 0);
//   - the catalog is the same, with the literal data between a one-pass
//     signature packet and a binary document signature packet when it is
//     signed;
//   - there is no compression packet anywhere;
//   - the session key travels per recipient in a version 3 Public-Key
//     Encrypted Session Key packet (algorithm byte AES-256, key, checksum).
//
// So PKESK || part is a complete OpenPGP message. Parts are encrypted once
// however many recipients there are; a recipient costs one [SessionKey.Wrap]
// (one PKESK) and one [protocol.Header].
//
// Parts are streamed in both directions with constant memory. When
// decrypting, plaintext is returned before the integrity check (the MDC at
// the end of the packet) has been made: only io.EOF means the part is intact,
// and callers compare the plaintext's SHA-256 with the catalog anyway.
// Catalogs are small and are returned only once checked.
//
// Errors found in data from the wire wrap [ErrMalformed] (not our profile,
// or not OpenPGP at all), [ErrTampered] (the integrity check failed: altered
// or truncated ciphertext, or a wrong session key), [ErrWrongKey] (the
// private key given cannot unwrap this session key) or [ErrTooLarge].
//
// SEIPD packets are written and read here rather than by go-crypto's packet
// writer and reader, whose OpenPGP CFB works one byte at a time (about 150
// MB/s sealing against 590 MB/s here); go-crypto still parses and writes
// every other packet (PKESK, one-pass signature, literal header, signature)
// and makes and checks the signatures.
package seal
