package adaptertest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Flow is the authorization code flow with PKCE as a user's browser and a
// client app go through it, against a server that is serving. It is the
// driving half of the adapters' Examples: the Example shows what an app
// writes (the server, its login step, the mount, a protected handler), and
// Flow.Run stands in for the browser and for the client (an app would use
// golang.org/x/oauth2), printing each step so that the Example's Output
// verifies the whole round trip.
type Flow struct {
	// Issuer is the server's Config.Issuer, where its metadata is
	// (Issuer + "/.well-known/oauth-authorization-server").
	Issuer string
	// ClientID is a public client (core.ClientSpec.Public) registered with
	// RedirectURI; the code is redeemed with its client_id and the PKCE
	// verifier alone.
	ClientID    string
	RedirectURI string
	Scope       string
	// Login is what the user types into the form the app's Authenticator
	// shows (say username and password); the form's hidden fields go with
	// it. The Authenticator must answer it with Server.SendGrant: a
	// consent page is not handled.
	Login url.Values
	// API is a protected URL, called once without the token and once with
	// it.
	API string
}

// Run walks the flow and prints one line per request to w: the method,
// the path, the status and what came back. The lines name no host, port or
// secret (no code or token), so an Example can print them. It stops at the
// first answer a conforming server would not give, and returns an error
// saying what came instead.
func (f Flow) Run(w io.Writer) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	// The browser keeps cookies (the server's session cookie binds the
	// login form to it); neither party follows redirects, so each step is
	// seen.
	browser := &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: stopRedirect}
	client := &http.Client{Timeout: 15 * time.Second, CheckRedirect: stopRedirect}
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

	api, err := url.Parse(f.API)
	if err != nil {
		return fmt.Errorf("adaptertest: Flow.API: %w", err)
	}
	res, err := fetch(client, http.MethodGet, f.API, "", nil)
	if err != nil {
		return err
	}
	if res.status != http.StatusUnauthorized || !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer ") {
		return res.unexpected("401 with a Bearer challenge")
	}
	say("GET %s without a token: %d, Bearer challenge", api.Path, res.status)

	var md struct {
		Authorization string `json:"authorization_endpoint"`
		Token         string `json:"token_endpoint"`
	}
	if res, err = fetch(client, http.MethodGet, f.Issuer+"/.well-known/oauth-authorization-server", "", nil); err != nil {
		return err
	}
	if res.status != http.StatusOK || json.Unmarshal(res.body, &md) != nil || md.Authorization == "" || md.Token == "" {
		return res.unexpected("200 with the metadata")
	}

	verifier, state := random(), random()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {f.ClientID},
		"redirect_uri":          {f.RedirectURI},
		"scope":                 {f.Scope},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	page, err := fetch(browser, http.MethodGet, md.Authorization+"?"+q.Encode(), "", nil)
	if err != nil {
		return err
	}
	action, fields, ok := loginForm(page)
	if !ok {
		return page.unexpected("200 with the app's login form")
	}
	say("GET %s: %d, a form posting to %s", page.url.Path, page.status, action.Path)

	for k, vs := range f.Login {
		fields[k] = vs
	}
	res, err = fetch(browser, http.MethodPost, action.String(), fields.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if err != nil {
		return err
	}
	code, err := f.redirect(res, state)
	if err != nil {
		return err
	}
	say("POST %s: %d to %s with a code", action.Path, res.status, f.RedirectURI)

	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {f.RedirectURI},
		"client_id":     {f.ClientID},
		"code_verifier": {verifier},
	}
	if res, err = fetch(client, http.MethodPost, md.Token, form.Encode(), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}); err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Scope       string `json:"scope"`
	}
	if res.status != http.StatusOK || json.Unmarshal(res.body, &tok) != nil || tok.AccessToken == "" {
		return res.unexpected("200 with an access token")
	}
	say("POST %s: %d, a %s token with scope %q", res.url.Path, res.status, tok.TokenType, tok.Scope)

	if res, err = fetch(client, http.MethodGet, f.API, "", http.Header{"Authorization": {"Bearer " + tok.AccessToken}}); err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return res.unexpected("200 from the API")
	}
	say("GET %s with the token: %d, %s", api.Path, res.status, strings.TrimSpace(string(res.body)))
	return nil
}

// redirect checks the answer to the login form, the redirect back to the
// client (RFC 6749 §4.1.2, with RFC 9207's iss), and returns the code.
func (f Flow) redirect(res *answer, state string) (string, error) {
	if res.status != http.StatusSeeOther && res.status != http.StatusFound {
		if res.status == http.StatusOK {
			return "", res.unexpected("a redirect to the client (a page came back: did the login fail, or is this a consent page?)")
		}
		return "", res.unexpected("a redirect to the client")
	}
	loc, err := url.Parse(res.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), f.RedirectURI) {
		return "", res.unexpected("a redirect to " + f.RedirectURI)
	}
	got := loc.Query()
	switch {
	case got.Get("error") != "":
		return "", fmt.Errorf("adaptertest: the server redirected with error=%s: %s", got.Get("error"), got.Get("error_description"))
	case got.Get("state") != state:
		return "", errors.New("adaptertest: the redirect carries another state")
	case got.Get("iss") != f.Issuer:
		return "", fmt.Errorf("adaptertest: the redirect's iss is %q, want the issuer %q", got.Get("iss"), f.Issuer)
	case got.Get("code") == "":
		return "", errors.New("adaptertest: the redirect carries no code")
	}
	return got.Get("code"), nil
}

func stopRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// random is 32 random bytes, base64url: a PKCE verifier or a state.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand.Read crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// answer is a response read in full (bounded).
type answer struct {
	url    *url.URL
	method string
	status int
	header http.Header
	body   []byte
}

// unexpected describes res as not what was wanted; the body is cut short
// and the query left out, as it may hold what must not be printed.
func (res *answer) unexpected(want string) error {
	body := res.body
	if len(body) > 512 {
		body = body[:512]
	}
	return fmt.Errorf("adaptertest: %s %s: want %s, got %d %q", res.method, res.url.Path, want, res.status, body)
}

func fetch(c *http.Client, method, rawURL, body string, hdr http.Header) (*answer, error) {
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("adaptertest: %w", err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("adaptertest: %s %s: %w", method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("adaptertest: %s %s: reading the body: %w", method, req.URL.Path, err)
	}
	return &answer{url: req.URL, method: method, status: res.StatusCode, header: res.Header, body: b}, nil
}

var (
	flowFormRe  = regexp.MustCompile(`(?is)<form\b[^>]*>`)
	flowInputRe = regexp.MustCompile(`(?is)<input\b[^>]*>`)
	flowAttrRe  = regexp.MustCompile(`(?is)\b(type|name|value|action)\s*=\s*"([^"]*)"`)
)

// loginForm finds the page's form: where it posts (resolved against the
// page's URL) and its hidden fields, as a browser would submit them.
func loginForm(page *answer) (*url.URL, url.Values, bool) {
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") {
		return nil, nil, false
	}
	tag := flowFormRe.Find(page.body)
	if tag == nil {
		return nil, nil, false
	}
	action, err := url.Parse(attrs(tag)["action"])
	if err != nil {
		return nil, nil, false
	}
	fields := url.Values{}
	for _, in := range flowInputRe.FindAll(page.body, -1) {
		a := attrs(in)
		if strings.EqualFold(a["type"], "hidden") && a["name"] != "" {
			fields.Add(a["name"], a["value"])
		}
	}
	return page.url.ResolveReference(action), fields, true
}

// attrs reads a tag's double-quoted attributes, unescaped.
func attrs(tag []byte) map[string]string {
	m := map[string]string{}
	for _, a := range flowAttrRe.FindAllSubmatch(tag, -1) {
		m[strings.ToLower(string(a[1]))] = html.UnescapeString(string(a[2]))
	}
	return m
}
