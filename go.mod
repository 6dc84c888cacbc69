module github.com/oauth2kit/oauth2kit

go 1.26.0

require (
	code.dny.dev/ssrf v0.3.0
	github.com/go-jose/go-jose/v4 v4.1.9
	golang.org/x/crypto v0.59.0
)

require golang.org/x/sys v0.50.0 // indirect
