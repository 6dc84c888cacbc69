package abuse

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// Defaults of core.Config the examples keep.
const (
	maxAuthFailures         = 10 // per (client, address)
	maxAuthFailuresPerAddr  = 50
	authWindow              = time.Minute
	maxLoginFailures        = 10 // per user name
	maxLoginFailuresPerAddr = 30
	loginWindow             = 5 * time.Minute
)

// spoof are headers a client may send to pose as another address; the
// examples trust no proxy, so throttling must ignore them.
func spoof(i int) []string {
	a := fmt.Sprintf("198.51.100.%d", i%250+1)
	return []string{"X-Forwarded-For", a, "X-Real-Ip", a, "Forwarded", "for=" + a}
}

func ccForm() string { return "grant_type=client_credentials&scope=read" }

func testClientAuthThrottle(t *testing.T, tg *target) {
	base, id, secret := tg.s.Base, tg.s.ClientID, tg.s.ClientSecret

	t.Run("PerClientAndAddress", func(t *testing.T) {
		t.Parallel()
		c := client(tg.ip())
		var first *resp
		for i := range maxAuthFailures {
			r := post(t, c, base, "/oauth2/token", ccForm(), append(spoof(i), "Authorization", basic(id, "wrong-secret"))...)
			if r.status != 401 || oauthError(t, r) != "invalid_client" {
				t.Fatalf("failure %d: HTTP %d, want 401 invalid_client:\n%s", i+1, r.status, r.body)
			}
			if first == nil {
				first = r
			}
		}
		// Now even the right secret is refused from this address...
		r := post(t, c, base, "/oauth2/token", ccForm(), "Authorization", basic(id, secret))
		retryAfter(t, "after 10 failures, the right secret", r, authWindow)
		if e := oauthError(t, r); e != "invalid_client" {
			t.Errorf("429 answer: error %q, want invalid_client", e)
		}
		checkNoStore(t, "429 token answer", r)
		// ... at every endpoint that authenticates clients.
		for _, ep := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
			r := post(t, c, base, ep, "token=x", "Authorization", basic(id, secret))
			retryAfter(t, ep+" after 10 token endpoint failures", r, authWindow)
		}
		// But a client id is public: the client is not locked out for
		// everyone (no denial of service by failing on purpose).
		r = post(t, client(tg.ip()), base, "/oauth2/token", ccForm(), "Authorization", basic(id, secret))
		if r.status != 200 {
			t.Fatalf("the right secret from another address: HTTP %d, want 200:\n%s", r.status, r.body)
		}

		// An unknown client id fails exactly like a wrong secret, and is
		// throttled alike.
		c = client(tg.ip())
		for i := range maxAuthFailures {
			r := post(t, c, base, "/oauth2/token", ccForm(), "Authorization", basic("no-such-client", "wrong-secret"))
			if r.status != first.status || r.body != first.body || r.header.Get("WWW-Authenticate") != first.header.Get("WWW-Authenticate") {
				t.Fatalf("unknown client, failure %d: HTTP %d %q %s; a known client with a wrong secret got HTTP %d %q %s",
					i+1, r.status, r.header.Get("WWW-Authenticate"), r.body, first.status, first.header.Get("WWW-Authenticate"), first.body)
			}
		}
		r = post(t, c, base, "/oauth2/token", ccForm(), "Authorization", basic("no-such-client", "wrong-secret"))
		retryAfter(t, "unknown client after 10 failures", r, authWindow)
	})

	t.Run("PerAddress", func(t *testing.T) {
		t.Parallel()
		c := client(tg.ip())
		// Each client id fails only once, in the body and in Basic, at
		// each endpoint, with spoofed forwarding headers: the address
		// counter still adds up.
		for i := range maxAuthFailuresPerAddr {
			cid := fmt.Sprintf("guess-%d", i)
			var r *resp
			switch i % 3 {
			case 0:
				r = post(t, c, base, "/oauth2/token", ccForm()+"&client_id="+cid+"&client_secret=x", spoof(i)...)
			case 1:
				r = post(t, c, base, "/oauth2/introspect", "token=abc", append(spoof(i), "Authorization", basic(cid, "x"))...)
			default:
				r = post(t, c, base, "/oauth2/revoke", "token=abc", append(spoof(i), "Authorization", basic(cid, "x"))...)
			}
			if r.status != 400 && r.status != 401 {
				t.Fatalf("failure %d: HTTP %d, want 400/401 invalid_client:\n%s", i+1, r.status, r.body)
			}
			if e := oauthError(t, r); e != "invalid_client" {
				t.Fatalf("failure %d: error %q, want invalid_client", i+1, e)
			}
		}
		r := post(t, c, base, "/oauth2/token", ccForm(), append(spoof(99), "Authorization", basic(id, secret))...)
		retryAfter(t, "the demo client from an address with 50 failures", r, authWindow)
		// Another address is not affected.
		r = post(t, client(tg.ip()), base, "/oauth2/token", ccForm(), "Authorization", basic(id, secret))
		if r.status != 200 {
			t.Fatalf("another address: HTTP %d, want 200:\n%s", r.status, r.body)
		}
	})
}

// stripForm removes what differs between two renderings of one page
// (the sealed request and its CSRF token).
func stripForm(body string) string {
	return hiddenRe.ReplaceAllString(body, "")
}

func testLoginThrottle(t *testing.T, tg *target) {
	q := authQuery(tg.s.ClientID, redirectURI)

	// failUntilBlocked signs in as user with a wrong password from b
	// until the limit, checks each answer is the login page again with
	// one message, and returns that page and the 429 that follows.
	failUntilBlocked := func(t *testing.T, b *browser, user string, n int) (failed, blocked *resp) {
		t.Helper()
		page := b.loginPage(t, q)
		for i := range n {
			r := b.submit(t, withFields(hidden(t, page), "username", user, "password", "wrong-"+fmt.Sprint(i)))
			if r.status != 200 || !strings.Contains(r.body, loginFailMsg) {
				t.Fatalf("%s, failure %d: HTTP %d, want the login page with %q:\n%s", user, i+1, r.status, loginFailMsg, r.body)
			}
			checkPageHeaders(t, "failed login page", r)
			page, failed = r, r
		}
		blocked = b.submit(t, withFields(hidden(t, page), "username", user, "password", "again"))
		return failed, blocked
	}

	// Per account: 10 failures for demo lock demo from every address;
	// the same for a user name that does not exist, with answers that
	// cannot be told apart (no user enumeration).
	known, knownBlocked := failUntilBlocked(t, newBrowser(tg), demo.DemoUser, maxLoginFailures)
	retryAfter(t, "demo after 10 failed logins", knownBlocked, loginWindow)
	checkPageHeaders(t, "429 login page", knownBlocked)
	if strings.Contains(knownBlocked.body, `name="password"`) {
		t.Errorf("the 429 page still offers the login form")
	}
	unknown, unknownBlocked := failUntilBlocked(t, newBrowser(tg), "no-such-user", maxLoginFailures)
	retryAfter(t, "an unknown user after 10 failed logins", unknownBlocked, loginWindow)
	if stripForm(known.body) != stripForm(unknown.body) || known.status != unknown.status {
		t.Errorf("a failed login of an existing user and of an unknown one differ:\nknown (HTTP %d):\n%s\nunknown (HTTP %d):\n%s",
			known.status, known.body, unknown.status, unknown.body)
	}
	if knownBlocked.body != unknownBlocked.body || knownBlocked.header.Get("Content-Type") != unknownBlocked.header.Get("Content-Type") ||
		knownBlocked.status != unknownBlocked.status {
		t.Errorf("the 429 of an existing user and of an unknown one differ:\nknown:\n%s\nunknown:\n%s", knownBlocked.body, unknownBlocked.body)
	}

	// The right password from a fresh address is refused too (account
	// lock, case-insensitive), but that address may sign in other users.
	b := newBrowser(tg)
	page := b.loginPage(t, q)
	for _, user := range []string{demo.DemoUser, strings.ToUpper(demo.DemoUser)} {
		r := b.submit(t, withFields(hidden(t, page), "username", user, "password", demo.DemoPassword))
		retryAfter(t, fmt.Sprintf("%s with the right password from another address", user), r, loginWindow)
	}
	r := b.submit(t, withFields(hidden(t, page), "username", "someone-else", "password", "x"))
	if r.status != 200 || !strings.Contains(r.body, loginFailMsg) {
		t.Errorf("another user from the fresh address: HTTP %d, want the login page with %q:\n%s", r.status, loginFailMsg, r.body)
	}

	// Per address: 30 failures, each for another user name (none reaches
	// its own limit), with spoofed forwarding headers, lock the address.
	b = newBrowser(tg)
	page = b.loginPage(t, q)
	for i := range maxLoginFailuresPerAddr {
		req := newReq(t, "POST", b.base+"/oauth2/login",
			withFields(hidden(t, page), "username", fmt.Sprintf("spray-%d", i), "password", "123456").Encode(), spoof(i)...)
		r := b.send(t, req)
		if r.status != 200 || !strings.Contains(r.body, loginFailMsg) {
			t.Fatalf("spray %d: HTTP %d, want the login page with %q:\n%s", i+1, r.status, loginFailMsg, r.body)
		}
		page = r
	}
	r = b.submit(t, withFields(hidden(t, page), "username", "fresh-user", "password", "x"))
	retryAfter(t, "a new user name from an address with 30 failures", r, loginWindow)
	if !strings.Contains(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("429 login answer: Content-Type %q, want an HTML page", r.header.Get("Content-Type"))
	}
}
