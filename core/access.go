package core

import (
	"context"
	"errors"
	"strings"
	"time"
)

// TokenInfo is what an access token says: the original library's token_info
// ({user_id, client_id, additional_info}) plus scope and times.
type TokenInfo struct {
	Issuer   string
	Audience string
	// UserID is the resource owner (the user the app named at SendGrant).
	// It is empty for tokens without a user (client_credentials): a
	// handler that takes UserID as "the user" can never mistake a client
	// for a user. Subject names either.
	UserID   string
	ClientID string
	Scope    string
	// GrantID is the family of the token: every token descending from one
	// authorization grant shares it.
	GrantID string
	TokenID string
	// AdditionalInfo is what the app passed to SendGrant.
	AdditionalInfo string
	IssuedAt       time.Time
	ExpiresAt      time.Time
	// Draft10 is set on tokens issued to draft-10 profile clients.
	Draft10 bool
	// ClientCredentials is set on tokens of the client_credentials grant:
	// no user is involved, and UserID is empty.
	ClientCredentials bool
}

// Subject is whom the token is about: the user, or for a token without a
// user (client_credentials) the client itself, as "sub" in introspection
// and RFC 9068 JWTs.
func (t *TokenInfo) Subject() string {
	if t.UserID == "" {
		return t.ClientID
	}
	return t.UserID
}

// HasScope reports whether the token grants scope s.
func (t *TokenInfo) HasScope(s string) bool { return HasScope(t.Scope, s) }

const (
	atVersion             = 1
	flagDraft10           = 1
	flagClientCredentials = 2
)

// mintAccessToken seals the claims into an access token.
func (s *Server) mintAccessToken(t *TokenInfo) (string, error) {
	jti, err := newID()
	if err != nil {
		return "", err
	}
	t.TokenID = jti
	w := fieldWriter{b: make([]byte, 0, 96+len(t.Issuer)+len(t.Audience)+len(t.UserID)+len(t.ClientID)+len(t.Scope)+len(t.AdditionalInfo))}
	flags := int64(0)
	if t.Draft10 {
		flags |= flagDraft10
	}
	if t.ClientCredentials {
		flags |= flagClientCredentials
	}
	w.num(atVersion)
	w.num(flags)
	w.num(t.IssuedAt.Unix())
	w.num(t.ExpiresAt.Unix())
	w.str(t.Issuer)
	w.str(t.Audience)
	w.str(t.UserID)
	w.str(t.ClientID)
	w.str(t.Scope)
	w.str(t.GrantID)
	w.str(t.TokenID)
	w.str(t.AdditionalInfo)
	return s.keys.seal(prefixAccess, w.b)
}

var (
	errTokenExpired = errors.New("oauth2kit: token expired")
	errTokenRevoked = errors.New("oauth2kit: token revoked")
)

// openAccessToken decrypts and checks an access token's own claims
// (issuer, audience, lifetime) without consulting storage. It fills info
// before it reports errTokenExpired for an authentic but expired token
// (draft-10 expired_token, revocation of expired tokens).
func (s *Server) openAccessToken(tok string, now time.Time, info *TokenInfo) error {
	// open decrypts into a buffer it allocates, sized to the token (a stack
	// buffer passed in would escape anyway: it reaches the AEAD through an
	// interface). Nothing else holds or writes that buffer afterwards, so
	// the claims are read from it as a string without a second copy: one
	// allocation per check instead of two.
	pt, err := s.keys.open(prefixAccess, tok, nil)
	if err != nil {
		return err
	}
	r := fieldReader{s: stringOf(pt)}
	if r.num() != atVersion {
		return errBadToken
	}
	flags := r.num()
	iat, exp := r.num(), r.num()
	info.Issuer = r.str()
	info.Audience = r.str()
	info.UserID = r.str()
	info.ClientID = r.str()
	info.Scope = r.str()
	info.GrantID = r.str()
	info.TokenID = r.str()
	info.AdditionalInfo = r.str()
	if r.bad || r.off != len(r.s) {
		return errBadToken
	}
	info.Draft10 = flags&flagDraft10 != 0
	info.ClientCredentials = flags&flagClientCredentials != 0
	if info.ClientCredentials {
		// Tokens minted before UserID was left empty for them carry the
		// client id there: never hand it out as a user.
		info.UserID = ""
	}
	info.IssuedAt = time.Unix(iat, 0)
	info.ExpiresAt = time.Unix(exp, 0)
	// A token minted by another deployment sharing keys by mistake, or for
	// another resource, is not ours to accept.
	if info.Issuer != s.cfg.Issuer || info.Audience != s.cfg.Audience {
		return errBadToken
	}
	// Reject lifetimes beyond what this server mints: a token with a
	// far-future exp can only come from a key compromise or a bug.
	// Whole seconds, no multiplication: nothing here can overflow whatever
	// the decoded values (iat is bounded on both sides first).
	if iat <= 0 || iat > now.Unix()+60 || exp < iat || exp-iat > int64(s.cfg.AccessTokenLifetime/time.Second)+60 {
		return errBadToken
	}
	if now.Unix() >= exp {
		return errTokenExpired
	}
	return nil
}

// CheckToken validates an access token as a resource server must: it opens
// the token (authenticity, type, key), checks issuer, audience and expiry,
// and that its grant has not been revoked (exactly, or within
// Config.RevocationCacheTTL). Every failure returns an error; none of them
// says why beyond "invalid", on purpose.
func (s *Server) CheckToken(ctx context.Context, token string) (*TokenInfo, error) {
	info := new(TokenInfo)
	if err := s.checkToken(ctx, token, info); err != nil {
		return nil, err
	}
	return info, nil
}

func (s *Server) checkToken(ctx context.Context, token string, info *TokenInfo) error {
	now := s.now()
	if err := s.openAccessToken(token, now, info); err != nil {
		return err
	}
	if _, fresh := s.revCache.get(info.GrantID, now); fresh {
		return nil
	}
	revoked, err := s.store.IsFamilyRevoked(ctx, info.GrantID)
	if err != nil {
		return err
	}
	if revoked {
		return errTokenRevoked
	}
	s.revCache.put(info.GrantID, struct{}{}, now)
	return nil
}

// ResourceError is a refused resource request: write Status, the
// WWW-Authenticate header and Body (JSON) as they are.
type ResourceError struct {
	Status          int
	WWWAuthenticate string
	Body            []byte
	// Err is the internal cause, for logs; never send it.
	Err error
}

func (e *ResourceError) Error() string { return string(e.Body) }

// Write sends the refusal through w.
func (e *ResourceError) Write(w Responder) {
	if e.WWWAuthenticate != "" {
		w.SetHeader("WWW-Authenticate", e.WWWAuthenticate)
	}
	hdrJSON.set(w)
	hdrNoStore.set(w)
	_ = w.Send(e.Status, e.Body)
}

// CheckRequest extracts the access token from a resource request (RFC 6750
// §2: the Authorization header, or for POST, PUT, PATCH and DELETE a form
// body access_token; draft-10 clients also "Authorization: OAuth" and
// oauth_token) and checks it and the required scopes. On success it
// returns the token info; otherwise the refusal to send.
//
// A form body of a POST, PUT, PATCH or DELETE is read whenever the request
// is a form, with or without an Authorization header (a token in both is
// invalid_request); adapters that run this before a handler must make the
// body readable again (the nethttp adapter does).
func (s *Server) CheckRequest(r Request, scopes ...string) (*TokenInfo, *ResourceError) {
	tok, scheme, rerr := s.extractToken(r)
	if rerr != nil {
		return nil, rerr
	}
	draftServer := s.cfg.Profile == ProfileDraft10
	legacy := scheme == "OAuth" || (scheme == "" && draftServer)
	if tok == "" {
		return nil, s.resourceError(401, "", "", legacy, nil)
	}
	info := new(TokenInfo)
	err := s.checkToken(r.Context(), tok, info)
	if err != nil && err != errBadToken && err != errTokenExpired && err != errTokenRevoked {
		s.log.ErrorContext(r.Context(), "oauth2kit: revocation check failed", "err", err)
		return nil, &ResourceError{Status: 503, Body: []byte(`{"error":"temporarily_unavailable"}`), Err: err}
	}
	if legacy && !draftServer && !info.Draft10 {
		// The draft-10 forms (the OAuth scheme, oauth_token) are honoured
		// only for tokens minted for draft-10 clients (openAccessToken sets
		// the flag for authentic ones, expired or revoked included). For
		// anything else a default-profile server does not support them:
		// the request carries no credentials it understands (RFC 6750
		// §3.1), so no error code, and the Bearer challenge.
		return nil, s.resourceError(401, "", "", false, errBadToken)
	}
	if err != nil {
		code := ErrInvalidToken
		// expired_token only for a draft-10 token (openAccessToken fills
		// the flag before it reports expiry): a default-profile token sent
		// in the legacy scheme learns nothing beyond invalid_token.
		if legacy && err == errTokenExpired && (info.Draft10 || s.cfg.Profile == ProfileDraft10) {
			code = ErrExpiredToken
		}
		return nil, s.resourceError(401, code, "", legacy, err)
	}
	for _, sc := range scopes {
		if !info.HasScope(sc) {
			return nil, s.resourceError(403, ErrInsufficientScope, strings.Join(scopes, " "), legacy, nil)
		}
	}
	return info, nil
}

// extractToken finds the token and the scheme it came in ("Bearer",
// "OAuth", or "" for none).
func (s *Server) extractToken(r Request) (tok, scheme string, rerr *ResourceError) {
	found := 0
	hdrs := r.Header("Authorization")
	if len(hdrs) > 1 {
		return "", "", s.resourceError(400, ErrInvalidRequest, "", false, nil)
	}
	// Draft-10 forms are recognised always, and honoured only for tokens
	// minted for draft-10 clients (CheckRequest checks the flag).
	if len(hdrs) == 1 {
		t, ok := ParseBearer(hdrs[0])
		if ok {
			tok, scheme = t, "Bearer"
		} else if t, ok := parseAuthScheme(hdrs[0], "OAuth"); ok {
			tok, scheme = t, "OAuth"
		} else {
			// An Authorization header of another scheme (Basic) is no
			// token; a malformed Bearer header is an invalid token, and so
			// is a malformed OAuth one where draft 10 is the server's
			// profile (elsewhere that scheme is unsupported: no token).
			if hasScheme(hdrs[0], "Bearer") || (s.cfg.Profile == ProfileDraft10 && hasScheme(hdrs[0], "OAuth")) {
				return "", "", s.resourceError(401, ErrInvalidToken, "", false, errBadToken)
			}
		}
		if tok != "" {
			found++
		}
	}
	if strings.Contains(r.RawQuery(), "oauth_token") {
		// The query belongs to the app: one that does not parse as ours
		// carries no oauth_token we could use, and is not refused for it.
		var q params
		_ = parseParams(r.RawQuery(), s.cfg.MaxParams, s.cfg.MaxValueLength, &q)
		if t := q.get("oauth_token"); t != "" {
			tok, scheme = t, "OAuth"
			found++
		}
	}
	m := r.Method()
	if (m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE") && isForm(r) {
		var f params
		if err := readForm(r, s.cfg.MaxBodyBytes, s.cfg.MaxParams, s.cfg.MaxValueLength, &f); err != nil {
			// A large or unusual form is the handler's business when the
			// token came in the header; without one, the request has no
			// usable token.
			if found == 0 {
				return "", "", s.resourceError(400, ErrInvalidRequest, "", false, nil)
			}
		}
		if t := f.get("access_token"); t != "" {
			tok, scheme = t, "Bearer"
			found++
		}
		if t := f.get("oauth_token"); t != "" {
			tok, scheme = t, "OAuth"
			found++
		}
	}
	if found > 1 {
		return "", "", s.resourceError(400, ErrInvalidRequest, "", scheme == "OAuth", nil)
	}
	return tok, scheme, nil
}

func isForm(r Request) bool {
	ct := firstHeader(r, "Content-Type")
	ct, _, _ = strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded")
}

// resourceError builds the RFC 6750 §3 (or draft-10 §5.2) refusal. Every
// invalid token gets the same body, whatever the cause.
func (s *Server) resourceError(status int, code, scope string, legacy bool, cause error) *ResourceError {
	scheme := "Bearer"
	if legacy {
		scheme = "OAuth"
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString(` realm="`)
	b.WriteString(SafeDescription(s.cfg.Realm))
	b.WriteByte('"')
	desc := ""
	switch code {
	case ErrInvalidToken:
		desc = "the access token is invalid, expired or revoked"
	case ErrExpiredToken:
		desc = "the access token expired"
	case ErrInsufficientScope:
		desc = "the access token lacks the required scope"
	case ErrInvalidRequest:
		desc = "the request is malformed or carries more than one token"
	}
	if code != "" {
		b.WriteString(`, error="` + code + `", error_description="` + desc + `"`)
	}
	if scope != "" {
		b.WriteString(`, scope="` + SafeDescription(scope) + `"`)
	}
	var body []byte
	if code != "" {
		o := newJSON(128)
		o.str("error", code)
		o.str("error_description", desc)
		if scope != "" {
			o.str("scope", scope)
		}
		body = o.bytes()
	} else {
		// No credentials: no error information at all (RFC 6750 §3.1).
		body = []byte(`{}`)
	}
	e := &ResourceError{Status: status, Body: body, Err: cause}
	if status == 401 || status == 403 || code == "" {
		e.WWWAuthenticate = b.String()
	}
	return e
}

// ParseBearer extracts the token from an "Authorization: Bearer <token>"
// value: the scheme is case-insensitive, followed by one or more spaces and
// a token68 (RFC 7235 §2.1). It reports false for anything else.
func ParseBearer(h string) (string, bool) { return parseAuthScheme(h, "Bearer") }

func hasScheme(h, scheme string) bool {
	return len(h) >= len(scheme) && strings.EqualFold(h[:len(scheme)], scheme) &&
		(len(h) == len(scheme) || h[len(scheme)] == ' ')
}

func parseAuthScheme(h, scheme string) (string, bool) {
	t, ok := cutScheme(h, scheme)
	if !ok || !isToken68(t) {
		return "", false
	}
	return t, true
}

// isToken68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// It runs over every token of every API request: one table lookup per
// byte instead of a chain of range tests.
func isToken68(t string) bool {
	i := 0
	for i < len(t) && token68Chars[t[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(t) && t[i] == '=' {
		i++
	}
	return i == len(t)
}

// token68Chars marks ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/".
var token68Chars = func() (tab [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		tab[c], tab[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		tab[c] = true
	}
	for _, c := range "-._~+/" {
		tab[c] = true
	}
	return tab
}()
