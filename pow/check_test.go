package pow

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// seqChallenge is the challenge of the hand-computed vectors at the given
// bits: 537 has exactly 8 zero bits, 1755 12, 13402 16.
func seqChallenge(t testing.TB, bits int) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(Challenge{Bits: bits, Data: Seed(*seq()), Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestCheckValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bits int
		sub  string
		want []string
	}{
		{8, `{"proofs":[537,1755,13402]}`, []string{"537", "1755", "13402"}},
		{9, `{"proofs":[13402, 1755]}`, []string{"13402", "1755"}},
		{16, `{"proofs":[13402]}`, []string{"13402"}},
		{8, `{"proofs":[537,537,1755,537]}`, []string{"537", "1755"}}, // duplicates count once
		{8, `{ "proofs" : [ 537 , 1755 ] , "note" : "ignored" }`, []string{"537", "1755"}},
		{8, `{"proofs":[]}`, []string{}},
		{0, `{"proofs":[0,1,18446744073709551615]}`, []string{"0", "1", "18446744073709551615"}},
	}
	for _, tt := range tests {
		got, err := HashWork{}.Check(seqChallenge(t, tt.bits), json.RawMessage(tt.sub))
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("bits %d, Check(%s) = %q, %v; want %q", tt.bits, tt.sub, got, err, tt.want)
		}
	}
}

func TestCheckWrongProofCountsNone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bits int
		sub  string
	}{
		{9, `{"proofs":[537]}`},            // 8 zero bits only
		{9, `{"proofs":[1755,13402,537]}`}, // one wrong among valid ones
		{13, `{"proofs":[1755]}`},          // 12 zero bits only
		{17, `{"proofs":[13402]}`},         // 16 zero bits only
		{8, `{"proofs":[537,538]}`},        // a neighbour
		{256, `{"proofs":[0]}`},            // impossible
	}
	for _, tt := range tests {
		got, err := HashWork{}.Check(seqChallenge(t, tt.bits), json.RawMessage(tt.sub))
		if !errors.Is(err, ErrWrongProof) || got != nil {
			t.Errorf("bits %d, Check(%s) = %q, %v; want ErrWrongProof and nothing", tt.bits, tt.sub, got, err)
		}
	}
}

func TestCheckMalformed(t *testing.T) {
	t.Parallel()
	bad := []string{
		``,
		`null`,
		`{}`,
		`{"proofs":null}`,
		`{"proof":[537]}`,
		`{"proofs":537}`,
		`{"proofs":"537"}`,
		`{"proofs":["537"]}`,
		`{"proofs":[537.0]}`,
		`{"proofs":[5.37e2]}`,
		`{"proofs":[1e3]}`,
		`{"proofs":[1E3]}`,
		`{"proofs":[-1]}`,
		`{"proofs":[-0]}`,
		`{"proofs":[18446744073709551616]}`,
		`{"proofs":[99999999999999999999999]}`,
		`{"proofs":[537,null]}`,
		`{"proofs":[537,true]}`,
		`{"proofs":[[537]]}`,
		`{"proofs":[{"p":537}]}`,
		`{"proofs":[0537]}`,
		`{"proofs":[+537]}`,
		`{"proofs":[0x219]}`,
		`{"proofs":[537,]}`,
		`{"proofs":[537]`,
		`{"proofs":[537]} {}`,
		`[537]`,
		`537`,
	}
	for _, sub := range bad {
		got, err := HashWork{}.Check(seqChallenge(t, 8), json.RawMessage(sub))
		if !errors.Is(err, ErrMalformed) || got != nil {
			t.Errorf("Check(%s) = %q, %v; want ErrMalformed", sub, got, err)
		}
	}
}

func TestCheckBadChallenge(t *testing.T) {
	t.Parallel()
	_, err := HashWork{}.Check(json.RawMessage(`{"bits":8}`), json.RawMessage(`{"proofs":[537]}`))
	if !errors.Is(err, ErrBadChallenge) {
		t.Errorf("Check with a bad challenge: %v, want ErrBadChallenge", err)
	}
}

func TestParseSubmissionBoundaries(t *testing.T) {
	t.Parallel()
	for _, p := range []uint64{0, 1, 1<<53 + 1, 1<<63 - 1, 1 << 63, 1<<64 - 1} {
		raw := fmt.Sprintf(`{"proofs":[%d]}`, p)
		got, err := ParseSubmission([]byte(raw))
		if err != nil || len(got) != 1 || got[0] != p {
			t.Errorf("ParseSubmission(%s) = %v, %v", raw, got, err)
		}
	}
	var s Submission
	if err := json.Unmarshal([]byte(`{"proofs":[9007199254740993]}`), &s); err != nil || s.Proofs[0] != 9007199254740993 {
		t.Errorf("Submission.UnmarshalJSON = %v, %v", s, err)
	}
	if err := json.Unmarshal([]byte(`{"proofs":[1.5]}`), &s); !errors.Is(err, ErrMalformed) {
		t.Errorf("Submission.UnmarshalJSON(1.5) = %v, want ErrMalformed", err)
	}
}

func TestCheckKeysAreDecimal(t *testing.T) {
	t.Parallel()
	got, err := HashWork{}.Check(seqChallenge(t, 0), json.RawMessage(`{"proofs":[18446744073709551615, 0]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range got {
		p, err := strconv.ParseUint(k, 10, 64)
		if err != nil || strconv.FormatUint(p, 10) != k {
			t.Errorf("key %q is not canonical decimal", k)
		}
	}
}
