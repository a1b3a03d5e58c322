// Package translate turns an RFC 5322/MIME message into a catalog plus parts
// and back, byte for byte (docs/protocol.md §3.4).
//
// [Split] reads a message once for its structure and once more to copy each
// leaf body into its own part (text/* bodies as blocks b1, b2…, everything
// else as attachments a1, a2…). Base64 bodies are stored decoded when
// re-encoding the decoded bytes gives back exactly the original lines;
// everything else, including malformed input, is stored as is. The catalog
// keeps every other byte (header sections, preambles, boundary lines,
// epilogues) so that [Join] rebuilds the original message by concatenation:
// Join(Split(m)) == m for every input.
//
// The catalog is a wire format shared with other implementations:
// [Catalog.Marshal] writes exactly the JSON shape of docs/protocol.md §3.4 and
// [ParseCatalog] accepts any catalog of that shape and nothing else.
package translate
