package core_test

// Fault injection: a store that fails at each step of each write path, as
// the Storage contract allows it to fail, driven through the endpoints.
// Whatever fails, no token leaves the server, revocation never answers 200
// on a storage error, and once the fault clears the same request works as
// the contract's rollback promises (a code whose consumption was rolled
// back redeems exactly once; a token whose rotation was rolled back still
// rotates).

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// Fault points.
const (
	faultGetClient = "GetClient"
	faultCreate    = "CreateGrant"
	// RedeemCode: before the code is consumed; after the consumption, when
	// issue has run and the refresh-token write fails (rolled back: the
	// code is not consumed); when issue refused the request and committing
	// the consumption fails (rolled back too).
	faultRedeemBefore  = "RedeemCode/before"
	faultRedeemWrite   = "RedeemCode/refresh-write"
	faultRedeemRefused = "RedeemCode/refused-commit"
	// RotateRefreshToken: before the token is read; after issue ran, when
	// marking the old token or writing the new one fails (rolled back).
	faultRotateBefore = "RotateRefreshToken/before"
	faultRotateWrite  = "RotateRefreshToken/write"
	faultGetRefresh   = "GetRefreshToken"
	faultRevoke       = "RevokeFamily"
	faultIsRevoked    = "IsFamilyRevoked"
	faultGetConsent   = "GetConsent"
	faultSaveConsent  = "SaveConsent"
)

// faultStore is a memstore whose methods fail at one armed point. A fault
// after the consumption runs the server's issue callback (so the server
// mints its tokens) and then reports the failure without writing anything,
// which is the state a transactional store rolls back to.
type faultStore struct {
	*memstore.Store
	mu     sync.Mutex
	point  string
	err    error
	hits   int
	grants map[string]core.Grant // by code signature, to run issue without the store
	minted []*core.RefreshToken  // what issue returned under a fault
}

var errInjected = errors.New("injected storage fault")

func newFaultStore(s *memstore.Store) *faultStore {
	return &faultStore{Store: s, grants: map[string]core.Grant{}}
}

func (f *faultStore) arm(point string, err error) {
	f.mu.Lock()
	f.point, f.err = point, err
	if point != "" {
		f.hits, f.minted = 0, nil
	}
	f.mu.Unlock()
}

func (f *faultStore) fails(point string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.point != point {
		return nil
	}
	f.hits++
	return f.err
}

func (f *faultStore) GetClient(ctx context.Context, id string) (*core.Client, error) {
	if err := f.fails(faultGetClient); err != nil {
		return nil, err
	}
	return f.Store.GetClient(ctx, id)
}

func (f *faultStore) CreateGrant(ctx context.Context, g *core.Grant) error {
	if err := f.fails(faultCreate); err != nil {
		return err
	}
	f.mu.Lock()
	f.grants[g.CodeSig] = *g
	f.mu.Unlock()
	return f.Store.CreateGrant(ctx, g)
}

func (f *faultStore) RedeemCode(ctx context.Context, sig string, now time.Time, issue func(*core.Grant) (*core.RefreshToken, error)) (*core.Grant, error) {
	if err := f.fails(faultRedeemBefore); err != nil {
		return nil, err
	}
	for _, p := range []string{faultRedeemWrite, faultRedeemRefused} {
		if err := f.fails(p); err != nil {
			f.mu.Lock()
			g, ok := f.grants[sig]
			f.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("fault store: no grant %q", sig)
			}
			rt, ierr := issue(&g)
			if p == faultRedeemWrite && ierr != nil {
				return nil, fmt.Errorf("fault store: the test expected issue to succeed: %w", ierr)
			}
			if p == faultRedeemRefused && ierr == nil {
				return nil, errors.New("fault store: the test expected issue to refuse")
			}
			f.mu.Lock()
			f.minted = append(f.minted, rt)
			f.mu.Unlock()
			return nil, err
		}
	}
	return f.Store.RedeemCode(ctx, sig, now, issue)
}

func (f *faultStore) RotateRefreshToken(ctx context.Context, sig string, now time.Time, issue func(*core.RefreshToken) (*core.RefreshToken, error)) (*core.RefreshToken, error) {
	if err := f.fails(faultRotateBefore); err != nil {
		return nil, err
	}
	if err := f.fails(faultRotateWrite); err != nil {
		old, gerr := f.Store.GetRefreshToken(ctx, sig)
		if gerr != nil || old.RotatedAt != nil {
			return nil, fmt.Errorf("fault store: the test expected a live token: %v", gerr)
		}
		nt, ierr := issue(old)
		if ierr != nil || nt == nil {
			return nil, fmt.Errorf("fault store: the test expected issue to succeed: %v", ierr)
		}
		f.mu.Lock()
		f.minted = append(f.minted, nt)
		f.mu.Unlock()
		return nil, err
	}
	return f.Store.RotateRefreshToken(ctx, sig, now, issue)
}

func (f *faultStore) GetRefreshToken(ctx context.Context, sig string) (*core.RefreshToken, error) {
	if err := f.fails(faultGetRefresh); err != nil {
		return nil, err
	}
	return f.Store.GetRefreshToken(ctx, sig)
}

func (f *faultStore) RevokeFamily(ctx context.Context, id string, keep time.Time) error {
	if err := f.fails(faultRevoke); err != nil {
		return err
	}
	return f.Store.RevokeFamily(ctx, id, keep)
}

func (f *faultStore) IsFamilyRevoked(ctx context.Context, id string) (bool, error) {
	if err := f.fails(faultIsRevoked); err != nil {
		return false, err
	}
	return f.Store.IsFamilyRevoked(ctx, id)
}

func (f *faultStore) GetConsent(ctx context.Context, user, client string) (string, error) {
	if err := f.fails(faultGetConsent); err != nil {
		return "", err
	}
	return f.Store.GetConsent(ctx, user, client)
}

func (f *faultStore) SaveConsent(ctx context.Context, user, client, scope string) error {
	if err := f.fails(faultSaveConsent); err != nil {
		return err
	}
	return f.Store.SaveConsent(ctx, user, client, scope)
}

// faultKinds: a plain storage error is a server_error (500), one wrapping
// core.ErrUnavailable a temporarily_unavailable (503).
var faultKinds = []struct {
	name   string
	err    error
	status int
	errc   string
}{
	{"permanent", errInjected, 500, core.ErrServerError},
	{"transient", fmt.Errorf("%w: %w", core.ErrUnavailable, errInjected), 503, core.ErrTemporarilyUnavailable},
}

type faultEnv struct {
	*env
	fs *faultStore
	// status and code the failed request must answer with.
	status int
	errc   string
}

func newFaultEnv(t *testing.T, consent bool, kind int) *faultEnv {
	e := newEnv(t, consent, quietLog)
	fs := newFaultStore(e.store)
	e.rebuild(consent, fs)
	return &faultEnv{env: e, fs: fs, status: faultKinds[kind].status, errc: faultKinds[kind].errc}
}

// inject arms the fault, runs req, and disarms it; the fault must have been
// hit.
func (f *faultEnv) inject(point string, kind int, req func() *fakeResp) *fakeResp {
	f.t.Helper()
	f.fs.arm(point, faultKinds[kind].err)
	w := req()
	f.fs.arm("", nil)
	if f.fs.hits == 0 {
		f.t.Fatalf("the fault %s was never reached (status %d %s)", point, w.status, w.body)
	}
	return w
}

// wantNoTokens asserts a token-endpoint failure that issued nothing.
func (f *faultEnv) wantNoTokens(w *fakeResp) {
	f.t.Helper()
	wantTokenError(f.t, w, f.status, f.errc)
	for _, name := range []string{"access_token", "refresh_token"} {
		if rJSONField(w.body, name) != "" {
			f.t.Errorf("a failed request issued %s: %s", name, w.body)
		}
	}
}

// wantNotStored asserts that no refresh token minted under a fault was
// written.
func (f *faultEnv) wantNotStored() {
	f.t.Helper()
	if len(f.fs.minted) == 0 {
		f.t.Fatal("the server's issue callback did not run under the fault")
	}
	for _, rt := range f.fs.minted {
		if rt == nil {
			continue
		}
		if got, err := f.store.GetRefreshToken(context.Background(), rt.Sig); !errors.Is(err, core.ErrNotFound) {
			f.t.Errorf("a refresh token minted under a fault was stored: %+v, %v", got, err)
		}
	}
}

func (f *faultEnv) exchange(code, v string) *fakeResp {
	return f.token(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {confCB}, "code_verifier": {v}}, basic("conf", f.secret))
}

// loginForm runs the authorization request up to the login form.
func (f *faultEnv) loginForm() url.Values {
	f.t.Helper()
	page := f.authorize(codeQuery("conf", confCB, "read", "xyz"))
	if page.status != 200 {
		f.t.Fatalf("authorize: %d %s", page.status, page.body)
	}
	v := hidden(f.t, page.body)
	v.Set("username", "alice")
	v.Set("password", "pw")
	return v
}

func (f *faultEnv) checkToken(at string) error {
	_, err := f.srv.CheckToken(context.Background(), at)
	return err
}

func TestFaultInjection(t *testing.T) {
	cases := []struct {
		name    string
		consent bool
		run     func(t *testing.T, f *faultEnv, kind int)
	}{
		{faultCreate, false, func(t *testing.T, f *faultEnv, kind int) {
			form := f.loginForm()
			w := f.inject(faultCreate, kind, func() *fakeResp { return f.post("/oauth2/login", form, nil) })
			wantRedirectError(t, w, confCB, f.errc, "xyz")
			if f.grantsCount() != 0 {
				t.Errorf("a grant was stored")
			}
			// The same login form, once the store works: a code.
			code := wantCodeRedirect(t, f.post("/oauth2/login", form, nil), confCB, "xyz").Get("code")
			f.redeem(code)
		}},
		{faultRedeemBefore, false, func(t *testing.T, f *faultEnv, kind int) {
			code := f.code("read")
			f.wantNoTokens(f.inject(faultRedeemBefore, kind, func() *fakeResp { return f.exchange(code, verifier) }))
			f.redeem(code)
			wantTokenError(t, f.exchange(code, verifier), 400, core.ErrInvalidGrant)
		}},
		{faultRedeemWrite, false, func(t *testing.T, f *faultEnv, kind int) {
			code := f.code("read")
			f.wantNoTokens(f.inject(faultRedeemWrite, kind, func() *fakeResp { return f.exchange(code, verifier) }))
			f.wantNotStored()
			// The consumption was rolled back: the code redeems, once, and
			// its tokens are not revoked by anything the fault left.
			at, rt := f.redeem(code)
			wantTokenError(t, f.exchange(code, verifier), 400, core.ErrInvalidGrant)
			if f.checkToken(at) == nil {
				t.Errorf("a replay after the rolled-back fault did not revoke the grant")
			}
			wantTokenError(t, f.refreshConf(rt, ""), 400, core.ErrInvalidGrant)
		}},
		{faultRedeemRefused, false, func(t *testing.T, f *faultEnv, kind int) {
			code := f.code("read")
			// A wrong verifier, and the consumption cannot be committed:
			// the storage error wins, and nothing was consumed.
			f.wantNoTokens(f.inject(faultRedeemRefused, kind, func() *fakeResp { return f.exchange(code, "wrong-"+verifier) }))
			f.redeem(code)
		}},
		{faultRotateBefore, false, func(t *testing.T, f *faultEnv, kind int) {
			at, rt := f.tokens("read")
			f.wantNoTokens(f.inject(faultRotateBefore, kind, func() *fakeResp { return f.refreshConf(rt, "") }))
			if f.checkToken(at) != nil {
				t.Errorf("a failed refresh revoked the grant")
			}
			w := f.refreshConf(rt, "")
			if w.status != 200 {
				t.Fatalf("refresh after the fault: %d %s", w.status, w.body)
			}
			// The rotation happened now: the old token is a reuse.
			wantTokenError(t, f.refreshConf(rt, ""), 400, core.ErrInvalidGrant)
			if f.checkToken(at) == nil {
				t.Errorf("reuse of the rotated-out token did not revoke the grant")
			}
		}},
		{faultRotateWrite, false, func(t *testing.T, f *faultEnv, kind int) {
			at, rt := f.tokens("read")
			f.wantNoTokens(f.inject(faultRotateWrite, kind, func() *fakeResp { return f.refreshConf(rt, "") }))
			f.wantNotStored()
			if old, err := f.store.GetRefreshToken(context.Background(), rtSig(t, rt)); err != nil || old.RotatedAt != nil {
				t.Errorf("the rolled-back rotation left %+v, %v", old, err)
			}
			if f.checkToken(at) != nil {
				t.Errorf("a failed refresh revoked the grant")
			}
			// Still rotatable, exactly once.
			w := f.refreshConf(rt, "")
			if w.status != 200 {
				t.Fatalf("refresh after the fault: %d %s", w.status, w.body)
			}
			next := rJSONField(w.body, "refresh_token")
			if w := f.refreshConf(next, ""); w.status != 200 {
				t.Fatalf("refresh with the new token: %d %s", w.status, w.body)
			}
		}},
		{faultRevoke + "/endpoint", false, func(t *testing.T, f *faultEnv, kind int) {
			for _, which := range []string{"access", "refresh"} {
				at, rt := f.tokens("read")
				tok := at
				if which == "refresh" {
					tok = rt
				}
				revoke := func() *fakeResp { return f.post("/oauth2/revoke", url.Values{"token": {tok}}, basic("conf", f.secret)) }
				// R48: whatever the storage error, 503, never 200.
				w := f.inject(faultRevoke, kind, revoke)
				wantTokenError(t, w, 503, core.ErrTemporarilyUnavailable)
				if w := revoke(); w.status != 200 {
					t.Fatalf("revoke %s token after the fault: %d %s", which, w.status, w.body)
				}
				if f.checkToken(at) == nil {
					t.Errorf("the retried revocation of the %s token did not revoke the grant", which)
				}
				wantTokenError(t, f.refreshConf(rt, ""), 400, core.ErrInvalidGrant)
			}
		}},
		{faultRevoke + "/code-replay", false, func(t *testing.T, f *faultEnv, kind int) {
			code := f.code("read")
			at, _ := f.redeem(code)
			wantTokenError(t, f.inject(faultRevoke, kind, func() *fakeResp { return f.exchange(code, verifier) }), 400, core.ErrInvalidGrant)
			// The replay is refused; the revocation it attempted failed.
			wantTokenError(t, f.exchange(code, verifier), 400, core.ErrInvalidGrant)
			if f.checkToken(at) == nil {
				t.Errorf("the second replay did not revoke the grant")
			}
		}},
		{faultRevoke + "/refresh-reuse", false, func(t *testing.T, f *faultEnv, kind int) {
			at, rt := f.tokens("read")
			if w := f.refreshConf(rt, ""); w.status != 200 {
				t.Fatalf("refresh: %d %s", w.status, w.body)
			}
			wantTokenError(t, f.inject(faultRevoke, kind, func() *fakeResp { return f.refreshConf(rt, "") }), 400, core.ErrInvalidGrant)
			wantTokenError(t, f.refreshConf(rt, ""), 400, core.ErrInvalidGrant)
			if f.checkToken(at) == nil {
				t.Errorf("the second reuse did not revoke the grant")
			}
		}},
		{faultGetRefresh + "/revoke", false, func(t *testing.T, f *faultEnv, kind int) {
			at, rt := f.tokens("read")
			revoke := func() *fakeResp { return f.post("/oauth2/revoke", url.Values{"token": {rt}}, basic("conf", f.secret)) }
			wantTokenError(t, f.inject(faultGetRefresh, kind, revoke), 503, core.ErrTemporarilyUnavailable)
			if f.checkToken(at) != nil {
				t.Errorf("a failed revocation revoked")
			}
			if w := revoke(); w.status != 200 || f.checkToken(at) == nil {
				t.Errorf("revocation after the fault: %d %s", w.status, w.body)
			}
		}},
		{faultIsRevoked, false, func(t *testing.T, f *faultEnv, kind int) {
			at, _ := f.tokens("read")
			f.fs.arm(faultIsRevoked, faultKinds[kind].err)
			if _, err := f.srv.CheckToken(context.Background(), at); err == nil {
				t.Errorf("CheckToken passed while the revocation check failed")
			}
			if info, w := f.resource(&fakeReq{hdr: bearer(at)}); info != nil || w.status != 503 || w.json(t)["error"] != core.ErrTemporarilyUnavailable {
				t.Errorf("resource check while the revocation check fails: %+v %+v", info, w)
			}
			w := f.post("/oauth2/introspect", url.Values{"token": {at}}, basic("conf", f.secret))
			wantTokenError(t, w, f.status, f.errc)
			if f.fs.hits == 0 {
				t.Fatal("the fault was never reached")
			}
			f.fs.arm("", nil)
			if info, w := f.resource(&fakeReq{hdr: bearer(at)}); info == nil {
				t.Errorf("resource check after the fault: %d %s", w.status, w.body)
			}
		}},
		{faultGetClient, false, func(t *testing.T, f *faultEnv, kind int) {
			code := f.code("read")
			f.wantNoTokens(f.inject(faultGetClient, kind, func() *fakeResp { return f.exchange(code, verifier) }))
			w := f.inject(faultGetClient, kind, func() *fakeResp { return f.authorize(codeQuery("conf", confCB, "read", "xyz")) })
			wantErrorPage(t, w, f.status)
			w = f.inject(faultGetClient, kind, func() *fakeResp {
				return f.post("/oauth2/revoke", url.Values{"token": {"at2.x.y"}}, basic("conf", f.secret))
			})
			wantTokenError(t, w, 503, core.ErrTemporarilyUnavailable)
			form := f.loginForm()
			w = f.inject(faultGetClient, kind, func() *fakeResp { return f.post("/oauth2/login", form, nil) })
			wantErrorPage(t, w, f.status)
			f.redeem(code)
		}},
		{faultGetConsent, true, func(t *testing.T, f *faultEnv, kind int) {
			form := f.loginForm()
			w := f.inject(faultGetConsent, kind, func() *fakeResp { return f.post("/oauth2/login", form, nil) })
			wantRedirectError(t, w, confCB, f.errc, "xyz")
			page := f.post("/oauth2/login", form, nil)
			if page.status != 200 {
				t.Fatalf("login after the fault: %d %s", page.status, page.body)
			}
			v := hidden(t, page.body)
			v.Set("decision", "approve")
			f.redeem(wantCodeRedirect(t, f.post("/oauth2/login", v, nil), confCB, "xyz").Get("code"))
		}},
		{faultSaveConsent, true, func(t *testing.T, f *faultEnv, kind int) {
			page := f.post("/oauth2/login", f.loginForm(), nil)
			if page.status != 200 {
				t.Fatalf("login: %d %s", page.status, page.body)
			}
			v := hidden(t, page.body)
			v.Set("decision", "approve")
			w := f.inject(faultSaveConsent, kind, func() *fakeResp { return f.post("/oauth2/login", v, nil) })
			wantRedirectError(t, w, confCB, f.errc, "xyz")
			if f.grantsCount() != 0 {
				t.Errorf("a grant was stored although the consent was not")
			}
			if s, err := f.store.GetConsent(context.Background(), "alice", "conf"); err == nil {
				t.Errorf("consent %q stored", s)
			}
			f.redeem(wantCodeRedirect(t, f.post("/oauth2/login", v, nil), confCB, "xyz").Get("code"))
			// Remembered now: the next login skips the consent page.
			wantCodeRedirect(t, f.post("/oauth2/login", f.loginForm(), nil), confCB, "xyz")
		}},
	}
	for _, c := range cases {
		for kind, k := range faultKinds {
			t.Run(c.name+"/"+k.name, func(t *testing.T) {
				c.run(t, newFaultEnv(t, c.consent, kind), kind)
			})
		}
	}
}
