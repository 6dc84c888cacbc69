package core

import (
	"errors"
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
	// authorization grant shares it. A token issued by token exchange
	// starts a family of its own (the exchanging client's grant of the
	// user), and ParentGrantIDs names the families it descends from.
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
	// JKT is the RFC 7638 thumbprint of the DPoP key the token is bound to
	// (cnf.jkt, RFC 9449 §6), empty for a bearer token. A bound token is
	// accepted only with a proof of that key.
	JKT string
	// X5T is the x5t#S256 of the TLS client certificate the token is bound
	// to (cnf, RFC 8705 §3.1; CertificateThumbprint), empty for a token not
	// bound to one. CheckRequest accepts a bound token only from a request
	// that presents that certificate; CheckToken, which sees no request,
	// leaves the comparison to the caller. A token is never bound to both
	// a DPoP key and a certificate.
	X5T string
	// Act is the delegation chain of a token issued by token exchange
	// with an actor token (RFC 8693 §4.1): the party acting for the
	// subject, and in its Act the one before it. Nil for every other
	// token.
	Act *Actor
	// ParentGrantIDs are the families a token issued by token exchange
	// (RFC 8693) was exchanged from, nearest first: the subject token's
	// GrantID, then that token's own ParentGrantIDs (at most
	// MaxExchangeDepth in all). The token is revoked when its own family
	// or any of these is: revoking a grant revokes everything exchanged
	// from it, however far down, and revoking an exchanged token revokes
	// only its own family (and what was exchanged from it). Nil for every
	// other token.
	ParentGrantIDs []string
	// userinfoClaims are the claim names the claims request parameter
	// asked userinfo for (space-separated).
	userinfoClaims string
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
func (t *TokenInfo) HasScope(s string) bool { return hasScope(t.Scope, s) }

// accessFormat is one way of writing access tokens down. The server mints
// in one format (Server.access) and opens whichever format a presented
// token is in; the claims checks that make a token acceptable (issuer,
// audience, lifetime) are the server's, the same for every format. Today
// there is the sealed format; RFC 9068 JWTs will be a second
// implementation.
//
// Claims cross the interface by value: a pointer passed to a dynamic call
// escapes to the heap, which cost an allocation per token (measured).
type accessFormat interface {
	// mint returns the token carrying t, t.TokenID set to a new id.
	mint(t TokenInfo) (tok, tokenID string, err error)
	// open authenticates tok and returns its claims, unchecked.
	open(tok string) (TokenInfo, error)
	// recognizes reports, from the token's shape alone, whether tok is in
	// this format (so revocation and introspection know what they hold).
	recognizes(tok string) bool
}

// sealedFormat is the kit's own access token: the claims encrypted and
// authenticated (XChaCha20-Poly1305) under the key ring, opaque to
// everyone but the server, "at2.<kid>.<sealed claims>".
type sealedFormat struct{ s *Server }

const (
	atVersion             = 1
	flagDraft10           = 1
	flagClientCredentials = 2
	// flagBound marks a token bound to a DPoP key: its thumbprint follows
	// AdditionalInfo (tokens without the flag never carry it).
	flagBound = 4
	// flagCertBound marks a token bound to a TLS client certificate: its
	// x5t#S256 follows (after the DPoP thumbprint, if any).
	flagCertBound = 8
	// flagAct marks a token carrying a delegation chain (Act), written
	// after the certificate thumbprint (writeAct).
	flagAct = 16
	// flagParents marks an exchanged token naming the families it
	// descends from (ParentGrantIDs), written after the chain
	// (writeParents).
	flagParents = 32
)

func (f sealedFormat) recognizes(tok string) bool {
	return len(tok) > len(prefixAccess) && tok[len(prefixAccess)] == '.' && tok[:len(prefixAccess)] == prefixAccess
}

func (f sealedFormat) mint(t TokenInfo) (string, string, error) {
	jti, err := newID()
	if err != nil {
		return "", "", err
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
	if t.JKT != "" {
		flags |= flagBound
	}
	if t.X5T != "" {
		flags |= flagCertBound
	}
	if t.Act != nil {
		flags |= flagAct
	}
	if len(t.ParentGrantIDs) > 0 {
		flags |= flagParents
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
	if t.JKT != "" {
		w.str(t.JKT)
	}
	if t.X5T != "" {
		w.str(t.X5T)
	}
	if t.Act != nil {
		writeAct(&w, t.Act)
	}
	if len(t.ParentGrantIDs) > 0 {
		writeParents(&w, t.ParentGrantIDs)
	}
	if t.userinfoClaims != "" {
		w.str(t.userinfoClaims) // optional trailing field: older tokens end before it
	}
	tok, err := f.s.keys.seal(prefixAccess, w.b)
	return tok, jti, err
}

func (f sealedFormat) open(tok string) (TokenInfo, error) {
	var info TokenInfo
	// open decrypts into a buffer it allocates, sized to the token (a stack
	// buffer passed in would escape anyway: it reaches the AEAD through an
	// interface). Nothing else holds or writes that buffer afterwards, so
	// the claims are read from it as a string without a second copy: one
	// allocation per check instead of two.
	pt, err := f.s.keys.open(prefixAccess, tok, nil)
	if err != nil {
		return info, err
	}
	r := fieldReader{s: stringOf(pt)}
	if r.num() != atVersion {
		return info, errBadToken
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
	if flags&flagBound != 0 {
		if info.JKT = r.str(); info.JKT == "" {
			return info, errBadToken
		}
	}
	if flags&flagCertBound != 0 {
		if info.X5T = r.str(); info.X5T == "" {
			return info, errBadToken
		}
	}
	if flags&flagAct != 0 {
		if info.Act = readAct(&r); info.Act == nil {
			return info, errBadToken
		}
	}
	if flags&flagParents != 0 {
		if info.ParentGrantIDs = readParents(&r); info.ParentGrantIDs == nil {
			return info, errBadToken
		}
	}
	if !r.bad && r.off < len(r.s) {
		info.userinfoClaims = r.str()
	}
	if r.bad || r.off != len(r.s) {
		return info, errBadToken
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
	return info, nil
}

var (
	errTokenExpired = errors.New("oauth2kit: token expired")
	errTokenRevoked = errors.New("oauth2kit: token revoked")
)

// mintAccessToken writes the claims down in the server's access token
// format.
func (s *Server) mintAccessToken(c *Client, t *TokenInfo) (string, error) {
	if c != nil && c.boundCert != "" && t.JKT == "" {
		// The token request came with a certificate to bind to
		// (bindCertificate); a DPoP-bound token stays bound to its key only.
		t.X5T = c.boundCert
	}
	tok, jti, err := s.formatFor(c).mint(*t)
	t.TokenID = jti
	return tok, err
}

// formatOf returns the format tok is in, nil if none of the server's.
func (s *Server) formatOf(tok string) accessFormat {
	if s.access.recognizes(tok) {
		return s.access
	}
	if s.jwt != nil && s.jwt.recognizes(tok) {
		return s.jwt
	}
	return nil
}

// openAccessToken opens an access token and checks its own claims
// (issuer, audience, lifetime) without consulting storage. It fills info
// before it reports errTokenExpired for an authentic but expired token
// (draft-10 expired_token, revocation of expired tokens).
func (s *Server) openAccessToken(tok string, now time.Time, info *TokenInfo) error {
	f := s.formatOf(tok)
	if f == nil {
		return errBadToken
	}
	claims, err := f.open(tok)
	if err != nil {
		return err
	}
	*info = claims
	// A token minted by another deployment sharing keys by mistake, or for
	// another resource, is not ours to accept.
	if info.Issuer != s.cfg.Issuer || !s.ownAudience(info.Audience) {
		return errBadToken
	}
	// Reject lifetimes beyond what this server mints: a token with a
	// far-future exp can only come from a key compromise or a bug.
	// Whole seconds, no multiplication: nothing here can overflow whatever
	// the decoded values (iat is bounded on both sides first).
	iat, exp := info.IssuedAt.Unix(), info.ExpiresAt.Unix()
	if iat <= 0 || iat > now.Unix()+60 || exp < iat || exp-iat > int64(s.cfg.Lifetimes.AccessToken/time.Second)+60 {
		return errBadToken
	}
	if now.Unix() >= exp {
		return errTokenExpired
	}
	return nil
}
