// Package browsertest checks the example servers in a real browser:
// headless Chromium driven by playwright-core from npm, started by the Go
// tests in this directory. browser.mjs runs the login and consent pages of
// the nethttp example (and go-oidc's relying party); mcp.mjs runs the
// official TypeScript MCP SDK (@modelcontextprotocol/sdk, its own OAuth
// client provider) against examples/mcp: discovery from the 401, dynamic
// registration, the login in Chromium, the tools, and a step-up from a
// 403 insufficient_scope; fapi.mjs runs oauth4webapi (private_key_jwt, DPoP
// with the nonce retry, userinfo and refresh) against examples/nethttp.
//
// The tests skip unless Chromium is at /usr/bin/chromium and the npm
// packages are installed here (OAUTH2KIT_REQUIRE_BROWSER=1, as CI sets it,
// makes them fail instead):
//
//	apt-get install -y chromium
//	cd examples/browsertest && npm ci
//
// No browser is downloaded: playwright-core drives the system Chromium.
package browsertest
