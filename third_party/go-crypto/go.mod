module github.com/ProtonMail/go-crypto

go 1.23.0

require (
	github.com/cloudflare/circl v1.6.3
	golang.org/x/crypto v0.41.0
)

require golang.org/x/sys v0.35.0 // indirect
