package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
)

// quickstartLogger is quickstart's logger. With a level given it is the
// usual one; by default it shows warnings and errors, and each delivered
// message as one line a newcomer can follow:
//
//	18:02:11 alice@example.org → bob@example.net: ticket, 0.4 s of work, delivered
func quickstartLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	if level != "" {
		return newLogger(w, format, level)
	}
	next, err := newLogger(w, format, "warn")
	if err != nil {
		return nil, err
	}
	if format != "text" {
		return newLogger(w, format, "info")
	}
	return slog.New(&deliveryHandler{w: w, mu: &sync.Mutex{}, next: next.Handler()}), nil
}

// deliveryHandler passes warnings and errors on and turns the outbox's
// "delivered" records into one plain line each.
type deliveryHandler struct {
	w     io.Writer
	mu    *sync.Mutex // shared by the handlers WithAttrs derives
	next  slog.Handler
	attrs []slog.Attr
}

func (h *deliveryHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *deliveryHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	if r.Message != "delivered" {
		return nil
	}
	a := map[string]slog.Value{}
	for _, at := range h.attrs {
		a[at.Key] = at.Value
	}
	r.Attrs(func(at slog.Attr) bool { a[at.Key] = at.Value; return true })
	work := ""
	if s, ok := a["work_seconds"]; ok && s.Kind() == slog.KindFloat64 && s.Float64() > 0 {
		work = fmt.Sprintf(", %.1f s of work", s.Float64())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := fmt.Fprintf(h.w, "%s %s → %s: %s%s, delivered\n", r.Time.Format("15:04:05"), a["from"], a["recipient"], a["route"], work)
	return err
}

func (h *deliveryHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &deliveryHandler{w: h.w, mu: h.mu, next: h.next.WithAttrs(as), attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *deliveryHandler) WithGroup(name string) slog.Handler {
	return &deliveryHandler{w: h.w, mu: h.mu, next: h.next.WithGroup(name), attrs: h.attrs}
}
