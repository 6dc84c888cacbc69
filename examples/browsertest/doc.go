// Package browsertest checks the example server's login and consent pages
// in a real browser: headless Chromium driven by playwright-core from npm
// (browser.mjs), started by the Go test in this directory.
//
// The test skips unless Chromium is at /usr/bin/chromium and playwright-core
// is installed here:
//
//	apt-get install -y chromium
//	cd examples/browsertest && npm ci
//
// No browser is downloaded: playwright-core drives the system Chromium.
package browsertest
