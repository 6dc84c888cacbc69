package core

import "time"

// The package's own tests (package core_test) reach these unexported
// helpers under their former exported names.
var (
	MatchRedirectURI    = matchRedirectURI
	ValidateRedirectURI = validateRedirectURI
	NarrowScope         = narrowScope
	ParseBearer         = parseBearer
	SafeDescription     = safeDescription
	VerifyPKCE          = verifyPKCE
)

// VerifyIDTokenHint is the logout endpoint's id_token_hint check.
func (s *Server) VerifyIDTokenHint(hint string) ([]string, string, error) {
	return s.verifyIDTokenHint(hint)
}

// SetCIMDTimeout shortens the client metadata document fetch timeout for
// the "slow document" tests; it returns a func restoring the old value.
// Call it before New.
func SetCIMDTimeout(d time.Duration) (restore func()) {
	old := cimdTimeout
	cimdTimeout = d
	return func() { cimdTimeout = old }
}

// ParseRegistration and ParseCIMD expose the registration body and client
// metadata document parsers to the fuzz targets.
func ParseRegistration(raw []byte) error {
	_, err := parseRegistration(raw)
	return err
}

// ValidateMetadata runs the registration metadata validation of s.
func (s *Server) ValidateMetadata(md *ClientMetadata) error {
	if e := s.validateMetadata(md); e != nil {
		return e
	}
	return nil
}

// ParseCIMD validates a client metadata document fetched from id.
func (s *Server) ParseCIMD(id string, body []byte) (*Client, error) { return s.parseCIMD(id, body) }

// CheckCIMDURL applies the client_id URL rules.
func CheckCIMDURL(raw string) error {
	_, err := checkCIMDURL(raw)
	return err
}
