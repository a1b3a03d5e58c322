package intake

import (
	"tollbridge/seal"
	"tollbridge/translate"
)

// Verdict is what the receiving bridge shows as tollbridge= (docs/protocol.md
// §3.7): seal's verdict, named here for the rooms that take mail in and may
// not use seal themselves.
type Verdict = seal.Verdict

// The verdicts.
const (
	VerdictNone = seal.VerdictNone
	VerdictPass = seal.VerdictPass
	VerdictFail = seal.VerdictFail
)

// FromAddresses returns the bare addresses of an address-list field value
// (such as From:), read the way the catalog reads them.
func FromAddresses(value string) []string { return translate.SplitAddressList(value) }
