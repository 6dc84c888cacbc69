package adaptertest

// The assertions the suite makes about answers: status, headers, JSON
// errors, pages, redirects and WWW-Authenticate challenges.

import (
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
)

func decodeJSON(t *testing.T, r *response) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: body %q is not a JSON object: %v", r.what, r.body, err)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data after the JSON object: %q", r.what, r.body)
	}
	return m
}

// wantKeys demands that m has exactly keys.
func wantKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("JSON members = %v, want exactly %v", got, want)
	}
}

func wantHeader(t *testing.T, r *response, name, want string) {
	t.Helper()
	if got := r.header.Values(name); len(got) != 1 || got[0] != want {
		t.Errorf("%s: %s = %q, want %q", r.what, name, got, want)
	}
}

func wantNoHeader(t *testing.T, r *response, name string) {
	t.Helper()
	if got := r.header.Values(name); len(got) != 0 {
		t.Errorf("%s: unexpected %s: %q", r.what, name, got)
	}
}

func wantStatus(t *testing.T, r *response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d\nheaders: %v\nbody: %s", r.what, r.status, status, r.header, r.body)
	}
}

// wantJSONHeaders: the token endpoint's headers (RFC 6749 §5.1).
func wantJSONHeaders(t *testing.T, r *response) {
	t.Helper()
	wantHeader(t, r, "Content-Type", "application/json")
	wantHeader(t, r, "Cache-Control", "no-store")
	wantHeader(t, r, "Pragma", "no-cache")
}

// wantOAuthError checks a token/revocation/introspection error answer.
func wantOAuthError(t *testing.T, r *response, status int, code string) map[string]any {
	t.Helper()
	wantStatus(t, r, status)
	wantJSONHeaders(t, r)
	m := decodeJSON(t, r)
	if m["error"] != code {
		t.Errorf("%s: error = %v, want %q (body %s)", r.what, m["error"], code, r.body)
	}
	for k, v := range m {
		switch k {
		case "error", "error_description":
			s, _ := v.(string)
			for i := 0; i < len(s); i++ {
				if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
					t.Errorf("%s: %s has a character RFC 6749 forbids: %q", r.what, k, s)
					break
				}
			}
		default:
			t.Errorf("%s: unexpected member %q in error body %s", r.what, k, r.body)
		}
	}
	return m
}

// wantPage checks an HTML page of the authorization flow: status, type and
// the anti-framing, no-referrer and no-store headers; never a redirect and
// never a CORS grant.
func wantPage(t *testing.T, r *response, status int) {
	t.Helper()
	wantStatus(t, r, status)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type = %q, want text/html", r.what, ct)
	}
	csp := r.header.Values("Content-Security-Policy")
	if len(csp) != 1 || !slices.Contains(splitCSP(csp[0]), "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy = %q, want a frame-ancestors 'none' directive", r.what, csp)
	}
	if len(csp) == 1 && strings.Contains(csp[0], "form-action") {
		t.Errorf("%s: Content-Security-Policy %q has form-action, which breaks the redirect after the form POST", r.what, csp[0])
	}
	wantHeader(t, r, "X-Frame-Options", "DENY")
	wantHeader(t, r, "Referrer-Policy", "no-referrer")
	wantHeader(t, r, "Cache-Control", "no-store")
	wantNoHeader(t, r, "Location")
	wantNoHeader(t, r, "Access-Control-Allow-Origin")
}

func splitCSP(v string) []string {
	var out []string
	for _, d := range strings.Split(v, ";") {
		out = append(out, strings.Join(strings.Fields(d), " "))
	}
	return out
}

// wantRedirect checks an authorization response redirect (303) to base
// (the redirect URI, whose own query is kept) and returns the parameters
// added to it, which must be exactly keys.
func (e *env) wantRedirect(r *response, base string, keys ...string) url.Values {
	t := e.t
	t.Helper()
	wantStatus(t, r, 303)
	wantHeader(t, r, "Cache-Control", "no-store")
	wantNoHeader(t, r, "Access-Control-Allow-Origin")
	loc := r.header.Get("Location")
	bu, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u := e.location(r)
	if u.Scheme != bu.Scheme || u.Host != bu.Host || u.Path != bu.Path || u.Fragment != "" {
		t.Fatalf("Location %q does not go to %q", loc, base)
	}
	q := u.Query()
	for k, vs := range bu.Query() {
		if !slices.Equal(q[k], vs) {
			t.Errorf("Location %q lost the registered query %s=%v", loc, k, vs)
		}
		delete(q, k)
	}
	got := make([]string, 0, len(q))
	for k, vs := range q {
		got = append(got, k)
		if len(vs) != 1 {
			t.Errorf("Location %q repeats %s", loc, k)
		}
	}
	sort.Strings(got)
	want := slices.Clone(keys)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("Location %q has parameters %v, want exactly %v", loc, got, want)
	}
	if q.Get("iss") != e.base {
		t.Errorf("iss = %q, want the issuer %q", q.Get("iss"), e.base)
	}
	return q
}

// wantRedirectError checks an error redirect: error, state (if any), iss,
// and error_description, and no code.
func (e *env) wantRedirectError(r *response, base, code, state string) {
	e.t.Helper()
	keys := []string{"error", "error_description", "iss"}
	if state != "" {
		keys = append(keys, "state")
	}
	q := e.wantRedirect(r, base, keys...)
	if q.Get("error") != code {
		e.t.Errorf("error = %q, want %q", q.Get("error"), code)
	}
	if q.Get("state") != state {
		e.t.Errorf("state = %q, want %q", q.Get("state"), state)
	}
}

// challenge is a parsed WWW-Authenticate value with a single challenge.
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenge parses `Scheme k="v", k2="v2"` (quoted-string values
// without escapes, as the kit emits).
func parseChallenge(t *testing.T, h string) challenge {
	t.Helper()
	scheme, rest, _ := strings.Cut(h, " ")
	c := challenge{scheme: scheme, params: map[string]string{}}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		k, after, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(after, `"`) {
			t.Fatalf("malformed WWW-Authenticate %q", h)
		}
		end := strings.IndexByte(after[1:], '"')
		if end < 0 {
			t.Fatalf("malformed WWW-Authenticate %q", h)
		}
		k = strings.TrimSpace(k)
		if _, dup := c.params[k]; dup {
			t.Fatalf("WWW-Authenticate %q repeats %s", h, k)
		}
		c.params[k] = after[1 : 1+end]
		rest = strings.TrimSpace(after[end+2:])
		rest = strings.TrimSpace(strings.TrimPrefix(rest, ","))
	}
	return c
}

// wantBearerError checks a refusal by the resource middleware. code ""
// means "no credentials": a challenge with the realm alone.
func wantBearerError(t *testing.T, e *env, r *response, status int, code, scope string) {
	t.Helper()
	wantStatus(t, r, status)
	wantHeader(t, r, "Content-Type", "application/json")
	wantHeader(t, r, "Cache-Control", "no-store")
	m := decodeJSON(t, r)
	if code != "" && m["error"] != code {
		t.Errorf("%s: body error = %v, want %q (%s)", r.what, m["error"], code, r.body)
	}
	if code == "" {
		if s, _ := m["error"].(string); s == "invalid_token" || s == "invalid_request" || s == "insufficient_scope" {
			t.Errorf("%s: a request without credentials got error %q", r.what, s)
		}
	}
	if scope != "" && m["scope"] != scope {
		t.Errorf("%s: body scope = %v, want %q", r.what, m["scope"], scope)
	}
	if status == 400 {
		// RFC 6750 §3.1 asks for nothing more of an invalid_request.
		return
	}
	hs := r.header.Values("WWW-Authenticate")
	if len(hs) != 1 {
		t.Fatalf("%s: WWW-Authenticate = %q, want one Bearer challenge", r.what, hs)
	}
	c := parseChallenge(t, hs[0])
	if c.scheme != "Bearer" {
		t.Errorf("%s: challenge scheme %q, want Bearer", r.what, c.scheme)
	}
	if c.params["realm"] != e.base {
		t.Errorf("%s: realm = %q, want %q", r.what, c.params["realm"], e.base)
	}
	if code == "" {
		if len(c.params) != 1 {
			t.Errorf("%s: WWW-Authenticate %q: without credentials only the realm may be named (RFC 6750 §3.1)", r.what, hs[0])
		}
		return
	}
	if c.params["error"] != code {
		t.Errorf("%s: WWW-Authenticate %q: error %q, want %q", r.what, hs[0], c.params["error"], code)
	}
	if c.params["scope"] != scope {
		t.Errorf("%s: WWW-Authenticate %q: scope %q, want %q", r.what, hs[0], c.params["scope"], scope)
	}
}

// wantProtected checks a 200 from a protected route.
func wantProtected(t *testing.T, r *response, want protected) {
	t.Helper()
	wantStatus(t, r, 200)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type = %q, want application/json", r.what, ct)
	}
	var got protected
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("%s: body %q: %v", r.what, r.body, err)
	}
	if got != want {
		t.Errorf("%s: handler saw %+v, want %+v", r.what, got, want)
	}
}
