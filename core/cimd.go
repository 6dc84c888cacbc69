package core

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/fetch"
)

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document):
// a client_id that is an https URL names the client's metadata. The
// document is fetched through the SSRF-safe fetcher, validated with the
// rules of dynamic registration plus the draft's own (its client_id is its
// URL, no shared secret), and cached within bounds. Nothing is stored: the
// client is whoever controls that URL.

const (
	// maxCIMDBytes caps a document (SECURITY.md R66: at most 5 KiB).
	maxCIMDBytes = 5 << 10
	// cimdDefaultAge is how long a document without caching headers is
	// kept: long enough for one authorization and its token request.
	cimdDefaultAge = 5 * time.Minute
	// maxCIMDEntries bounds the cache; an attacker can name any number of
	// URLs.
	maxCIMDEntries = 4096
)

// cimdFailuresPerAddr is how many unusable documents an address may name
// per 10 minutes before its requests for unknown documents are refused
// without a fetch.
const cimdFailuresPerAddr = 20

// cimdTimeout bounds one document fetch (R66: at most 5 s); a variable so
// tests can make "slow" mean milliseconds.
var cimdTimeout = 5 * time.Second

// cimdError is a client ID metadata document that could not be used; it
// is an unknown client (ErrNotFound) whose reason may be shown.
type cimdError struct{ reason string }

func (e *cimdError) Error() string { return "client metadata document: " + e.reason }
func (e *cimdError) Unwrap() error { return ErrNotFound }

type cimdResolver struct {
	// failures counts the addresses whose authorization requests named
	// documents that could not be used: each costs the server a fetch
	// (up to 5 s of one of 16 slots), so one address may not keep asking.
	failures *throttle
	fetcher  *fetch.Fetcher
	maxAge   time.Duration
	mu       sync.Mutex
	cache    map[string]cimdEntry
}

type cimdEntry struct {
	c     *Client
	until time.Time
}

func (s *Server) setupCIMD() error {
	c := &s.cfg.CIMD
	if !c.Enabled {
		return nil
	}
	if c.MaxCacheAge <= 0 {
		c.MaxCacheAge = time.Hour
	}
	s.cimd = &cimdResolver{
		fetcher: fetch.New(fetch.Options{MaxBytes: maxCIMDBytes, Timeout: cimdTimeout,
			AllowLoopbackForTests: c.AllowLoopbackForTests, TLS: c.TLS}),
		maxAge:   c.MaxCacheAge,
		cache:    map[string]cimdEntry{},
		failures: newThrottle(0, cimdFailuresPerAddr, false, 10*time.Minute),
	}
	return nil
}

// isCIMDClientID reports whether id names a client metadata document on
// this server.
func (s *Server) isCIMDClientID(id string) bool {
	return s.cimd != nil && strings.HasPrefix(id, "https://")
}

// unverifiedClient reports whether the client's name and URIs are only
// its own claims: dynamically registered or described by a metadata
// document. Its consent is asked every time unless the app says otherwise.
func (s *Server) unverifiedClient(c *Client) (unverified, remember bool) {
	switch {
	case c.Dynamic:
		return true, s.cfg.Registration.RememberConsent
	case s.isCIMDClientID(c.ID):
		return true, s.cfg.CIMD.RememberConsent
	}
	return false, true
}

// checkCIMDURL applies the draft's rules for a client_id URL: https, a
// path, no fragment, userinfo, query or dot segments (each would let one
// document answer for many client_ids, or two spellings for one).
func checkCIMDURL(raw string) (*url.URL, error) {
	if len(raw) > 128 {
		return nil, &cimdError{"a client_id URL is at most 128 bytes here"}
	}
	u, err := fetch.CheckURL(raw)
	if err != nil {
		return nil, &cimdError{"the client_id is not an https URL without userinfo or fragment"}
	}
	switch {
	case u.RawQuery != "" || strings.Contains(raw, "?"):
		return nil, &cimdError{"the client_id URL has a query"}
	case u.Path == "" || u.Path == "/":
		return nil, &cimdError{"the client_id URL has no path"}
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if d, err := url.PathUnescape(seg); err != nil || d == "." || d == ".." { // ".%2e" and "%2e." too
			return nil, &cimdError{"the client_id URL has dot segments"}
		}
	}
	return u, nil
}

// cimdClient returns the client a metadata document describes, from the
// cache or fetched.
func (s *Server) cimdClient(ctx context.Context, id string) (*Client, error) {
	now := s.now()
	res := s.cimd
	res.mu.Lock()
	e, ok := res.cache[id]
	res.mu.Unlock()
	if ok && now.Before(e.until) {
		cp := *e.c
		return &cp, nil
	}
	if _, err := checkCIMDURL(id); err != nil {
		return nil, err
	}
	doc, err := res.fetcher.Get(ctx, id)
	if err != nil {
		s.log.InfoContext(ctx, "oauth2kit: fetching a client metadata document failed", "client_id", id, "err", err)
		return nil, &cimdError{fetchReason(err)}
	}
	c, err := s.parseCIMD(id, doc.Body)
	if err != nil {
		s.log.InfoContext(ctx, "oauth2kit: a client metadata document was refused", "client_id", id, "err", err)
		return nil, err
	}
	// Only a valid document is cached; errors are tried again next time.
	if age := cacheAge(doc, now, res.maxAge); age > 0 {
		res.put(id, cimdEntry{c: c, until: now.Add(age)}, now)
	}
	cp := *c
	return &cp, nil
}

func (r *cimdResolver) put(id string, e cimdEntry, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxCIMDEntries {
		for k, v := range r.cache {
			if !now.Before(v.until) {
				delete(r.cache, k)
			}
		}
		for k := range r.cache { // still full: drop arbitrary entries
			if len(r.cache) < maxCIMDEntries {
				break
			}
			delete(r.cache, k)
		}
	}
	r.cache[id] = e
}

// fetchReason says why a fetch failed without echoing what the remote
// sent.
func fetchReason(err error) string {
	switch {
	case errors.Is(err, fetch.ErrURL):
		return "the URL may not be fetched"
	case errors.Is(err, fetch.ErrAddress):
		// Said like any other failure: telling "resolves to a private
		// address" apart would map the internal network for anyone.
		return "the document could not be fetched"
	case errors.Is(err, fetch.ErrStatus):
		return "the document's server did not answer 200"
	case errors.Is(err, fetch.ErrTooLarge):
		return "the document is larger than " + strconv.Itoa(maxCIMDBytes) + " bytes"
	}
	return "the document could not be fetched"
}

// cacheAge is how long a fetched document may be kept: nothing with
// no-store or no-cache, else its max-age, else its Expires (RFC 9111
// §4.2.1), else the default; never more than maxAge.
func cacheAge(doc *fetch.Result, now time.Time, maxAge time.Duration) time.Duration {
	age, explicit := cimdDefaultAge, false
	for _, d := range strings.Split(strings.ToLower(doc.CacheControl), ",") {
		d = strings.TrimSpace(d)
		if d == "no-store" || d == "no-cache" {
			return 0
		}
		if v, ok := strings.CutPrefix(d, "max-age="); ok {
			n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64)
			if err != nil || n < 0 {
				return 0
			}
			age, explicit = time.Duration(min(n, 1<<31))*time.Second, true
		}
	}
	if !explicit && doc.Expires != "" {
		t, err := http.ParseTime(doc.Expires)
		if err != nil {
			return 0
		}
		age = t.Sub(now)
	}
	return max(0, min(age, maxAge))
}

// cimdDocument is a client metadata document: client metadata plus the
// members that must (client_id) or must not (secrets) be there.
type cimdDocument struct {
	ClientMetadata
	ClientID              string          `json:"client_id"`
	ClientSecret          json.RawMessage `json:"client_secret,omitempty"`
	ClientSecretExpiresAt json.RawMessage `json:"client_secret_expires_at,omitempty"`
	// TokenEndpointAuthSigningAlg is validated, not kept (as at
	// registration).
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
}

// parseCIMD validates a document fetched from id and returns its client.
func (s *Server) parseCIMD(id string, body []byte) (*Client, error) {
	var doc cimdDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &cimdError{"the document is not a JSON object of client metadata"}
	}
	switch {
	case doc.ClientID != id:
		return nil, &cimdError{"the document's client_id is not its URL"}
	case doc.ClientSecret != nil || doc.ClientSecretExpiresAt != nil:
		return nil, &cimdError{"the document carries a client secret"}
	}
	md := &doc.ClientMetadata
	switch md.TokenEndpointAuthMethod {
	case "", AuthNone:
		md.TokenEndpointAuthMethod = AuthNone
	case AuthPrivateKeyJWT:
		// Checked by validateMetadata: jwks or jwks_uri, and a server
		// that can spend assertion jtis.
	default:
		return nil, &cimdError{"a client metadata document cannot use a shared secret"}
	}
	if len(md.RedirectURIs) == 0 {
		return nil, &cimdError{"the document has no redirect_uris"}
	}
	if e := s.validateMetadata(md); e != nil {
		return nil, &cimdError{e.desc}
	}
	if e := s.checkAuthSigningAlg(doc.TokenEndpointAuthSigningAlg); e != nil {
		return nil, &cimdError{e.desc}
	}
	if slices.Contains(md.GrantTypes, GrantClientCredentials) {
		// Whoever controls a URL can publish a document: tokens without
		// a user are for clients this server registered.
		return nil, &cimdError{"a client metadata document cannot use client_credentials"}
	}
	scopes, _ := parseScope(md.Scope)
	c := &Client{
		ID: id, Name: md.ClientName, RedirectURIs: md.RedirectURIs, Public: true, AuthMethod: md.TokenEndpointAuthMethod,
		GrantTypes: md.GrantTypes, Scopes: scopes, IDTokenSignedResponseAlg: md.IDTokenSignedResponseAlg,
		PostLogoutRedirectURIs: md.PostLogoutRedirectURIs, Metadata: string(body),
		BackchannelLogoutURI: md.BackchannelLogoutURI, BackchannelLogoutSessionRequired: md.BackchannelLogoutSessionRequired,
	}
	if md.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
		// Confidential: it proves possession of a key the document
		// names, never a shared secret.
		c.Public = false
		if md.JWKS != nil {
			raw, err := json.Marshal(md.JWKS)
			if err != nil {
				return nil, &cimdError{"the document's jwks cannot be used"}
			}
			c.JWKS = string(raw)
		} else {
			c.JWKSURI = md.JWKSURI
		}
	}
	return c, nil
}

// redirectHost is the host the consent page names for an unverified
// client: where the user's authorization will be sent.
func redirectHost(redirect string) string {
	u, err := url.Parse(redirect)
	if err != nil || u.Host == "" {
		if err == nil {
			return u.Scheme + ":"
		}
		return ""
	}
	return u.Host
}
