// Package overload drives an example server past saturation and checks
// that it degrades cleanly: no server errors but deliberate 503/429, and
// its resources back near their pre-load level afterwards. The test runs
// only when OAUTH2KIT_OVERLOAD=1 (it takes over a minute and all the CPU):
//
//	OAUTH2KIT_OVERLOAD=1 go test -run TestOverload -v -timeout 10m ./internal/overload
//
// OAUTH2KIT_OVERLOAD_DURATION (default 60s) and
// OAUTH2KIT_OVERLOAD_CONCURRENCY (default 128) tune it.
package overload
