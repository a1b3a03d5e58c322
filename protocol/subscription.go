package protocol

import "strings"

// Subscriptions (§3.2.1): a user subscribes to a list by mailing its
// "-subscribe" address and unsubscribes by mailing its "-unsubscribe"
// address (the RFC 2369 List-Subscribe/List-Unsubscribe mailto: targets
// of common list software), from any mail client.
const (
	SubscribeSuffix   = "-subscribe"
	UnsubscribeSuffix = "-unsubscribe"
	// maxSubscriptionID bounds an offered id; a minted one is 34 bytes.
	maxSubscriptionID = 128
)

// ListAction reads an envelope recipient's local part: for a list's
// subscribe or unsubscribe address it returns the list's own local part
// and whether the mail subscribes (true) or unsubscribes (false); ok is
// false for any other address.
func ListAction(local string) (list string, subscribe, ok bool) {
	l := strings.ToLower(local)
	if base, found := strings.CutSuffix(l, UnsubscribeSuffix); found && base != "" {
		return local[:len(base)], false, true
	}
	if base, found := strings.CutSuffix(l, SubscribeSuffix); found && base != "" {
		return local[:len(base)], true, true
	}
	return "", false, false
}

// ValidSubscriptionID says whether id may be kept as an offered
// subscription id: 1 to 128 bytes of ASCII letters, digits, '_' and '-'.
func ValidSubscriptionID(id string) bool {
	if id == "" || len(id) > maxSubscriptionID {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
