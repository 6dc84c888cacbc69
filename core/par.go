package core

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Pushed authorization requests (RFC 9126): the client POSTs its
// authorization request, authenticated, to the PAR endpoint and gets a
// request_uri to send the browser with instead. The parameters never
// travel through the browser, cannot be altered there, and are checked
// before the user sees anything.
//
// The request_uri is the pushed request itself, sealed (encrypted and
// authenticated under the key ring) with its client and expiry: nothing
// is stored until it is used, any instance can open it, and it is
// unguessable. It is spent — in the store's ReplayCache, so once across
// all instances — when the authorization completes with a code, not when
// the login page is first shown: a reload or a second tab of the same
// flow does not break it, and still only one code is ever issued for it.

// PAR configures pushed authorization requests.
type PAR struct {
	Enabled bool
	// Required makes every client push its requests
	// (require_pushed_authorization_requests); Client.RequirePAR does so
	// for one client.
	Required bool
	// Lifetime of a request_uri: default 60 s, at most 10 minutes
	// (RFC 9126 §2.2, SECURITY.md R67).
	Lifetime time.Duration
}

var epPAR = endpoint{field: "Paths.PAR", path: func(c *Config) *string { return &c.Paths.PAR }, def: "/oauth2/par",
	methods: []string{"POST"}, allow: hdrAllowPost, meta: "pushed_authorization_request_endpoint", serve: (*Server).par}

const (
	requestURIPrefix = "urn:ietf:params:oauth:request_uri:"
	prefixPushed     = "par1"
	// maxPushedBytes bounds a pushed request: it travels back in the
	// request_uri, which must fit in a URL (about 4 KiB once sealed).
	maxPushedBytes = 3 << 10
)

func (s *Server) setupPAR() error {
	c := &s.cfg.PAR
	if !c.Enabled {
		return nil
	}
	if s.caps.replay == nil {
		return fmt.Errorf("%w (Config.PAR: a request_uri is used once across instances)", missing("ReplayCache"))
	}
	if c.Lifetime <= 0 {
		c.Lifetime = time.Minute
	}
	if c.Lifetime > 10*time.Minute {
		return errors.New("oauth2kit: Config.PAR.Lifetime is at most 10 minutes (RFC 9126 §2.2)")
	}
	return nil
}

// authParams are the client authentication parameters of a pushed
// request: they authenticate the push and never travel on.
var authParams = []string{"client_secret", "client_assertion", "client_assertion_type"}

func (s *Server) par(w Responder, r Request) {
	if !isForm(r) {
		sendError(w, badRequest("the pushed request must be a form"), false)
		return
	}
	raw, err := readBody(r, s.cfg.Limits.MaxBodyBytes)
	if err != nil {
		sendError(w, badRequest("the request body must be a form of limited size"), false)
		return
	}
	var f params
	var dups []string
	if err := parseParamsDups(raw, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &f, &dups); err != nil {
		sendError(w, badRequest("malformed or oversized request parameters"), false)
		return
	}
	if q := r.RawQuery(); q != "" {
		sendError(w, badRequest("the pushed request goes in the body, not the URI"), false)
		return
	}
	ca, e := s.authenticateClient(r, &f, true)
	if e != nil {
		sendError(w, e, false)
		return
	}
	c := ca.client
	s.corsForClient(w, r, c)
	if s.fapi(c) && (c.Public || !fapiAuthMethod(c.AuthMethod)) {
		sendError(w, oerr(401, ErrInvalidClient, "FAPI 2.0: push with private_key_jwt or mutual TLS"), false)
		return
	}
	switch {
	case f.get("request_uri") != "":
		sendError(w, badRequest("request_uri cannot be pushed (RFC 9126 §2.1)"), false)
		return
	case f.get("request") != "":
		sendError(w, oerr(400, ErrRequestNotSupported, "request objects are not supported"), false)
		return
	}
	// A DPoP proof with the push binds the code to its key (RFC 9449
	// §10.1), as dpop_jkt would; both must then agree.
	if h := r.Header("DPoP"); len(h) > 0 && s.cfg.DPoP.Enabled {
		if len(h) > 1 {
			sendError(w, oerr(400, ErrInvalidDPoPProof, "one DPoP proof per request"), false)
			return
		}
		proof, e := s.checkProof(r.Context(), h[0], "POST", s.cfg.Issuer+s.cfg.Paths.PAR, "", s.fapiAlgsFor(c, s.cfg.DPoP.Algs))
		if e != nil {
			if e.code == ErrUseDPoPNonce {
				w.SetHeader("DPoP-Nonce", s.dpopNonces.Issue(s.now()))
			}
			sendError(w, e, false)
			return
		}
		if jkt := f.get("dpop_jkt"); jkt != "" && jkt != proof.JKT {
			sendError(w, oerr(400, ErrInvalidDPoPProof, "dpop_jkt is not the proof's key"), false)
			return
		}
		if f.get("dpop_jkt") == "" {
			f.keys, f.vals = append(f.keys, "dpop_jkt"), append(f.vals, proof.JKT)
		}
	}
	// The pushed parameters without the credentials, as authorize will
	// read them; client_id is the authenticated client's.
	var b strings.Builder
	for i, k := range f.keys {
		if k == "client_id" || isAuthParam(k) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		writeQueryEscaped(&b, k)
		b.WriteByte('=')
		writeQueryEscaped(&b, f.vals[i])
	}
	pushed := b.String()
	if len(pushed) > maxPushedBytes {
		sendError(w, badRequest(fmt.Sprintf("the pushed request is larger than %d bytes", maxPushedBytes)), false)
		return
	}
	var pf params
	var pdups []string
	_ = parseParamsDups(pushed, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &pf, &pdups)
	pdups = append(pdups, dups...)
	if _, ae := s.readAuthorization(c, &pf, pushed, pdups); ae != nil {
		// Nothing was redirected yet: every refusal is the endpoint's
		// JSON answer (RFC 9126 §2.3).
		sendError(w, oerr(400, ae.code, ae.desc), false)
		return
	}
	exp := s.now().Add(s.cfg.PAR.Lifetime)
	fw := fieldWriter{b: make([]byte, 0, 32+len(c.ID)+len(pushed))}
	fw.num(exp.Unix())
	fw.str(c.ID)
	fw.str(pushed)
	sealed, err := s.keys.seal(prefixPushed, fw.b)
	if err != nil {
		sendError(w, oerr(500, ErrServerError, "the server could not complete the request"), false)
		return
	}
	o := newJSON(len(sealed) + 96)
	o.str("request_uri", requestURIPrefix+sealed)
	o.num("expires_in", int64(s.cfg.PAR.Lifetime/time.Second))
	sendJSON(w, 201, o.bytes())
}

func isAuthParam(k string) bool {
	for _, a := range authParams {
		if k == a {
			return true
		}
	}
	return false
}

// openPushed opens a request_uri for clientID: the pushed parameters and
// the signature under which the request is spent (spendPushed, when the
// code is issued). It refuses another client's request_uri and an expired
// one.
func (s *Server) openPushed(ru, clientID string) (raw, sig string, ok bool) {
	sealed, found := strings.CutPrefix(ru, requestURIPrefix)
	if !found || len(sealed) > 8<<10 {
		return "", "", false
	}
	pt, err := s.keys.open(prefixPushed, sealed, nil)
	if err != nil {
		return "", "", false
	}
	r := fieldReader{s: string(pt)}
	exp := r.num()
	cid, pushed := r.str(), r.str()
	if r.bad || r.off != len(r.s) || cid != clientID || s.now().Unix() >= exp {
		return "", "", false
	}
	sum := sha256.Sum256([]byte(sealed))
	return pushed, base64.RawURLEncoding.EncodeToString(sum[:]), true
}

// spendPushed uses up the pushed request behind p, once across all
// instances; it reports false (having answered) when it was used before.
func (s *Server) spendPushed(w Responder, r Request, p *pending) bool {
	if p.par == "" {
		return true
	}
	now := s.now()
	fresh, err := s.caps.replay.Remember(r.Context(), "par|"+p.par, now, now.Add(10*time.Minute+time.Minute))
	if err != nil {
		s.log.ErrorContext(r.Context(), "oauth2kit: spending a pushed request failed", "err", err)
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
		return false
	}
	if !fresh {
		s.log.WarnContext(r.Context(), "oauth2kit: a pushed request was used twice; refused", "client_id", p.clientID)
		s.errorPage(w, r, 400, ErrInvalidRequest, "this request_uri was used already; start again from the application")
		return false
	}
	return true
}
