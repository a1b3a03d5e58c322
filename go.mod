module tollbridge

go 1.26.0

require (
	blitiri.com.ar/go/spf v1.6.0
	github.com/BurntSushi/toml v1.6.0
	github.com/ProtonMail/go-crypto v1.5.2
	github.com/emersion/go-imap/v2 v2.0.0-beta.9
	github.com/emersion/go-message v0.18.2
	github.com/emersion/go-msgauth v0.7.0
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6
	github.com/emersion/go-smtp v0.25.1
	github.com/miekg/dns v1.1.73
	golang.org/x/net v0.62.0
	golang.org/x/text v0.44.0
	modernc.org/sqlite v1.62.0
)

require (
	github.com/cloudflare/circl v1.6.3 // indirect
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)

// go-smtp v0.25.1 with a fix to its DATA reader (a line ending in CR CR LF
// hid the terminator and hung the session): see third_party/go-smtp/PATCHES.md.
replace github.com/emersion/go-smtp v0.25.1 => ./third_party/go-smtp

// go-imap v2.0.0-beta.9 with the server fixes and extensions tollbridge needs
// (RFC behaviour, CONDSTORE/QRESYNC, SORT/THREAD): see
// third_party/go-imap/PATCHES.md.
replace github.com/emersion/go-imap/v2 v2.0.0-beta.9 => ./third_party/go-imap

// go-crypto v1.5.2 with a fix to its S2K cache (it never stored a derived
// key, so unlocking a key with a subkey ran Argon2 twice): see
// third_party/go-crypto/PATCHES.md.
replace github.com/ProtonMail/go-crypto v1.5.2 => ./third_party/go-crypto
