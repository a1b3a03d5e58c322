package smtpin

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

// reply is one SMTP answer the bridge gives: a reply code (RFC 5321 §4.2)
// and an enhanced status code (RFC 3463). Each is named for what it says,
// so the same answer reads the same everywhere.
type reply struct {
	code     int
	enhanced smtp.EnhancedCode
}

// The bridge's SMTP answers.
var (
	replyClosing        = reply{421, smtp.EnhancedCode{4, 7, 0}}  // session ends (credentials changed)
	replyTryLater       = reply{451, smtp.EnhancedCode{4, 3, 0}}  // a local problem: the client keeps the message
	replyDNSTrouble     = reply{451, smtp.EnhancedCode{4, 4, 3}}  // a DNS lookup failed for now
	replyAuthThrottled  = reply{454, smtp.EnhancedCode{4, 7, 0}}  // too many failed logins
	replyLineTooLong    = reply{500, smtp.EnhancedCode{5, 5, 2}}  // a line over the limit
	replyBadRecipient   = reply{501, smtp.EnhancedCode{5, 1, 3}}  // RCPT TO is no address
	replyBadSender      = reply{501, smtp.EnhancedCode{5, 1, 7}}  // MAIL FROM is no address
	replyBadSequence    = reply{503, smtp.EnhancedCode{5, 5, 1}}  // a command out of order
	replyAuthRequired   = reply{530, smtp.EnhancedCode{5, 7, 0}}  // log in first
	replyBadCredentials = reply{535, smtp.EnhancedCode{5, 7, 8}}  // the login is refused
	replyEncryptFirst   = reply{538, smtp.EnhancedCode{5, 7, 11}} // STARTTLS before AUTH
	replyNoSuchUser     = reply{550, smtp.EnhancedCode{5, 1, 1}}  // no such mailbox here
	replyAliasLoop      = reply{550, smtp.EnhancedCode{5, 4, 6}}  // aliases name each other
	replyBadMessage     = reply{550, smtp.EnhancedCode{5, 6, 0}}  // the message's fields are wrong
	replyNotAllowed     = reply{550, smtp.EnhancedCode{5, 7, 1}}  // policy: not this sender, DMARC reject
	replyTooBig         = reply{552, smtp.EnhancedCode{5, 3, 4}}  // over the size limit
	replySenderNotYours = reply{553, smtp.EnhancedCode{5, 7, 1}}  // MAIL FROM is not the user's address
	replyNoRecipients   = reply{554, smtp.EnhancedCode{5, 5, 1}}  // DATA with no valid recipient
	replyBadLineEndings = reply{554, smtp.EnhancedCode{5, 6, 0}}  // a bare CR or LF (SMTP smuggling)
	replyRelayDenied    = reply{554, smtp.EnhancedCode{5, 7, 1}}  // not a domain of this server
)

// err is the answer with a message.
func (r reply) err(format string, args ...any) *smtp.SMTPError {
	return &smtp.SMTPError{Code: r.code, EnhancedCode: r.enhanced, Message: fmt.Sprintf(format, args...)}
}
