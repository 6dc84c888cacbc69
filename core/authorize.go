package core

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Authorize is the authorization endpoint (RFC 6749 §4.1.1), GET or POST.
func (s *Server) Authorize(w Responder, r Request) { s.serve(&epAuthorize, w, r) }

var epAuthorize = endpoint{field: "Paths.Authorize", path: func(c *Config) *string { return &c.Paths.Authorize }, def: "/oauth2/authorize",
	methods: []string{"GET", "HEAD", "POST"}, allow: hdrAllowGetPost, page: true, meta: "authorization_endpoint", serve: (*Server).authorize}

func (s *Server) authorize(w Responder, r Request) {
	raw := r.RawQuery() // GET, HEAD
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
	if err := parseParamsDups(raw, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &f, &dups); err != nil {
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
	// A pushed request (RFC 9126 §4): its parameters are the ones pushed,
	// whatever else the URL carries but the client_id that must match.
	parSig := ""
	if ru := f.get("request_uri"); ru != "" && s.cfg.PAR.Enabled {
		pushed, sig, ok := s.openPushed(ru, clientID)
		if !ok {
			s.errorPage(w, r, 400, ErrInvalidRequest, "request_uri is invalid, expired, used or not this client's")
			return
		}
		raw, parSig, f, dups = pushed, sig, params{}, nil
		if err := parseParamsDups(raw, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &f, &dups); err != nil {
			s.errorPage(w, r, 400, ErrInvalidRequest, "request_uri is invalid")
			return
		}
	}
	ctx := r.Context()
	if s.isCIMDClientID(clientID) {
		if wait := s.cimd.failures.blocked("", r.RemoteAddr(), s.now()); wait > 0 {
			w.SetHeader("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
			s.errorPage(w, r, 429, ErrInvalidClient, "too many unusable client metadata documents from this address; retry later")
			return
		}
	}
	c, err := s.getClient(ctx, clientID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			desc := "unknown client"
			var ce *cimdError
			if errors.As(err, &ce) {
				desc = ce.Error()
				s.cimd.failures.fail("", r.RemoteAddr(), s.now())
			}
			s.errorPage(w, r, 400, ErrInvalidClient, desc)
			return
		}
		s.log.ErrorContext(ctx, "oauth2kit: client lookup failed", "err", err)
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
		return
	}
	if msg := s.fapiAuthorize(c, parSig != ""); msg != "" {
		s.errorPage(w, r, 400, ErrInvalidRequest, msg)
		return
	}
	if parSig == "" && s.cfg.PAR.Enabled && (s.cfg.PAR.Required || c.RequirePAR) {
		s.errorPage(w, r, 400, ErrInvalidRequest, "push the authorization request first (pushed_authorization_request_endpoint)")
		return
	}
	p, ae := s.readAuthorization(c, &f, raw, dups)
	// Except for a client that registered itself: its redirect URI is
	// whatever its registrant chose, and an error sent there without the
	// user having seen a page would make the server an open redirector
	// (RFC 9700 §4.11.2). Its errors are pages until the user decides on
	// the consent page.
	if p != nil {
		if unverified, _ := s.unverifiedClient(c); unverified {
			p.pageReq = r
		}
		p.par = parSig
	}
	switch {
	case ae != nil && ae.page:
		s.errorPage(w, r, 400, ae.code, ae.desc)
		return
	case ae != nil:
		s.redirectError(w, p, ae.code, ae.desc)
		return
	}
	p.exp = s.now().Add(s.cfg.Lifetimes.Login).Unix()
	if s.silentLogin(w, r, p) {
		return
	}
	// The browser session (and its cookie) is made when a form is sealed
	// for it (AuthorizationRequest.seal): an app that knows the user and
	// calls SendGrant at once needs neither.
	ar := s.newAuthorizationRequest(p, s.sessionOf(r), w, r)
	setPageHeaders(w)
	s.auth.Login(w, r, ar)
	ar.detach()
}

// authzError is a refused authorization request: before the redirect URI
// is established (page) an error page, after it a redirect to the client
// (or, at the PAR endpoint, a JSON error either way).
type authzError struct {
	page       bool
	code, desc string
}

// readAuthorization validates the authorization request f (raw is its
// encoded form, for the repeatable resource parameter) of client c and
// returns the pending request it describes. Authorize and the pushed
// authorization request endpoint share it, so a request is judged alike
// whichever way it came.
func (s *Server) readAuthorization(c *Client, f *params, raw string, dups []string) (*pending, *authzError) {
	sent := f.get("redirect_uri")
	redirect := ""
	switch {
	case sent == "" && len(c.RedirectURIs) == 1:
		redirect = c.RedirectURIs[0]
	case sent == "":
		return nil, &authzError{page: true, code: ErrInvalidRequest, desc: "redirect_uri is required: the client has no single registered one"}
	default:
		for _, reg := range c.RedirectURIs {
			if matchRedirectURI(reg, sent) {
				redirect = sent
				break
			}
		}
		if redirect == "" {
			return nil, &authzError{page: true, code: ErrInvalidRequest, desc: "redirect_uri is not registered for this client"}
		}
	}
	draft10 := s.profileOf(c) == ProfileDraft10
	p := &pending{clientID: c.ID, clientName: c.Name, sentURI: sent, redirect: redirect, state: f.get("state"), draft10: draft10}
	// From here on the redirect URI is trusted: errors go back to the
	// client, in the response mode it asked for.
	switch f.get("response_mode") {
	case "", "query":
	case "form_post":
		p.formPost = true
	default:
		return p, &authzError{code: ErrInvalidRequest, desc: "response_mode must be query or form_post"}
	}
	if len(dups) > 0 {
		return p, &authzError{code: ErrInvalidRequest, desc: "parameter " + dups[0] + " is repeated"}
	}
	switch rt := f.get("response_type"); rt {
	case "code":
	case "":
		return p, &authzError{code: ErrInvalidRequest, desc: "response_type is required"}
	default:
		return p, &authzError{code: ErrUnsupportedResponseType, desc: "only response_type=code is supported"}
	}
	if !c.AllowsGrant(GrantAuthorizationCode) {
		return p, &authzError{code: ErrUnauthorizedClient, desc: "the client may not use the authorization code grant"}
	}
	p.challenge, p.method = f.get("code_challenge"), f.get("code_challenge_method")
	switch {
	case p.challenge == "" && p.method != "":
		return p, &authzError{code: ErrInvalidRequest, desc: "code_challenge_method without code_challenge"}
	case p.challenge == "":
		if c.Public || (c.PKCE == PKCERequired && !draft10) {
			return p, &authzError{code: ErrInvalidRequest, desc: "code_challenge is required (PKCE, S256)"}
		}
	default:
		if p.method == "" {
			p.method = "plain" // RFC 7636 §4.3 default
		}
		if p.method != "S256" && !(p.method == "plain" && s.cfg.AllowPlainPKCE) {
			return p, &authzError{code: ErrInvalidRequest, desc: "code_challenge_method must be S256"}
		}
		if !validPKCEValue(p.challenge) {
			return p, &authzError{code: ErrInvalidRequest, desc: "code_challenge must be 43-128 unreserved characters"}
		}
	}
	if len(p.state) > maxStateLen {
		p.state = "" // not echoed: the client sees the error without it
		return p, &authzError{code: ErrInvalidRequest, desc: "state is too long"}
	}
	scope, e := s.allowedScope(c, f.get("scope"))
	if e != nil {
		return p, &authzError{code: e.code, desc: e.desc}
	}
	p.scope = scope
	resources, ok := resourceValues(raw)
	if !ok {
		return p, &authzError{code: ErrInvalidTarget, desc: "too many or malformed resource parameters"}
	}
	res, e := s.checkResources(resources, scope)
	if e != nil {
		return p, &authzError{code: e.code, desc: e.desc}
	}
	p.resource = strings.Join(res, " ")
	if code, desc := s.authorizeOIDC(f, p); code != "" {
		return p, &authzError{code: code, desc: desc}
	}
	if jkt := f.get("dpop_jkt"); jkt != "" && s.cfg.DPoP.Enabled {
		// RFC 9449 §10: the code will be redeemed only with this key.
		if len(jkt) != 43 || !isB64URL(jkt) {
			return p, &authzError{code: ErrInvalidRequest, desc: "dpop_jkt is not a JWK thumbprint"}
		}
		p.dpopJKT = jkt
	}
	if ae := s.fapiRequest(c, f, p); ae != nil {
		return p, ae
	}
	return p, nil
}

// OpenID Connect authorization errors (Core §3.1.2.6).
const (
	ErrLoginRequired          = "login_required"
	ErrConsentRequired        = "consent_required"
	ErrInteractionRequired    = "interaction_required"
	ErrRequestNotSupported    = "request_not_supported"
	ErrRequestURINotSupported = "request_uri_not_supported"
	maxOIDCParamLen           = 512
	maxNonceLen               = maxStateLen
)

// authorizeOIDC reads the OpenID Connect parameters of an authorization
// request into p (with OIDC on); it returns the error to redirect with, if
// any. Unknown parameters are ignored, as Core §3.1.2.1 asks; the
// parameters the kit does not act on itself (display, ui_locales,
// claims_locales, acr_values, login_hint, id_token_hint) are handed to the
// app's pages.
func (s *Server) authorizeOIDC(f *params, p *pending) (string, string) {
	if !s.cfg.OIDC.enabled() {
		return "", ""
	}
	if f.get("request") != "" {
		return ErrRequestNotSupported, "request objects are not supported"
	}
	if f.get("request_uri") != "" {
		return ErrRequestURINotSupported, "request_uri is not supported"
	}
	oc := &oidcContext{
		Nonce: f.get("nonce"), LoginHint: f.get("login_hint"), IDTokenHint: f.get("id_token_hint"),
		UILocales: f.get("ui_locales"), ClaimsLocales: f.get("claims_locales"), ACRValues: f.get("acr_values"), Display: f.get("display"),
	}
	if len(oc.Nonce) > maxNonceLen {
		return ErrInvalidRequest, "nonce is too long"
	}
	for _, v := range []string{oc.LoginHint, oc.UILocales, oc.ClaimsLocales, oc.ACRValues, oc.Display} {
		if len(v) > maxOIDCParamLen {
			return ErrInvalidRequest, "a parameter is too long"
		}
	}
	var ok bool
	if oc.ClaimsID, oc.ClaimsUI, ok = parseClaimsParam(f.get("claims")); !ok {
		return ErrInvalidRequest, "claims is not a valid claims request"
	}
	if len(oc.IDTokenHint) > 8<<10 {
		return ErrInvalidRequest, "id_token_hint is too long"
	}
	if pr := f.get("prompt"); pr != "" {
		vals, ok := parseScope(pr) // the same space-separated token syntax
		if !ok {
			return ErrInvalidRequest, "prompt is malformed"
		}
		for _, v := range vals {
			switch v {
			case "none", "login", "consent", "select_account":
			default:
				return ErrInvalidRequest, "prompt value " + v + " is not supported"
			}
		}
		if len(vals) > 1 && hasScope(pr, "none") {
			return ErrInvalidRequest, "prompt=none cannot be combined with other values"
		}
		oc.Prompt = joinScope(vals)
	}
	if ma := f.get("max_age"); ma != "" {
		n, err := strconv.ParseInt(ma, 10, 64)
		if err != nil || n < 0 || n > 1<<31 {
			return ErrInvalidRequest, "max_age must be a non-negative integer"
		}
		oc.MaxAge = n + 1
	}
	if !hasScope(p.scope, ScopeOpenID) {
		// Plain OAuth: only prompt matters (MCP clients send
		// prompt=consent with offline_access).
		if oc.Prompt == "" {
			return "", ""
		}
		oc = &oidcContext{Prompt: oc.Prompt}
	}
	// The context travels sealed in the login form: bounded so that the
	// handle always fits what ProcessLogin accepts.
	if len(oc.encode()) > maxOIDCContext {
		return ErrInvalidRequest, "the OpenID Connect parameters are too long together"
	}
	p.oidc = oc
	return "", ""
}

// maxOIDCContext bounds the encoded OIDC context of a pending request,
// well within maxHandleLen with every other field at its bound.
const maxOIDCContext = 6 << 10

func joinScope(v []string) string { return strings.Join(v, " ") }
