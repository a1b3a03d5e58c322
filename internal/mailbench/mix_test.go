package mailbench

import (
	"fmt"

	"tollbridge/internal/mtatest"
)

// mixMessage is message i of round r of mtatest's size mix (cmd/bridge's
// BenchmarkEndToEnd sends it too). The round is in the Message-ID so no
// round repeats another's.
func mixMessage(r, i int) string {
	return mtatest.MixMessageNamed(i, "mailbench", fmt.Sprintf("%d.%d", r, i))
}
