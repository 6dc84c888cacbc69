package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// Families of tokens minted without a code (token exchange, the JWT
// bearer grant): each is a family of its own, stored as a grant born
// used so that user-wide revocation reaches it, and an exchanged token
// also dies with every family it was exchanged from (SECURITY.md R71).

// live asserts that tok passes CheckToken, the resource check and
// introspection.
func (x *xenv) live(what, tok string) {
	x.t.Helper()
	if _, err := x.srv.CheckToken(context.Background(), tok); err != nil {
		x.t.Errorf("%s: CheckToken: %v", what, err)
	}
	if _, w := x.resource(&fakeReq{hdr: bearer(tok)}); w != nil {
		x.t.Errorf("%s: the resource check refuses it: %d %s", what, w.status, w.body)
	}
	if m := x.introspect(tok); m["active"] != true {
		x.t.Errorf("%s: introspection %v", what, m)
	}
}

// dead asserts that tok fails CheckToken, the resource check (401
// invalid_token), introspection and a further exchange.
func (x *xenv) dead(what, tok string) {
	x.t.Helper()
	if _, err := x.srv.CheckToken(context.Background(), tok); err == nil {
		x.t.Errorf("%s: CheckToken accepts it", what)
	}
	if _, w := x.resource(&fakeReq{hdr: bearer(tok)}); w == nil || w.status != 401 || !strings.Contains(w.hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
		x.t.Errorf("%s: the resource check accepts it", what)
	}
	if m := x.introspect(tok); len(m) != 1 || m["active"] != false {
		x.t.Errorf("%s: introspection %v", what, m)
	}
	wantTokenError(x.t, x.exchange("svc", subjectAT(tok), nil), 400, core.ErrInvalidGrant)
}

func (x *xenv) exchanged(client string, f url.Values) string {
	x.t.Helper()
	want := core.TokenTypeAccessToken
	if f.Get("requested_token_type") == core.TokenTypeJWT {
		want = core.TokenTypeJWT
	}
	return wantExchanged(x.t, x.exchange(client, f, nil), want, "Bearer")["access_token"].(string)
}

func (x *xenv) revokeAs(client, tok string) {
	x.t.Helper()
	if w := x.post("/oauth2/revoke", url.Values{"token": {tok}}, basic(client, x.secrets[client])); w.status != 200 {
		x.t.Fatalf("revoke as %s: %d %s", client, w.status, w.body)
	}
}

// An exchanged token is a family of its own, a child of the subject's:
// the exchanging client revoking it leaves the subject's grant alone,
// and revoking the subject's grant (or any link above) kills everything
// exchanged below it, in both formats.
func TestExchangeChildFamily(t *testing.T) {
	x := newXEnv(t)
	at, rt := x.tokens("read write")
	root := x.family(at)

	ex := x.exchanged("svc", with(subjectAT(at), "scope", "read"))
	info := x.check(ex)
	if info.GrantID == root || info.GrantID == "" || !slices.Equal(info.ParentGrantIDs, []string{root}) {
		t.Errorf("exchanged token: family %q parents %q, want a new family under %q", info.GrantID, info.ParentGrantIDs, root)
	}
	// svc revokes its own token: its family goes, the user's client keeps
	// its grant (access and refresh token).
	x.revokeAs("svc", ex)
	x.dead("revoked exchanged token", ex)
	x.live("the subject after the exchanged token's revocation", at)
	if x.revoked(root) {
		t.Error("revoking the exchanged token revoked the subject's grant")
	}
	if w := x.refreshConf(rt, ""); w.status != 200 {
		t.Fatalf("refresh after the exchanged token's revocation: %d %s", w.status, w.body)
	}
	// Nor can it revoke the subject token, which is not its own.
	if w := x.post("/oauth2/revoke", url.Values{"token": {at}}, basic("svc", x.secrets["svc"])); w.status != 400 {
		t.Errorf("svc revoking conf's token: %d %s", w.status, w.body)
	}

	// A chain: at -> e1 (svc) -> e2 (svc2, JWT) -> e3 (svc). Revoking the
	// middle kills what is below it only; revoking the root kills all.
	at2, _ := x.tokens("read write")
	root2 := x.family(at2)
	e1 := x.exchanged("svc", subjectAT(at2))
	e2 := x.exchanged("svc2", with(subjectAT(e1), "requested_token_type", core.TokenTypeJWT))
	e3 := x.exchanged("svc", subjectAT(e2))
	f1, f2 := x.family(e1), x.family(e2)
	if got := x.check(e3).ParentGrantIDs; !slices.Equal(got, []string{f2, f1, root2}) {
		t.Errorf("three levels down: parents %q, want %q", got, []string{f2, f1, root2})
	}
	_, claims := verifyWithJWKS(t, x.env, e2)
	if fmt.Sprint(claims["pgid"]) != fmt.Sprint([]any{f1, root2}) || claims["gid"] != f2 {
		t.Errorf("JWT gid %v pgid %v", claims["gid"], claims["pgid"])
	}
	x.revokeAs("svc2", e2)
	x.dead("below the revoked link", e3)
	x.dead("the revoked link (JWT)", e2)
	x.live("above the revoked link", e1)
	x.live("the root", at2)

	e2b := x.exchanged("svc2", with(subjectAT(e1), "requested_token_type", core.TokenTypeJWT))
	e3b := x.exchanged("svc", subjectAT(e2b))
	x.revokeAs("conf", at2)
	for name, tok := range map[string]string{"one level": e1, "two levels (JWT)": e2b, "three levels": e3b} {
		x.dead(name+" below the revoked root", tok)
	}
}

// The chain of parents is bounded: a token four exchanges from its grant
// is exchanged no further.
func TestExchangeDepthBound(t *testing.T) {
	x := newXEnv(t)
	tok, _ := x.tokens("read")
	for depth := 1; depth <= 4; depth++ {
		tok = x.exchanged("svc", subjectAT(tok))
		if n := len(x.check(tok).ParentGrantIDs); n != depth {
			t.Fatalf("depth %d: %d parents", depth, n)
		}
	}
	m := wantTokenError(t, x.exchange("svc", subjectAT(tok), nil), 400, core.ErrInvalidGrant)
	if !strings.Contains(fmt.Sprint(m["error_description"]), "exchanged") {
		t.Errorf("error_description %v", m["error_description"])
	}
	x.live("the deepest token", tok)
}

// The exchanged family is the exchanging client's grant of the user:
// UserClients lists it, RevokeUserClient(user, client) ends it alone,
// RevokeUser ends it and every family exchanged from an id_token.
func TestExchangeUserRevocation(t *testing.T) {
	ctx := context.Background()
	x := newXEnv(t, policyFor(func(_ context.Context, r *core.TokenExchangeRequest) error { r.AllowWiderScope = true; return nil }))
	gs := recording(x.env)
	at, _ := x.tokens("read write")
	ex := x.exchanged("svc", subjectAT(at))
	below := x.exchanged("svc2", subjectAT(ex))

	ucs, err := x.srv.UserClients(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ucs, func(u core.UserClient) bool { return u.ClientID == "svc" && u.Active }) ||
		!slices.ContainsFunc(ucs, func(u core.UserClient) bool { return u.ClientID == "svc2" && u.Active }) {
		t.Errorf("UserClients %+v lacks svc and svc2", ucs)
	}
	// The grant record is the exchanging client's, born used, kept as long
	// as the token lives and no longer needed after.
	grantOf := func(family string) *core.Grant {
		t.Helper()
		g := gs.grant(family)
		if g == nil {
			t.Fatalf("no grant recorded for family %s", family)
		}
		return g
	}
	info := x.check(ex)
	g := grantOf(info.GrantID)
	if g.ClientID != "svc" || g.UserID != "alice" || g.UsedAt == nil || g.Scope != "read write" ||
		g.KeepUntil.Before(info.ExpiresAt) || g.KeepUntil.After(info.ExpiresAt.Add(time.Minute)) || g.ExpiresAt.After(x.now) {
		t.Errorf("recorded grant %+v for token expiring %v", g, info.ExpiresAt)
	}
	// A born-used grant redeems nothing.
	if _, err := x.store.RedeemCode(ctx, g.CodeSig, x.now, func(*core.Grant) (*core.RefreshToken, error) {
		t.Error("a born-used grant was redeemed")
		return nil, nil
	}); !errors.Is(err, core.ErrCodeUsed) && !errors.Is(err, core.ErrNotFound) {
		t.Errorf("RedeemCode of the record: %v", err)
	}

	n, err := x.srv.RevokeUserClient(ctx, "alice", "svc")
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserClient(alice, svc) = %d, %v; want 1 family", n, err)
	}
	x.dead("svc's exchanged token", ex)
	x.dead("exchanged from svc's", below)
	x.live("conf's token after RevokeUserClient(svc)", at)
	ucs, _ = x.srv.UserClients(ctx, "alice")
	if slices.ContainsFunc(ucs, func(u core.UserClient) bool { return u.ClientID == "svc" && u.Active }) {
		t.Errorf("svc still active after its revocation: %+v", ucs)
	}

	// From an id_token: a family of the exchanging client with no parent,
	// which RevokeUser reaches.
	idt := x.codeFlow("agent", "openid read")["id_token"].(string)
	fromID := x.exchanged("agent", url.Values{"subject_token": {idt}, "subject_token_type": {core.TokenTypeIDToken}, "scope": {"read"}})
	if info := x.check(fromID); len(info.ParentGrantIDs) != 0 || grantOf(info.GrantID).ClientID != "agent" {
		t.Errorf("token from an id_token: %+v", info)
	}
	x.live("from an id_token", fromID)
	if _, err := x.srv.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	x.dead("from an id_token after RevokeUser", fromID)
	x.dead("conf's token after RevokeUser", at)

	// A token without a user (client credentials) needs no record: no
	// user-wide revocation can reach it, its family is revoked by token.
	subj := x.cc("svc", "read", "")
	before := gs.count()
	cc := x.exchanged("svc", subjectAT(subj))
	if gs.count() != before || x.check(cc).UserID != "" {
		t.Error("an exchange without a user recorded a grant")
	}
}

// An id_token whose login session has ended (logout, EndUserSessions) is
// no longer exchanged, for an access token or an ID-JAG.
func TestExchangeEndedSession(t *testing.T) {
	ctx := context.Background()
	x := newXEnv(t, policyFor(func(_ context.Context, r *core.TokenExchangeRequest) error { r.AllowWiderScope = true; return nil }))
	idSubj := func(idt string) url.Values {
		return url.Values{"subject_token": {idt}, "subject_token_type": {core.TokenTypeIDToken}, "scope": {"read"}}
	}
	idt := x.codeFlow("agent", "openid read")["id_token"].(string)
	if jwtClaims(t, idt)["sid"] == nil {
		t.Fatal("the id_token carries no sid")
	}
	x.exchanged("agent", idSubj(idt))
	if n, err := x.srv.EndUserSessions(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("EndUserSessions = %d, %v", n, err)
	}
	m := wantTokenError(t, x.exchange("agent", idSubj(idt), nil), 400, core.ErrInvalidGrant)
	if !strings.Contains(fmt.Sprint(m["error_description"]), "session") {
		t.Errorf("error_description %v", m["error_description"])
	}
	idjag := url.Values{"subject_token": {idt}, "subject_token_type": {core.TokenTypeIDToken},
		"requested_token_type": {core.TokenTypeIDJAG}, "audience": {idjagAS}}
	wantTokenError(t, x.exchange("agent", idjag, nil), 400, core.ErrInvalidGrant)
	// As an actor token too.
	at, _ := x.tokens("read")
	wantTokenError(t, x.exchange("agent", with(subjectAT(at), "actor_token", idt, "actor_token_type", core.TokenTypeIDToken), nil), 400, core.ErrInvalidGrant)

	// RP-initiated logout ends it the same way.
	idt2 := x.codeFlow("agent", "openid read")["id_token"].(string)
	x.exchanged("agent", idSubj(idt2))
	wantExchanged(t, x.exchange("agent", with(idjag, "subject_token", idt2), nil), core.TokenTypeIDJAG, core.TokenTypeNA)
	if w := x.logout(idt2); w.status >= 400 {
		t.Fatalf("logout: %d %s", w.status, w.body)
	}
	wantTokenError(t, x.exchange("agent", idSubj(idt2), nil), 400, core.ErrInvalidGrant)
}

// A storage failure recording the family issues nothing.
func TestExchangeFamilyStorageFailure(t *testing.T) {
	x := newXEnv(t, quietLog)
	at, _ := x.tokens("read")
	h := newHookStore(x.store)
	x.rebuild(false, h, func(c *core.Config) { c.DPoP.Enabled = false })
	h.failing("CreateGrant", core.ErrUnavailable)
	wantTokenError(t, x.exchange("svc", subjectAT(at), nil), 503, core.ErrTemporarilyUnavailable)
	h.failing("CreateGrant", errors.New("disk on fire"))
	m := wantTokenError(t, x.exchange("svc", subjectAT(at), nil), 500, core.ErrServerError)
	if strings.Contains(fmt.Sprint(m), "disk") {
		t.Errorf("the cause reaches the client: %v", m)
	}
}

// grantStore is the memstore (every capability kept) recording the grants
// it is given, or failing CreateGrant with err.
type grantStore struct {
	*memstore.Store
	err    error
	mu     sync.Mutex
	grants []core.Grant
}

func (s *grantStore) CreateGrant(ctx context.Context, g *core.Grant) error {
	if s.err != nil {
		return s.err
	}
	s.mu.Lock()
	s.grants = append(s.grants, *g)
	s.mu.Unlock()
	return s.Store.CreateGrant(ctx, g)
}

// grant is the recorded grant of the family, nil without one.
func (s *grantStore) grant(family string) *core.Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.grants {
		if s.grants[i].ID == family {
			g := s.grants[i]
			return &g
		}
	}
	return nil
}

func (s *grantStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.grants)
}

// recording rebuilds e's server on a grantStore over its memstore.
func recording(e *env) *grantStore {
	gs := &grantStore{Store: e.store}
	e.rebuild(false, gs)
	return gs
}

// The JWT bearer grant's family is the client's grant of the user:
// UserClients lists it, RevokeUser and RevokeUserClient end it; a
// storage failure recording it issues nothing.
func TestJWTBearerUserRevocation(t *testing.T) {
	ctx := context.Background()
	j := newJBEnv(t)
	gs := recording(j.env)
	at, info := j.wantGrantOK("ID-JAG", j.grant(j.idjag(nil), nil), "read write")
	ucs, err := j.srv.UserClients(ctx, "alice@corp")
	if err != nil || !slices.ContainsFunc(ucs, func(u core.UserClient) bool { return u.ClientID == "agent" && u.Active }) {
		t.Errorf("UserClients = %+v, %v", ucs, err)
	}
	g := gs.grant(info.GrantID)
	if g == nil || g.ClientID != "agent" || g.UserID != "alice@corp" || g.UsedAt == nil || g.KeepUntil.Before(info.ExpiresAt) {
		t.Fatalf("recorded grant %+v", g)
	}
	if n, err := j.srv.RevokeUserClient(ctx, "alice@corp", "agent"); err != nil || n != 1 {
		t.Fatalf("RevokeUserClient = %d, %v", n, err)
	}
	if _, err := j.srv.CheckToken(ctx, at); err == nil {
		t.Error("the jwt-bearer token survives RevokeUserClient")
	}
	at2, _ := j.wantGrantOK("ID-JAG", j.grant(j.idjag(nil), nil), "read write")
	// Two families: the one revoked above is found (and counted) again.
	if n, err := j.srv.RevokeUser(ctx, "alice@corp"); err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	if _, err := j.srv.CheckToken(ctx, at2); err == nil {
		t.Error("the jwt-bearer token survives RevokeUser")
	}

	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("busy: %w", core.ErrUnavailable), 503, core.ErrTemporarilyUnavailable},
		{errors.New("disk on fire"), 500, core.ErrServerError},
	} {
		j.rebuild(false, &grantStore{Store: j.store, err: c.err})
		m := wantTokenError(t, j.grant(j.idjag(nil), nil), c.status, c.code)
		if strings.Contains(fmt.Sprint(m), "disk") || strings.Contains(fmt.Sprint(m), "busy") {
			t.Errorf("the cause reaches the client: %v", m)
		}
	}
}
