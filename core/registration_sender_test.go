package core_test

import (
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// Registration accepts the RFC 8705 methods, DPoP and PAR requirements
// when the server has them, and the client registered is the client
// enforced: a tls_client_auth client gets certificate-bound tokens with
// its certificate and is refused without it.
func TestRegisterSenderConstrainedClient(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ca := newTestCA(t, "Test CA", now)
	e := newEnv(t, true, quietLog, openRegistration, withCCRegistration, mtlsOn(ca), dpopOn, parOn)
	w := e.register(`{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"`+clientDN+`",
		"grant_types":["client_credentials"],"tls_client_certificate_bound_access_tokens":true,"dpop_bound_access_tokens":false}`, nil, "")
	got := w.json(t)
	id, _ := got["client_id"].(string)
	if w.status != 201 || id == "" || got["client_secret"] != nil || got["tls_client_auth_subject_dn"] != clientDN || got["tls_client_certificate_bound_access_tokens"] != true {
		t.Fatalf("register: %d %s", w.status, w.body)
	}
	c, err := e.store.GetClient(t.Context(), id)
	if err != nil || c.AuthMethod != core.AuthTLSClientAuth || c.TLSClientAuthSubjectDN != clientDN || !c.TLSClientCertificateBoundAccessTokens || c.SecretHash != "" {
		t.Fatalf("stored %+v, %v", c, err)
	}
	cert := ca.issue(clientSubject, e.now)
	w = e.send(form("/oauth2/token", ccForm(id), nil, cert))
	wantStatus(t, "token with the certificate", w, 200, "")
	if info, rerr := e.srv.CheckRequest(certReq{resourceReq("Bearer "+w.json(t)["access_token"].(string), ""), nil}); rerr == nil {
		t.Errorf("bound token accepted without the certificate: %+v", info)
	}
	wantStatus(t, "token without a certificate", e.send(form("/oauth2/token", ccForm(id), nil)), 400, core.ErrInvalidClient)

	w = e.register(`{"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb"],"dpop_bound_access_tokens":true,"require_pushed_authorization_requests":true}`, nil, "")
	if w.status != 201 {
		t.Fatalf("register DPoP + PAR: %d %s", w.status, w.body)
	}
	if c, err := e.store.GetClient(t.Context(), w.json(t)["client_id"].(string)); err != nil || !c.DPoPBoundAccessTokens || !c.RequirePAR {
		t.Errorf("stored %+v, %v: want DPoP and PAR required", c, err)
	}

	for name, body := range map[string]string{
		"two names":                 `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=a","tls_client_auth_san_dns":"a.example","grant_types":["client_credentials"]}`,
		"no name":                   `{"token_endpoint_auth_method":"tls_client_auth","grant_types":["client_credentials"]}`,
		"bad DN":                    `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"not a dn","grant_types":["client_credentials"]}`,
		"keys with tls_client_auth": `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_dns":"a.example","jwks_uri":"https://a.example/jwks","grant_types":["client_credentials"]}`,
		"name for another method":   `{"token_endpoint_auth_method":"client_secret_basic","tls_client_auth_san_dns":"a.example","grant_types":["client_credentials"]}`,
		"self-signed without keys":  `{"token_endpoint_auth_method":"self_signed_tls_client_auth","grant_types":["client_credentials"]}`,
		"client_secret_jwt":         `{"token_endpoint_auth_method":"client_secret_jwt","grant_types":["client_credentials"]}`,
	} {
		if w := e.register(body, nil, ""); w.status != 400 || w.json(t)["error"] != core.ErrInvalidClientMetadata {
			t.Errorf("%s: %d %s", name, w.status, w.body)
		}
	}

	// Without the features, asking for them is refused, not ignored.
	plain := newEnv(t, true, quietLog, openRegistration, withCCRegistration)
	for name, body := range map[string]string{
		"tls_client_auth":   `{"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_dns":"a.example","grant_types":["client_credentials"]}`,
		"bound to the cert": `{"grant_types":["client_credentials"],"tls_client_certificate_bound_access_tokens":true}`,
		"DPoP":              `{"grant_types":["client_credentials"],"dpop_bound_access_tokens":true}`,
		"PAR":               `{"redirect_uris":["https://a.example/cb"],"require_pushed_authorization_requests":true}`,
	} {
		if w := plain.register(body, nil, ""); w.status != 400 || w.json(t)["error"] != core.ErrInvalidClientMetadata {
			t.Errorf("%s without the feature: %d %s", name, w.status, w.body)
		}
	}
}

// Under a server-wide FAPI 2.0 profile only FAPI methods can register.
func TestRegisterUnderFAPI2(t *testing.T) {
	p := newPKEnv(t, true, parOn, dpopOn, openRegistration, func(c *core.Config) {
		c.Profile = core.ProfileFAPI2
		c.Lifetimes.Code = time.Minute
	})
	for _, m := range []string{"none", "client_secret_basic", "client_secret_post"} {
		if w := p.register(`{"token_endpoint_auth_method":"`+m+`","redirect_uris":["https://a.example/cb"]}`, nil, ""); w.status != 400 || w.json(t)["error"] != core.ErrInvalidClientMetadata {
			t.Errorf("%s under FAPI 2.0: %d %s", m, w.status, w.body)
		}
	}
	if w := p.register(`{"token_endpoint_auth_method":"private_key_jwt","redirect_uris":["https://a.example/cb"],"jwks":`+jwks(p.es)+`}`, nil, ""); w.status != 201 {
		t.Errorf("private_key_jwt under FAPI 2.0: %d %s", w.status, w.body)
	}
}
