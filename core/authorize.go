package core

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"html"
	"net/http"
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

// Form field names of the login and consent forms.
const (
	FieldRequest  = "oauth2kit_request"
	FieldCSRF     = "csrf_token"
	FieldDecision = "decision"
	// SessionCookie binds a pending authorization request to the browser
	// that started it, over plain HTTP (loopback development).
	SessionCookie = "oauth2kit_session"
	// SecureSessionCookie is its name when the cookie is Secure (TLS, or
	// an https issuer): the __Host- prefix makes browsers refuse it from a
	// sibling subdomain or without Secure and Path=/, so it cannot be
	// planted (session fixation).
	SecureSessionCookie = "__Host-oauth2kit_session"
)

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
	// Form holds the posted form at ProcessLogin (nil at Login).
	Form url.Values
	// ProcessLoginURL is where the login and consent forms post.
	ProcessLoginURL string
	p               pending
	sess            string // the browser session the request is bound to
	srv             *Server
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

func (ar *AuthorizationRequest) seal() {
	if ar.handle != "" || ar.srv == nil {
		return
	}
	s := ar.srv
	if ar.sess == "" {
		if ar.w == nil || ar.r == nil {
			return
		}
		sess, ok := s.ensureSession(ar.w, ar.r)
		if !ok {
			return
		}
		ar.sess = sess
	}
	p := ar.p
	nonce, err := randomToken(16)
	if err != nil {
		return
	}
	p.nonce = nonce
	p.binding = sessionBinding(s.keys.primary, ar.sess)
	h, err := s.sealPending(&p)
	if err != nil {
		return
	}
	ar.handle, ar.csrf = h, csrfToken(s.keys.primary, ar.sess, nonce)
}

// HiddenFields returns the hidden form fields the login and consent forms
// must carry, HTML-escaped, ready to insert into a page (for html/template,
// wrap in template.HTML).
func (ar *AuthorizationRequest) HiddenFields() string {
	return `<input type="hidden" name="` + FieldRequest + `" value="` + html.EscapeString(ar.Handle()) +
		`"><input type="hidden" name="` + FieldCSRF + `" value="` + html.EscapeString(ar.CSRFToken()) + `">`
}

// pending is the sealed content of a handle.
type pending struct {
	exp        int64
	clientID   string
	sentURI    string // redirect_uri as sent ("" if omitted)
	redirect   string // the URI the answer goes to
	scope      string
	state      string
	challenge  string
	method     string
	binding    string // MAC of the session cookie
	userID     string // set for the consent step
	info       string
	nonce      string
	draft10    bool
	clientName string
	// once is not sealed: set when the request came back in a posted
	// form, it is the signature under which issueCode records the form
	// as used (onceSig), so that the form issues at most one code.
	once string
}

const pendingVersion = 1

func (s *Server) sealPending(p *pending) (string, error) {
	// Sized once (12 strings with their length prefixes, 3 numbers):
	// growing from nil reallocated several times per authorization request.
	w := fieldWriter{b: make([]byte, 0, 64+len(p.clientID)+len(p.sentURI)+len(p.redirect)+len(p.scope)+len(p.state)+
		len(p.challenge)+len(p.method)+len(p.binding)+len(p.userID)+len(p.info)+len(p.nonce)+len(p.clientName))}
	w.num(pendingVersion)
	w.num(p.exp)
	flags := int64(0)
	if p.draft10 {
		flags = 1
	}
	w.num(flags)
	for _, v := range []string{p.clientID, p.sentURI, p.redirect, p.scope, p.state, p.challenge, p.method, p.binding, p.userID, p.info, p.nonce, p.clientName} {
		w.str(v)
	}
	return s.keys.seal(prefixPending, w.b)
}

func (s *Server) openPending(h string) (*pending, bool) {
	pt, err := s.keys.open(prefixPending, h, nil)
	if err != nil {
		return nil, false
	}
	r := fieldReader{s: string(pt)}
	if r.num() != pendingVersion {
		return nil, false
	}
	p := &pending{exp: r.num()}
	p.draft10 = r.num() == 1
	for _, v := range []*string{&p.clientID, &p.sentURI, &p.redirect, &p.scope, &p.state, &p.challenge, &p.method, &p.binding, &p.userID, &p.info, &p.nonce, &p.clientName} {
		*v = r.str()
	}
	if r.bad || r.off != len(r.s) || p.clientID == "" || p.redirect == "" {
		return nil, false
	}
	return p, true
}

// setPageHeaders protects every HTML page of the flow: no framing
// (clickjacking), no Referer leak of the query, no caching. No
// form-action directive: browsers apply it to the redirect that answers
// the form POST, which would break the flow.
func setPageHeaders(w Responder) {
	hdrCSP.set(w)
	hdrFrameDeny.set(w)
	hdrNoReferrer.set(w)
	hdrNoStore.set(w)
	hdrNoCache.set(w)
	hdrNoSniff.set(w)
}

// errorPage answers with an HTML error page: never a redirect, for errors
// that make the redirect URI untrustworthy (RFC 6749 §4.1.2.1).
func (s *Server) errorPage(w Responder, r Request, status int, code, desc string) {
	setPageHeaders(w)
	if ep, ok := s.auth.(ErrorPager); ok {
		ep.ErrorPage(w, r, status, code, SafeDescription(desc))
		return
	}
	hdrHTML.set(w)
	body := "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorization error</title></head><body><h1>Authorization error</h1><p><code>" +
		html.EscapeString(code) + "</code></p><p>" + html.EscapeString(SafeDescription(desc)) + "</p></body></html>"
	_ = w.Send(status, []byte(body))
}

// redirectURL appends params to a redirect URI, keeping any query the
// registered URI has (RFC 6749 §3.1.2).
func redirectURL(base string, kv ...string) string {
	// Sized up front (worst case: every value byte escaped) and escaped in
	// place: one allocation instead of a growing builder plus a string per
	// escaped value, on every authorization answer.
	n := len(base)
	for i := 0; i+1 < len(kv); i += 2 {
		n += 2 + len(kv[i]) + 3*len(kv[i+1])
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(base)
	sep := byte('?')
	if strings.IndexByte(base, '?') >= 0 {
		sep = '&'
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = 0
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if sep != 0 {
			b.WriteByte(sep)
		}
		sep = '&'
		b.WriteString(kv[i])
		b.WriteByte('=')
		writeQueryEscaped(&b, kv[i+1])
	}
	return b.String()
}

// writeQueryEscaped writes v escaped as url.QueryEscape would: unreserved
// characters as they are, space as '+', every other byte as %XX.
func writeQueryEscaped(b *strings.Builder, v string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}

func (s *Server) redirectError(w Responder, p *pending, code, desc string) {
	w.SetHeader("Location", redirectURL(p.redirect, "error", code, "error_description", SafeDescription(desc), "state", p.state, "iss", s.cfg.Issuer))
	hdrNoStore.set(w)
	hdrNoReferrer.set(w)
	_ = w.Send(303, nil)
}

// Authorize is the authorization endpoint (RFC 6749 §4.1.1), GET or POST.
func (s *Server) Authorize(w Responder, r Request) {
	var raw string
	switch r.Method() {
	case "GET", "HEAD":
		raw = r.RawQuery()
	case "POST":
		body, err := readBody(r, s.cfg.MaxBodyBytes)
		if err != nil || !isForm(r) {
			s.errorPage(w, r, 400, ErrInvalidRequest, "the request body must be a form of limited size")
			return
		}
		raw = body
	default:
		hdrAllowGetPost.set(w)
		s.errorPage(w, r, 405, ErrInvalidRequest, "use GET or POST")
		return
	}
	var f params
	var dups []string
	if err := parseParamsDups(raw, s.cfg.MaxParams, s.cfg.MaxValueLength, &f, &dups); err != nil {
		s.errorPage(w, r, 400, ErrInvalidRequest, "malformed or oversized request parameters")
		return
	}
	if slices.Contains(dups, "client_id") || slices.Contains(dups, "redirect_uri") {
		s.errorPage(w, r, 400, ErrInvalidRequest, "client_id or redirect_uri is repeated")
		return
	}
	clientID := f.get("client_id")
	if clientID == "" {
		s.errorPage(w, r, 400, ErrInvalidRequest, "client_id is required")
		return
	}
	ctx := r.Context()
	c, err := s.getClient(ctx, clientID)
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
	sent := f.get("redirect_uri")
	redirect := ""
	switch {
	case sent == "" && len(c.RedirectURIs) == 1:
		redirect = c.RedirectURIs[0]
	case sent == "":
		s.errorPage(w, r, 400, ErrInvalidRequest, "redirect_uri is required: the client has no single registered one")
		return
	default:
		for _, reg := range c.RedirectURIs {
			if MatchRedirectURI(reg, sent) {
				redirect = sent
				break
			}
		}
		if redirect == "" {
			s.errorPage(w, r, 400, ErrInvalidRequest, "redirect_uri is not registered for this client")
			return
		}
	}
	draft10 := s.profileOf(c) == ProfileDraft10
	p := &pending{clientID: c.ID, clientName: c.Name, sentURI: sent, redirect: redirect, state: f.get("state"), draft10: draft10}
	// From here on the redirect URI is trusted: errors go back to the client.
	if len(dups) > 0 {
		s.redirectError(w, p, ErrInvalidRequest, "parameter "+dups[0]+" is repeated")
		return
	}
	switch rt := f.get("response_type"); rt {
	case "code":
	case "":
		s.redirectError(w, p, ErrInvalidRequest, "response_type is required")
		return
	default:
		s.redirectError(w, p, ErrUnsupportedResponseType, "only response_type=code is supported")
		return
	}
	if !c.AllowsGrant(GrantAuthorizationCode) {
		s.redirectError(w, p, ErrUnauthorizedClient, "the client may not use the authorization code grant")
		return
	}
	p.challenge, p.method = f.get("code_challenge"), f.get("code_challenge_method")
	switch {
	case p.challenge == "" && p.method != "":
		s.redirectError(w, p, ErrInvalidRequest, "code_challenge_method without code_challenge")
		return
	case p.challenge == "":
		if c.Public || (c.PKCE == PKCERequired && !draft10) {
			s.redirectError(w, p, ErrInvalidRequest, "code_challenge is required (PKCE, S256)")
			return
		}
	default:
		if p.method == "" {
			p.method = "plain" // RFC 7636 §4.3 default
		}
		if p.method != "S256" && !(p.method == "plain" && s.cfg.AllowPlainPKCE) {
			s.redirectError(w, p, ErrInvalidRequest, "code_challenge_method must be S256")
			return
		}
		if !validPKCEValue(p.challenge) {
			s.redirectError(w, p, ErrInvalidRequest, "code_challenge must be 43-128 unreserved characters")
			return
		}
	}
	if len(p.state) > maxStateLen {
		p.state = "" // not echoed: the client sees the error without it
		s.redirectError(w, p, ErrInvalidRequest, "state is too long")
		return
	}
	scope, e := s.allowedScope(c, f.get("scope"))
	if e != nil {
		s.redirectError(w, p, e.code, e.desc)
		return
	}
	p.scope = scope
	p.exp = s.now().Add(s.cfg.LoginLifetime).Unix()
	// The browser session (and its cookie) is made when a form is sealed
	// for it (AuthorizationRequest.seal): an app that knows the user and
	// calls SendGrant at once needs neither.
	ar := s.newAuthorizationRequest(p, s.sessionOf(r), w, r)
	setPageHeaders(w)
	s.auth.Login(w, r, ar)
	ar.detach()
}

// ensureSession returns the browser's session id, issuing a cookie when it
// has none.
func (s *Server) ensureSession(w Responder, r Request) (string, bool) {
	if v := s.sessionOf(r); v != "" {
		return v, true
	}
	v, err := randomToken(32)
	if err != nil {
		return "", false
	}
	secure := s.secureCookie(r)
	ck := http.Cookie{
		Name:     SessionCookie,
		Value:    v,
		Path:     "/",
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	if secure {
		ck.Name = SecureSessionCookie
	}
	w.AddHeader("Set-Cookie", ck.String())
	return v, true
}

func (s *Server) secureCookie(r Request) bool {
	return r.TLS() || strings.HasPrefix(s.cfg.Issuer, "https://")
}

func (s *Server) sessionOf(r Request) string {
	name := SessionCookie
	if s.secureCookie(r) {
		name = SecureSessionCookie
	}
	for _, line := range r.Header("Cookie") {
		cks, err := http.ParseCookie(line)
		if err != nil {
			continue
		}
		for _, ck := range cks {
			if ck.Name == name && len(ck.Value) == 43 && isB64URL(ck.Value) {
				return ck.Value
			}
		}
	}
	return ""
}

// sessionBinding and csrfToken are MACs under the key generation that
// sealed the pending request, so a key rotation does not break logins in
// flight.
func sessionBinding(g *keyGen, sess string) string {
	var buf [32]byte
	return base64.RawURLEncoding.EncodeToString(g.mac(buf[:0], 's', "session", sess)[:16])
}

// onceSig is the code signature under which a posted form is recorded as
// used: a MAC of its nonce under the code key of the generation that sealed
// it (so every instance, and a retry after a key rotation, computes the
// same). Its input has a NUL, which no code has: it never equals the
// signature of a real code.
func onceSig(g *keyGen, nonce string) string {
	var buf [32]byte
	return base64.RawURLEncoding.EncodeToString(g.mac(buf[:0], 'c', "form-used", nonce))
}

func csrfToken(g *keyGen, sess, nonce string) string {
	var buf [32]byte
	return base64.RawURLEncoding.EncodeToString(g.mac(buf[:0], 's', "csrf", sess, nonce))
}

// newAuthorizationRequest makes the request handed to the app. sess is the
// browser session, or "" for one to be made (on w) when a form is sealed.
func (s *Server) newAuthorizationRequest(p *pending, sess string, w Responder, r Request) *AuthorizationRequest {
	scopes, _ := parseScope(p.scope)
	return &AuthorizationRequest{
		ClientID: p.clientID, ClientName: p.clientName, RedirectURI: p.redirect,
		Scope: p.scope, Scopes: scopes, State: p.state, UserID: p.userID,
		ProcessLoginURL: s.cfg.ProcessLoginURL,
		p:               *p, sess: sess, srv: s, w: w, r: r,
	}
}

// ProcessLogin is the endpoint the login and consent forms post to (the
// original library's process_login_url). It verifies that the form belongs
// to a pending request of this browser (session binding) and carries its
// CSRF token, then hands a login to the Authenticator or settles a consent
// decision itself.
func (s *Server) ProcessLogin(w Responder, r Request) {
	if r.Method() != "POST" {
		hdrAllowPost.set(w)
		s.errorPage(w, r, 405, ErrInvalidRequest, "use POST")
		return
	}
	var f params
	// The sealed handle carries state, redirect URI and scope: allow it
	// the size the server may mint.
	if err := readForm(r, s.cfg.MaxBodyBytes, s.cfg.MaxParams, max(s.cfg.MaxValueLength, maxHandleLen), &f); err != nil {
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
	ctx := r.Context()
	if _, err := s.getClient(ctx, p.clientID); err != nil {
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
			if err := s.store.SaveConsent(ctx, p.userID, p.clientID, remembered); err != nil {
				s.log.ErrorContext(ctx, "oauth2kit: saving consent failed", "err", err)
				e := storageError(err)
				s.redirectError(w, p, e.code, e.desc)
				return
			}
			s.issueCode(w, r, p)
		case "deny":
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
	p := ar.p
	if p.clientID == "" || userID == "" || len(userID) > 256 || len(additionalInfo) > maxInfoLen {
		s.errorPage(w, r, 500, ErrServerError, "the login could not be completed")
		return
	}
	p.userID, p.info = userID, additionalInfo
	if cp, ok := s.auth.(ConsentPrompter); ok {
		ctx := r.Context()
		approved, err := s.store.GetConsent(ctx, userID, p.clientID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(ctx, "oauth2kit: consent lookup failed", "err", err)
			e := storageError(err)
			s.redirectError(w, &p, e.code, e.desc)
			return
		}
		if _, covered := NarrowScope(p.scope, approved); err != nil || !covered {
			// Bound to the same session as the login (whose cookie may be
			// set by this very response when Login calls SendGrant).
			next := s.newAuthorizationRequest(&p, ar.sess, w, r)
			setPageHeaders(w)
			cp.Consent(w, r, next)
			next.detach()
			return
		}
	}
	s.issueCode(w, r, &p)
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
	exp := now.Add(s.cfg.CodeLifetime)
	if p.once != "" {
		// A posted login or consent form issues one code, however often it
		// is submitted and to whichever instance: the first submission
		// records the form as a grant that is born used, under a
		// signature derived from the form's nonce, and kept until the
		// pending request expires. The store creates a signature once
		// (ErrExists after), atomically, so a second submission finds it.
		used := now
		marker := &Grant{
			ID: gid, CodeSig: p.once, ClientID: p.clientID, UserID: p.userID, Scope: p.scope,
			CreatedAt: now, ExpiresAt: time.Unix(p.exp, 0), UsedAt: &used,
		}
		if err := s.store.CreateGrant(ctx, marker); err != nil {
			if errors.Is(err, ErrExists) {
				s.log.WarnContext(ctx, "oauth2kit: a login or consent form was submitted again; no code issued", "client_id", p.clientID)
				s.errorPage(w, r, 400, ErrInvalidRequest, "this sign-in was already completed; start again from the application")
				return
			}
			s.log.ErrorContext(ctx, "oauth2kit: recording a used form failed", "err", err)
			e := storageError(err)
			s.redirectError(w, p, e.code, e.desc)
			return
		}
	}
	g := &Grant{
		ID: gid, CodeSig: sig, ClientID: p.clientID, UserID: p.userID,
		RedirectURI: p.sentURI, Scope: p.scope,
		CodeChallenge: p.challenge, CodeChallengeMethod: p.method,
		AdditionalInfo: p.info, CreatedAt: now, ExpiresAt: exp,
		// The family's access tokens outlive the code: user-wide
		// revocation finds the family through this grant until they expire.
		KeepUntil: exp.Add(s.cfg.AccessTokenLifetime),
	}
	if err := s.store.CreateGrant(ctx, g); err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: storing a grant failed", "err", err)
		e := storageError(err)
		s.redirectError(w, p, e.code, e.desc)
		return
	}
	w.SetHeader("Location", redirectURL(p.redirect, "code", code, "state", p.state, "iss", s.cfg.Issuer))
	hdrNoStore.set(w)
	hdrNoReferrer.set(w)
	_ = w.Send(303, nil)
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
	w.SetHeader("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	s.errorPage(w, r, 429, "too_many_attempts", "too many failed sign-in attempts; wait a few minutes and try again")
	return false
}

// LoginFailed records a failed login for username from the request's
// address (see LoginAllowed).
func (s *Server) LoginFailed(r Request, username string) {
	s.logins.fail(loginKey(username), r.RemoteAddr(), s.now())
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
