package core_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core"
)

// The authorization server an ID-JAG is for in these tests (the MCP
// server's, in the enterprise-managed authorization flow).
const idjagAS = "https://mcp-as.example.com"

// xenv is an env with token exchange on (OIDC, DPoP and resources too)
// and the clients the exchange tests use:
//   - svc, svc2: confidential, token exchange and client credentials (their
//     own client_credentials tokens are their actor tokens);
//   - agent, agent2: confidential, the code flow (id_tokens) and token
//     exchange;
//   - noex: confidential, without the grant; pubx: public, with it.
type xenv struct {
	*env
	secrets map[string]string
}

func newXEnv(t *testing.T, mods ...func(*core.Config)) *xenv {
	t.Helper()
	keys := oidcKeys(t)
	base := func(c *core.Config) {
		c.Scopes = append(c.Scopes, core.ScopeOpenID)
		c.OIDC.SigningKeys = keys
		c.DPoP.Enabled = true
		withResources(c)
		c.TokenExchange = core.TokenExchange{Enabled: true, IDJAGAudiences: []core.IDJAGAudience{
			{Issuer: idjagAS, Scopes: []string{"tools.read", "tools.call"}, Resources: []string{mcpRes}},
		}}
	}
	e := newEnv(t, false, append([]func(*core.Config){base}, mods...)...)
	x := &xenv{env: e, secrets: map[string]string{"conf": e.secret}}
	for _, spec := range []core.ClientSpec{
		{ID: "svc", GrantTypes: []string{core.GrantTokenExchange, core.GrantClientCredentials}},
		{ID: "svc2", GrantTypes: []string{core.GrantTokenExchange, core.GrantClientCredentials}},
		{ID: "agent", RedirectURIs: []string{confCB}, GrantTypes: []string{"authorization_code", "refresh_token", core.GrantTokenExchange}},
		{ID: "agent2", RedirectURIs: []string{confCB}, GrantTypes: []string{"authorization_code", "refresh_token", core.GrantTokenExchange}},
		{ID: "noex", GrantTypes: []string{core.GrantClientCredentials}},
		{ID: "pubx", Public: true, GrantTypes: []string{core.GrantTokenExchange}},
	} {
		x.secrets[spec.ID] = e.addClient(spec)
	}
	return x
}

// exchange posts a token exchange of client (Basic authentication; a
// public client sends its client_id) with the form and extra headers.
func (x *xenv) exchange(client string, form url.Values, hdr http.Header) *fakeResp {
	x.t.Helper()
	form.Set("grant_type", core.GrantTokenExchange)
	h := http.Header{}
	for k, vs := range hdr {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if s := x.secrets[client]; s != "" {
		h.Set("Authorization", core.EncodeBasic(client, s))
	} else {
		form.Set("client_id", client)
	}
	return x.token(form, h)
}

func subjectAT(tok string) url.Values {
	return url.Values{"subject_token": {tok}, "subject_token_type": {core.TokenTypeAccessToken}}
}

// with returns a copy of v with the pairs set.
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// cc is a client_credentials access token of client (DPoP-bound with a
// proof).
func (x *xenv) cc(client, scope, proof string) string {
	x.t.Helper()
	hdr := basic(client, x.secrets[client])
	if proof != "" {
		hdr.Set("DPoP", proof)
	}
	w := x.token(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}, hdr)
	if w.status != 200 {
		x.t.Fatalf("client_credentials of %s: %d %s", client, w.status, w.body)
	}
	return w.json(x.t)["access_token"].(string)
}

// codeFlow runs the code flow for client (alice) and returns the token
// response.
func (x *xenv) codeFlow(client, scope string) map[string]any {
	x.t.Helper()
	w := x.codeFor(codeQuery(client, confCB, scope, "st"))
	loc, _ := url.Parse(w.hdr.Get("Location"))
	r := x.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {confCB}, "code_verifier": {verifier}}, basic(client, x.secrets[client]))
	if r.status != 200 {
		x.t.Fatalf("code flow of %s: %d %s", client, r.status, r.body)
	}
	return r.json(x.t)
}

// wantExchanged asserts a successful exchange answer and returns it.
func wantExchanged(t *testing.T, w *fakeResp, issued, tokenType string) map[string]any {
	t.Helper()
	if w.status != 200 {
		t.Fatalf("exchange: %d %s", w.status, w.body)
	}
	wantJSONHeaders(t, w)
	m := w.json(t)
	if m["issued_token_type"] != issued || m["token_type"] != tokenType {
		t.Errorf("issued_token_type %v token_type %v, want %s %s", m["issued_token_type"], m["token_type"], issued, tokenType)
	}
	if s, _ := m["access_token"].(string); s == "" {
		t.Errorf("no access_token in %s", w.body)
	}
	for _, k := range []string{"refresh_token", "id_token"} {
		if _, ok := m[k]; ok {
			t.Errorf("an exchange answer carries %s", k)
		}
	}
	if exp, _ := m["expires_in"].(float64); exp <= 0 {
		t.Errorf("expires_in %v", m["expires_in"])
	}
	return m
}

func (x *xenv) check(tok string) *core.TokenInfo {
	x.t.Helper()
	info, err := x.srv.CheckToken(context.Background(), tok)
	if err != nil {
		x.t.Fatalf("CheckToken of the exchanged token: %v", err)
	}
	return info
}

func (x *xenv) introspect(tok string) map[string]any {
	x.t.Helper()
	w := x.post("/oauth2/introspect", url.Values{"token": {tok}}, basic("conf", x.secrets["conf"]))
	if w.status != 200 {
		x.t.Fatalf("introspect: %d %s", w.status, w.body)
	}
	return w.json(x.t)
}

// The grant is listed and served only when on; clients must be allowed it.
func TestExchangeOnlyWhenEnabled(t *testing.T) {
	off := newEnv(t, false)
	md := off.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if strings.Contains(fmt.Sprint(md["grant_types_supported"]), core.GrantTokenExchange) || md["identity_chaining_requested_token_types_supported"] != nil {
		t.Errorf("metadata of a server without token exchange: %v", md)
	}
	off.addClient(core.ClientSpec{ID: "svc", GrantTypes: []string{core.GrantTokenExchange}})
	at, _ := off.tokens("read")
	w := off.token(with(subjectAT(at), "grant_type", core.GrantTokenExchange), basic("svc", ""))
	wantTokenError(t, w, 400, core.ErrUnsupportedGrantType)

	x := newXEnv(t)
	md = x.do(&fakeReq{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if !strings.Contains(fmt.Sprint(md["grant_types_supported"]), core.GrantTokenExchange) {
		t.Errorf("grant_types_supported %v lacks token exchange", md["grant_types_supported"])
	}
	if fmt.Sprint(md["identity_chaining_requested_token_types_supported"]) != "["+core.TokenTypeIDJAG+"]" {
		t.Errorf("identity_chaining_requested_token_types_supported %v", md["identity_chaining_requested_token_types_supported"])
	}
	// A client registered without a grant type list does not get it.
	if c, _, _ := core.NewClient(core.ClientSpec{ID: "d", RedirectURIs: []string{confCB}}); c.AllowsGrant(core.GrantTokenExchange) {
		t.Error("token exchange is a default grant")
	}
}

// Narrowing: a subset of the scope, the subject's audience, a family of
// its own under the subject's grant; no refresh token; the subject keeps
// working.
func TestExchangeNarrowing(t *testing.T) {
	x := newXEnv(t)
	at, _ := x.tokens("read write")
	fam := x.family(at)
	for _, c := range []struct{ name, scope, want string }{
		{"subset", "read", "read"},
		{"same", "write read", "read write"},
		{"none asked: the subject's", "", "read write"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := subjectAT(at)
			if c.scope != "" {
				f.Set("scope", c.scope)
			}
			m := wantExchanged(t, x.exchange("svc", f, nil), core.TokenTypeAccessToken, "Bearer")
			if m["scope"] != c.want || m["expires_in"] != float64(3600) {
				t.Errorf("scope %v expires_in %v, want %q 3600", m["scope"], m["expires_in"], c.want)
			}
			info := x.check(m["access_token"].(string))
			if info.UserID != "alice" || info.ClientID != "svc" || info.Scope != c.want || info.GrantID == fam ||
				len(info.ParentGrantIDs) != 1 || info.ParentGrantIDs[0] != fam || info.Act != nil ||
				info.Audience != issuer || info.AdditionalInfo != `{"plan":"gold"}` {
				t.Errorf("exchanged token %+v", info)
			}
		})
	}
	// audience or resource naming the subject's own audience is narrowing.
	m := wantExchanged(t, x.exchange("svc", with(subjectAT(at), "audience", issuer+"/"), nil), core.TokenTypeAccessToken, "Bearer")
	if info := x.check(m["access_token"].(string)); info.Audience != issuer {
		t.Errorf("audience %q", info.Audience)
	}
	x.check(at)

	// A subject for a resource narrows to it; requested jwt is RFC 9068.
	w := x.codeWith("read", "&resource="+url.QueryEscape(apiRes))
	r := x.redeemWith(w, url.Values{"resource": {apiRes}})
	apiAT := r.json(t)["access_token"].(string)
	m = wantExchanged(t, x.exchange("svc", with(subjectAT(apiAT), "resource", apiRes, "requested_token_type", core.TokenTypeJWT), nil),
		core.TokenTypeJWT, "Bearer")
	jt := m["access_token"].(string)
	if !strings.HasPrefix(jt, "eyJ") {
		t.Fatalf("requested jwt, got %q", jt)
	}
	if info, err := x.srv.CheckTokenFor(context.Background(), jt, apiRes); err != nil || info.ClientID != "svc" {
		t.Errorf("CheckTokenFor(api) of the JWT: %+v %v", info, err)
	}
}

// policyFor returns a config modifier installing p.
func policyFor(p func(context.Context, *core.TokenExchangeRequest) error) func(*core.Config) {
	return func(c *core.Config) { c.TokenExchange.Policy = p }
}

// Every refusal, with its error code, and never a token.
func TestExchangeRefusals(t *testing.T) {
	x := newXEnv(t)
	at, rt := x.tokens("read write")
	agent := x.codeFlow("agent", "openid read")
	idt := agent["id_token"].(string)
	// Another deployment: other keys, or the same keys under another
	// issuer.
	otherKeys := newEnv(t, false, func(c *core.Config) {
		c.Keys = core.Keys{CryptKey: []byte("another-crypt-key-0123456789abcd"), SignKey: []byte("another-sign-key-0123456789abcde")}
	})
	foreignAT, _ := otherKeys.tokens("read")
	otherIss := newEnv(t, false, func(c *core.Config) { c.Issuer = "https://other.example.com" })
	otherIssAT, _ := otherIss.tokens("read")
	svcCC := x.cc("svc", "read", "")
	svc2CC := x.cc("svc2", "read", "")

	type tc struct {
		client string
		form   url.Values
		status int
		code   string
	}
	cases := map[string]tc{
		"no subject_token_type":        {"svc", url.Values{"subject_token": {at}}, 400, core.ErrInvalidRequest},
		"no subject_token":             {"svc", url.Values{"subject_token_type": {core.TokenTypeAccessToken}}, 400, core.ErrInvalidRequest},
		"saml2 subject":                {"svc", url.Values{"subject_token": {at}, "subject_token_type": {"urn:ietf:params:oauth:token-type:saml2"}}, 400, core.ErrInvalidRequest},
		"unknown subject type":         {"svc", url.Values{"subject_token": {at}, "subject_token_type": {"bearer"}}, 400, core.ErrInvalidRequest},
		"refresh_token requested":      {"svc", with(subjectAT(at), "requested_token_type", core.TokenTypeRefreshToken), 400, core.ErrInvalidRequest},
		"id_token requested":           {"svc", with(subjectAT(at), "requested_token_type", core.TokenTypeIDToken), 400, core.ErrInvalidRequest},
		"refresh subject not accepted": {"svc", url.Values{"subject_token": {rt}, "subject_token_type": {core.TokenTypeRefreshToken}}, 400, core.ErrInvalidRequest},
		"actor_token alone":            {"svc", with(subjectAT(at), "actor_token", svcCC), 400, core.ErrInvalidRequest},
		"actor_token_type alone":       {"svc", with(subjectAT(at), "actor_token_type", core.TokenTypeAccessToken), 400, core.ErrInvalidRequest},
		"refresh actor":                {"svc", with(subjectAT(at), "actor_token", rt, "actor_token_type", core.TokenTypeRefreshToken), 400, core.ErrInvalidRequest},
		"garbage subject":              {"svc", subjectAT("at2.nope.garbage"), 400, core.ErrInvalidGrant},
		"JWS-shaped garbage":           {"svc", subjectAT("eyJhbGciOiJFUzI1NiJ9.eyJ9.c2ln"), 400, core.ErrInvalidGrant},
		"other keys":                   {"svc", subjectAT(foreignAT), 400, core.ErrInvalidGrant},
		"other issuer":                 {"svc", subjectAT(otherIssAT), 400, core.ErrInvalidGrant},
		"id_token as access token":     {"agent", subjectAT(idt), 400, core.ErrInvalidGrant},
		"access token as id_token":     {"agent", url.Values{"subject_token": {at}, "subject_token_type": {core.TokenTypeIDToken}}, 400, core.ErrInvalidGrant},
		"refresh token as access":      {"svc", subjectAT(rt), 400, core.ErrInvalidGrant},
		"sealed token as jwt":          {"svc", url.Values{"subject_token": {at}, "subject_token_type": {core.TokenTypeJWT}}, 400, core.ErrInvalidGrant},
		"id_token of another client":   {"agent2", url.Values{"subject_token": {idt}, "subject_token_type": {core.TokenTypeIDToken}}, 400, core.ErrInvalidGrant},
		"wider scope":                  {"svc", with(subjectAT(at), "scope", "read admin"), 400, core.ErrInvalidScope},
		"unknown scope":                {"svc", with(subjectAT(at), "scope", "read nosuch"), 400, core.ErrInvalidScope},
		"malformed scope":              {"svc", with(subjectAT(at), "scope", "read  write"), 400, core.ErrInvalidScope},
		"other resource of ours":       {"svc", with(subjectAT(at), "resource", apiRes), 400, core.ErrInvalidTarget},
		"other audience of ours":       {"svc", with(subjectAT(at), "audience", mcpRes), 400, core.ErrInvalidTarget},
		"foreign audience":             {"svc", with(subjectAT(at), "audience", "https://evil.example"), 400, core.ErrInvalidTarget},
		"resource with fragment":       {"svc", with(subjectAT(at), "resource", apiRes+"#x"), 400, core.ErrInvalidTarget},
		"resource and audience differ": {"svc", with(subjectAT(at), "resource", issuer, "audience", apiRes), 400, core.ErrInvalidTarget},
		"actor of another client":      {"svc", with(subjectAT(at), "actor_token", svc2CC, "actor_token_type", core.TokenTypeAccessToken), 400, core.ErrInvalidGrant},
		"garbage actor":                {"svc", with(subjectAT(at), "actor_token", "junk", "actor_token_type", core.TokenTypeAccessToken), 400, core.ErrInvalidGrant},
		"cc token of another client":   {"svc2", subjectAT(svcCC), 400, core.ErrInvalidGrant},
		"public client":                {"pubx", subjectAT(at), 400, core.ErrUnauthorizedClient},
		"client without the grant":     {"noex", subjectAT(at), 400, core.ErrUnauthorizedClient},
		"wrong secret":                 {"svc", subjectAT(at), 401, core.ErrInvalidClient},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var w *fakeResp
			if name == "wrong secret" {
				w = x.token(with(c.form, "grant_type", core.GrantTokenExchange), basic("svc", "not-the-secret"))
			} else {
				w = x.exchange(c.client, c.form, nil)
			}
			wantTokenError(t, w, c.status, c.code)
		})
	}
	// A repeated exchange parameter is refused, never resolved.
	body := url.Values{"grant_type": {core.GrantTokenExchange}, "subject_token_type": {core.TokenTypeAccessToken}}.Encode() +
		"&subject_token=" + url.QueryEscape(at) + "&subject_token=" + url.QueryEscape(svcCC)
	w := x.do(&fakeReq{method: "POST", path: "/oauth2/token", body: body, hdr: http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic("svc", x.secrets["svc"])}}})
	wantTokenError(t, w, 400, core.ErrInvalidRequest)

	// Revoked and expired subjects.
	x.store.RevokeFamily(context.Background(), x.family(at), x.now.Add(time.Hour))
	wantTokenError(t, x.exchange("svc", subjectAT(at), nil), 400, core.ErrInvalidGrant)
	at2, _ := x.tokens("read")
	x.now = x.now.Add(2 * time.Hour)
	wantTokenError(t, x.exchange("svc", subjectAT(at2), nil), 400, core.ErrInvalidGrant)
	wantTokenError(t, x.exchange("agent", url.Values{"subject_token": {idt}, "subject_token_type": {core.TokenTypeIDToken}}, nil), 400, core.ErrInvalidGrant)
}

// The Policy refuses with its code, widens only by saying so, and a
// failing policy issues nothing.
func TestExchangePolicy(t *testing.T) {
	var seen core.TokenExchangeRequest
	policy := func(_ context.Context, r *core.TokenExchangeRequest) error {
		seen = *r
		switch r.Client.ID {
		case "svc2":
			return &core.TokenExchangeError{Code: core.ErrInvalidTarget, Description: "svc2 may not \"exchange\""}
		case "agent2":
			return fmt.Errorf("database down: %w", core.ErrUnavailable)
		}
		if r.Scope == "admin read" { // canonical: sorted
			r.AllowWiderScope = true
		}
		if r.Audience == mcpRes {
			r.AllowOtherAudience = true
		}
		if r.Scope == "write" {
			return errors.New("no write for you")
		}
		return nil
	}
	x := newXEnv(t, policyFor(policy))
	at, _ := x.tokens("read write")

	m := wantExchanged(t, x.exchange("svc", with(subjectAT(at), "scope", "read"), nil), core.TokenTypeAccessToken, "Bearer")
	if seen.Client.ID != "svc" || seen.SubjectTokenType != core.TokenTypeAccessToken || seen.Subject.UserID != "alice" ||
		seen.Subject.ClientID != "conf" || seen.Scope != "read" || seen.Audience != issuer || seen.Actor != nil || seen.RequestedTokenType != core.TokenTypeAccessToken {
		t.Errorf("the policy saw %+v", seen)
	}
	_ = m
	wantTokenError(t, x.exchange("svc2", subjectAT(at), nil), 400, core.ErrInvalidTarget)
	wantTokenError(t, x.exchange("svc", with(subjectAT(at), "scope", "write"), nil), 400, core.ErrInvalidGrant)
	wantTokenError(t, x.exchange("agent2", subjectAT(at), nil), 503, core.ErrTemporarilyUnavailable)

	// Widening, allowed explicitly.
	m = wantExchanged(t, x.exchange("svc", with(subjectAT(at), "scope", "read admin"), nil), core.TokenTypeAccessToken, "Bearer")
	if info := x.check(m["access_token"].(string)); info.Scope != "admin read" {
		t.Errorf("widened scope %q", info.Scope)
	}
	m = wantExchanged(t, x.exchange("svc", with(subjectAT(at), "audience", mcpRes, "scope", "read"), nil), core.TokenTypeAccessToken, "Bearer")
	if info, err := x.srv.CheckTokenFor(context.Background(), m["access_token"].(string), mcpRes); err != nil || info.Audience != mcpRes {
		t.Errorf("token for the other audience: %+v %v", info, err)
	}
	// The other resource's scope list still applies, and so does the
	// client's and the server's; an audience not ours never passes.
	wantTokenError(t, x.exchange("svc", with(subjectAT(at), "audience", mcpRes, "scope", "read write"), nil), 400, core.ErrInvalidScope)
	wantTokenError(t, x.exchange("svc", with(subjectAT(at), "scope", "read admin nosuch"), nil), 400, core.ErrInvalidScope)
	wantTokenError(t, x.exchange("svc", with(subjectAT(at), "audience", "https://evil.example"), nil), 400, core.ErrInvalidTarget)

	// An id_token grants no scope: exchanging one for an access token is
	// widening, the policy's call; it starts its own grant.
	idt := x.codeFlow("agent", "openid read")["id_token"].(string)
	idSubj := url.Values{"subject_token": {idt}, "subject_token_type": {core.TokenTypeIDToken}, "scope": {"read"}}
	plain := newXEnv(t)
	pidt := plain.codeFlow("agent", "openid read")["id_token"].(string)
	wantTokenError(t, plain.exchange("agent", with(idSubj, "subject_token", pidt), nil), 400, core.ErrInvalidScope)
	m = wantExchanged(t, x.exchange("agent", with(idSubj, "scope", "read admin"), nil), core.TokenTypeAccessToken, "Bearer")
	info := x.check(m["access_token"].(string))
	if info.UserID != "alice" || info.ClientID != "agent" || info.GrantID == "" || info.Scope != "admin read" {
		t.Errorf("token from an id_token: %+v", info)
	}
	if seen.SubjectTokenType != core.TokenTypeIDToken || seen.Subject.ClientID != "agent" || seen.Subject.GrantID != "" {
		t.Errorf("the policy saw the id_token as %+v", seen.Subject)
	}
}

// Delegation: act records the actor, nested for a chain, in the sealed
// format, in RFC 9068 JWTs and in introspection; chains are bounded.
func TestExchangeActorChain(t *testing.T) {
	x := newXEnv(t)
	at, _ := x.tokens("read write")
	actor := func(client string) url.Values {
		return url.Values{"actor_token": {x.cc(client, "read", "")}, "actor_token_type": {core.TokenTypeAccessToken}}
	}
	merge := func(a, b url.Values) url.Values {
		for k, v := range b {
			a[k] = v
		}
		return a
	}
	m := wantExchanged(t, x.exchange("svc", merge(with(subjectAT(at), "scope", "read"), actor("svc")), nil), core.TokenTypeAccessToken, "Bearer")
	t1 := m["access_token"].(string)
	info := x.check(t1)
	if info.UserID != "alice" || info.Act == nil || info.Act.Subject != "svc" || info.Act.ClientID != "svc" || info.Act.Act != nil {
		t.Fatalf("one actor: %+v act %+v", info, info.Act)
	}
	// svc2 acts for alice through svc: the chain is two deep, svc2 on top.
	m = wantExchanged(t, x.exchange("svc2", merge(subjectAT(t1), actor("svc2")), nil), core.TokenTypeAccessToken, "Bearer")
	t2 := m["access_token"].(string)
	want := canonJSON(t, `{"sub":"svc2","client_id":"svc2","act":{"sub":"svc","client_id":"svc"}}`)
	info = x.check(t2)
	if b, _ := json.Marshal(actJSON(info.Act)); string(b) != want || info.ClientID != "svc2" || info.UserID != "alice" {
		t.Errorf("sealed chain %s, want %s", b, want)
	}
	if b, _ := json.Marshal(x.introspect(t2)["act"]); string(b) != want {
		t.Errorf("introspection act %s, want %s", b, want)
	}
	// The same chain as an RFC 9068 JWT, verified against the JWKS.
	m = wantExchanged(t, x.exchange("svc2", merge(with(subjectAT(t1), "requested_token_type", core.TokenTypeJWT), actor("svc2")), nil), core.TokenTypeJWT, "Bearer")
	jt := m["access_token"].(string)
	hdr, claims := verifyWithJWKS(t, x.env, jt)
	if hdr != "at+jwt" {
		t.Errorf("typ %q", hdr)
	}
	if b, _ := json.Marshal(claims["act"]); string(b) != want || claims["sub"] != "alice" || claims["client_id"] != "svc2" {
		t.Errorf("JWT act %s sub %v client_id %v", b, claims["sub"], claims["client_id"])
	}
	if info = x.check(jt); actDepth(info.Act) != 2 {
		t.Errorf("JWT read back with a chain of %d", actDepth(info.Act))
	}
	// Without an actor, the chain stays (no exchange erases a delegation).
	m = wantExchanged(t, x.exchange("svc", subjectAT(t2), nil), core.TokenTypeAccessToken, "Bearer")
	if b, _ := json.Marshal(actJSON(x.check(m["access_token"].(string)).Act)); string(b) != want {
		t.Errorf("impersonation changed the chain to %s", b)
	}
	// Chains end at four actors.
	tok := t2
	for depth := 3; depth <= 5; depth++ {
		w := x.exchange("svc", merge(subjectAT(tok), actor("svc")), nil)
		if depth == 5 {
			wantTokenError(t, w, 400, core.ErrInvalidGrant)
			break
		}
		tok = wantExchanged(t, w, core.TokenTypeAccessToken, "Bearer")["access_token"].(string)
		if d := actDepth(x.check(tok).Act); d != depth {
			t.Fatalf("chain of %d, want %d", d, depth)
		}
	}
	// A user's id_token can be the actor too (the client's own).
	idt := x.codeFlow("agent", "openid read")["id_token"].(string)
	m = wantExchanged(t, x.exchange("agent", with(subjectAT(at), "actor_token", idt, "actor_token_type", core.TokenTypeIDToken), nil), core.TokenTypeAccessToken, "Bearer")
	if a := x.check(m["access_token"].(string)).Act; a == nil || a.Subject != "alice" || a.ClientID != "agent" {
		t.Errorf("id_token actor: %+v", a)
	}
}

// canonJSON re-encodes a JSON text as json.Marshal writes a decoded value
// (keys sorted), so that act claims compare whatever their key order.
func canonJSON(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func actDepth(a *core.Actor) int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// actJSON is the act claim an Actor is written as.
func actJSON(a *core.Actor) any {
	if a == nil {
		return nil
	}
	m := map[string]any{"sub": a.Subject}
	if a.ClientID != "" {
		m["client_id"] = a.ClientID
	}
	if a.Act != nil {
		m["act"] = actJSON(a.Act)
	}
	return m
}

// verifyWithJWKS verifies a JWT of the server with go-jose against the
// server's /oauth2/jwks and returns its typ and claims.
func verifyWithJWKS(t *testing.T, e *env, tok string) (string, map[string]any) {
	t.Helper()
	w := e.do(&fakeReq{method: "GET", path: "/oauth2/jwks"})
	var set jose.JSONWebKeySet
	if w.status != 200 || json.Unmarshal(w.body, &set) != nil {
		t.Fatalf("jwks: %d %s", w.status, w.body)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("parse %q: %v", tok, err)
	}
	h := jws.Signatures[0].Protected
	keys := set.Key(h.KeyID)
	if len(keys) != 1 || keys[0].Algorithm != h.Algorithm {
		t.Fatalf("kid %q alg %s not in the JWKS", h.KeyID, h.Algorithm)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("signature does not verify with the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return typ, claims
}

// Revoking the subject's grant revokes what was exchanged from it
// (SECURITY.md R71): at the revocation endpoint, CheckToken,
// introspection, the resource check, and a further exchange.
func TestExchangeRevocationPropagation(t *testing.T) {
	x := newXEnv(t)
	at, rt := x.tokens("read write")
	ex := wantExchanged(t, x.exchange("svc", with(subjectAT(at), "scope", "read", "actor_token", x.cc("svc", "read", ""),
		"actor_token_type", core.TokenTypeAccessToken), nil), core.TokenTypeAccessToken, "Bearer")["access_token"].(string)
	chained := wantExchanged(t, x.exchange("svc2", subjectAT(ex), nil), core.TokenTypeAccessToken, "Bearer")["access_token"].(string)
	if x.introspect(ex)["active"] != true {
		t.Fatal("the exchanged token is not active")
	}
	// The user's client revokes its refresh token: the grant goes, and
	// with it every token exchanged from it, however far down.
	if w := x.post("/oauth2/revoke", url.Values{"token": {rt}}, basic("conf", x.secrets["conf"])); w.status != 200 {
		t.Fatalf("revoke: %d %s", w.status, w.body)
	}
	for name, tok := range map[string]string{"exchanged": ex, "exchanged twice": chained} {
		if _, err := x.srv.CheckToken(context.Background(), tok); err == nil {
			t.Errorf("%s: CheckToken accepts it after the revocation", name)
		}
		if m := x.introspect(tok); len(m) != 1 || m["active"] != false {
			t.Errorf("%s: introspection %v", name, m)
		}
		if _, w := x.resource(&fakeReq{hdr: bearer(tok)}); w == nil || w.status != 401 {
			t.Errorf("%s: the resource check accepts it", name)
		}
		wantTokenError(t, x.exchange("svc", subjectAT(tok), nil), 400, core.ErrInvalidGrant)
	}
	wantTokenError(t, x.exchange("svc", subjectAT(at), nil), 400, core.ErrInvalidGrant)

	// A token exchanged from an id_token has a grant of its own, which its
	// client can revoke.
	p := newXEnv(t, policyFor(func(_ context.Context, r *core.TokenExchangeRequest) error { r.AllowWiderScope = true; return nil }))
	idt := p.codeFlow("agent", "openid read")["id_token"].(string)
	fromID := wantExchanged(t, p.exchange("agent", url.Values{"subject_token": {idt}, "subject_token_type": {core.TokenTypeIDToken}, "scope": {"read"}}, nil),
		core.TokenTypeAccessToken, "Bearer")["access_token"].(string)
	p.check(fromID)
	if w := p.post("/oauth2/revoke", url.Values{"token": {fromID}}, basic("agent", p.secrets["agent"])); w.status != 200 {
		t.Fatalf("revoke: %d %s", w.status, w.body)
	}
	if _, err := p.srv.CheckToken(context.Background(), fromID); err == nil {
		t.Error("a revoked token exchanged from an id_token still works")
	}
}

// A storage failure while checking the subject's grant issues nothing.
func TestExchangeStorageFailure(t *testing.T) {
	x := newXEnv(t, quietLog)
	at, _ := x.tokens("read")
	h := newHookStore(x.store)
	// The hook store has no ReplayCache, which DPoP needs.
	x.rebuild(false, h, func(c *core.Config) { c.DPoP.Enabled = false })
	h.failing("IsFamilyRevoked", core.ErrUnavailable)
	wantTokenError(t, x.exchange("svc", subjectAT(at), nil), 503, core.ErrTemporarilyUnavailable)
	h.failing("IsFamilyRevoked", errors.New("disk on fire"))
	wantTokenError(t, x.exchange("svc", subjectAT(at), nil), 500, core.ErrServerError)
}

// A DPoP proof binds the exchanged token; a bound subject needs a proof
// of its key.
func TestExchangeDPoP(t *testing.T) {
	x := newXEnv(t)
	at, _ := x.tokens("read")
	k := newDPoPKey(t)
	hdr := http.Header{"DPoP": {k.proof(x.now, "POST", tokenURL)}}
	m := wantExchanged(t, x.exchange("svc", subjectAT(at), hdr), core.TokenTypeAccessToken, "DPoP")
	tok := m["access_token"].(string)
	if info := x.check(tok); info.JKT != k.jkt() {
		t.Errorf("bound to %q, want %q", info.JKT, k.jkt())
	}
	in := x.introspect(tok)
	if in["token_type"] != "DPoP" || fmt.Sprint(in["cnf"]) != "map[jkt:"+k.jkt()+"]" {
		t.Errorf("introspection %v", in)
	}
	if _, w := x.resource(&fakeReq{hdr: bearer(tok)}); w == nil || w.status != 401 {
		t.Error("a DPoP-bound exchanged token passes as a bearer token")
	}

	// svc's own token, bound to k: exchanged only with a proof of k.
	bound := x.cc("svc", "read", k.proof(x.now, "POST", tokenURL))
	wantTokenError(t, x.exchange("svc", subjectAT(bound), nil), 400, core.ErrInvalidGrant)
	other := newDPoPKey(t)
	wantTokenError(t, x.exchange("svc", subjectAT(bound), http.Header{"DPoP": {other.proof(x.now, "POST", tokenURL)}}), 400, core.ErrInvalidGrant)
	m = wantExchanged(t, x.exchange("svc", subjectAT(bound), http.Header{"DPoP": {k.proof(x.now, "POST", tokenURL)}}), core.TokenTypeAccessToken, "DPoP")
	if info := x.check(m["access_token"].(string)); info.JKT != k.jkt() || !info.ClientCredentials || info.Subject() != "svc" {
		t.Errorf("exchanged bound token %+v", info)
	}
}

// Refresh tokens are subject tokens only when allowed, and only the
// client's own, live ones.
func TestExchangeRefreshSubject(t *testing.T) {
	x := newXEnv(t, func(c *core.Config) { c.TokenExchange.AllowRefreshTokenSubjects = true })
	tr := x.codeFlow("agent", "read write")
	rt := tr["refresh_token"].(string)
	fam := x.family(tr["access_token"].(string))
	subj := url.Values{"subject_token": {rt}, "subject_token_type": {core.TokenTypeRefreshToken}, "scope": {"read"}}
	m := wantExchanged(t, x.exchange("agent", subj, nil), core.TokenTypeAccessToken, "Bearer")
	if info := x.check(m["access_token"].(string)); info.GrantID == fam || len(info.ParentGrantIDs) != 1 || info.ParentGrantIDs[0] != fam ||
		info.Scope != "read" || info.UserID != "alice" {
		t.Errorf("exchanged from a refresh token: %+v", info)
	}
	wantTokenError(t, x.exchange("agent2", subj, nil), 400, core.ErrInvalidGrant)
	wantTokenError(t, x.exchange("agent", with(subj, "scope", "admin"), nil), 400, core.ErrInvalidScope)
	wantTokenError(t, x.exchange("agent", with(subj, "resource", apiRes), nil), 400, core.ErrInvalidTarget)
	// The exchange did not consume it: the refresh still works and
	// rotates it; the stale copy then is a reuse, which kills the grant.
	if w := x.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("agent", x.secrets["agent"])); w.status != 200 {
		t.Fatalf("refresh: %d %s", w.status, w.body)
	}
	wantTokenError(t, x.exchange("agent", subj, nil), 400, core.ErrInvalidGrant)
	if !x.revoked(fam) {
		t.Error("a rotated-out refresh token presented for exchange did not revoke its grant")
	}
}

// An ID-JAG: the id_token of the requesting client exchanged for a JWT
// for another authorization server, as the Go MCP SDK's extauth asks for
// it (oauthex.ExchangeToken: client credentials in the body, an empty
// code, audience, resource, scope).
func TestIDJAGIssuance(t *testing.T) {
	var seen core.TokenExchangeRequest
	x := newXEnv(t, policyFor(func(_ context.Context, r *core.TokenExchangeRequest) error {
		seen = *r
		if r.Client.ID == "agent2" {
			r.TargetClientID = "agent-at-mcp"
		}
		return nil
	}))
	tr := x.codeFlow("agent", "openid read")
	idt := tr["id_token"].(string)
	sdkForm := func(client, idToken string) url.Values {
		return url.Values{"grant_type": {core.GrantTokenExchange}, "code": {""}, "client_id": {client}, "client_secret": {x.secrets[client]},
			"requested_token_type": {core.TokenTypeIDJAG}, "audience": {idjagAS}, "resource": {mcpRes},
			"subject_token": {idToken}, "subject_token_type": {core.TokenTypeIDToken}, "scope": {"tools.read"}}
	}
	w := x.token(sdkForm("agent", idt), nil)
	m := wantExchanged(t, w, core.TokenTypeIDJAG, core.TokenTypeNA)
	if m["expires_in"] != float64(300) || m["scope"] != "tools.read" {
		t.Errorf("expires_in %v scope %v", m["expires_in"], m["scope"])
	}
	jag := m["access_token"].(string)
	typ, c := verifyWithJWKS(t, x.env, jag)
	if typ != core.IDJAGType {
		t.Errorf("typ %q, want %q", typ, core.IDJAGType)
	}
	now := float64(x.now.Unix())
	if c["iss"] != issuer || c["sub"] != "alice" || c["aud"] != idjagAS || c["client_id"] != "agent" || c["scope"] != "tools.read" ||
		c["resource"] != mcpRes || c["iat"] != now || c["exp"] != now+300 || c["jti"] == "" || c["auth_time"] == nil {
		t.Errorf("ID-JAG claims %v", c)
	}
	if _, ok := c["act"]; ok {
		t.Error("an ID-JAG carries act")
	}
	if seen.RequestedTokenType != core.TokenTypeIDJAG || seen.Audience != idjagAS || seen.Resource != mcpRes || seen.TargetClientID != "agent" {
		t.Errorf("the policy saw %+v", seen)
	}
	// A fresh jti per ID-JAG; the audience matched without its "/".
	w = x.token(with(sdkForm("agent", idt), "audience", idjagAS+"/"), nil)
	_, c2 := verifyWithJWKS(t, x.env, wantExchanged(t, w, core.TokenTypeIDJAG, core.TokenTypeNA)["access_token"].(string))
	if c2["jti"] == c["jti"] || c2["aud"] != idjagAS {
		t.Errorf("second ID-JAG jti %v aud %v", c2["jti"], c2["aud"])
	}
	// The Policy maps the client's id at the target. (agent2 signs in
	// from another browser: a new login in this one would end the login
	// session of idt, which is then exchanged no more.)
	cookie := x.cookie
	x.cookie = ""
	idt2 := x.codeFlow("agent2", "openid read")["id_token"].(string)
	x.cookie = cookie
	_, c3 := verifyWithJWKS(t, x.env, wantExchanged(t, x.token(sdkForm("agent2", idt2), nil), core.TokenTypeIDJAG, core.TokenTypeNA)["access_token"].(string))
	if c3["client_id"] != "agent-at-mcp" {
		t.Errorf("mapped client_id %v", c3["client_id"])
	}
	// An ID-JAG is no access token here, nor an id_token.
	if _, err := x.srv.CheckToken(context.Background(), jag); err == nil {
		t.Error("CheckToken accepts an ID-JAG")
	}
	wantTokenError(t, x.token(with(sdkForm("agent", jag), "requested_token_type", core.TokenTypeAccessToken), nil), 400, core.ErrInvalidGrant)

	for name, c := range map[string]struct {
		form url.Values
		code string
	}{
		"id_token of another client": {sdkForm("agent2", idt), core.ErrInvalidGrant},
		"audience not allowed":       {with(sdkForm("agent", idt), "audience", "https://other-as.example.com"), core.ErrInvalidTarget},
		"our own issuer":             {with(sdkForm("agent", idt), "audience", issuer), core.ErrInvalidTarget},
		"audience not a URI":         {with(sdkForm("agent", idt), "audience", "mcp"), core.ErrInvalidTarget},
		"no audience":                {with(sdkForm("agent", idt), "audience", ""), core.ErrInvalidRequest},
		"resource not allowed":       {with(sdkForm("agent", idt), "resource", "https://other.example.com/mcp"), core.ErrInvalidTarget},
		"scope not allowed":          {with(sdkForm("agent", idt), "scope", "tools.read tools.admin"), core.ErrInvalidScope},
		"malformed scope":            {with(sdkForm("agent", idt), "scope", "tools.read\ttools.call"), core.ErrInvalidScope},
		"access token subject":       {with(sdkForm("agent", tr["access_token"].(string)), "subject_token_type", core.TokenTypeAccessToken), core.ErrInvalidRequest},
		"with an actor":              {with(sdkForm("agent", idt), "actor_token", idt, "actor_token_type", core.TokenTypeIDToken), core.ErrInvalidRequest},
		"garbage id_token":           {sdkForm("agent", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"), core.ErrInvalidGrant},
		"access token as id_token":   {sdkForm("agent", tr["access_token"].(string)), core.ErrInvalidGrant},
	} {
		t.Run(name, func(t *testing.T) { wantTokenError(t, x.token(c.form, nil), 400, c.code) })
	}
	// An unlisted audience needs the Policy to allow it.
	open := newXEnv(t, policyFor(func(_ context.Context, r *core.TokenExchangeRequest) error {
		r.AllowOtherAudience = r.Audience == "https://partner-as.example.com"
		return nil
	}))
	oidt := open.codeFlow("agent", "openid")["id_token"].(string)
	f := url.Values{"requested_token_type": {core.TokenTypeIDJAG}, "audience": {"https://partner-as.example.com"},
		"subject_token": {oidt}, "subject_token_type": {core.TokenTypeIDToken}, "scope": {"anything"}}
	_, pc := verifyWithJWKS(t, open.env, wantExchanged(t, open.exchange("agent", f, nil), core.TokenTypeIDJAG, core.TokenTypeNA)["access_token"].(string))
	if pc["aud"] != "https://partner-as.example.com" || pc["scope"] != "anything" || pc["resource"] != nil {
		t.Errorf("ID-JAG for an allowed partner %v", pc)
	}
	wantTokenError(t, open.exchange("agent", with(f, "audience", "https://else.example.com"), nil), 400, core.ErrInvalidTarget)

	// Never beyond the id_token: one about to expire gives a shorter
	// ID-JAG; an expired one none.
	x.now = x.now.Add(time.Hour - 100*time.Second)
	m = wantExchanged(t, x.token(sdkForm("agent", idt), nil), core.TokenTypeIDJAG, core.TokenTypeNA)
	if m["expires_in"] != float64(100) {
		t.Errorf("expires_in %v near the id_token's expiry, want 100", m["expires_in"])
	}
	x.now = x.now.Add(200 * time.Second)
	wantTokenError(t, x.token(sdkForm("agent", idt), nil), 400, core.ErrInvalidGrant)
}

// ID-JAGs need OIDC; New checks the configuration, naming the field.
func TestExchangeConfig(t *testing.T) {
	e := newEnv(t, false, func(c *core.Config) { c.TokenExchange.Enabled = true })
	sec := e.addClient(core.ClientSpec{ID: "svc", GrantTypes: []string{core.GrantTokenExchange}})
	at, _ := e.tokens("read")
	w := e.token(url.Values{"grant_type": {core.GrantTokenExchange}, "subject_token": {at}, "subject_token_type": {core.TokenTypeAccessToken},
		"requested_token_type": {core.TokenTypeIDJAG}, "audience": {idjagAS}}, basic("svc", sec))
	wantTokenError(t, w, 400, core.ErrInvalidRequest)
	w = e.token(url.Values{"grant_type": {core.GrantTokenExchange}, "subject_token": {at}, "subject_token_type": {core.TokenTypeAccessToken},
		"requested_token_type": {core.TokenTypeJWT}}, basic("svc", sec))
	wantTokenError(t, w, 400, core.ErrInvalidRequest)
	for name, mod := range map[string]func(*core.TokenExchange){
		"ID-JAG audiences without OIDC": func(x *core.TokenExchange) {
			x.IDJAGAudiences = []core.IDJAGAudience{{Issuer: idjagAS}}
		},
	} {
		cfg := e.srv.Config()
		mod(&cfg.TokenExchange)
		if _, err := core.New(cfg, e.store, noAuth{}); err == nil || !strings.Contains(err.Error(), "TokenExchange") {
			t.Errorf("%s: New said %v", name, err)
		}
	}
	x := newXEnv(t)
	for name, mod := range map[string]func(*core.TokenExchange){
		"http issuer": func(x *core.TokenExchange) {
			x.IDJAGAudiences = []core.IDJAGAudience{{Issuer: "http://as.example.org"}}
		},
		"issuer query": func(x *core.TokenExchange) { x.IDJAGAudiences = []core.IDJAGAudience{{Issuer: idjagAS + "?a=b"}} },
		"own issuer":   func(x *core.TokenExchange) { x.IDJAGAudiences = []core.IDJAGAudience{{Issuer: issuer + "/"}} },
		"twice": func(x *core.TokenExchange) {
			x.IDJAGAudiences = []core.IDJAGAudience{{Issuer: idjagAS}, {Issuer: idjagAS + "/"}}
		},
		"bad scope": func(x *core.TokenExchange) {
			x.IDJAGAudiences = []core.IDJAGAudience{{Issuer: idjagAS, Scopes: []string{"a b"}}}
		},
		"bad resource": func(x *core.TokenExchange) {
			x.IDJAGAudiences = []core.IDJAGAudience{{Issuer: idjagAS, Resources: []string{"/mcp"}}}
		},
		"lifetime too long": func(x *core.TokenExchange) { x.IDJAGLifetime = time.Hour },
		"negative lifetime": func(x *core.TokenExchange) { x.IDJAGLifetime = -time.Minute },
	} {
		cfg := x.srv.Config()
		mod(&cfg.TokenExchange)
		if _, err := core.New(cfg, x.store, noAuth{}); err == nil || !strings.Contains(err.Error(), "TokenExchange") {
			t.Errorf("%s: New said %v", name, err)
		}
	}
	// The configuration is copied: changing the caller's slice later
	// changes nothing.
	auds := []core.IDJAGAudience{{Issuer: idjagAS}}
	cfg := x.srv.Config()
	cfg.TokenExchange.IDJAGAudiences = auds
	srv, err := core.New(cfg, x.store, noAuth{})
	if err != nil {
		t.Fatal(err)
	}
	auds[0].Issuer = "https://changed.example.com"
	if got := srv.Config().TokenExchange.IDJAGAudiences[0].Issuer; got != idjagAS {
		t.Errorf("the server's audience changed to %q", got)
	}
}

// Oversized and hostile parameters get a clear 4xx, never a 500 or a
// token.
func TestExchangeOversized(t *testing.T) {
	x := newXEnv(t)
	at, _ := x.tokens("read")
	long := func(n int) string { return strings.Repeat("a", n) }
	jwsLike := "eyJ" + long(3000) + "." + long(800) + "." + long(100)
	for name, c := range map[string]struct {
		form   url.Values
		status int
		code   string
	}{
		"subject beyond the value limit": {subjectAT("at2." + long(5000)), 400, core.ErrInvalidRequest},
		"subject within it, garbage":     {subjectAT("at2.k." + long(4000)), 400, core.ErrInvalidGrant},
		"JWS-shaped subject":             {subjectAT(jwsLike), 400, core.ErrInvalidGrant},
		"JWS-shaped id_token":            {url.Values{"subject_token": {jwsLike}, "subject_token_type": {core.TokenTypeIDToken}}, 400, core.ErrInvalidGrant},
		"JWS-shaped actor":               {with(subjectAT(at), "actor_token", jwsLike, "actor_token_type", core.TokenTypeJWT), 400, core.ErrInvalidGrant},
		"long scope":                     {with(subjectAT(at), "scope", strings.Repeat("read ", 300)), 400, core.ErrInvalidScope},
		"long audience":                  {with(subjectAT(at), "audience", "https://x.example/"+long(3900)), 400, core.ErrInvalidTarget},
		"long token type":                {url.Values{"subject_token": {at}, "subject_token_type": {long(4000)}}, 400, core.ErrInvalidRequest},
		"control characters":             {with(subjectAT(at), "audience", "https://x.example/\x00\n"), 400, core.ErrInvalidTarget},
		"long ID-JAG resource": {url.Values{"requested_token_type": {core.TokenTypeIDJAG}, "audience": {idjagAS}, "resource": {"https://mcp.example.com/" + long(4000)},
			"subject_token": {"x"}, "subject_token_type": {core.TokenTypeIDToken}}, 400, core.ErrInvalidGrant},
	} {
		t.Run(name, func(t *testing.T) { wantTokenError(t, x.exchange("agent", c.form, nil), c.status, c.code) })
	}
	// Too many parameters, and a body beyond the limit.
	f := subjectAT(at)
	for i := range 80 {
		f.Set(fmt.Sprintf("p%d", i), "v")
	}
	wantTokenError(t, x.exchange("svc", f, nil), 400, core.ErrInvalidRequest)
	big := subjectAT(at)
	for i := range 20 {
		big.Set(fmt.Sprintf("q%d", i), long(4000))
	}
	if w := x.exchange("svc", big, nil); w.status < 400 || w.status >= 500 {
		t.Errorf("a body beyond the limit: %d %s", w.status, w.body)
	}
	// A JWT-looking subject carrying an act chain the server never
	// signed (alg none) is refused like any forgery.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+issuer+`","sub":"alice","act":{"sub":"x","act":{"sub":"y"}}}`)) + "."
	wantTokenError(t, x.exchange("svc", url.Values{"subject_token": {none}, "subject_token_type": {core.TokenTypeJWT}}, nil), 400, core.ErrInvalidGrant)
}

// Public clients exchange only where the configuration allows it.
func TestExchangePublicClients(t *testing.T) {
	x := newXEnv(t, func(c *core.Config) { c.TokenExchange.AllowPublicClients = true })
	at, _ := x.tokens("read write")
	m := wantExchanged(t, x.exchange("pubx", with(subjectAT(at), "scope", "read"), nil), core.TokenTypeAccessToken, "Bearer")
	if info := x.check(m["access_token"].(string)); info.ClientID != "pubx" || info.Scope != "read" {
		t.Errorf("public client's exchanged token %+v", info)
	}
	// A secret sent for a public client is still a failed authentication.
	w := x.token(with(subjectAT(at), "grant_type", core.GrantTokenExchange), basic("pubx", "guess"))
	if w.status != 401 && w.status != 400 {
		t.Errorf("public client with a secret: %d %s", w.status, w.body)
	}
}
