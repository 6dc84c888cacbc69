package fiberadapter_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	fiberadapter "github.com/oauth2kit/oauth2kit/adapters/fiber"
	"github.com/oauth2kit/oauth2kit/core/adaptertest"
)

// benchCase is one request, run in process through both adapters over the
// same core.Server.
type benchCase struct {
	name, method, path string
	auth, form         string
}

// The adapter's overhead: the same requests through fiber (app.Handler on a
// reused fasthttp.RequestCtx, the way fasthttp's server runs it) and plain
// net/http (adaptertest.PlainHandler, net/http straight onto core, with an
// httptest.ResponseRecorder). Both protected routes answer
// adaptertest.ProtectedResponse.
func BenchmarkAdapters(b *testing.B) {
	const issuer = "http://127.0.0.1:9"
	k := newKit(b, issuer)

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	fiberadapter.Mount(app, k.srv)
	app.Get(adaptertest.PathMe, fiberadapter.Middleware(k.srv), func(c *fiber.Ctx) error {
		info, _ := fiberadapter.TokenInfo(c)
		c.Set("Content-Type", "application/json")
		return c.Send(adaptertest.ProtectedResponse(info, nil))
	})
	fh := app.Handler()

	mux := adaptertest.PlainHandler(k.srv)

	tokenForm := k.tokenForm("reader", "read")
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/oauth2/token", bytes.NewReader([]byte(tokenForm)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	mux.ServeHTTP(rec, req)
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %d %s", rec.Code, rec.Body)
	}

	cases := []benchCase{
		{name: "token", method: "POST", path: "/oauth2/token", form: tokenForm},
		{name: "protected", method: "GET", path: adaptertest.PathMe, auth: "Bearer " + tok.AccessToken},
		{name: "metadata", method: "GET", path: "/.well-known/oauth-authorization-server"},
	}
	for _, bc := range cases {
		b.Run(bc.name+"/fiber", func(b *testing.B) { benchFiber(b, fh, bc) })
		b.Run(bc.name+"/plain", func(b *testing.B) { benchNetHTTP(b, mux, bc) })
	}
}

func benchFiber(b *testing.B, h fasthttp.RequestHandler, bc benchCase) {
	var tmpl fasthttp.Request
	tmpl.Header.SetMethod(bc.method)
	tmpl.SetRequestURI(bc.path)
	tmpl.Header.SetHost("127.0.0.1:9")
	if bc.auth != "" {
		tmpl.Header.Set("Authorization", bc.auth)
	}
	if bc.form != "" {
		tmpl.Header.SetContentType("application/x-www-form-urlencoded")
		tmpl.SetBodyString(bc.form)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&tmpl, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	serve := func() {
		tmpl.CopyTo(&ctx.Request)
		ctx.Response.Reset()
		ctx.ResetUserValues()
		h(&ctx)
	}
	serve()
	if code := ctx.Response.StatusCode(); code != 200 {
		b.Fatalf("%s %s: %d %s", bc.method, bc.path, code, ctx.Response.Body())
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

func benchNetHTTP(b *testing.B, h http.Handler, bc benchCase) {
	req := httptest.NewRequest(bc.method, bc.path, nil)
	if bc.auth != "" {
		req.Header.Set("Authorization", bc.auth)
	}
	form := []byte(bc.form)
	body := bytes.NewReader(nil)
	rc := io.NopCloser(body)
	if bc.form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	var rec *httptest.ResponseRecorder
	serve := func() {
		if bc.form != "" {
			body.Reset(form)
			req.Body = rc
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
	serve()
	if rec.Code != 200 {
		b.Fatalf("%s %s: %d %s", bc.method, bc.path, rec.Code, rec.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}
