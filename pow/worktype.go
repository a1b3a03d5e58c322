package pow

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors a [Worktype] reports; callers test them with errors.Is.
var (
	// ErrMalformed means a submission is not valid JSON of the expected
	// shape (ticketserver answers 400).
	ErrMalformed = errors.New("malformed submission")
	// ErrWrongProof means a submission holds at least one proof that does
	// not solve the challenge; none of its proofs count (ticketserver
	// answers 422 with the same challenge).
	ErrWrongProof = errors.New("wrong proof")
	// ErrBadChallenge means a challenge (or the difficulty asked for) is not
	// one the worktype can use.
	ErrBadChallenge = errors.New("bad challenge")
	// ErrTooHard means a challenge asks for more work than
	// [SolveOptions].MaxExpectedWork allows.
	ErrTooHard = errors.New("challenge too hard")
)

// Worktype is one kind of work a ticket can demand. Challenges and
// submissions are the JSON objects found under the worktype's name in the
// ticket answer and in POST /v1/tickets/{id} (docs/protocol.md §3.2). Implementations
// are safe for concurrent use.
type Worktype interface {
	// Name is the worktype's name in preference lists and JSON ("pow").
	Name() string
	// NewChallenge makes a fresh challenge of difficulty d and says how many
	// proofs it needs before the ticket becomes valid.
	NewChallenge(d Difficulty) (challenge json.RawMessage, needed int, err error)
	// Check verifies one submission against its challenge. When every proof
	// in it is valid it returns their canonical keys, each once, for the
	// caller to count and de-duplicate across posts. Otherwise it returns an
	// error wrapping ErrWrongProof (no proof counts), ErrMalformed or
	// ErrBadChallenge.
	Check(challenge, submission json.RawMessage) (proofs []string, err error)
	// Solve does the work on the sending side. It calls submit with each
	// batch of new proofs as they are found, from one goroutine at a time,
	// and returns nil once the needed number of distinct proofs has been
	// submitted, or an error when ctx is done or submit fails.
	Solve(ctx context.Context, challenge json.RawMessage, opts SolveOptions, submit func(submission json.RawMessage) error) error
}

// Difficulty is how much work a server asks for; for "pow" it comes from
// the config keys ticket.pow_bits and ticket.pow_count.
type Difficulty struct {
	Bits  int // leading zero bits each proof's hash must have
	Count int // distinct proofs needed
}

// SolveOptions tune [Worktype.Solve]. The zero value uses every core.
type SolveOptions struct {
	// Workers is the number of goroutines doing work; 0 means
	// runtime.GOMAXPROCS(0).
	Workers int
	// Needed is how many proofs to find; 0 means all the challenge asks for.
	// A sender resuming a ticket passes the server's "remaining".
	Needed int
	// MaxExpectedWork, when positive, makes Solve refuse (ErrTooHard) a
	// challenge whose expected cost for Needed proofs exceeds it, in the
	// worktype's unit (hash evaluations for "pow"; see [Bench]).
	MaxExpectedWork float64
	// Progress, when set, is called from one goroutine at a time after each
	// submitted batch, every ProgressInterval, and once when Solve returns.
	Progress func(Progress)
	// ProgressInterval is how often Progress is called while no proof is
	// found; 0 means one second.
	ProgressInterval time.Duration
}

// Progress is a snapshot of a running Solve.
type Progress struct {
	Found  int    // distinct proofs found and submitted so far
	Count  int    // proofs this Solve is looking for
	Hashes uint64 // units of work done so far (hash evaluations for "pow")
}
