package conformance_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// node is a MIME entity in the catalog's NODE shape (docs/protocol.md §3.4): its
// exact header section and its body items.
type node struct {
	header string
	body   []item
}

// item is one body item: a raw segment, a child entity or a part.
type item struct {
	seg      []byte
	node     *node
	part     *part
	transfer string // "identity" or "base64"
	line     int    // base64 line length
}

func text(s string) item { return item{seg: []byte(s)} }
func child(n *node) item { return item{node: n} }
func identity(p *part) item {
	return item{part: p, transfer: "identity"}
}
func base64Lines(p *part, line int) item { return item{part: p, transfer: "base64", line: line} }

// rebuild concatenates an entity: header, then the items in order, a
// base64 part cut into lines of n characters, each followed by CRLF.
func (n *node) rebuild(out *bytes.Buffer) {
	out.WriteString(n.header)
	for _, it := range n.body {
		switch {
		case it.node != nil:
			it.node.rebuild(out)
		case it.part != nil && it.transfer == "base64":
			out.Write(cutBase64(it.part.plain, it.line))
		case it.part != nil:
			out.Write(it.part.plain)
		default:
			out.Write(it.seg)
		}
	}
}

// cutBase64 is standard padded base64 cut into lines of n characters, each
// followed by CRLF.
func cutBase64(b []byte, n int) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 0 {
		k := min(n, len(enc))
		out.WriteString(enc[:k] + "\r\n")
		enc = enc[k:]
	}
	return out.Bytes()
}

// jq quotes s as a JSON string (no HTML escaping).
func jq(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func jqList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = jq(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// segJSON is SEG: {"text": …} for valid UTF-8, else {"bytes": base64}.
func segJSON(b []byte) string {
	if utf8.Valid(b) {
		return `{"text": ` + jq(string(b)) + `}`
	}
	return `{"bytes": ` + jq(base64.StdEncoding.EncodeToString(b)) + `}`
}

// json writes NODE.
func (n *node) json() string {
	var items []string
	for _, it := range n.body {
		switch {
		case it.node != nil:
			items = append(items, `{"node": `+it.node.json()+`}`)
		case it.part != nil && it.transfer == "base64":
			items = append(items, fmt.Sprintf(`{"part": %s, "transfer": {"encoding": "base64", "line": %d}}`, jq(it.part.id), it.line))
		case it.part != nil:
			items = append(items, fmt.Sprintf(`{"part": %s, "transfer": {"encoding": "identity"}}`, jq(it.part.id)))
		default:
			items = append(items, segJSON(it.seg))
		}
	}
	return `{"header": ` + segJSON([]byte(n.header)) + `, "body": [` + strings.Join(items, ", ") + `]}`
}

// envelope is the catalog's fields other than parts and mime.
type envelope struct {
	from       string
	to, cc     []string
	subject    string
	date       string
	messageID  string
	inReplyTo  string
	references []string
}

// catalogJSON writes the catalog plaintext of docs/protocol.md §3.4 by hand.
func catalogJSON(e envelope, parts []*part, mime *node) []byte {
	var ps []string
	for _, p := range parts {
		ps = append(ps, fmt.Sprintf(`{"id": %s, "kind": %s, "type": %s, "name": %s, "size": %d, "sha256": %s}`,
			jq(p.id), jq(p.kind), jq(p.ctype), jq(p.name), len(p.plain), jq(sha256Hex(p.plain))))
	}
	if e.to == nil {
		e.to = []string{}
	}
	if e.cc == nil {
		e.cc = []string{}
	}
	if e.references == nil {
		e.references = []string{}
	}
	return []byte(fmt.Sprintf(`{"version": 1,
 "from": %s, "to": %s, "cc": %s,
 "subject": %s, "date": %s,
 "message_id": %s, "in_reply_to": %s, "references": %s,
 "parts": [%s],
 "mime": %s}`, jq(e.from), jqList(e.to), jqList(e.cc), jq(e.subject), jq(e.date),
		jq(e.messageID), jq(e.inReplyTo), jqList(e.references), strings.Join(ps, ",\n   "), mime.json()))
}

// simpleCatalog is a catalog for a multipart/mixed message of one text
// block (identity) and one attachment (base64, 76).
func simpleCatalog(from, to string, b1, a1 *part) []byte {
	b1.ctype, a1.ctype, a1.name = "text/plain; charset=utf-8", "application/pdf", "r.pdf"
	mime := &node{
		header: "From: " + from + "\r\nTo: " + to + "\r\nSubject: Hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
		body: []item{
			text("--b\r\n"),
			child(&node{header: "Content-Type: text/plain; charset=utf-8\r\n\r\n", body: []item{identity(b1)}}),
			text("\r\n--b\r\n"),
			child(&node{header: "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"r.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
				body: []item{base64Lines(a1, 76)}}),
			text("--b--\r\n"),
		},
	}
	return catalogJSON(envelope{from: from, to: []string{to}, subject: "Hi", messageID: ""}, []*part{b1, a1}, mime)
}

// rebuildFromCatalog is an independent receiver's reassembly: it walks a
// decoded catalog's "mime" NODE and concatenates, checking each part's
// plaintext size and SHA-256 against the catalog's "parts".
func rebuildFromCatalog(t testing.TB, cat map[string]any, plain map[string][]byte) []byte {
	t.Helper()
	listed := map[string]map[string]any{}
	for _, p := range cat["parts"].([]any) {
		pm := p.(map[string]any)
		listed[pm["id"].(string)] = pm
	}
	var out bytes.Buffer
	var walk func(n map[string]any)
	seg := func(s map[string]any) []byte {
		if txt, ok := s["text"].(string); ok {
			return []byte(txt)
		}
		if b, ok := s["bytes"].(string); ok {
			d, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				t.Fatalf("SEG bytes: %v", err)
			}
			return d
		}
		t.Fatalf("SEG %v is neither {\"text\"} nor {\"bytes\"} (docs/protocol.md §3.4)", s)
		return nil
	}
	walk = func(n map[string]any) {
		out.Write(seg(n["header"].(map[string]any)))
		for _, raw := range n["body"].([]any) {
			it := raw.(map[string]any)
			switch {
			case it["node"] != nil:
				walk(it["node"].(map[string]any))
			case it["part"] != nil:
				id := it["part"].(string)
				p, ok := plain[id]
				if !ok || listed[id] == nil {
					t.Fatalf("catalog item names part %q, which is not listed or not uploaded", id)
				}
				tr := it["transfer"].(map[string]any)
				switch tr["encoding"] {
				case "identity":
					out.Write(p)
				case "base64":
					line, _ := tr["line"].(json.Number).Int64()
					out.Write(cutBase64(p, int(line)))
				default:
					t.Fatalf("part %s: transfer %v (docs/protocol.md §3.4: identity or base64)", id, tr)
				}
			default:
				out.Write(seg(it))
			}
		}
	}
	walk(cat["mime"].(map[string]any))
	return out.Bytes()
}
