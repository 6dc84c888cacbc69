module github.com/oauth2kit/oauth2kit/adapters/nethttp

go 1.26.0

require (
	github.com/oauth2kit/oauth2kit v0.0.0
	golang.org/x/oauth2 v0.38.0
)

require (
	code.dny.dev/ssrf v0.3.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/oauth2kit/oauth2kit => ../..
