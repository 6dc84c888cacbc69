package core

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
