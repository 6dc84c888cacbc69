package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gofiber/fiber/v2"
	"github.com/labstack/echo/v4"

	echoadapter "github.com/oauth2kit/oauth2kit/adapters/echo"
	fiberadapter "github.com/oauth2kit/oauth2kit/adapters/fiber"
	ginadapter "github.com/oauth2kit/oauth2kit/adapters/gin"
	"github.com/oauth2kit/oauth2kit/adapters/nethttp"
	"github.com/oauth2kit/oauth2kit/core"
	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

// The bench client (the contract: load tools hard-code these).
const (
	ClientID     = "bench-client"
	ClientSecret = "bench-secret-0123456789abcdef0123" // 33 characters: stored SHA-256 hashed
	RedirectURI  = "http://127.0.0.1:9/cb"
	Scope        = "read"
	UserID       = "u1"
)

// approveAll is the Authenticator: user u1 is signed in already, so Login
// issues the code at once (no login page; no ConsentPrompter, so no
// consent page either).
type approveAll struct{ srv *core.Server }

func (a *approveAll) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, UserID, "")
}

func (a *approveAll) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	a.srv.SendGrant(w, r, ar, UserID, "")
}

func newServer(o *options, issuer string, st core.Storage, log *slog.Logger) (*core.Server, error) {
	cryptKey, signKey := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(cryptKey); err != nil {
		return nil, err
	}
	if _, err := rand.Read(signKey); err != nil {
		return nil, err
	}
	keys, err := benchSigningKeys()
	if err != nil {
		return nil, err
	}
	auth := &approveAll{}
	srv, err := core.New(core.Config{
		Issuer: issuer,
		Keys:   core.Keys{CryptKey: cryptKey, SignKey: signKey},

		Scopes:       []string{Scope, core.ScopeOpenID},
		DefaultScope: Scope,
		OIDC:         core.OIDC{SigningKeys: keys},
		Lifetimes:    core.Lifetimes{AccessToken: o.accessTTL, RefreshToken: o.refreshTTL, Code: o.codeTTL},

		Caches: core.Caches{Client: o.clientCache},
		Logger: log,
	}, st, auth)
	if err != nil {
		return nil, err
	}
	auth.srv = srv
	return srv, nil
}

func registerClient(ctx context.Context, st clientSaver) error {
	c, _, err := core.NewClient(core.ClientSpec{
		ID:           ClientID,
		Name:         "Bench Client",
		RedirectURIs: []string{RedirectURI},
		GrantTypes:   []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials},
		Scopes:       []string{Scope},
		Secret:       ClientSecret,
	})
	if err != nil {
		return err
	}
	if err := st.SaveClient(ctx, c); err != nil {
		return err
	}
	// One OpenID Connect client per id_token algorithm, with the same
	// secret and redirect URI: loadgen -scenario code -scope "openid read"
	// -client-id bench-oidc-eddsa measures the openid code flow.
	for id, alg := range OIDCClients {
		c, _, err := core.NewClient(core.ClientSpec{
			ID: id, Name: "Bench OIDC Client", RedirectURIs: []string{RedirectURI},
			GrantTypes: []string{core.GrantAuthorizationCode, core.GrantRefreshToken},
			Scopes:     []string{Scope, core.ScopeOpenID}, Secret: ClientSecret, IDTokenSignedResponseAlg: alg,
		})
		if err != nil {
			return err
		}
		if err := st.SaveClient(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// OIDCClients are the OpenID Connect bench clients and their id_token
// algorithms.
var OIDCClients = map[string]string{
	"bench-oidc-rs256": core.AlgRS256, "bench-oidc-es256": core.AlgES256, "bench-oidc-eddsa": core.AlgEdDSA,
}

// benchSigningKeys makes one signing key per algorithm (RSA-2048, P-256,
// Ed25519), new at every start.
func benchSigningKeys() ([]core.SigningKey, error) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return []core.SigningKey{{Alg: core.AlgRS256, Signer: rk}, {Alg: core.AlgES256, Signer: ek}, {Alg: core.AlgEdDSA, Signer: dk}}, nil
}

type clientSaver interface {
	SaveClient(ctx context.Context, c *core.Client) error
}

// baselineBody is the baseline's answer: about the size of a small API
// response, built the way a plain handler would (encoding/json).
func baselineBody(a, b string) []byte {
	out, _ := json.Marshal(struct {
		OK bool   `json:"ok"`
		A  string `json:"a"`
		B  string `json:"b"`
	}{true, a, b})
	return out
}

func meBody(info *core.TokenInfo) []byte {
	out, _ := json.Marshal(struct {
		Sub      string `json:"sub"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}{info.UserID, info.ClientID, info.Scope})
	return out
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// mount builds the routes on the chosen adapter: the kit's endpoints,
// /healthz, GET /api/me behind the adapter's middleware, POST /baseline.
func mount(adapter string, srv *core.Server, log *slog.Logger) demo.Runner {
	switch adapter {
	case "gin":
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		ginadapter.Mount(r, srv)
		r.GET("/healthz", func(c *gin.Context) { c.String(200, "ok") })
		r.GET("/api/me", ginadapter.Middleware(srv), func(c *gin.Context) {
			info, _ := ginadapter.TokenInfo(c)
			c.Data(200, "application/json", meBody(info))
		})
		r.POST("/baseline", func(c *gin.Context) {
			c.Data(200, "application/json", baselineBody(c.PostForm("a"), c.PostForm("b")))
		})
		return demo.NewHTTPServer(r, log)
	case "echo":
		e := echo.New()
		e.HideBanner, e.HidePort = true, true
		echoadapter.Mount(e, srv)
		e.GET("/healthz", func(c echo.Context) error { return c.String(200, "ok") })
		e.GET("/api/me", func(c echo.Context) error {
			info, _ := echoadapter.TokenInfo(c)
			return c.Blob(200, "application/json", meBody(info))
		}, echoadapter.Middleware(srv))
		e.POST("/baseline", func(c echo.Context) error {
			return c.Blob(200, "application/json", baselineBody(c.FormValue("a"), c.FormValue("b")))
		})
		return demo.NewHTTPServer(e, log)
	case "fiber":
		f := fiber.New(fiber.Config{
			DisableStartupMessage: true,
			ReadTimeout:           15 * time.Second,
			WriteTimeout:          30 * time.Second,
			IdleTimeout:           120 * time.Second,
			BodyLimit:             64 << 10,
		})
		fiberadapter.Mount(f, srv)
		f.Get("/healthz", func(c *fiber.Ctx) error { return c.SendString("ok") })
		f.Get("/api/me", fiberadapter.Middleware(srv), func(c *fiber.Ctx) error {
			info, _ := fiberadapter.TokenInfo(c)
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(meBody(info))
		})
		f.Post("/baseline", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(baselineBody(c.FormValue("a"), c.FormValue("b")))
		})
		return fiberRunner{f}
	default:
		mux := http.NewServeMux()
		nethttp.Mount(mux, srv)
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		mux.Handle("GET /api/me", nethttp.Middleware(srv)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, _ := nethttp.TokenInfo(r.Context())
			writeJSON(w, meBody(info))
		})))
		mux.HandleFunc("POST /baseline", func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", 400)
				return
			}
			writeJSON(w, baselineBody(r.PostForm.Get("a"), r.PostForm.Get("b")))
		})
		return demo.NewHTTPServer(mux, log)
	}
}

type fiberRunner struct{ app *fiber.App }

func (r fiberRunner) Serve(ln net.Listener) error        { return r.app.Listener(ln) }
func (r fiberRunner) Shutdown(ctx context.Context) error { return r.app.ShutdownWithContext(ctx) }
