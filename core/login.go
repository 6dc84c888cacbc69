package core

import (
	"context"
	"crypto/hmac"
	"errors"
	"html"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Authenticator is the application's login step, the original library's
// authentication.login / authentication.process_login.
//
// The kit has already validated the authorization request and set the
// anti-framing, no-referrer and no-store headers on w when either method
// runs; the app writes an HTML page with w.Send or calls
// Server.SendGrant.
type Authenticator interface {
	// Login shows the login page for ar: a form that POSTs to
	// ar.ProcessLoginURL with the hidden fields ar.HiddenFields() plus the
	// app's own (username, password, ...). An app that already knows the
	// user (its own session) may call Server.SendGrant at once instead.
	Login(w Responder, r Request, ar *AuthorizationRequest)
	// ProcessLogin handles that form after the kit verified its session
	// binding and CSRF token; ar.Form holds the posted fields. On success
	// it calls Server.SendGrant; on failure it shows the login page again
	// (ar stays valid until it expires).
	ProcessLogin(w Responder, r Request, ar *AuthorizationRequest)
}

// ConsentPrompter is implemented by an Authenticator that asks the user to
// approve the client's access. When it is, SendGrant shows the consent page
// (unless the user approved this client and scope before) and the kit
// handles the answer: a form POSTed to ar.ProcessLoginURL with
// ar.HiddenFields() and "decision" = "approve" or "deny". An Authenticator
// without it issues codes without consent: only for first-party clients.
type ConsentPrompter interface {
	Consent(w Responder, r Request, ar *AuthorizationRequest)
}

// ErrorPager is implemented by an Authenticator that renders the kit's
// error pages itself (unknown client, bad redirect URI, expired login).
// The kit has set the security headers; code and description are safe
// text but must still be HTML-escaped.
type ErrorPager interface {
	ErrorPage(w Responder, r Request, status int, code, description string)
}

// AuthorizationRequest is a validated authorization request waiting for the
// user. The exported fields are for rendering; the request itself is
// carried sealed (encrypted and authenticated) in the hidden field, bound to
// the browser's session cookie, so neither the user nor a third party can
// alter it.
type AuthorizationRequest struct {
	ClientID    string
	ClientName  string
	RedirectURI string
	// Scope is the canonical scope to be granted; Scopes the same, split.
	Scope  string
	Scopes []string
	State  string
	// UserID is set on the consent step.
	UserID string
	// OpenID Connect parameters for the login page (Core §3.1.2.1), as
	// sent: Prompt (space-separated: login asks for a fresh
	// authentication, consent is handled by the kit), LoginHint,
	// IDTokenHint (unverified), UILocales, ClaimsLocales, ACRValues,
	// Display. MaxAge is the max_age sent, -1 when none: an app that signs
	// the user in from its own session must not do so when that login is
	// older (0: always authenticate again).
	Prompt, LoginHint, IDTokenHint, UILocales, ClaimsLocales, ACRValues, Display string
	// Claims are the claim names the claims request parameter asks for
	// beyond what Scopes release: the consent page should name them (the
	// kit shows it whenever there are some).
	Claims []string
	MaxAge int64
	// Form holds the posted form at ProcessLogin (nil at Login).
	Form url.Values
	// ProcessLoginURL is where the login and consent forms post.
	ProcessLoginURL string
	// Unverified is set on the consent step for a client whose name and
	// URIs are only its own claims (dynamically registered, or described
	// by a client ID metadata document): the page should say so and show
	// RedirectHost, the host the authorization will be sent to, as the
	// client's real identity.
	Unverified   bool
	RedirectHost string
	p            pending
	sess         string // the browser session the request is bound to
	srv          *Server
	// The exchange the request belongs to: seal sets the session cookie on
	// w when the browser has no session yet.
	w Responder
	r Request
	// The sealed handle and its CSRF token, made on first use: an app
	// that calls SendGrant at once from Login (the user is known) never
	// pays for sealing a form it does not show.
	handle, csrf string
}

// Handle is the value of the hidden field FieldRequest: the request,
// sealed (encrypted and authenticated) and bound to the browser session.
// It is "" only if sealing failed (no randomness), or when first called
// after the Authenticator's handler returned without a browser session;
// the form then fails safely with a 400 page.
//
// The first call of Handle, CSRFToken or HiddenFields binds the request to
// the browser session, setting the session cookie on the response if the
// browser has none: call them before Send (rendering the form does).
func (ar *AuthorizationRequest) Handle() string { ar.seal(); return ar.handle }

// detach forgets the exchange once the app's handler returned: frameworks
// recycle their request and response objects, so a late Handle call must
// not set a cookie on another request's response (it gets "" instead).
func (ar *AuthorizationRequest) detach() { ar.w, ar.r = nil, nil }

// CSRFToken is the value of the hidden field FieldCSRF.
func (ar *AuthorizationRequest) CSRFToken() string { ar.seal(); return ar.csrf }

// HiddenFields returns the hidden form fields the login and consent forms
// must carry, HTML-escaped, ready to insert into a page (for html/template,
// wrap in template.HTML).
func (ar *AuthorizationRequest) HiddenFields() string {
	return `<input type="hidden" name="` + FieldRequest + `" value="` + html.EscapeString(ar.Handle()) +
		`"><input type="hidden" name="` + FieldCSRF + `" value="` + html.EscapeString(ar.CSRFToken()) + `">`
}

// newAuthorizationRequest makes the request handed to the app. sess is the
// browser session, or "" for one to be made (on w) when a form is sealed.
func (s *Server) newAuthorizationRequest(p *pending, sess string, w Responder, r Request) *AuthorizationRequest {
	scopes, _ := parseScope(p.scope)
	oc := p.oidc
	if oc == nil {
		oc = &oidcContext{}
	}
	return &AuthorizationRequest{
		Prompt: oc.Prompt, LoginHint: oc.LoginHint, IDTokenHint: oc.IDTokenHint, UILocales: oc.UILocales,
		ClaimsLocales: oc.ClaimsLocales, ACRValues: oc.ACRValues, Display: oc.Display, MaxAge: oc.MaxAge - 1,
		Claims:   extraClaims(p),
		ClientID: p.clientID, ClientName: p.clientName, RedirectURI: p.redirect,
		Scope: p.scope, Scopes: scopes, State: p.state, UserID: p.userID,
		ProcessLoginURL: s.cfg.Paths.ProcessLogin,
		p:               *p, sess: sess, srv: s, w: w, r: r,
	}
}

// ProcessLogin is the endpoint the login and consent forms post to (the
// original library's process_login_url). It verifies that the form belongs
// to a pending request of this browser (session binding) and carries its
// CSRF token, then hands a login to the Authenticator or settles a consent
// decision itself.
func (s *Server) ProcessLogin(w Responder, r Request) { s.serve(&epProcessLogin, w, r) }

var epProcessLogin = endpoint{field: "Paths.ProcessLogin", path: func(c *Config) *string { return &c.Paths.ProcessLogin }, def: "/oauth2/login",
	methods: []string{"POST"}, allow: hdrAllowPost, page: true, serve: (*Server).processLogin}

func (s *Server) processLogin(w Responder, r Request) {
	var f params
	// The sealed handle carries state, redirect URI and scope: allow it
	// the size the server may mint.
	if err := readForm(r, s.cfg.Limits.MaxBodyBytes, s.cfg.Limits.MaxParams, max(s.cfg.Limits.MaxValueLength, maxHandleLen), &f); err != nil {
		s.errorPage(w, r, 400, ErrInvalidRequest, "malformed or oversized form")
		return
	}
	handle := f.get(FieldRequest)
	p, ok := s.openPending(handle)
	if !ok || s.now().Unix() >= p.exp {
		s.errorPage(w, r, 400, ErrInvalidRequest, "the login request is invalid or expired; start again from the application")
		return
	}
	sess := s.sessionOf(r)
	csrf := f.get(FieldCSRF)
	_, kid, _, _ := split3(handle)
	g := s.keys.byID[kid] // present: openPending succeeded with it
	if sess == "" || !hmac.Equal([]byte(sessionBinding(g, sess)), []byte(p.binding)) ||
		!hmac.Equal([]byte(csrfToken(g, sess, p.nonce)), []byte(csrf)) {
		s.errorPage(w, r, 403, ErrAccessDenied, "the form does not belong to this browser session; start again from the application")
		return
	}
	p.once = onceSig(g, p.nonce)
	if p.device != "" {
		p.pageReq = r // no redirect URI: every answer is a page
	}
	ctx := r.Context()
	client, err := s.getClient(ctx, p.clientID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			s.errorPage(w, r, 400, ErrInvalidClient, "unknown client")
			return
		}
		s.log.ErrorContext(ctx, "oauth2kit: client lookup failed", "err", err)
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
		return
	}
	if p.userID != "" {
		// The consent step: the kit settles it.
		switch f.get(FieldDecision) {
		case "approve":
			// Remember the union with what was approved before, so a
			// narrower request later does not ask again.
			remembered := p.scope
			if prev, err := s.store.GetConsent(ctx, p.userID, p.clientID); err == nil && prev != "" {
				remembered = unionScope(prev, p.scope)
			}
			// A client that names itself gets no lasting consent: the
			// next authorization asks again (R65).
			if _, remember := s.unverifiedClient(client); remember {
				err = s.store.SaveConsent(ctx, p.userID, p.clientID, remembered)
			}
			if err != nil {
				s.log.ErrorContext(ctx, "oauth2kit: saving consent failed", "err", err)
				e := storageError(err)
				s.redirectError(w, p, e.code, e.desc)
				return
			}
			s.emit(ctx, Event{Kind: EventConsentGiven, ClientID: p.clientID, UserID: p.userID, Scope: p.scope, RemoteAddr: r.RemoteAddr()})
			s.issueCode(w, r, p)
		case "deny":
			// A denied form is used up too: it cannot be approved later.
			if !s.useForm(w, r, p) {
				return
			}
			s.emit(ctx, Event{Kind: EventConsentDenied, ClientID: p.clientID, UserID: p.userID, Scope: p.scope, RemoteAddr: r.RemoteAddr()})
			if p.device != "" {
				s.decideDevice(w, r, p, false)
				return
			}
			s.redirectError(w, p, ErrAccessDenied, "the user denied the request")
		default:
			s.errorPage(w, r, 400, ErrInvalidRequest, "decision must be approve or deny")
		}
		return
	}
	ar := s.newAuthorizationRequest(p, sess, w, r)
	ar.Form = f.values()
	setPageHeaders(w)
	s.auth.ProcessLogin(w, r, ar)
	ar.detach()
}

// SendGrant completes a login: the original library's send_grant. The app
// calls it once it knows the user (from ProcessLogin, or from Login when
// the user is already signed in). If the Authenticator asks for consent and
// the user has not approved this client and scope before, the consent page
// is shown; otherwise a code is issued and the browser redirected (303) to
// the client with code, state and iss.
//
// additionalInfo travels into every token of the grant (TokenInfo); keep
// it small and free of secrets.
func (s *Server) SendGrant(w Responder, r Request, ar *AuthorizationRequest, userID, additionalInfo string) {
	s.SendLogin(w, r, ar, LoginResult{UserID: userID, AdditionalInfo: additionalInfo})
}

// LoginResult is what the app knows of a completed login.
type LoginResult struct {
	// UserID is the user's stable identifier: the id_token's sub.
	UserID string
	// AdditionalInfo travels into every token of the grant (see SendGrant).
	AdditionalInfo string
	// AuthTime is when the user authenticated (the id_token's auth_time);
	// zero means now. An app that signs the user in from its own session
	// gives the time of that session's login.
	AuthTime time.Time
	// ACR and AMR are the authentication context class and methods (the
	// id_token's acr and amr, e.g. "pwd", "otp", "mfa"), when known.
	ACR string
	AMR []string
}

// SendLogin is SendGrant with what OpenID Connect reports of the
// authentication (auth_time, acr, amr).
func (s *Server) SendLogin(w Responder, r Request, ar *AuthorizationRequest, lr LoginResult) {
	p := ar.p
	userID, additionalInfo := lr.UserID, lr.AdditionalInfo
	if p.clientID == "" || userID == "" || len(userID) > 256 || len(additionalInfo) > maxInfoLen ||
		len(lr.ACR) > maxOIDCParamLen || len(lr.AMR) > 16 || slices.ContainsFunc(lr.AMR, func(m string) bool { return len(m) > 64 }) {
		s.errorPage(w, r, 500, ErrServerError, "the login could not be completed")
		return
	}
	p.userID, p.info = userID, additionalInfo
	if p.oidc != nil {
		oc := *p.oidc // ar keeps its own
		if oc.AuthTime == 0 {
			// On the consent step the login was reported already.
			oc.AuthTime, oc.ACR, oc.AMR = s.now().Unix(), lr.ACR, lr.AMR
			if !lr.AuthTime.IsZero() {
				oc.AuthTime = lr.AuthTime.Unix()
			}
		}
		if _, own := s.auth.(SessionAuthenticator); !own && oc.SID == "" && hasScope(p.scope, ScopeOpenID) {
			if err := s.startLogin(r.Context(), w, r, userID, &oc); err != nil {
				s.log.ErrorContext(r.Context(), "oauth2kit: storing a login session failed", "err", err)
				e := storageError(err)
				s.redirectError(w, &p, e.code, e.desc)
				return
			}
		}
		p.oidc = &oc
	}
	if cp, ok := s.auth.(ConsentPrompter); ok {
		ctx := r.Context()
		approved, err := s.store.GetConsent(ctx, userID, p.clientID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(ctx, "oauth2kit: consent lookup failed", "err", err)
			e := storageError(err)
			s.redirectError(w, &p, e.code, e.desc)
			return
		}
		forced := p.oidc != nil && (hasScope(p.oidc.Prompt, "consent") || len(extraClaims(&p)) > 0) && ar.UserID == ""
		unverified, remember, e := s.consentPolicy(ctx, p.clientID)
		if e != nil {
			s.redirectError(w, &p, e.code, e.desc)
			return
		}
		// A device's consent is the user's confirmation that the device
		// in front of them is the one asking (RFC 8628 §5.4): never skipped.
		forced = forced || !remember || p.device != ""
		if _, covered := narrowScope(p.scope, approved); err != nil || !covered || forced {
			// The login form that led here is used up: posting it again
			// would otherwise show a second consent page (or, once consent
			// is remembered, issue a second code).
			if !s.useForm(w, r, &p) {
				return
			}
			// Bound to the same session as the login (whose cookie may be
			// set by this very response when Login calls SendGrant).
			next := s.newAuthorizationRequest(&p, ar.sess, w, r)
			next.Unverified, next.RedirectHost = unverified, redirectHost(p.redirect)
			setPageHeaders(w)
			cp.Consent(w, r, next)
			next.detach()
			return
		}
	}
	s.issueCode(w, r, &p)
}

// consentPolicy looks the client up for the consent step: whether it is
// unverified (its page must say so) and whether a consent to it may be
// remembered (skipping the page next time).
func (s *Server) consentPolicy(ctx context.Context, clientID string) (unverified, remember bool, e *oauthError) {
	c, err := s.getClient(ctx, clientID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, false, oerr(400, ErrInvalidClient, "unknown client")
		}
		s.log.ErrorContext(ctx, "oauth2kit: client lookup failed", "err", err)
		return false, false, storageError(err)
	}
	unverified, remember = s.unverifiedClient(c)
	return unverified, remember, nil
}

// formMargin keeps a used form's record a little past the form's expiry,
// so that an instance whose clock runs ahead cannot drop the record while
// another still accepts the form.
const formMargin = time.Minute

// useForm records the posted form p came from as used, once: a login or
// consent form completes at most once, however often it is submitted and
// to whichever instance. The record is a grant born used, under a
// signature derived from the form's nonce (onceSig), kept until the
// pending request expires; the store creates a signature once (ErrExists
// after), atomically, so a second submission finds it. It reports false
// after answering the request (an error page, or a storage error sent to
// the client). A request that did not come from a form (Login calling
// SendGrant at once) has nothing to record.
func (s *Server) useForm(w Responder, r Request, p *pending) bool {
	if p.once == "" {
		return true
	}
	ctx := r.Context()
	now := s.now()
	id, err := newID()
	if err != nil {
		s.redirectError(w, p, ErrServerError, "the server could not complete the request")
		return false
	}
	used := now
	// Its own id and no user or scope: it is no grant of anyone's (it names
	// the client only so that deleting the client drops it).
	marker := &Grant{
		ID: id, CodeSig: p.once, ClientID: p.clientID,
		CreatedAt: now, ExpiresAt: time.Unix(p.exp, 0).Add(formMargin), UsedAt: &used,
	}
	if err := s.store.CreateGrant(ctx, marker); err != nil {
		if errors.Is(err, ErrExists) {
			s.log.WarnContext(ctx, "oauth2kit: a login or consent form was submitted again; refused", "client_id", p.clientID)
			s.errorPage(w, r, 400, ErrInvalidRequest, "this sign-in was already completed; start again from the application")
			return false
		}
		s.log.ErrorContext(ctx, "oauth2kit: recording a used form failed", "err", err)
		e := storageError(err)
		s.redirectError(w, p, e.code, e.desc)
		return false
	}
	p.once = "" // recorded: the rest of this request may go on
	return true
}

// issueCode stores the grant and redirects to the client with the code.
func (s *Server) issueCode(w Responder, r Request, p *pending) {
	ctx := r.Context()
	now := s.now()
	gid, err := newID()
	if err != nil {
		s.redirectError(w, p, ErrServerError, "the server could not complete the request")
		return
	}
	var code, sig string
	if p.draft10 {
		// The original library's format "<grant id>.<secret>".
		secret, rerr := randomToken(randBytes)
		if rerr != nil {
			s.redirectError(w, p, ErrServerError, "the server could not complete the request")
			return
		}
		code = gid + "." + secret
		sig = s.keys.primary.sigOf(prefixCode, code)
	} else if code, sig, err = s.keys.newOpaque(prefixCode); err != nil {
		s.redirectError(w, p, ErrServerError, "the server could not complete the request")
		return
	}
	if p.device != "" {
		if s.useForm(w, r, p) {
			s.decideDevice(w, r, p, true)
		}
		return
	}
	exp := now.Add(s.fapiCodeLifetime(ctx, p.clientID))
	if !s.useForm(w, r, p) {
		return
	}
	if !s.spendPushed(w, r, p) {
		return
	}
	if p.oidc != nil {
		// Before the code exists: a client the session's end would not
		// reach gets no code in it.
		if e := s.recordSessionClient(ctx, p.oidc.SID, p.clientID); e != nil {
			s.redirectError(w, p, e.code, e.desc)
			return
		}
	}
	g := &Grant{
		ID: gid, CodeSig: sig, ClientID: p.clientID, UserID: p.userID,
		RedirectURI: p.sentURI, Scope: p.scope, OIDC: grantOIDCOf(p), Resource: p.resource, DPoPJKT: p.dpopJKT,
		CodeChallenge: p.challenge, CodeChallengeMethod: p.method,
		AdditionalInfo: p.info, CreatedAt: now, ExpiresAt: exp,
		// The family's access tokens outlive the code: user-wide
		// revocation finds the family through this grant until they expire.
		KeepUntil: exp.Add(s.cfg.Lifetimes.AccessToken),
	}
	if err := s.store.CreateGrant(ctx, g); err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: storing a grant failed", "err", err)
		e := storageError(err)
		s.redirectError(w, p, e.code, e.desc)
		return
	}
	s.answer(w, p, "code", code, "state", p.state, "iss", s.cfg.Issuer)
}

// LoginAllowed reports whether the app may check a password for username
// now. When too many logins failed recently for that user name or from the
// request's address, it answers 429 with Retry-After (an error page) and
// reports false: the app just returns. The answer is the same whether or
// not the user exists.
func (s *Server) LoginAllowed(w Responder, r Request, username string) bool {
	wait := s.logins.blocked(loginKey(username), r.RemoteAddr(), s.now())
	if wait <= 0 {
		return true
	}
	// No user name in the event: people type passwords into that field.
	s.emit(r.Context(), Event{Kind: EventLoginThrottled, RemoteAddr: r.RemoteAddr()})
	w.SetHeader("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	s.errorPage(w, r, 429, "too_many_attempts", "too many failed sign-in attempts; wait a few minutes and try again")
	return false
}

// LoginFailed records a failed login for username from the request's
// address (see LoginAllowed).
func (s *Server) LoginFailed(r Request, username string) {
	s.logins.fail(loginKey(username), r.RemoteAddr(), s.now())
	s.emit(r.Context(), Event{Kind: EventLoginFailed, RemoteAddr: r.RemoteAddr()})
}

// loginKey bounds and normalises the throttle key: user names are
// compared case-insensitively by most apps, and a huge one must not grow
// the table.
func loginKey(username string) string {
	if len(username) > 128 {
		username = username[:128]
	}
	return strings.ToLower(username)
}

// grantOIDCOf is the OIDC context a grant keeps: for a grant with openid,
// what its id_tokens need.
func grantOIDCOf(p *pending) string {
	if p.oidc == nil || !hasScope(p.scope, ScopeOpenID) {
		return ""
	}
	oc := p.oidc.forGrant()
	return oc.encode()
}
