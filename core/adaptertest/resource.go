package adaptertest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// resourceCase is one request to a protected route and the expected
// answer: a refusal (status, code, scope) or, with status 200, what the
// handler saw.
type resourceCase struct {
	name string
	// build returns the request pieces, given a user token with scope
	// "read" (tk) and one with "admin read" (admin).
	build  func(e *env, tk, admin tokens) (method, pathQuery string, hdr http.Header, body string)
	status int
	code   string // "" for 200 or for "no credentials"
	scope  string // for insufficient_scope
	// seen is what the handler must report on 200 (body filled in by
	// build's body).
	seenScope string
	seenBody  bool
}

func resourceTests() []test {
	form := "application/x-www-form-urlencoded"
	cases := []resourceCase{
		{name: "NoToken", status: 401,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, nil, ""
			}},
		{name: "ValidBearer", status: 200, seenScope: "read",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, bearer(tk.access), ""
			}},
		{name: "LowercaseScheme", status: 200, seenScope: "read",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, http.Header{"Authorization": {"bearer " + tk.access}}, ""
			}},
		{name: "UppercaseScheme", status: 200, seenScope: "read",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, http.Header{"Authorization": {"BEARER " + tk.access}}, ""
			}},
		{name: "GarbageToken", status: 401, code: "invalid_token",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, bearer("not-a-token"), ""
			}},
		{name: "TamperedToken", status: 401, code: "invalid_token",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, bearer(flip(tk.access)), ""
			}},
		{name: "TruncatedToken", status: 401, code: "invalid_token",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, bearer(tk.access[:len(tk.access)-4]), ""
			}},
		{name: "RefreshTokenAsBearer", status: 401, code: "invalid_token",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, bearer(tk.refresh), ""
			}},
		{name: "SchemeWithoutToken", status: 401, code: "invalid_token",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, http.Header{"Authorization": {"Bearer"}}, ""
			}},
		{name: "BasicIsNoToken", status: 401,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, e.basic(confID), ""
			}},
		{name: "QueryTokenIgnored", status: 401,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe + "?access_token=" + url.QueryEscape(tk.access), nil, ""
			}},
		{name: "QueryTokenIgnoredOnPost", status: 401,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "POST", PathMe + "?access_token=" + url.QueryEscape(tk.access), http.Header{"Content-Type": {form}}, "note=hello"
			}},
		{name: "FormBodyToken", status: 200, seenScope: "read", seenBody: true,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "POST", PathMe, http.Header{"Content-Type": {form}}, "note=hello+world&access_token=" + url.QueryEscape(tk.access) + "&n=1"
			}},
		{name: "BearerWithFormBody", status: 200, seenScope: "read", seenBody: true,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				h := bearer(tk.access)
				h.Set("Content-Type", form)
				return "POST", PathMe, h, "note=kept+for+the+handler&n=2"
			}},
		{name: "BearerWithJSONBody", status: 200, seenScope: "read", seenBody: true,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				h := bearer(tk.access)
				h.Set("Content-Type", "application/json")
				return "POST", PathMe, h, `{"access_token":"not read from JSON"}`
			}},
		{name: "HeaderAndFormToken", status: 400, code: "invalid_request",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				h := bearer(tk.access)
				h.Set("Content-Type", form)
				return "POST", PathMe, h, "access_token=" + url.QueryEscape(tk.access)
			}},
		{name: "TwoAuthorizationHeaders", status: 400, code: "invalid_request",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathMe, http.Header{"Authorization": {"Bearer " + tk.access, "Bearer " + tk.access}}, ""
			}},
		{name: "FormBodyTokenWithoutFormType", status: 401,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "POST", PathMe, http.Header{"Content-Type": {"text/plain"}}, "access_token=" + url.QueryEscape(tk.access)
			}},
		{name: "AdminWithoutAdminScope", status: 403, code: "insufficient_scope", scope: AdminScope,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathAdmin, bearer(tk.access), ""
			}},
		{name: "AdminWithAdminScope", status: 200, seenScope: "admin read",
			build: func(e *env, _, admin tokens) (string, string, http.Header, string) {
				return "GET", PathAdmin, bearer(admin.access), ""
			}},
		{name: "AdminWithoutToken", status: 401,
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathAdmin, nil, ""
			}},
		{name: "AdminWithInvalidToken", status: 401, code: "invalid_token",
			build: func(e *env, tk, _ tokens) (string, string, http.Header, string) {
				return "GET", PathAdmin, bearer(flip(tk.access)), ""
			}},
	}
	var tests []test
	for _, rc := range cases {
		tests = append(tests, test{rc.name, func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			admin := tokens{}
			if rc.seenScope == "admin read" {
				admin = e.userTokens("read admin")
			}
			method, pq, hdr, body := rc.build(e, tk, admin)
			req := e.newRequest(method, pq, strings.NewReader(body))
			if body == "" {
				req.Body = http.NoBody
				req.ContentLength = 0
			}
			for k, vs := range hdr {
				req.Header[k] = vs
			}
			r := e.send(e.api, req)
			if rc.status != 200 {
				wantBearerError(t, e, r, rc.status, rc.code, rc.scope)
				return
			}
			want := protected{Sub: userName, ClientID: confID, Scope: rc.seenScope}
			if rc.seenBody {
				want.Body = body
			}
			wantProtected(t, r, want)
		}})
	}
	tests = append(tests,
		test{"ExpiredToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			e.clock.advance(time.Hour + time.Second)
			wantBearerError(t, e, e.me(tk.access), 401, "invalid_token", "")
		}},
		test{"RevokedToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			e.wantMe(tk.access, userName, confID, "read")
			wantRevoked(t, e.revoke(confID, authBasic, tk.access, ""))
			wantBearerError(t, e, e.me(tk.access), 401, "invalid_token", "")
		}},
		test{"TokenFromAnotherServer", func(t *testing.T, e *env) {
			// A server with other keys (and the same issuer) minted it.
			wantBearerError(t, e, e.me(foreignToken(t, e)), 401, "invalid_token", "")
		}},
		test{"SameBodyForEveryInvalidToken", func(t *testing.T, e *env) {
			tk := e.userTokens("read")
			expired := e.userTokens("read")
			revoked := e.userTokens("read")
			wantRevoked(t, e.revoke(confID, authBasic, revoked.refresh, ""))
			bodies := map[string]string{
				"garbage":  string(e.me("garbage").body),
				"tampered": string(e.me(flip(tk.access)).body),
				"refresh":  string(e.me(tk.refresh).body),
				"revoked":  string(e.me(revoked.access).body),
			}
			e.clock.advance(time.Hour + time.Second)
			bodies["expired"] = string(e.me(expired.access).body)
			want := bodies["garbage"]
			for k, v := range bodies {
				if v != want {
					t.Errorf("the %s token got %q, the garbage one %q: every invalid token must get one identical body", k, v, want)
				}
			}
		}},
	)
	return tests
}

// foreignToken mints a client_credentials access token on a second,
// independent server that has the same issuer but its own keys, by
// calling it directly (no HTTP).
func foreignToken(t *testing.T, e *env) string {
	t.Helper()
	o := &env{t: t, store: memstore.New(), clock: e.clock, secrets: map[string]string{}}
	srv := o.buildServer(e.base)
	req := &directRequest{
		method: "POST", path: "/oauth2/token",
		header: http.Header{
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Authorization": {core.EncodeBasic(confID, o.secrets[confID])},
		},
		body: "grant_type=client_credentials",
	}
	w := &directResponder{header: http.Header{}}
	if !srv.Handle(w, req) || w.status != 200 {
		t.Fatalf("minting a foreign token: %d %s", w.status, w.body)
	}
	var m struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.body, &m); err != nil || m.AccessToken == "" {
		t.Fatalf("minting a foreign token: %s (%v)", w.body, err)
	}
	return m.AccessToken
}

// directRequest is a core.Request without HTTP.
type directRequest struct {
	method, path, body string
	header             http.Header
}

func (r *directRequest) Context() context.Context    { return context.Background() }
func (r *directRequest) Method() string              { return r.method }
func (r *directRequest) Path() string                { return r.path }
func (r *directRequest) RawQuery() string            { return "" }
func (r *directRequest) Header(name string) []string { return r.header.Values(name) }
func (r *directRequest) Body() io.Reader             { return strings.NewReader(r.body) }
func (r *directRequest) RemoteAddr() string          { return "192.0.2.1:1" }
func (r *directRequest) TLS() bool                   { return false }

// directResponder records a core answer.
type directResponder struct {
	status int
	header http.Header
	body   []byte
}

func (w *directResponder) SetHeader(name, value string) { w.header.Set(name, value) }
func (w *directResponder) AddHeader(name, value string) { w.header.Add(name, value) }
func (w *directResponder) Send(status int, body []byte) error {
	w.status, w.body = status, append([]byte(nil), body...)
	return nil
}
