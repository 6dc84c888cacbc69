module github.com/oauth2kit/oauth2kit/mcpauth

go 1.26.0

require (
	github.com/modelcontextprotocol/go-sdk v1.8.0
	github.com/oauth2kit/oauth2kit v0.0.0
	github.com/oauth2kit/oauth2kit/adapters/nethttp v0.0.0
	golang.org/x/oauth2 v0.38.0
)

require (
	code.dny.dev/ssrf v0.3.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/google/jsonschema-go v0.4.3 // indirect
	github.com/segmentio/asm v1.1.3 // indirect
	github.com/segmentio/encoding v0.5.4 // indirect
	github.com/yosida95/uritemplate/v3 v3.0.2 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/time v0.15.0 // indirect
)

replace (
	github.com/oauth2kit/oauth2kit => ../
	github.com/oauth2kit/oauth2kit/adapters/nethttp => ../adapters/nethttp
)
