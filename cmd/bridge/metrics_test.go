package main

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// sample is one line of the Prometheus text format.
var sample = regexp.MustCompile(`^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$`)

func TestMetricsFormat(t *testing.T) {
	t.Parallel()
	m := newMetrics()
	m.inc("tollbridge_messages_accepted_total", `listener="submission"`)()
	m.add("tollbridge_messages_delivered_total", `route="ticket"`, 2)
	m.add("tollbridge_pow_seconds_total", "", 0.25)
	m.gauge("tollbridge_queue_depth", "Waiting.", func() float64 { return 3 })
	var b bytes.Buffer
	m.write(&b)
	out := b.String()
	for _, want := range []string{
		`tollbridge_messages_accepted_total{listener="submission"} 1`,
		`tollbridge_messages_delivered_total{route="ticket"} 2`,
		"tollbridge_pow_seconds_total 0.25",
		"tollbridge_queue_depth 3",
		"tollbridge_messages_bounced_total 0",
		"# TYPE tollbridge_queue_depth gauge",
		"# TYPE tollbridge_tickets_issued_total counter",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		if line := s.Text(); !strings.HasPrefix(line, "# ") && !sample.MatchString(line) {
			t.Errorf("not a sample line: %q", line)
		}
	}
}
