package translate

import (
	"fmt"
	"strings"
)

// outline describes a catalog's tree compactly, one item per line:
// "seg N" for raw bytes, "node <first header line>" for entities, and
// "part ID kind encoding/line type name size" for parts.
func outline(c *Catalog) string {
	parts := map[string]Part{}
	for _, p := range c.Parts {
		parts[p.ID] = p
	}
	var b strings.Builder
	var walk func(n *Node, depth int)
	walk = func(n *Node, depth int) {
		ind := strings.Repeat("  ", depth)
		for _, it := range n.Body {
			switch {
			case it.Seg != nil:
				fmt.Fprintf(&b, "%sseg %q\n", ind, abbrev(string(it.Seg.Bytes)))
			case it.Node != nil:
				fmt.Fprintf(&b, "%snode %q\n", ind, abbrev(string(it.Node.Header.Bytes)))
				walk(it.Node, depth+1)
			default:
				p := parts[it.Part]
				enc := it.Transfer.Encoding
				if enc == EncodingBase64 {
					enc += fmt.Sprint("/", it.Transfer.Line)
				}
				fmt.Fprintf(&b, "%spart %s %s %s %q %q %d\n", ind, p.ID, p.Kind, enc, p.Type, p.Name, p.Size)
			}
		}
	}
	fmt.Fprintf(&b, "node %q\n", abbrev(string(c.MIME.Header.Bytes)))
	walk(&c.MIME, 1)
	return b.String()
}

func abbrev(s string) string {
	if len(s) > 40 {
		return s[:20] + "…" + s[len(s)-16:]
	}
	return s
}
