package translate

import (
	"reflect"
	"testing"
)

func TestDecodeWords(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"plain":                                     "plain",
		"=?utf-8?q?caf=C3=A9?=":                     "café",
		"=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=":         "éé",
		"=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=":           "ab",
		"a =?UTF-8?Q?b?= c":                         "a b c",
		"=?UTF-8?Q?a?= x =?UTF-8?Q?b?=":             "a x b",
		"=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=":           "é", // one character split over two words
		"=?ISO-8859-1?Q?=E9?=":                      "é",
		"=?windows-1252?Q?=80_=96?=":                "€ –",
		"=?iso-8859-15?Q?=A4?=":                     "€",
		"=?utf-8*en?Q?hi?=":                         "hi",
		"=?Shift_JIS?B?gqA=?=":                      "あ", // Shift_JIS through x/text
		"=?utf-8?x?abc?=":                           "=?utf-8?x?abc?=",
		"=?utf-8?q?a b?=":                           "=?utf-8?q?a b?=",
		"=?broken":                                  "=?broken",
		"\xe9t\xe9":                                 "été", // raw Latin-1
		"caf\xc3\xa9":                               "café",
		"=?utf-8?B?w6k?=":                           "é", // unpadded B
		"=?UTF-8?B?4pyTIGRvbmU=?= and =?x?Q?a?= ok": "✓ done and =?x?Q?a?= ok",
	}
	for in, want := range tests {
		if got := decodeWords(in); got != want {
			t.Errorf("decodeWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMediaType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		media  string
		params map[string]string
	}{
		{`text/plain; charset="utf-8"`, "text/plain", map[string]string{"charset": "utf-8"}},
		{"Multipart/Mixed;\tBOUNDARY=abc", "multipart/mixed", map[string]string{"boundary": "abc"}},
		{`multipart/mixed; boundary="a\"b"; boundary=second`, "multipart/mixed", map[string]string{"boundary": `a"b`}},
		{`multipart/mixed; boundary=foo bar ;x=1`, "multipart/mixed", map[string]string{"boundary": "foo bar", "x": "1"}},
		{`application/pdf; name*=UTF-8''%E2%82%AC.pdf; name="fallback.pdf"`, "application/pdf", map[string]string{"name": "€.pdf"}},
		{`attachment; filename*0*=utf-8''a%C3; filename*1*=%A9; filename*2="b c"`, "attachment", map[string]string{"filename": "aéb c"}},
		{`attachment; filename*=iso-8859-1'de'%FC.txt`, "attachment", map[string]string{"filename": "ü.txt"}},
		{`attachment; filename*0="x"; filename*2="z"`, "attachment", map[string]string{"filename": "x"}},
		{`text/plain;;; ; charset=us-ascii; junk; x="unterminated`, "text/plain", map[string]string{"charset": "us-ascii", "x": "unterminated"}},
		{``, "", map[string]string{}},
	}
	for _, tt := range tests {
		media, params := parseMediaType(tt.in)
		if media != tt.media || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("parseMediaType(%q) = %q %v, want %q %v", tt.in, media, params, tt.media, tt.params)
		}
	}
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		`Alice <Alice@Example.ORG>`:                                {"Alice@Example.ORG"},
		`a@b.c, "Doe, John" <j@d.e>, (comment) k@l.m`:              {"a@b.c", "j@d.e", "k@l.m"},
		`=?utf-8?q?J=C3=BCrgen?= <j@x.de>`:                         {"j@x.de"},
		`=?koi8-r?b?8NLJ18XU?= <ivan@x.ru>`:                        {"ivan@x.ru"},
		`undisclosed-recipients:;`:                                 {},
		`team: a@b.c, d@e.f;, g@h.i`:                               {"a@b.c", "d@e.f", "g@h.i"},
		`"john doe"@example.com`:                                   {`"john doe"@example.com`},
		"Ren\xe9 <rene@x.fr>, broken <<x@y.z>":                     {"rene@x.fr", "x@y.z"},
		`no address here`:                                          nil,
		"":                                                         nil,
		`Müller <müller@bücher.example>`:                           {"müller@bücher.example"},
		`<first@x.y> trailing garbage, "unterminated <second@x.y>`: {"first@x.y", "second@x.y"},
	}
	for in, want := range tests {
		got := addresses(in)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("addresses(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDate(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"Mon, 24 Nov 2025 10:15:42 +0100":       "2025-11-24T09:15:42Z",
		"24 Nov 2025 10:15 -0800":               "2025-11-24T18:15:00Z",
		"Tue,  2 Dec 2025 14:13:20 +0100 (CET)": "2025-12-02T13:13:20Z",
		"Wed, 3 Dec 2025 07:00:00 EST":          "2025-12-03T12:00:00Z",
		"Wed, 3 Dec 2025 07:00:00 PDT":          "2025-12-03T14:00:00Z",
		"Wed, 3 Dec 2025 07:00:00 GMT":          "2025-12-03T07:00:00Z",
		"Wed, 3 Dec 2025 07:00:00 CET":          "2025-12-03T07:00:00Z", // unknown zone name: -0000
		"Wed, 3 Dec 2025 07:00:00 -0000":        "2025-12-03T07:00:00Z",
		"yesterday":                             "",
		"":                                      "",
	}
	for in, want := range tests {
		if got := parseDate(in); got != want {
			t.Errorf("parseDate(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHeader(t *testing.T) {
	t.Parallel()
	h := []byte("Subject: a\r\n\tb  \r\nnot a field\r\n continuation of garbage\r\nX : y\r\nBad Name: z\r\n: empty\r\nTo:\r\n\r\n")
	got := parseHeader(h, func(string) bool { return true })
	want := []headerField{{"Subject", "a\tb"}, {"X", "y"}, {"To", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseHeader = %q, want %q", got, want)
	}
}
