package pow

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewChallengeJSONShape(t *testing.T) {
	t.Parallel()
	raw, needed, err := HashWork{}.NewChallenge(Difficulty{Bits: 22, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	if needed != 4 {
		t.Errorf("needed = %d, want 4", needed)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("challenge %s: %v", raw, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"bits", "count", "data"}) {
		t.Errorf("challenge keys %q, want bits, count, data", keys)
	}
	if string(m["bits"]) != "22" || string(m["count"]) != "4" {
		t.Errorf("challenge %s: want bits 22 and count 4", raw)
	}
	var data string
	if err := json.Unmarshal(m["data"], &data); err != nil {
		t.Fatalf("data %s: %v", m["data"], err)
	}
	if len(data) != 44 || !strings.HasSuffix(data, "=") {
		t.Errorf("data %q: want 44 characters of padded base64", data)
	}
	if b, err := base64.StdEncoding.DecodeString(data); err != nil || len(b) != 32 {
		t.Errorf("data %q decodes to %d bytes, %v; want 32", data, len(b), err)
	}
	c, err := ParseChallenge(raw)
	if err != nil {
		t.Fatalf("ParseChallenge(%s): %v", raw, err)
	}
	if c.Bits != 22 || c.Count != 4 {
		t.Errorf("parsed %+v", c)
	}
}

func TestNewChallengeFreshData(t *testing.T) {
	t.Parallel()
	a, err := NewChallenge(Difficulty{Bits: 20, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewChallenge(Difficulty{Bits: 20, Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	if a.Data == b.Data || a.Data == (Seed{}) {
		t.Errorf("two challenges share data %x", a.Data)
	}
}

func TestNewChallengeRejectsBadDifficulty(t *testing.T) {
	t.Parallel()
	for _, d := range []Difficulty{{-1, 4}, {257, 4}, {20, 0}, {20, -3}} {
		if _, _, err := (HashWork{}).NewChallenge(d); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("NewChallenge(%+v) error = %v, want ErrBadChallenge", d, err)
		}
	}
	for _, d := range []Difficulty{{0, 1}, {256, 1}} {
		if _, err := NewChallenge(d); err != nil {
			t.Errorf("NewChallenge(%+v): %v", d, err)
		}
	}
}

func TestChallengeRoundTrip(t *testing.T) {
	t.Parallel()
	c := Challenge{Bits: 9, Data: Seed(*seq()), Count: 3}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bits":9,"data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","count":3}`
	if string(raw) != want {
		t.Errorf("Marshal = %s\nwant      %s", raw, want)
	}
	got, err := ParseChallenge(raw)
	if err != nil || got != c {
		t.Errorf("ParseChallenge(%s) = %+v, %v", raw, got, err)
	}
}

func TestParseChallengeRejects(t *testing.T) {
	t.Parallel()
	const d = `"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="`
	bad := []string{
		``,
		`null`,
		`[]`,
		`{"data":` + d + `,"count":4}`,
		`{"bits":20,"count":4}`,
		`{"bits":20,"data":` + d + `}`,
		`{"bits":20.5,"data":` + d + `,"count":4}`,
		`{"bits":2e1,"data":` + d + `,"count":4}`,
		`{"bits":"20","data":` + d + `,"count":4}`,
		`{"bits":257,"data":` + d + `,"count":4}`,
		`{"bits":-1,"data":` + d + `,"count":4}`,
		`{"bits":20,"data":` + d + `,"count":0}`,
		`{"bits":20,"data":"AAEC","count":4}`,                                             // too short
		`{"bits":20,"data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","count":4}`,      // unpadded
		`{"bits":20,"data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A","count":4}`,     // 33 bytes
		`{"bits":20,"data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-=","count":4}`,     // URL alphabet
		`{"bits":20,"data":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh\r\n8=","count":4}`, // line break
		`{"bits":20,"data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31],"count":4}`,
		`{"bits":20,"data":` + d + `,"count":4} x`,
	}
	for _, raw := range bad {
		if c, err := ParseChallenge([]byte(raw)); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("ParseChallenge(%s) = %+v, %v; want ErrBadChallenge", raw, c, err)
		}
	}
}

func TestSeedText(t *testing.T) {
	t.Parallel()
	s := Seed(*seq())
	text, err := s.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var back Seed
	if err := back.UnmarshalText(text); err != nil || back != s {
		t.Errorf("round trip of %s: %x, %v", text, back, err)
	}
	if !bytes.Equal(text, []byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")) {
		t.Errorf("MarshalText = %s", text)
	}
}

func TestExpectedHashes(t *testing.T) {
	t.Parallel()
	c := Challenge{Bits: 20, Count: 4}
	if got := c.ExpectedHashes(4); got != 4<<20 {
		t.Errorf("ExpectedHashes(4) = %v, want %v", got, 4<<20)
	}
}
