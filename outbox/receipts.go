package outbox

import (
	"context"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
)

// Receipt checks (docs/protocol.md §3.3.3): the sender verifies each
// receipt against the receiving server's key when it arrives, so that the
// receipt kept (and shown to the user) proves what it claims.
const (
	ReceiptPass      = "pass"
	receiptFail      = "fail: "
	receiptUnchecked = "unchecked: "
	// receiptKeyTimeout bounds fetching the receiving server's key; the
	// delivery is done either way.
	receiptKeyTimeout = 30 * time.Second
)

// receiptCheck is what checkReceipt found: Result ("pass", "fail: why" or
// "unchecked: why") and the key's fingerprint when one was found.
type receiptCheck struct {
	Result      string
	Signer      string // receipts@DOMAIN
	Fingerprint string
}

// checkReceipt verifies receipt, a detached signature over header, with
// the server key of domain (receipts@DOMAIN, pinned on first use). A bad
// receipt is logged and counted; the delivery is done regardless.
func (o *Outbox) checkReceipt(ctx context.Context, domain string, header, receipt []byte) receiptCheck {
	c := receiptCheck{Signer: "receipts@" + domain}
	if o.cfg.ServerKey == nil {
		c.Result = receiptUnchecked + "no way to fetch server keys configured"
		return c
	}
	kctx, cancel := context.WithTimeout(ctx, receiptKeyTimeout)
	key, err := o.cfg.ServerKey(kctx, domain)
	cancel()
	if err != nil {
		c.Result = receiptUnchecked + oneLine("server key of "+domain+": "+err.Error())
		o.log.Warn("receipt not checked", "domain", domain, "err", err)
		return c
	}
	c.Fingerprint = keyring.Fingerprint(key)
	c.Result = verdictOf(key, header, receipt)
	if c.Result != ReceiptPass {
		o.log.Warn("bad receipt", "domain", domain, "check", c.Result)
		if o.metrics.BadReceipt != nil {
			o.metrics.BadReceipt()
		}
	}
	return c
}

func verdictOf(key *openpgp.Entity, header, receipt []byte) string {
	if len(receipt) == 0 {
		return receiptFail + "no receipt"
	}
	if err := keyring.VerifyDetached(key, header, receipt); err != nil {
		return receiptFail + oneLine(err.Error())
	}
	return ReceiptPass
}

// notifies says whether a recipient's NOTIFY (RFC 3461 §4.1) asks for
// notice of kind ("SUCCESS", "FAILURE", "DELAY"); without NOTIFY only
// failures are reported.
func notifies(notify, kind string) bool {
	if notify == "" {
		return kind == "FAILURE"
	}
	for _, k := range strings.Split(notify, ",") {
		if k == kind {
			return true
		}
	}
	return false
}
