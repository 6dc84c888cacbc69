package demo

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"

	"golang.org/x/crypto/bcrypt"

	"github.com/oauth2kit/oauth2kit/core"
)

//go:embed templates/page.html
var templateFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/page.html"))

// DemoUser and DemoPassword are the demo account the examples print at start.
const (
	DemoUser     = "demo"
	DemoPassword = "demo"
)

// users maps user names to bcrypt hashes, as a real user store would.
type users map[string][]byte

func demoUsers() users {
	h, err := bcrypt.GenerateFromPassword([]byte(DemoPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return users{DemoUser: h}
}

// dummyHash is checked for unknown users, so a wrong user name costs what a
// wrong password costs (no user enumeration by timing).
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.MinCost)

func (u users) check(name, password string) bool {
	h, ok := u[name]
	if !ok || len(name) > 128 || len(password) > 72 {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}

// authenticator is the demo's core.Authenticator, core.ConsentPrompter and
// core.ErrorPager: html/template pages (every value escaped), one login
// error message whatever was wrong.
type authenticator struct {
	srv   *core.Server
	users users
	log   *slog.Logger
}

var (
	_ core.Authenticator   = (*authenticator)(nil)
	_ core.ConsentPrompter = (*authenticator)(nil)
	_ core.ErrorPager      = (*authenticator)(nil)
)

func render(w core.Responder, status int, name string, data map[string]any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		w.SetHeader("Content-Type", "text/plain; charset=utf-8")
		_ = w.Send(500, []byte("page could not be rendered"))
		return
	}
	w.SetHeader("Content-Type", "text/html; charset=utf-8")
	_ = w.Send(status, buf.Bytes())
}

func pageData(title string, ar *core.AuthorizationRequest) map[string]any {
	return map[string]any{
		"Title": title,
		"AR":    ar,
		// HiddenFields is escaped by core; html/template must not escape
		// it again.
		"Hidden": template.HTML(ar.HiddenFields()),
	}
}

func (a *authenticator) Login(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	render(w, 200, "login", pageData("Sign in", ar))
}

func (a *authenticator) ProcessLogin(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	name, pw := ar.Form.Get("username"), ar.Form.Get("password")
	if !a.srv.LoginAllowed(w, r, name) {
		return // 429 with Retry-After already sent
	}
	if !a.users.check(name, pw) {
		a.srv.LoginFailed(r, name)
		// One message for an unknown user and a wrong password.
		a.log.Info("demo: failed login", "remote", r.RemoteAddr())
		d := pageData("Sign in", ar)
		d["Error"] = "Invalid username or password."
		render(w, 200, "login", d)
		return
	}
	// A real app passes its stable user id, not the login name.
	a.srv.SendLogin(w, r, ar, core.LoginResult{UserID: name, AMR: []string{"pwd"}})
}

func (a *authenticator) Consent(w core.Responder, r core.Request, ar *core.AuthorizationRequest) {
	render(w, 200, "consent", pageData("Allow access", ar))
}

func (a *authenticator) ErrorPage(w core.Responder, r core.Request, status int, code, description string) {
	render(w, status, "error", map[string]any{"Title": "Error", "Code": code, "Description": description})
}

// NewAuthenticator returns the demo's login, consent and error pages with
// the demo user, for code that builds its own core.Server (the security
// tests mount the kit in-process): pass auth to core.New, then bind the
// server before serving.
func NewAuthenticator(log *slog.Logger) (auth core.Authenticator, bind func(*core.Server)) {
	a := &authenticator{users: demoUsers(), log: log}
	return a, func(s *core.Server) { a.srv = s }
}
