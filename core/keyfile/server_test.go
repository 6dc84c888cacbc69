package keyfile_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/core/keyfile"
	"github.com/oauth2kit/oauth2kit/core/memstore"
)

// The server is driven through core's own Request/Responder seam, as an
// in-house HTTP stack would: the root module cannot import the adapters.
type request struct {
	method, path, body string
	header             http.Header
}

func (r request) Context() context.Context    { return context.Background() }
func (r request) Method() string              { return r.method }
func (r request) Path() string                { return r.path }
func (r request) RawQuery() string            { return "" }
func (r request) Header(name string) []string { return r.header.Values(name) }
func (r request) Body() io.Reader             { return strings.NewReader(r.body) }
func (r request) RemoteAddr() string          { return "127.0.0.1:50000" }
func (r request) TLS() bool                   { return false }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (w *response) SetHeader(k, v string) { w.header.Set(k, v) }
func (w *response) AddHeader(k, v string) { w.header.Add(k, v) }
func (w *response) Send(status int, body []byte) error {
	w.status, w.body = status, body
	return nil
}

// noLogin is an Authenticator for servers that only serve
// client_credentials.
type noLogin struct{}

func (noLogin) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}
func (noLogin) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	_ = w.Send(http.StatusForbidden, nil)
}

const (
	svcID     = "svc"
	svcSecret = "a client secret of forty characters, ok!"
)

// server builds a Server from kf over store, as an instance started on
// the key file would.
func server(t *testing.T, kf *keyfile.File, store *memstore.Store, now func() time.Time) *core.Server {
	t.Helper()
	cfg := core.Config{Issuer: "https://auth.example.com", Now: now}
	kf.Apply(&cfg)
	srv, err := core.New(cfg, store, noLogin{})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// mint gets an access token from srv's token endpoint.
func mint(t *testing.T, srv *core.Server) string {
	t.Helper()
	w := &response{header: http.Header{}}
	srv.Handle(w, request{method: "POST", path: "/oauth2/token", body: "grant_type=client_credentials",
		header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {core.EncodeBasic(svcID, svcSecret)}}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.body, &tok); w.status != http.StatusOK || err != nil || tok.AccessToken == "" {
		t.Fatalf("token endpoint: %d %s", w.status, w.body)
	}
	return tok.AccessToken
}

// A token minted by a server built from the key file keeps working on a
// server built from the file after Rotate, and stops once its generation
// retired.
func TestServersAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	store := memstore.New()
	c, _, err := core.NewClient(core.ClientSpec{ID: svcID, Secret: svcSecret, GrantTypes: []string{core.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	store.AddClient(c)
	ctx := context.Background()

	kf, err := keyfile.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	before := server(t, kf, store, nil)
	old := mint(t, before)
	if !strings.HasPrefix(old, "at2."+kf.Current.ID+".") {
		t.Fatalf("token %.12s… does not name the file's generation %s", old, kf.Current.ID)
	}

	rotated, err := keyfile.Rotate(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	after := server(t, reloaded, store, nil)
	if _, err := after.CheckToken(ctx, old); err != nil {
		t.Errorf("the rotated server refuses the old generation's token: %v", err)
	}
	fresh := mint(t, after)
	if !strings.HasPrefix(fresh, "at2."+rotated.Current.ID+".") {
		t.Errorf("the rotated server mints with %.12s…, want generation %s", fresh, rotated.Current.ID)
	}
	if _, err := after.CheckToken(ctx, fresh); err != nil {
		t.Errorf("the rotated server refuses its own token: %v", err)
	}
	// An instance still on the old file does not know the new generation
	// (why the package says to restart every instance after a rotation).
	if _, err := before.CheckToken(ctx, fresh); err == nil {
		t.Error("a server on the old file accepts the new generation's token")
	}

	// After the retire time (one minute; the token itself lives an hour),
	// a server built from the file no longer accepts the old generation,
	// and the file's own Prune deletes it.
	later := func() time.Time { return reloaded.Previous[0].RetireAfter.Add(time.Second) }
	if _, err := server(t, reloaded, store, later).CheckToken(ctx, old); err == nil {
		t.Error("a server built after the retire time accepts the retired generation's token")
	}
	// The control: at the same time, with the generation kept, the token
	// is still valid, so what refused it above is the retirement.
	cfg := core.Config{Issuer: "https://auth.example.com", Now: later}
	reloaded.Apply(&cfg)
	cfg.VerifyKeys = []core.Keys{reloaded.Previous[0].Keys()}
	kept, err := core.New(cfg, store, noLogin{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kept.CheckToken(ctx, old); err != nil {
		t.Errorf("the control server refuses the old token: %v", err)
	}
	pruned, err := keyfile.Update(path, func(f *keyfile.File) error { f.Prune(later()); return nil })
	if err != nil || len(pruned.Previous) != 0 {
		t.Fatalf("pruning: %v, %v", pruned, err)
	}
	if _, err := server(t, pruned, store, nil).CheckToken(ctx, old); err == nil {
		t.Error("a server built from the pruned file accepts the pruned generation's token")
	}
}
