package core

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/jose"
)

// Access token formats (Client.AccessTokenFormat, Config.AccessTokenFormat).
const (
	// FormatSealed is the kit's own opaque token, encrypted and
	// authenticated: the default and the fast path.
	FormatSealed = ""
	// FormatJWT is an RFC 9068 JWT access token signed by the OIDC
	// signing keys, which third-party resource servers verify with the
	// JWKS.
	FormatJWT = "jwt"
)

// jwtFormat is the RFC 9068 access token: header typ at+jwt, claims iss
// sub aud exp iat jti client_id scope, and the kit's own gid (the grant
// family, for revocation), pgid (an exchanged token's ParentGrantIDs,
// also for revocation), info (AdditionalInfo) and cc (client
// credentials).
type jwtFormat struct{ s *Server }

// jwtClaims is the claims set as the server reads it back.
type jwtClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Jti      string `json:"jti"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	GID      string `json:"gid"`
	Info     string `json:"info"`
	CC       bool   `json:"cc"`
	UIC      string `json:"uic"`
	Cnf      struct {
		JKT string `json:"jkt"`
		X5T string `json:"x5t#S256"`
	} `json:"cnf"`
	Act  *actClaim `json:"act"` // RFC 8693 §4.1
	PGID []string  `json:"pgid"`
}

// recognizes: a compact JWS starts with the base64url of `{"`, and no
// sealed token has dots where a JWS has them.
func (f jwtFormat) recognizes(tok string) bool {
	return strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2
}

func (f jwtFormat) mint(t TokenInfo) (string, string, error) {
	jti, err := newID()
	if err != nil {
		return "", "", err
	}
	o := newJSON(384)
	o.str("iss", t.Issuer)
	o.str("sub", t.Subject())
	o.str("aud", t.Audience)
	o.num("exp", t.ExpiresAt.Unix())
	o.num("iat", t.IssuedAt.Unix())
	o.str("jti", jti)
	o.str("client_id", t.ClientID)
	o.strIf("scope", t.Scope)
	o.str("gid", t.GrantID)
	if len(t.ParentGrantIDs) > 0 {
		o.strList("pgid", t.ParentGrantIDs)
	}
	o.strIf("info", t.AdditionalInfo)
	if t.ClientCredentials {
		o.boolean("cc", true)
	}
	o.strIf("uic", t.userinfoClaims)
	appendCnf(o, t.JKT, t.X5T) // RFC 9449 §6.1, RFC 8705 §3.1
	appendAct(o, t.Act)
	sg := f.s.signing.Load().signer(f.s.cfg.OIDC.AccessTokenAlg)
	if sg == nil { // the set is checked for it when installed; never a panic
		return "", "", errors.New("no signing key for JWT access tokens")
	}
	tok, err := sg.Sign("at+jwt", o.bytes())
	return tok, jti, err
}

func (f jwtFormat) open(tok string) (TokenInfo, error) {
	ks := f.s.signing.Load()
	h, payload, err := jose.Verify(tok, ks.verify, ks.verifyKey)
	// An id_token, or any other JWT of ours, is no access token (RFC 9068
	// §4, SECURITY.md R60).
	if err != nil || h.Typ != "at+jwt" {
		return TokenInfo{}, errBadToken
	}
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.GID == "" || c.Jti == "" || c.ClientID == "" || c.Sub == "" {
		return TokenInfo{}, errBadToken
	}
	info := TokenInfo{
		Issuer: c.Iss, Audience: c.Aud, UserID: c.Sub, ClientID: c.ClientID, Scope: c.Scope,
		GrantID: c.GID, TokenID: c.Jti, AdditionalInfo: c.Info, ClientCredentials: c.CC, userinfoClaims: c.UIC, JKT: c.Cnf.JKT, X5T: c.Cnf.X5T,
		IssuedAt: time.Unix(c.Iat, 0), ExpiresAt: time.Unix(c.Exp, 0),
	}
	if c.CC {
		info.UserID = ""
	}
	if c.Act != nil {
		if info.Act = c.Act.actor(); info.Act == nil {
			return TokenInfo{}, errBadToken
		}
	}
	if c.PGID != nil {
		if !validParents(c.PGID) {
			return TokenInfo{}, errBadToken
		}
		info.ParentGrantIDs = c.PGID
	}
	return info, nil
}

// appendCnf adds the confirmation claim of a bound token: jkt for a DPoP
// key, x5t#S256 for a certificate; nothing for a bearer token.
func appendCnf(o *jsonObj, jkt, x5t string) {
	if jkt == "" && x5t == "" {
		return
	}
	o.key("cnf")
	o.b = append(o.b, '{')
	if jkt != "" {
		o.b = append(o.b, `"jkt":`...)
		o.b = appendJSONString(o.b, jkt)
	}
	if x5t != "" {
		if jkt != "" {
			o.b = append(o.b, ',')
		}
		o.b = append(o.b, `"x5t#S256":`...)
		o.b = appendJSONString(o.b, x5t)
	}
	o.b = append(o.b, '}')
}

// formatFor is the format the client's access tokens are minted in.
func (s *Server) formatFor(c *Client) accessFormat {
	f := s.cfg.AccessTokenFormat
	if c != nil && c.AccessTokenFormat != "" {
		f = c.AccessTokenFormat
	}
	if f == FormatJWT && s.jwt != nil && s.profileOf(c) != ProfileDraft10 {
		return s.jwt
	}
	return s.access
}
