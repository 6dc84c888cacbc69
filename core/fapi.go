package core

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// The FAPI 2.0 Security Profile (final, §5): ProfileFAPI2 for a client
// (Client.Profile) or for every client (Config.Profile). Each rule is
// enforced where the request it governs is judged, and refused with the
// error the RFC behind it names:
//
//   - confidential clients only, authenticating with private_key_jwt or
//     mutual TLS (never a shared secret);
//   - authorization requests pushed (PAR) and naming their redirect_uri;
//     PKCE S256; nonce at most 64 characters;
//   - sender-constrained access tokens only (a DPoP proof, or a client
//     certificate binding);
//   - codes live at most 60 s;
//   - PS256, ES256 and EdDSA only: for id_tokens, client assertions and
//     DPoP proofs (RS256 is not allowed, §5.4.1).
//
// Refresh tokens of FAPI 2.0 clients do not rotate unless the client says
// RotationAlways (§5.3.2.1; see RefreshRotation). Codes are bound to the DPoP key with dpop_jkt, or by
// the proof sent with the push, as for every client.
const ProfileFAPI2 Profile = 2

// fapiMaxCode is the longest a FAPI 2.0 code may live (§5.3.2.1).
const fapiMaxCode = 60 * time.Second

// fapiAlgs are the JWS algorithms FAPI 2.0 allows (§5.4.1).
var fapiAlgs = []string{jose.PS256, jose.ES256, jose.EdDSA}

func (s *Server) fapi(c *Client) bool { return c != nil && s.profileOf(c) == ProfileFAPI2 }

// checkFAPIConfig refuses a server-wide FAPI 2.0 profile without what it
// needs.
func (s *Server) checkFAPIConfig() error {
	if s.cfg.Profile != ProfileFAPI2 {
		return nil
	}
	switch {
	case !s.cfg.PAR.Enabled:
		return errors.New("oauth2kit: Config.Profile FAPI 2.0 needs Config.PAR.Enabled")
	case !s.cfg.DPoP.Enabled && !s.mtlsEnabled():
		return errors.New("oauth2kit: Config.Profile FAPI 2.0 needs sender-constrained tokens: Config.DPoP or Config.MTLS")
	case s.cfg.Lifetimes.Code > fapiMaxCode:
		return errors.New("oauth2kit: Config.Profile FAPI 2.0 allows codes of at most 60 s (Config.Lifetimes.Code)")
	case s.cfg.ClientAssertions.AcceptTokenEndpointAudience:
		return errors.New("oauth2kit: Config.Profile FAPI 2.0 accepts only the issuer as client assertion audience")
	}
	if s.cfg.DPoP.Enabled {
		// Every proof is a FAPI client's: the allow-list itself narrows,
		// so the challenges, both metadata documents and the resource
		// checks agree without asking which client a token is for.
		if s.cfg.DPoP.Algs = fapiOnly(s.cfg.DPoP.Algs); len(s.cfg.DPoP.Algs) == 0 {
			return errors.New("oauth2kit: Config.Profile FAPI 2.0 allows DPoP proofs in PS256, ES256 or EdDSA only, and Config.DPoP.Algs has none")
		}
	}
	return nil
}

// fapiOnly is algs without what FAPI 2.0 does not allow.
func fapiOnly(algs []string) []string {
	return slices.DeleteFunc(slices.Clone(algs), func(a string) bool { return !slices.Contains(fapiAlgs, a) })
}

// fapiAuthorize checks a FAPI 2.0 client's authorization request before
// it is read: pushed, by a confidential client. (Pages: nothing is sent
// to a redirect URI of a request that was not pushed.)
func (s *Server) fapiAuthorize(c *Client, pushed bool) string {
	switch {
	case !s.fapi(c):
		return ""
	case c.Public:
		return "FAPI 2.0 clients are confidential"
	case !pushed:
		return "FAPI 2.0: push the authorization request first (pushed_authorization_request_endpoint)"
	}
	return ""
}

// fapiRequest checks what FAPI 2.0 adds to a valid authorization request
// (PAR or authorize): redirect_uri named, PKCE S256, nonce length.
func (s *Server) fapiRequest(c *Client, f *params, p *pending) *authzError {
	if !s.fapi(c) {
		return nil
	}
	switch {
	case f.get("redirect_uri") == "":
		return &authzError{code: ErrInvalidRequest, desc: "FAPI 2.0: the request must name its redirect_uri"}
	case p.challenge == "" || p.method != "S256":
		return &authzError{code: ErrInvalidRequest, desc: "FAPI 2.0: PKCE with S256 is required"}
	case len(f.get("nonce")) > 64:
		return &authzError{code: ErrInvalidRequest, desc: "FAPI 2.0: nonce is at most 64 characters"}
	}
	return nil
}

// fapiToken checks a FAPI 2.0 client's token request once its client
// authentication and DPoP proof are known: no secrets, sender-constrained
// tokens only.
func (s *Server) fapiToken(c *Client, jkt string) *oauthError {
	if !s.fapi(c) {
		return nil
	}
	switch {
	case c.Public:
		return oerr(400, ErrUnauthorizedClient, "FAPI 2.0 clients are confidential")
	case !fapiAuthMethod(c.AuthMethod):
		return oerr(401, ErrInvalidClient, "FAPI 2.0: authenticate with private_key_jwt or mutual TLS")
	case jkt == "" && !s.certBound(c):
		return oerr(400, ErrInvalidDPoPProof, "FAPI 2.0: access tokens must be sender-constrained: send a DPoP proof (or use mutual TLS)")
	}
	return nil
}

func fapiAuthMethod(m string) bool {
	return m == AuthPrivateKeyJWT || m == AuthTLSClientAuth || m == AuthSelfSignedTLSClientAuth
}

// fapiCodeLifetime is how long a code issued to clientID lives.
func (s *Server) fapiCodeLifetime(ctx context.Context, clientID string) time.Duration {
	d := s.cfg.Lifetimes.Code
	if d <= fapiMaxCode {
		return d
	}
	if c, err := s.getClient(ctx, clientID); err == nil && s.fapi(c) {
		return fapiMaxCode
	}
	return d
}

// fapiAlgsFor narrows an algorithm list for a FAPI 2.0 client.
func (s *Server) fapiAlgsFor(c *Client, algs []string) []string {
	if !s.fapi(c) {
		return algs
	}
	return fapiOnly(algs)
}

// fapiIDTokenAlg is the id_token algorithm of a FAPI 2.0 client whose
// registration says RS256 or nothing: the first allowed algorithm the
// server has a key for.
func (s *Server) fapiIDTokenAlg(c *Client) string {
	alg := c.IDTokenSignedResponseAlg
	if !s.fapi(c) || slices.Contains(fapiAlgs, alg) {
		return alg
	}
	ks := s.signing.Load()
	for _, a := range fapiAlgs {
		if ks != nil && ks.signers[a] != nil {
			return a
		}
	}
	return jose.PS256 // no key: mintIDToken reports it
}

// mtlsEnabled reports whether RFC 8705 is on (Config.MTLS.Enabled).
func (s *Server) mtlsEnabled() bool { return s.cfg.MTLS.Enabled }

// certBound reports whether the access tokens of this token request's
// client c (the copy client authentication returned) will be bound to its
// TLS client certificate.
func (s *Server) certBound(c *Client) bool { return c != nil && c.boundCert != "" }
