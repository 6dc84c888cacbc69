module github.com/oauth2kit/oauth2kit/adapters/nethttp

go 1.26.0

require github.com/oauth2kit/oauth2kit v0.0.0

replace github.com/oauth2kit/oauth2kit => ../..
