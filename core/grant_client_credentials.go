package core

import "context"

// clientCredentialsGrant is the client credentials grant (RFC 6749 §4.4):
// confidential clients only, no user, no refresh token.
var clientCredentialsGrant = grantType{
	name:   GrantClientCredentials,
	handle: (*Server).clientCredentials,
}

func (s *Server) clientCredentials(_ context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	if c.Public {
		return nil, oerr(400, ErrUnauthorizedClient, "client_credentials is for confidential clients")
	}
	scope, e := s.allowedScope(c, f.get("scope"))
	if e != nil {
		return nil, e
	}
	aud, e := s.clientAudience(resourceParam(f), scope)
	if e != nil {
		return nil, e
	}
	fam, err := newID()
	if err != nil {
		return nil, oerr(500, ErrServerError, "the server could not complete the request")
	}
	at, e := s.mintFor(c, TokenInfo{Scope: scope, GrantID: fam, ClientCredentials: true, Audience: aud, JKT: f.dpopJKT}, s.now())
	if e != nil {
		return nil, e
	}
	return &tokenResult{access: at, scope: scope, grantID: fam}, nil
}
