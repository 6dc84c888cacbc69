package core_test

import (
	"net/url"
	"testing"
)

// A code issued before RevokeUser is refused after it (invalid_grant, no
// refresh token stored), never redeemed into the revoked family; a code
// issued after it works.
func TestRevokeUserRefusesPendingCode(t *testing.T) {
	e := newEnv(t, false, quietLog)
	code := e.code("read")
	if n, err := e.srv.RevokeUser(t.Context(), "alice"); err != nil || n != 1 {
		t.Fatalf("RevokeUser: %d %v", n, err)
	}
	rts := e.refreshCount()
	w := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {confCB}, "code_verifier": {verifier}}, basic("conf", e.secret))
	wantTokenError(t, w, 400, "invalid_grant")
	if e.refreshCount() != rts {
		t.Errorf("a refresh token was stored for a revoked user's code")
	}
	if at, _ := e.redeem(e.code("read")); at == "" {
		t.Errorf("a code issued after the revocation did not redeem")
	}
}
