package keyring

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// BenchmarkUnlock times one password check with the default protection
// (Argon2, 64 MiB, 3 passes): a right password, a wrong one, and an
// unknown user (the decoy); then wrong passwords from many clients on both
// slots at once, reporting the process's peak RSS (VmHWM; run that one
// alone, -bench Unlock/parallel, for a clean figure).
func BenchmarkUnlock(b *testing.B) {
	prot := Protection{}
	if m := os.Getenv("UNLOCK_BENCH_KIB"); m != "" {
		fmt.Sscan(m, &prot.MemoryKiB)
	}
	k, _, err := Generate("bob@example.net", []byte("pw"), prot)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		address string
		private []byte
		pw      string
	}{
		{"right", k.Address, k.Private, "pw"},
		{"wrong", k.Address, k.Private, "nope"},
		{"unknown", "nobody@example.net", nil, "pw"},
	} {
		b.Run(c.name, func(b *testing.B) {
			u := NewUnlocker(2)
			u.Protection = prot
			if _, release, err := u.AcquireFrom(ctx, "192.0.2.1", c.address, c.private, []byte(c.pw)); err == nil {
				release() // this first call also makes the decoy
			}
			b.ResetTimer()
			for b.Loop() {
				_, release, err := u.AcquireFrom(ctx, "192.0.2.1", c.address, c.private, []byte(c.pw))
				if err == nil {
					release()
				}
			}
		})
	}
	b.Run("parallel-2-slots", func(b *testing.B) {
		u := NewUnlocker(2)
		b.SetParallelism(2)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				u.AcquireFrom(ctx, fmt.Sprintf("192.0.2.%d", i%200), k.Address, k.Private, []byte(fmt.Sprint("bad", i)))
			}
		})
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	})
}

func peakRSSMiB() float64 {
	s, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb / 1024
		}
	}
	return 0
}
