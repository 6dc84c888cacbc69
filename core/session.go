package core

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// Cookie names of the browser session.
const (
	// SessionCookie binds a pending authorization request to the browser
	// that started it, over plain HTTP (loopback development).
	SessionCookie = "oauth2kit_session"
	// SecureSessionCookie is its name when the cookie is Secure (TLS, or
	// an https issuer): the __Host- prefix makes browsers refuse it from a
	// sibling subdomain or without Secure and Path=/, so it cannot be
	// planted (session fixation).
	SecureSessionCookie = "__Host-oauth2kit_session"
)

// seal binds the request to the browser session (making the session and
// its cookie when the browser has none) and seals it into the handle of
// the hidden field, with a fresh nonce and the CSRF token derived from it.
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
	nonce      string // the form's (CSRF, single use), not OIDC's
	draft10    bool
	formPost   bool         // response_mode=form_post
	oidc       *oidcContext // nil without scope openid (with OIDC on)
	resource   string       // RFC 8707 resources, canonical, space-separated
	clientName string
	// once is not sealed: set when the request came back in a posted
	// form, it is the signature under which issueCode records the form
	// as used (onceSig), so that the form issues at most one code.
	once string
	// par is the signature of the pushed request's request_uri (RFC 9126)
	// the request came from, spent when the code is issued: one pushed
	// request, one code, however often the login page is reloaded.
	par string
	// dpopJKT is the DPoP key the code is to be bound to (dpop_jkt).
	dpopJKT string
	// device is the device code signature of a device's request (RFC
	// 8628), which has no redirect URI: its answers are pages, and its
	// consent decides on the device code instead of issuing a code.
	device string
	// pageReq is not sealed: set at authorize for an unverified
	// client, it makes redirectError show an error page (for this
	// request) instead of redirecting.
	pageReq Request
}

const pendingVersion = 2

func (s *Server) sealPending(p *pending) (string, error) {
	// Sized once (12 strings with their length prefixes, 3 numbers):
	// growing from nil reallocated several times per authorization request.
	w := fieldWriter{b: make([]byte, 0, 64+len(p.clientID)+len(p.sentURI)+len(p.redirect)+len(p.scope)+len(p.state)+
		len(p.challenge)+len(p.method)+len(p.binding)+len(p.userID)+len(p.info)+len(p.nonce)+len(p.clientName))}
	w.num(pendingVersion)
	w.num(p.exp)
	flags := int64(0)
	if p.draft10 {
		flags |= 1
	}
	if p.formPost {
		flags |= 2
	}
	if p.par != "" {
		flags |= 4 // an optional trailing field: older handles end before it
	}
	if p.dpopJKT != "" {
		flags |= 8 // the same, after par
	}
	if p.device != "" {
		flags |= 16 // the same, after dpopJKT
	}
	w.num(flags)
	oc := ""
	if p.oidc != nil {
		oc = p.oidc.encode()
	}
	for _, v := range []string{p.clientID, p.sentURI, p.redirect, p.scope, p.state, p.challenge, p.method, p.binding, p.userID, p.info, p.nonce, p.clientName, oc, p.resource} {
		w.str(v)
	}
	if p.par != "" {
		w.str(p.par)
	}
	if p.dpopJKT != "" {
		w.str(p.dpopJKT)
	}
	if p.device != "" {
		w.str(p.device)
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
	flags := r.num()
	p.draft10, p.formPost = flags&1 != 0, flags&2 != 0
	var oc string
	for _, v := range []*string{&p.clientID, &p.sentURI, &p.redirect, &p.scope, &p.state, &p.challenge, &p.method, &p.binding, &p.userID, &p.info, &p.nonce, &p.clientName, &oc, &p.resource} {
		*v = r.str()
	}
	if flags&4 != 0 {
		p.par = r.str()
	}
	if flags&8 != 0 {
		p.dpopJKT = r.str()
	}
	if flags&16 != 0 {
		p.device = r.str()
	}
	if r.bad || r.off != len(r.s) || p.clientID == "" || (p.redirect == "") == (p.device == "") {
		return nil, false
	}
	if oc != "" {
		var err error
		if p.oidc, err = decodeOIDC(oc); err != nil {
			return nil, false
		}
	}
	return p, true
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
// used: a MAC of its nonce under the form key (the one of the CSRF tokens,
// with its own label) of the generation that sealed it, so every instance,
// and a retry after a key rotation, computes the same. Codes are signed
// under another key: it never equals the signature of a real code.
func onceSig(g *keyGen, nonce string) string {
	var buf [32]byte
	return base64.RawURLEncoding.EncodeToString(g.mac(buf[:0], 's', "form-used", nonce))
}

func csrfToken(g *keyGen, sess, nonce string) string {
	var buf [32]byte
	return base64.RawURLEncoding.EncodeToString(g.mac(buf[:0], 's', "csrf", sess, nonce))
}
