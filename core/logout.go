package core

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html"
	"slices"
	"strings"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// EndSession is the RP-Initiated Logout endpoint (OpenID Connect
// RP-Initiated Logout 1.0), GET or POST: it ends the browser's login
// session on every instance and sends the browser to a registered
// post_logout_redirect_uri, with state.
func (s *Server) EndSession(w Responder, r Request) { s.serve(&epEndSession, w, r) }

var epEndSession = endpoint{field: "Paths.EndSession", path: func(c *Config) *string { return &c.Paths.EndSession }, def: "/oauth2/logout",
	methods: []string{"GET", "HEAD", "POST"}, allow: hdrAllowGetHeadPost, page: true, meta: "end_session_endpoint", serve: (*Server).endSession}

// LogoutRequest is a logout waiting for the user's confirmation.
type LogoutRequest struct {
	// ClientName names the client that asked, when known.
	ClientName string
	// Action is where the confirmation form posts; HiddenFields are its
	// hidden inputs (HTML-escaped). The form adds "confirm"="yes".
	Action       string
	HiddenFields string
}

// LogoutPrompter is implemented by an Authenticator that renders the
// logout confirmation page itself (the kit has set the security headers).
type LogoutPrompter interface {
	LogoutPage(w Responder, r Request, lr *LogoutRequest)
}

// FieldLogoutCSRF is the hidden field of the logout confirmation form.
const FieldLogoutCSRF = "oauth2kit_logout_csrf"

func (s *Server) endSession(w Responder, r Request) {
	raw := r.RawQuery()
	if r.Method() == "POST" {
		body, err := readBody(r, s.cfg.Limits.MaxBodyBytes)
		if err != nil || !isForm(r) {
			s.errorPage(w, r, 400, ErrInvalidRequest, "the request body must be a form of limited size")
			return
		}
		raw = body
	}
	var f params
	var dups []string
	if err := parseParamsDups(raw, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength+8<<10, &f, &dups); err != nil || len(dups) > 0 {
		s.errorPage(w, r, 400, ErrInvalidRequest, "malformed, repeated or oversized parameters")
		return
	}
	ctx := r.Context()
	hint, clientID, post, state := f.get("id_token_hint"), f.get("client_id"), f.get("post_logout_redirect_uri"), f.get("state")
	if len(state) > maxStateLen {
		s.errorPage(w, r, 400, ErrInvalidRequest, "state is too long")
		return
	}
	hintSub := ""
	if hint != "" {
		aud, sub, err := s.verifyIDTokenHint(hint)
		if err != nil {
			s.errorPage(w, r, 400, ErrInvalidRequest, "id_token_hint is not an id_token of this server")
			return
		}
		if clientID != "" && !slices.Contains(aud, clientID) {
			s.errorPage(w, r, 400, ErrInvalidRequest, "client_id is not an audience of id_token_hint")
			return
		}
		if clientID == "" {
			clientID = aud[0]
		}
		hintSub = sub
	}
	var c *Client
	if clientID != "" {
		var err error
		if c, err = s.getClient(ctx, clientID); err != nil {
			if errors.Is(err, ErrNotFound) {
				s.errorPage(w, r, 400, ErrInvalidClient, "unknown client")
				return
			}
			e := storageError(err)
			s.errorPage(w, r, e.status, e.code, e.desc)
			return
		}
	}
	if post != "" && (c == nil || !slices.Contains(c.PostLogoutRedirectURIs, post)) {
		// Never a redirect to a URI the client did not register, byte for
		// byte (an open redirector otherwise).
		s.errorPage(w, r, 400, ErrInvalidRequest, "post_logout_redirect_uri is not registered for the client")
		return
	}
	ls, err := s.currentLogin(ctx, r)
	if err != nil {
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
		return
	}
	// Proven to come from the relying party: a valid id_token_hint for the
	// user of this browser's session (or there is no session to end).
	proven := hint != "" && (ls == nil || ls.UserID == hintSub)
	// A self-registered client's post-logout URI is its registrant's
	// choice and its id_tokens are anyone's for the asking: the user
	// confirms before being sent there.
	if c != nil && post != "" {
		if unverified, _ := s.unverifiedClient(c); unverified {
			proven = false
		}
	}
	if !proven && !s.logoutConfirmed(r, &f) {
		s.logoutPage(w, r, c, &f)
		return
	}
	if err := s.endLogin(ctx, w, r); err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: ending a login session failed", "err", err)
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
		return
	}
	hdrNoStore.set(w)
	hdrNoReferrer.set(w)
	if post != "" {
		w.SetHeader("Location", redirectURL(post, "state", state))
		_ = w.Send(303, nil)
		return
	}
	setPageHeaders(w)
	hdrHTML.set(w)
	_ = w.Send(200, []byte(`<!doctype html><html><head><meta charset="utf-8"><title>Signed out</title></head><body><h1>Signed out</h1><p>You are signed out.</p></body></html>`))
}

// verifyIDTokenHint checks an id_token_hint: signed by a published key of
// this server (an expired one is fine: logout comes late), an id_token by
// typ, issued by us. It returns the audiences and subject.
func (s *Server) verifyIDTokenHint(hint string) ([]string, string, error) {
	ks := s.signing.Load()
	if ks == nil {
		return nil, "", errors.New("no signing keys")
	}
	h, payload, err := jose.Verify(hint, ks.verify, ks.verifyKey)
	if err != nil {
		return nil, "", err
	}
	if h.Typ != "" && h.Typ != "JWT" {
		return nil, "", errors.New("not an id_token")
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Iss != s.cfg.Issuer || c.Sub == "" {
		return nil, "", errors.New("not our id_token")
	}
	var aud []string
	var one string
	if json.Unmarshal(c.Aud, &one) == nil && one != "" {
		aud = []string{one}
	} else if json.Unmarshal(c.Aud, &aud) != nil || len(aud) == 0 {
		return nil, "", errors.New("no audience")
	}
	return aud, c.Sub, nil
}

// The confirmation form carries the request's parameters and a CSRF token
// bound to the browser session and to those parameters.
func (s *Server) logoutCSRF(sess string, f *params) string {
	return csrfToken(s.keys.primary, sess, "logout\x00"+f.get("client_id")+"\x00"+f.get("post_logout_redirect_uri")+"\x00"+f.get("state")+"\x00"+f.get("id_token_hint"))
}

func (s *Server) logoutConfirmed(r Request, f *params) bool {
	sess := s.sessionOf(r)
	if r.Method() != "POST" || f.get("confirm") != "yes" || sess == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(f.get(FieldLogoutCSRF)), []byte(s.logoutCSRF(sess, f))) == 1
}

func (s *Server) logoutPage(w Responder, r Request, c *Client, f *params) {
	sess, ok := s.ensureSession(w, r)
	if !ok {
		s.errorPage(w, r, 500, ErrServerError, "the server could not complete the request")
		return
	}
	var b strings.Builder
	for _, k := range []string{"client_id", "post_logout_redirect_uri", "state", "id_token_hint"} {
		if v := f.get(k); v != "" {
			b.WriteString(`<input type="hidden" name="` + k + `" value="` + html.EscapeString(v) + `">`)
		}
	}
	b.WriteString(`<input type="hidden" name="` + FieldLogoutCSRF + `" value="` + html.EscapeString(s.logoutCSRF(sess, f)) + `">`)
	lr := &LogoutRequest{Action: s.cfg.Paths.EndSession, HiddenFields: b.String()}
	if c != nil {
		lr.ClientName = c.Name
	}
	setPageHeaders(w)
	if lp, ok := s.auth.(LogoutPrompter); ok {
		lp.LogoutPage(w, r, lr)
		return
	}
	hdrHTML.set(w)
	who := "An application"
	if lr.ClientName != "" {
		who = html.EscapeString(lr.ClientName)
	}
	_ = w.Send(200, []byte(`<!doctype html><html><head><meta charset="utf-8"><title>Sign out</title></head><body><h1>Sign out</h1><p>`+who+
		` asks to sign you out.</p><form method="post" action="`+html.EscapeString(lr.Action)+`">`+lr.HiddenFields+
		`<button name="confirm" value="yes">Sign out</button></form></body></html>`))
}
