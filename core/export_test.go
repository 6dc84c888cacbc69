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
