package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// metrics are the bridge's Prometheus counters, exposed in the text format
// on [metrics] listen. Hand-written: a few counters do not justify a
// client library.
type metrics struct {
	mu       sync.Mutex
	counters map[string]float64 // "name{labels}" → value
	gauges   map[string]func() float64
	help     map[string][2]string // name → type, help
}

func newMetrics() *metrics {
	m := &metrics{counters: map[string]float64{}, gauges: map[string]func() float64{}, help: map[string][2]string{}}
	for name, h := range map[string]string{
		"tollbridge_messages_accepted_total":  "Messages accepted with 250 over SMTP, by listener.",
		"tollbridge_messages_received_total":  "Messages completed by remote servers over the ticket API.",
		"tollbridge_messages_delivered_total": "Outbox recipients delivered, by route (ticket, local, legacy).",
		"tollbridge_messages_bounced_total":   "Outbox recipients bounced to the sender.",
		"tollbridge_tickets_issued_total":     "Tickets issued by the ticket API.",
		"tollbridge_tickets_validated_total":  "Tickets made valid by proof-of-work.",
		"tollbridge_tickets_worked_total":     "Tickets made valid by work, by worktype.",
		"tollbridge_pow_seconds_total":        "Seconds spent doing proof-of-work for outgoing mail.",
		"tollbridge_imap_sessions_total":      "IMAP sessions opened.",
		"tollbridge_receipts_bad_total":       "Delivery receipts that failed verification against the receiving server's key.",
	} {
		m.help[name] = [2]string{"counter", h}
	}
	return m
}

// add increases a counter; labels are written as in the exposition format.
func (m *metrics) add(name, labels string, v float64) {
	key := name
	if labels != "" {
		key += "{" + labels + "}"
	}
	m.mu.Lock()
	m.counters[key] += v
	m.mu.Unlock()
}

func (m *metrics) inc(name, labels string) func() {
	return func() { m.add(name, labels, 1) }
}

// gauge registers a value read at scrape time.
func (m *metrics) gauge(name, help string, f func() float64) {
	m.mu.Lock()
	m.gauges[name] = f
	m.help[name] = [2]string{"gauge", help}
	m.mu.Unlock()
}

// ServeHTTP writes every metric in the Prometheus text format 0.0.4.
func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metrics" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.write(w)
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	values := map[string]float64{}
	for k, v := range m.counters {
		values[k] = v
	}
	gauges := map[string]func() float64{}
	for k, f := range m.gauges {
		gauges[k] = f
	}
	help := m.help
	m.mu.Unlock()
	for k, f := range gauges {
		values[k] = f()
	}
	names := make([]string, 0, len(help))
	for n := range help {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", n, help[n][1], n, help[n][0])
		keys := []string{}
		for k := range values {
			if k == n || len(k) > len(n) && k[:len(n)+1] == n+"{" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			keys = []string{n}
		}
		for _, k := range keys {
			v := values[k]
			if math.Trunc(v) == v {
				fmt.Fprintf(w, "%s %d\n", k, int64(v))
			} else {
				fmt.Fprintf(w, "%s %g\n", k, v)
			}
		}
	}
}

// serve runs the plain-HTTP metrics endpoint on ln until ctx is done.
func (m *metrics) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
