package core

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Cookie names of the end-user login session (OpenID Connect): a random
// token whose HMAC names the server-side record (LoginSessionStore).
const (
	LoginCookie       = "oauth2kit_login"
	SecureLoginCookie = "__Host-oauth2kit_login"
)

// sessionsOn reports whether the kit keeps login sessions: OIDC on and a
// store with the LoginSessionStore capability.
func (s *Server) sessionsOn() bool { return s.cfg.OIDC.enabled() && s.caps.sessions != nil }

func (s *Server) loginCookieName(r Request) string {
	if s.secureCookie(r) {
		return SecureLoginCookie
	}
	return LoginCookie
}

// loginCookie returns the login cookie's token and its stored signature.
func (s *Server) loginCookie(r Request) (tok, sig string) {
	name := s.loginCookieName(r)
	for _, line := range r.Header("Cookie") {
		cks, err := http.ParseCookie(line)
		if err != nil {
			continue
		}
		for _, ck := range cks {
			if ck.Name != name {
				continue
			}
			if sig, ok := s.keys.opaqueSig(prefixLogin, ck.Value); ok {
				return ck.Value, sig
			}
		}
	}
	return "", ""
}

// currentLogin returns the browser's live login session, nil without one.
func (s *Server) currentLogin(ctx context.Context, r Request) (*LoginSession, error) {
	if !s.sessionsOn() {
		return nil, nil
	}
	_, sig := s.loginCookie(r)
	if sig == "" {
		return nil, nil
	}
	ls, err := s.caps.sessions.GetLoginSession(ctx, sig, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return ls, err
}

// startLogin records a new login session for the authentication in oc and
// sets its cookie on w, replacing (and ending) the browser's previous one.
// It fills oc.SID.
func (s *Server) startLogin(ctx context.Context, w Responder, r Request, userID string, oc *oidcContext) error {
	if !s.sessionsOn() {
		return nil
	}
	var prev *LoginSession
	if _, old := s.loginCookie(r); old != "" {
		var err error
		if prev, err = s.replaceLoginSession(ctx, old, userID); err != nil {
			return err
		}
	}
	tok, sig, err := s.keys.newOpaque(prefixLogin)
	if err != nil {
		return err
	}
	now := s.now()
	ls := &LoginSession{ID: sig, UserID: userID, AuthTime: time.Unix(oc.AuthTime, 0), ACR: oc.ACR, AMR: oc.AMR,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.Lifetimes.LoginSession)}
	if prev != nil {
		// The same user signed in again (prompt=login, max_age, a
		// step-up): the session goes on under its sid, with its
		// clients, so a fresh authentication at one client does not
		// sign the user out of the others.
		ls.SID, ls.ClientIDs = prev.SID, prev.ClientIDs
	} else if ls.SID, err = newID(); err != nil {
		return err
	}
	if err := s.caps.sessions.CreateLoginSession(ctx, ls); err != nil {
		return err
	}
	oc.SID = ls.SID
	s.setLoginCookie(w, r, tok, int(s.cfg.Lifetimes.LoginSession/time.Second))
	return nil
}

func (s *Server) setLoginCookie(w Responder, r Request, value string, maxAge int) {
	ck := http.Cookie{Name: s.loginCookieName(r), Value: value, Path: "/", HttpOnly: true,
		Secure: s.secureCookie(r), SameSite: http.SameSiteLaxMode, MaxAge: maxAge}
	if maxAge < 0 {
		ck.Value = ""
	}
	w.AddHeader("Set-Cookie", ck.String())
}

// endLogin ends the browser's login session on every instance and clears
// its cookie.
func (s *Server) endLogin(ctx context.Context, w Responder, r Request) error {
	if sa, ok := s.auth.(SessionAuthenticator); ok {
		return sa.EndLogin(w, r)
	}
	_, sig := s.loginCookie(r)
	s.setLoginCookie(w, r, "", -1)
	if sig == "" || !s.sessionsOn() {
		return nil
	}
	return s.endLoginSession(ctx, sig)
}

// SessionAuthenticator is implemented by an Authenticator whose app keeps
// its own login sessions: the kit asks it, instead of keeping one itself,
// whether the browser's user is signed in (prompt=none, max_age,
// OIDC.SSO), and has it end the session at RP-initiated logout. The kit
// then records no session of its own.
type SessionAuthenticator interface {
	// CurrentLogin returns the browser's signed-in user, with when and how
	// they authenticated (AuthTime zero: unknown, too old for any max_age,
	// and now in the id_token), or ok false.
	CurrentLogin(r Request) (lr LoginResult, ok bool)
	// EndLogin ends the browser's session (the logout endpoint calls it
	// before answering; it may set headers on w, such as a cookie, but
	// must not send). An error fails the logout with server_error.
	EndLogin(w Responder, r Request) error
}

// browserLogin is the browser's login: the app's (SessionAuthenticator)
// or the kit's own session.
func (s *Server) browserLogin(ctx context.Context, r Request) (*LoginSession, error) {
	if sa, ok := s.auth.(SessionAuthenticator); ok {
		lr, ok := sa.CurrentLogin(r)
		if !ok || lr.UserID == "" {
			return nil, nil
		}
		return &LoginSession{UserID: lr.UserID, AuthTime: lr.AuthTime, ACR: lr.ACR, AMR: lr.AMR}, nil
	}
	return s.currentLogin(ctx, r)
}

// silentLogin answers an authorization request from the browser's login
// session when it may (prompt=none, or Config.OIDC.SSO) and reports
// whether it answered. prompt=none never shows a page: without a usable
// session it redirects login_required, without consent consent_required
// (OpenID Connect Core §3.1.2.6).
func (s *Server) silentLogin(w Responder, r Request, p *pending) bool {
	oc := p.oidc
	if oc == nil {
		return false
	}
	none := hasScope(oc.Prompt, "none")
	if !none && (!s.cfg.OIDC.SSO || hasScope(oc.Prompt, "login") || hasScope(oc.Prompt, "consent") || hasScope(oc.Prompt, "select_account")) {
		return false
	}
	ctx := r.Context()
	ls, err := s.browserLogin(ctx, r)
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: login session lookup failed", "err", err)
		e := storageError(err)
		s.redirectError(w, p, e.code, e.desc)
		return true
	}
	now := s.now()
	if ls != nil && oc.IDTokenHint != "" {
		// The hint names whom the client expects: another user's session
		// is no silent login for it (OpenID Connect Core §3.1.2.1).
		if _, sub, err := s.verifyIDTokenHint(oc.IDTokenHint); err != nil || sub != ls.UserID {
			ls = nil
		}
	}
	if ls == nil || (oc.MaxAge > 0 && (ls.AuthTime.IsZero() || now.Sub(ls.AuthTime) > time.Duration(oc.MaxAge-1)*time.Second)) {
		if none {
			s.redirectError(w, p, ErrLoginRequired, "the user must sign in")
			return true
		}
		return false
	}
	if len(ls.UserID) > 256 {
		if none {
			s.redirectError(w, p, ErrLoginRequired, "the user must sign in")
			return true
		}
		return false
	}
	c := *oc
	c.AuthTime, c.ACR, c.AMR, c.SID = ls.AuthTime.Unix(), ls.ACR, ls.AMR, ls.SID
	if ls.AuthTime.IsZero() {
		c.AuthTime = now.Unix() // the app did not say; it vouches for the login now
	}
	p.oidc, p.userID = &c, ls.UserID
	if _, ok := s.auth.(ConsentPrompter); ok {
		unverified, remember, e := s.consentPolicy(ctx, p.clientID)
		if e != nil {
			s.redirectError(w, p, e.code, e.desc)
			return true
		}
		approved, err := s.store.GetConsent(ctx, ls.UserID, p.clientID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(ctx, "oauth2kit: consent lookup failed", "err", err)
			e := storageError(err)
			s.redirectError(w, p, e.code, e.desc)
			return true
		}
		// An unverified client's consent is never taken as given (R65),
		// stored or not.
		if _, covered := narrowScope(p.scope, approved); err != nil || !covered || len(extraClaims(p)) > 0 || !remember {
			if none {
				s.redirectError(w, p, ErrConsentRequired, "the user must approve the request")
				return true
			}
			// SSO: the consent page, for the session's user.
			next := s.newAuthorizationRequest(p, s.sessionOf(r), w, r)
			next.Unverified, next.RedirectHost = unverified, redirectHost(p.redirect)
			setPageHeaders(w)
			s.auth.(ConsentPrompter).Consent(w, r, next)
			next.detach()
			return true
		}
	}
	s.issueCode(w, r, p)
	return true
}
