// Package abuse tests the example servers' defences against abuse from the
// outside, over real HTTP: login and client-authentication throttling,
// request size limits, slow clients, the security headers of every page
// and answer, CSRF protection of the forms, session cookie attributes and
// the escaping of every reflected value. It has no code of its own; see
// its tests.
package abuse
