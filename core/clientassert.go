package core

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojose "github.com/go-jose/go-jose/v4"

	"github.com/oauth2kit/oauth2kit/core/internal/fetch"
	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// private_key_jwt client authentication (RFC 7523 §2.2 and §3, OpenID
// Connect Core §9, FAPI 2.0 Security Profile §5.3.3; SECURITY.md R69): the
// client sends client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
// and client_assertion=<a JWT it signed>, and proves possession of a key of
// its registered key set (Client.JWKS, or the document at Client.JWKSURI).
//
// The assertion is accepted once: its jti is spent in the Storage's
// ReplayCache, so a copy replayed to another instance is refused too. A
// Storage without ReplayCache cannot serve private_key_jwt: such clients
// are refused (invalid_client, an error logged once) and the method is not
// advertised or accepted at registration.

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientAssertions configures private_key_jwt client authentication. Every
// zero value is the default named in its comment.
type ClientAssertions struct {
	// Algs are the JWS algorithms accepted
	// (token_endpoint_auth_signing_alg_values_supported): a subset of
	// RS256, PS256, ES256 and EdDSA. Default: all four.
	Algs []string
	// MaxLifetime bounds how far after its iat (or after now, without
	// iat) an assertion may expire: assertions are short-lived, and the
	// replay cache keeps each jti until its exp. Default 5 minutes, at
	// most 1 hour.
	MaxLifetime time.Duration
	// AcceptTokenEndpointAudience also accepts, for clients written
	// before RFC 7523bis and FAPI 2.0, the token endpoint URL as aud (a
	// string, or an array containing it or the issuer). Off by default:
	// aud must be the issuer identifier, as a single string.
	AcceptTokenEndpointAudience bool

	// AllowLoopbackForTests lets the jwks_uri fetcher connect to loopback
	// addresses on any port, and TLS sets its TLS configuration, so tests
	// can serve key sets from httptest. Never set them in a server that
	// faces the Internet.
	AllowLoopbackForTests bool
	TLS                   *tls.Config

	state *assertionState // built by New
}

const (
	// assertionSkew is how far in the future iat and nbf may be: the
	// client's clock may run ahead of ours.
	assertionSkew = 10 * time.Second
	// maxAssertionLifetime caps ClientAssertions.MaxLifetime.
	maxAssertionLifetime = time.Hour
	// jwksRefetch bounds fetches of one client's jwks_uri: an unknown kid
	// refetches the set at most this often, and a failed fetch is not
	// retried sooner.
	jwksRefetch = 30 * time.Second
	// Fetched key sets are cached by their Cache-Control (or Expires)
	// within [jwksMinAge, jwksMaxAge]; without caching headers
	// cimdDefaultAge (5 minutes). The floor holds even for no-store: the
	// unknown-kid refetch already picks up a rotation.
	jwksMinAge = time.Minute
	jwksMaxAge = time.Hour
	// maxJWKSBytes caps a fetched key set (jose.CheckPublicJWKS then
	// refuses more than 16 KiB).
	maxJWKSBytes = 64 << 10
	// maxKeySetEntries bounds the key set cache: clients (and client ID
	// metadata documents) are many.
	maxKeySetEntries = 4096
	// jwksTimeout bounds one jwks_uri fetch.
	jwksTimeout = 5 * time.Second
)

// assertionState is the per-server state of client assertions.
type assertionState struct {
	fetcher *fetch.Fetcher
	mu      sync.Mutex
	sets    map[string]*keySetEntry // "j|"+client id (jwks) or "u|"+client id (jwks_uri)
	// noReplayLogged is set once the missing ReplayCache was logged.
	noReplayLogged atomic.Bool
}

// keySetEntry is one client's parsed key set.
type keySetEntry struct {
	src   string      // the Client.JWKS or Client.JWKSURI it was built from
	keys  []clientKey // nil until a fetch succeeded
	until time.Time   // keys are used before
	// fetched is when the last fetch started (jwks_uri only): the
	// unknown-kid refetch and a failed fetch wait jwksRefetch after it.
	fetched  time.Time
	inflight chan struct{} // closed when the fetch in flight ends
}

// clientKey is one key of a client's set.
type clientKey struct {
	kid, alg string
	key      crypto.PublicKey
}

func (s *Server) setupClientAssertions() error {
	c := &s.cfg.ClientAssertions
	if len(c.Algs) == 0 {
		c.Algs = slices.Clone(jose.Algorithms)
	} else {
		algs := make([]string, 0, len(c.Algs))
		for _, a := range c.Algs {
			if !slices.Contains(jose.Algorithms, a) {
				return fmt.Errorf("oauth2kit: Config.ClientAssertions.Algs: %q is not one of %v", a, jose.Algorithms)
			}
			if !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
		c.Algs = algs
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = 5 * time.Minute
	}
	if c.MaxLifetime > maxAssertionLifetime {
		return errors.New("oauth2kit: Config.ClientAssertions.MaxLifetime is at most 1 hour")
	}
	// Always a new state: a Config copied from another Server must not
	// share its caches.
	c.state = &assertionState{
		fetcher: fetch.New(fetch.Options{MaxBytes: maxJWKSBytes, Timeout: jwksTimeout,
			AllowLoopbackForTests: c.AllowLoopbackForTests, TLS: c.TLS}),
		sets: map[string]*keySetEntry{},
	}
	return nil
}

// privateKeyJWTOffered reports whether the server can authenticate
// private_key_jwt clients: it needs the ReplayCache to spend jtis.
func (s *Server) privateKeyJWTOffered() bool {
	return s.caps.replay != nil && s.cfg.ClientAssertions.state != nil
}

// assertionFailure is why an assertion was refused: desc is the
// error_description, log the detail for the log; count makes it a failure
// for the authentication throttle.
type assertionFailure struct {
	desc, log string
	count     bool
}

const genericAuthFailure = "client authentication failed"

// authenticateAssertion authenticates a client by its client_assertion.
// bodyID is the request's client_id (optional; the assertion's sub names
// the client).
func (s *Server) authenticateAssertion(r Request, bodyID, assertionType, assertion string) (clientAuth, *oauthError) {
	if assertionType == "" || assertion == "" {
		return clientAuth{}, badRequest("client_assertion and client_assertion_type go together")
	}
	now, addr := s.now(), r.RemoteAddr()
	invalid := func(desc string) *oauthError { return oerr(400, ErrInvalidClient, desc) }
	if assertionType != ClientAssertionType {
		s.throttle.fail("", addr, now)
		s.clientAuthFailed(r, bodyID, "unsupported client_assertion_type")
		return clientAuth{}, invalid("the client_assertion_type is not supported")
	}
	id := unverifiedSubject(assertion)
	if id == "" {
		s.throttle.fail("", addr, now)
		s.clientAuthFailed(r, bodyID, "a client assertion naming no client")
		return clientAuth{}, invalid("the client_assertion is not a JWT naming its client in sub")
	}
	if bodyID != "" && bodyID != id {
		return clientAuth{}, badRequest("client_id differs from the client assertion's sub")
	}
	if wait := s.throttle.blocked(id, addr, now); wait > 0 {
		e := oerr(429, ErrInvalidClient, "too many failed authentication attempts; retry later")
		e.retryAfter = int(wait/time.Second) + 1
		s.clientAuthFailed(r, id, "throttled")
		return clientAuth{}, e
	}
	if len(id) > 128 {
		s.throttle.fail("", addr, now)
		s.clientAuthFailed(r, "", "oversized client id")
		return clientAuth{}, invalid(genericAuthFailure)
	}
	ctx := r.Context()
	c, err := s.getClient(ctx, id)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			s.log.ErrorContext(ctx, "oauth2kit: client lookup failed", "err", err)
			return clientAuth{}, storageError(err)
		}
		s.throttle.fail(id, addr, now)
		s.log.WarnContext(ctx, "oauth2kit: client authentication failed", "client_id", id, "remote", addr, "reason", "unknown client")
		s.clientAuthFailed(r, id, "unknown client")
		return clientAuth{}, invalid(genericAuthFailure)
	}
	if c.Public || c.AuthMethod != AuthPrivateKeyJWT {
		s.throttle.fail(id, addr, now)
		s.log.WarnContext(ctx, "oauth2kit: client authentication failed", "client_id", id, "remote", addr,
			"reason", "a client assertion from a client not registered for private_key_jwt")
		s.clientAuthFailed(r, id, "a client assertion from a client not registered for private_key_jwt")
		return clientAuth{}, invalid(genericAuthFailure)
	}
	if !s.privateKeyJWTOffered() {
		if st := s.cfg.ClientAssertions.state; st == nil || st.noReplayLogged.CompareAndSwap(false, true) {
			s.log.ErrorContext(ctx, "oauth2kit: private_key_jwt needs a Storage with core.ReplayCache; such clients cannot authenticate", "client_id", id)
		}
		return clientAuth{}, invalid("private_key_jwt is not available at this server")
	}
	jti, exp, f := s.checkAssertion(ctx, c, assertion, now)
	if f == nil {
		var fresh bool
		if fresh, err = s.spendAssertion(ctx, c.ID, jti, now, exp); err != nil {
			s.log.ErrorContext(ctx, "oauth2kit: recording a client assertion failed", "err", err)
			return clientAuth{}, storageError(err)
		}
		if !fresh {
			f = &assertionFailure{desc: "the client assertion was used before", log: "replayed assertion (jti seen before)", count: true}
		}
	}
	if f != nil {
		if f.count {
			s.throttle.fail(id, addr, now)
		}
		s.log.WarnContext(ctx, "oauth2kit: client authentication failed", "client_id", id, "remote", addr, "reason", f.log)
		s.clientAuthFailed(r, id, f.log)
		return clientAuth{}, invalid(f.desc)
	}
	return clientAuth{client: c}, nil
}

// spendAssertion records the assertion's jti in the ReplayCache until
// shortly after it expires, and reports whether it was fresh. The key
// names the client (another client's jti is another assertion) and holds
// the jti hashed, so it is bounded whatever the jti.
func (s *Server) spendAssertion(ctx context.Context, clientID, jti string, now, exp time.Time) (bool, error) {
	sum := sha256.Sum256([]byte(jti))
	key := "assertion|" + clientID + "|" + base64.RawURLEncoding.EncodeToString(sum[:])
	return s.caps.replay.Remember(ctx, key, now, exp.Add(assertionSkew))
}

// unverifiedSubject reads the sub of a compact JWS without verifying it:
// it only names the client whose keys then verify it. "" when there is
// none.
func unverifiedSubject(token string) string { return unverifiedClaimString(token, "sub") }

// checkAssertion verifies a client assertion of client c (a
// private_key_jwt client) at now: signature by one of its keys under an
// allowed algorithm, then the claims. It returns the jti and exp to spend.
func (s *Server) checkAssertion(ctx context.Context, c *Client, assertion string, now time.Time) (string, time.Time, *assertionFailure) {
	keyFail := func(err error) *assertionFailure {
		return &assertionFailure{desc: genericAuthFailure, log: err.Error(), count: true}
	}
	keys, err := s.clientKeys(ctx, c, now, false)
	if err != nil {
		return "", time.Time{}, keyFail(err)
	}
	algs := s.fapiAlgsFor(c, s.cfg.ClientAssertions.Algs)
	h, payload, unknownKID, err := verifyWithKeys(assertion, algs, keys)
	if err != nil && unknownKID && c.JWKSURI != "" {
		// The client may have rotated its keys: fetch its set again (at
		// most once per jwksRefetch) and retry.
		if keys, err = s.clientKeys(ctx, c, now, true); err != nil {
			return "", time.Time{}, keyFail(err)
		}
		h, payload, _, err = verifyWithKeys(assertion, algs, keys)
	}
	if err != nil {
		return "", time.Time{}, keyFail(err)
	}
	// The signature holds: from here on the client may learn what is
	// wrong with its assertion.
	if !assertionTyp(h.Typ) {
		return "", time.Time{}, &assertionFailure{desc: "the client assertion's typ is not a client authentication JWT", log: "typ " + strconv.Quote(h.Typ), count: true}
	}
	jti, exp, desc := s.checkAssertionClaims(c.ID, payload, now)
	if desc != "" {
		return "", time.Time{}, &assertionFailure{desc: desc, log: desc, count: true}
	}
	return jti, exp, nil
}

// assertionTyp accepts an assertion's typ header: none, JWT, or the
// explicit type of RFC 7523bis. Any other explicit type is another kind
// of token (an access token, a logout token...) and never an assertion.
func assertionTyp(typ string) bool {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	return typ == "" || t == "jwt" || t == "client-authentication+jwt"
}

// errNoKey is a token whose kid and alg fit none of the client's keys.
var errNoKey = errors.New("no key of the client fits the assertion's kid and alg")

// verifyWithKeys verifies token with one of keys: those whose kid is the
// token's (and, with none of those, those without a kid), or with a token
// without kid every key, in each case only keys of the type the alg needs
// and whose own alg, if any, is the token's. unknownKID reports a kid
// that none of the keys has.
func verifyWithKeys(token string, algs []string, keys []clientKey) (h jose.Header, payload []byte, unknownKID bool, err error) {
	var cands []crypto.PublicKey
	h, payload, err = jose.Verify(token, algs, func(kid, alg string) (crypto.PublicKey, error) {
		cands, unknownKID = keyCandidates(keys, kid, alg)
		if len(cands) == 0 {
			return nil, errNoKey
		}
		return cands[0], nil
	})
	// With several candidates (a set without kids), the first may not be
	// the one that signed: try the others, at most jose.MaxClientKeys.
	for i := 1; err != nil && i < len(cands) && i < jose.MaxClientKeys; i++ {
		k := cands[i]
		h, payload, err = jose.Verify(token, algs, func(string, string) (crypto.PublicKey, error) { return k, nil })
	}
	return h, payload, unknownKID, err
}

func keyCandidates(keys []clientKey, kid, alg string) (cands []crypto.PublicKey, unknownKID bool) {
	fits := func(k clientKey) bool { return (k.alg == "" || k.alg == alg) && jose.CheckKey(k.key, alg) == nil }
	if kid != "" {
		unknownKID = true
		for _, k := range keys {
			if k.kid == kid {
				unknownKID = false
				if fits(k) {
					cands = append(cands, k.key)
				}
			}
		}
		if !unknownKID {
			return cands, false
		}
	}
	for _, k := range keys {
		if (kid == "" || k.kid == "") && fits(k) {
			cands = append(cands, k.key)
		}
	}
	return cands, unknownKID
}

// checkAssertionClaims checks the verified payload of client clientID's
// assertion at now and returns its jti and exp, or why it is refused.
func (s *Server) checkAssertionClaims(clientID string, payload []byte, now time.Time) (jti string, exp time.Time, desc string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return "", time.Time{}, "the client assertion's payload is not a JSON object"
	}
	str := func(name string) (string, string) {
		v, ok, err := strClaim(m, name)
		switch {
		case err != nil:
			return "", "the client assertion's " + name + " is not a string"
		case !ok || v == "":
			return "", "the client assertion has no " + name
		}
		return v, ""
	}
	iss, d := str("iss")
	if d != "" {
		return "", time.Time{}, d
	}
	sub, d := str("sub")
	if d != "" {
		return "", time.Time{}, d
	}
	if iss != clientID || sub != clientID {
		return "", time.Time{}, "the client assertion's iss and sub must be the client_id"
	}
	if d := s.checkAssertionAudience(m["aud"]); d != "" {
		return "", time.Time{}, d
	}
	exp, hasExp, err := timeClaim(m, "exp")
	if err != nil {
		return "", time.Time{}, "the client assertion's exp is not a NumericDate"
	}
	if !hasExp {
		return "", time.Time{}, "the client assertion has no exp"
	}
	iat, hasIat, err := timeClaim(m, "iat")
	if err != nil {
		return "", time.Time{}, "the client assertion's iat is not a NumericDate"
	}
	nbf, hasNbf, err := timeClaim(m, "nbf")
	if err != nil {
		return "", time.Time{}, "the client assertion's nbf is not a NumericDate"
	}
	limit := now.Add(assertionSkew)
	switch {
	case !now.Before(exp):
		return "", time.Time{}, "the client assertion has expired"
	case hasIat && iat.After(limit):
		return "", time.Time{}, "the client assertion's iat is in the future"
	case hasNbf && nbf.After(limit):
		return "", time.Time{}, "the client assertion is not valid yet (nbf)"
	}
	base := now
	if hasIat {
		base = iat
	}
	if exp.Sub(base) > s.cfg.ClientAssertions.MaxLifetime {
		return "", time.Time{}, "the client assertion's lifetime (exp) is too long; at most " + s.cfg.ClientAssertions.MaxLifetime.String()
	}
	jti, d = str("jti")
	if d != "" {
		return "", time.Time{}, d
	}
	return jti, exp, ""
}

// checkAssertionAudience checks aud: the issuer identifier as a single
// string (RFC 7523bis, FAPI 2.0 §5.3.3); with AcceptTokenEndpointAudience
// also the token endpoint URL, or an array holding either.
func (s *Server) checkAssertionAudience(raw json.RawMessage) string {
	const bad = "the client assertion's aud must be the issuer identifier, as a single string"
	if raw == nil {
		return "the client assertion has no aud"
	}
	issuer, tokenURL := s.cfg.Issuer, s.cfg.Issuer+s.cfg.Paths.Token
	legacy := s.cfg.ClientAssertions.AcceptTokenEndpointAudience
	var one string
	if json.Unmarshal(raw, &one) == nil && raw[0] == '"' {
		if one == issuer || (legacy && one == tokenURL) {
			return ""
		}
		return bad
	}
	var list []string
	if raw[0] != '[' || json.Unmarshal(raw, &list) != nil {
		return "the client assertion's aud is not a string"
	}
	if legacy && (slices.Contains(list, issuer) || slices.Contains(list, tokenURL)) {
		return ""
	}
	return bad
}

// strClaim returns the string member name of m: ok false when absent, an
// error when it is not a JSON string (null included).
func strClaim(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok {
		return "", false, nil
	}
	var v string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		return "", true, errors.New("not a string")
	}
	return v, true, nil
}

// timeClaim returns the NumericDate member name of m (RFC 7519 §2: a JSON
// number of seconds, possibly fractional), between 1970 and year 5000.
func timeClaim(m map[string]json.RawMessage, name string) (time.Time, bool, error) {
	raw, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	if len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return time.Time{}, true, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > 95617584000 || math.IsNaN(f) {
		return time.Time{}, true, errors.New("not a NumericDate")
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)), true, nil
}

// clientKeys returns client c's keys: parsed from Client.JWKS, or fetched
// from Client.JWKSURI and cached. unknownKID asks for a refetch of the
// jwks_uri (an assertion named a kid the cached set lacks), which happens
// at most once per jwksRefetch for a client.
func (s *Server) clientKeys(ctx context.Context, c *Client, now time.Time, unknownKID bool) ([]clientKey, error) {
	st := s.cfg.ClientAssertions.state
	switch {
	case c.JWKS != "" && c.JWKSURI != "":
		return nil, errors.New("the client has both jwks and jwks_uri")
	case c.JWKS != "":
		return st.inlineKeys(c, now)
	case c.JWKSURI != "":
		return st.uriKeys(ctx, s, c, now, unknownKID)
	}
	return nil, errors.New("the client has no jwks or jwks_uri")
}

func (st *assertionState) inlineKeys(c *Client, now time.Time) ([]clientKey, error) {
	key := "j|" + c.ID
	st.mu.Lock()
	e := st.sets[key]
	st.mu.Unlock()
	if e != nil && e.src == c.JWKS {
		return e.keys, nil
	}
	keys, err := parseClientKeys([]byte(c.JWKS))
	if err != nil {
		return nil, fmt.Errorf("the client's jwks: %w", err)
	}
	st.mu.Lock()
	st.put(key, &keySetEntry{src: c.JWKS, keys: keys, until: now.Add(jwksMaxAge)}, now)
	st.mu.Unlock()
	return keys, nil
}

func (st *assertionState) uriKeys(ctx context.Context, s *Server, c *Client, now time.Time, unknownKID bool) ([]clientKey, error) {
	key, uri := "u|"+c.ID, c.JWKSURI
	for {
		st.mu.Lock()
		e := st.sets[key]
		if e == nil || e.src != uri {
			e = &keySetEntry{src: uri}
			st.put(key, e, now)
		}
		usable := e.keys != nil && now.Before(e.until)
		if ch := e.inflight; ch != nil {
			// Another request is fetching this set: its answer is as
			// fresh as ours would be.
			st.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			unknownKID = false
			continue
		}
		recent := !e.fetched.IsZero() && now.Sub(e.fetched) < jwksRefetch
		switch {
		case usable && (!unknownKID || recent):
			keys := e.keys
			st.mu.Unlock()
			return keys, nil
		case !usable && recent:
			st.mu.Unlock()
			return nil, errors.New("the client's jwks_uri could not be fetched recently; not retried yet")
		}
		ch := make(chan struct{})
		e.inflight, e.fetched = ch, now
		st.mu.Unlock()

		keys, age, err := st.fetchKeys(ctx, uri, now)

		st.mu.Lock()
		e.inflight = nil
		close(ch)
		if err == nil {
			e.keys, e.until = keys, now.Add(age)
		} else {
			s.log.InfoContext(ctx, "oauth2kit: fetching a client's jwks_uri failed", "client_id", c.ID, "err", err)
		}
		keys, usable = e.keys, e.keys != nil && now.Before(e.until)
		st.mu.Unlock()
		if !usable {
			return nil, fmt.Errorf("the client's jwks_uri: %w", err)
		}
		return keys, nil
	}
}

// fetchKeys fetches and parses a key set, and says how long to keep it.
func (st *assertionState) fetchKeys(ctx context.Context, uri string, now time.Time) ([]clientKey, time.Duration, error) {
	// The fetch is shared with concurrent requests and its outcome
	// cached: a client giving up must not fail it for the others.
	doc, err := st.fetcher.Get(context.WithoutCancel(ctx), uri)
	if err != nil {
		return nil, 0, err
	}
	keys, err := parseClientKeys(doc.Body)
	if err != nil {
		return nil, 0, err
	}
	age := cacheAge(doc, now, jwksMaxAge)
	return keys, max(age, jwksMinAge), nil
}

// put stores an entry, evicting expired ones (then arbitrary ones not
// being fetched) when the cache is full. Called with st.mu held.
func (st *assertionState) put(key string, e *keySetEntry, now time.Time) {
	if _, ok := st.sets[key]; !ok && len(st.sets) >= maxKeySetEntries {
		for k, v := range st.sets {
			if v.inflight == nil && !now.Before(v.until) {
				delete(st.sets, k)
			}
		}
		for k, v := range st.sets {
			if len(st.sets) < maxKeySetEntries {
				break
			}
			if v.inflight == nil {
				delete(st.sets, k)
			}
		}
	}
	st.sets[key] = e
}

// parseClientKeys validates a client's key set (jose.CheckPublicJWKS:
// public asymmetric keys only, at most jose.MaxClientKeys) and parses it.
func parseClientKeys(raw []byte) ([]clientKey, error) {
	if err := jose.CheckPublicJWKS(raw); err != nil {
		return nil, err
	}
	var set gojose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, err
	}
	keys := make([]clientKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		keys = append(keys, clientKey{kid: k.KeyID, alg: k.Algorithm, key: k.Key})
	}
	return keys, nil
}
