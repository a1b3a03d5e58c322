package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"tollbridge/keyring"
	"tollbridge/pow"
	"tollbridge/ticketclient"
)

// notice is what a success notice (outbox/notify.go) carries: the
// receipt, the header it signs and the recipient it was delivered to.
type notice struct {
	receipt, header []byte
	recipient       string
}

// runReceiptVerify checks a receipt offline (docs/protocol.md §3.3.3):
// FILE is a success notice as saved from a mail client; the receiving
// server's key is --key, else the one the bridge of --config has pinned
// for receipts@DOMAIN, else fetched by WKD through that bridge's routes.
func runReceiptVerify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("receipt verify", flag.ContinueOnError)
	keyFile := fs.String("key", "", "the receiving server's public key (armored or binary)")
	cfgPath := fs.String("config", "", "a bridge's config, to use its pinned key or fetch one")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("need exactly one FILE (a success notice)")
	}
	n, err := readNotice(pos[0])
	if err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	_, domain := keyring.SplitAddress(n.recipient)
	key, err := receiptKey(ctx, *keyFile, *cfgPath, domain)
	if err != nil {
		return err
	}
	return reportReceipt(e.stdout, n, key, domain)
}

// reportReceipt prints what the receipt proves, or fails.
func reportReceipt(w io.Writer, n *notice, key *openpgp.Entity, domain string) error {
	sum := sha256.Sum256(n.header)
	fmt.Fprintf(w, "signer: receipts@%s %s\n", domain, keyring.Fingerprint(key))
	fmt.Fprintf(w, "header sha256: %s\n", hex.EncodeToString(sum[:]))
	var h struct {
		To             string `json:"to"`
		KeyFingerprint string `json:"key_fingerprint"`
	}
	if err := json.Unmarshal(n.header, &h); err != nil {
		return fmt.Errorf("header.json: %w", err)
	}
	if err := keyring.VerifyDetached(key, n.header, n.receipt); err != nil {
		fmt.Fprintf(w, "receipt: fail: %v\n", err)
		return fmt.Errorf("receipt does not verify with receipts@%s's key", domain)
	}
	names := "no"
	if h.To == keyring.HashNormalized(n.recipient) {
		names = "yes"
	}
	fmt.Fprintf(w, "recipient: %s (the header names it: %s), recipient key %s\n", n.recipient, names, h.KeyFingerprint)
	fmt.Fprintln(w, "receipt: pass")
	return nil
}

// readNotice finds receipt.sig, header.json and Final-Recipient in a
// saved success notice.
func readNotice(path string) (*notice, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return nil, errors.New("not a multipart delivery notice")
	}
	n := &notice{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		if err := n.read(p); err != nil {
			return nil, err
		}
	}
	if n.receipt == nil || n.header == nil || n.recipient == "" {
		return nil, errors.New("no receipt.sig, header.json and Final-Recipient in it (a success notice of the ticketed route has them)")
	}
	return n, nil
}

func (n *notice) read(p *multipart.Part) error {
	body, err := io.ReadAll(io.LimitReader(p, 1<<20))
	if err != nil {
		return err
	}
	decode := func() ([]byte, error) {
		return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), ""))
	}
	switch p.FileName() {
	case "receipt.sig":
		n.receipt, err = decode()
	case "header.json":
		n.header, err = decode()
	}
	if strings.HasPrefix(p.Header.Get("Content-Type"), "message/delivery-status") {
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Final-Recipient: rfc822;"); ok {
				n.recipient, err = keyring.NormalizeAddress(strings.TrimSpace(v))
			}
		}
	}
	return err
}

// receiptKey is --key's key, or the key of receipts@domain as the bridge
// of cfgPath knows it (pinned) or fetches it.
func receiptKey(ctx context.Context, keyFile, cfgPath, domain string) (*openpgp.Entity, error) {
	if keyFile != "" {
		return readPublicKey(keyFile)
	}
	if cfgPath == "" {
		return nil, usagef("need --key FILE, or --config F to use the bridge's pinned or fetched key")
	}
	cfg, st, err := openStore(ctx, cfgPath)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	b := &bridge{cfg: cfg, st: st, log: slog.New(slog.DiscardHandler), works: pow.NewRegistry(pow.HashWork{})}
	b.remote = &keyring.Remote{Pins: pinStore{st}}
	b.resolver = newResolver(cfg.DNS.Resolver)
	if b.tickets, err = ticketclient.New(b.routes(), b.works, ticketclient.Options{Resolver: b.resolver, Now: st.Now}); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	key, err := b.remoteServerKey(ctx, domain)
	if err != nil {
		return nil, fmt.Errorf("key of receipts@%s: %w", domain, err)
	}
	return key, nil
}

// readPublicKey reads one public key, armored or binary.
func readPublicKey(path string) (*openpgp.Entity, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list openpgp.EntityList
	if bytes.Contains(raw, []byte("-----BEGIN PGP")) {
		list, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(raw))
	} else {
		list, err = openpgp.ReadKeyRing(bytes.NewReader(raw))
	}
	if err != nil || len(list) != 1 {
		return nil, fmt.Errorf("%s: want one OpenPGP public key: %v", path, err)
	}
	return list[0], nil
}
