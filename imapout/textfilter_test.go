package imapout

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestTextFilterNoFalseNegatives: whatever the matcher finds in a text,
// written in any chunks, the filter of that text admits; most needles
// that are not there are ruled out.
func TestTextFilterNoFalseNegatives(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 13))
	alphabet := []string{"a", "b", "C", "d", "É", "é", "ß", "İ", "ǅ", " ", "\r\n", "\xff", "\xe2\x28", "Ω", "ω", "z"}
	ruledOut, absent := 0, 0
	for round := 0; round < 300; round++ {
		var parts []string
		for range 1 + r.IntN(3) {
			var b strings.Builder
			for range r.IntN(200) {
				b.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			parts = append(parts, b.String())
		}
		tg := newTrigrams()
		for _, p := range parts {
			for p != "" { // random chunks, cutting runes apart
				n := min(len(p), 1+r.IntN(7))
				tg.Write([]byte(p[:n]))
				p = p[n:]
			}
			tg.flush()
		}
		f := tg.filter()
		for range 50 {
			var needle string
			if p := parts[r.IntN(len(parts))]; len(p) > 0 && r.IntN(2) == 0 {
				i := r.IntN(len(p))
				needle = p[i:min(len(p), i+1+r.IntN(8))]
			} else {
				for range 1 + r.IntN(6) {
					needle += alphabet[r.IntN(len(alphabet))]
				}
			}
			found := false
			for _, p := range parts {
				m := newMatcher(needle)
				m.Write([]byte(p))
				m.flush()
				found = found || m.found
			}
			switch may := mayContain(f, needle); {
			case found && !may:
				t.Fatalf("needle %q is in %q but the filter rules it out", needle, parts)
			case !found:
				absent++
				if !may {
					ruledOut++
				}
			}
		}
	}
	if ruledOut < absent/2 {
		t.Errorf("the filter ruled out %d of %d absent needles", ruledOut, absent)
	}
}

// TestTextFilterTooMuchText: past filterMaxGrams distinct trigrams there
// is no filter, which admits everything.
func TestTextFilterTooMuchText(t *testing.T) {
	t.Parallel()
	tg := newTrigrams()
	b := make([]byte, 3*(filterMaxGrams+10))
	r := rand.New(rand.NewPCG(1, 1))
	for i := range b {
		b[i] = byte(0x20 + r.IntN(0x5f))
	}
	tg.Write(b)
	tg.flush()
	if f := tg.filter(); f != nil || !mayContain(f, "anything") {
		t.Errorf("filter of too much text: %d bytes", len(f))
	}
}
