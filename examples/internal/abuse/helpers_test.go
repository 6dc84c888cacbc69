package abuse

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/examples/internal/e2etest"
)

// examples are the example servers under test; one body of tests runs
// against each. In -short mode only nethttp and fiber (the two server
// stacks: net/http and fasthttp) run.
var examples = []string{"nethttp", "custom", "gin", "echo", "fiber"}

const (
	redirectURI  = "http://127.0.0.1:9000/callback"
	codeVerifier = "abuse-test-code-verifier-0123456789-abcdefghijklmnop"
	loginFailMsg = "Invalid username or password."
)

// Timeouts the examples configure (demo.HTTPServer; fiber's ReadTimeout).
func headerTimeout(example string) time.Duration {
	if example == "fiber" {
		return 15 * time.Second // fasthttp: ReadTimeout covers the headers
	}
	return 5 * time.Second
}

const bodyTimeout = 15 * time.Second

// target is one running example server and what the tests need of it.
type target struct {
	example string
	bin, db string
	s       *e2etest.Server

	mu     sync.Mutex
	nextIP int
}

func startTarget(t *testing.T, example, bin string, args ...string) *target {
	t.Helper()
	db := filepath.Join(t.TempDir(), "demo.db")
	s := e2etest.Start(t, bin, append([]string{"-addr", "127.0.0.1:0", "-db", db}, args...)...)
	return &target{example: example, bin: bin, db: db, s: s, nextIP: 10}
}

// ip hands out a loopback source address of its own to each caller
// (127.0.0.10, .11, ...): the server throttles per address, so every test
// plays a client of its own, as distinct hosts on a network would be.
func (tg *target) ip() string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	n := tg.nextIP
	tg.nextIP++
	return fmt.Sprintf("127.0.%d.%d", n/250, 2+n%250)
}

// client is an HTTP client whose connections come from source address ip
// and which does not follow redirects.
func client(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4},
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// resp is an answer read to the end.
type resp struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, req *http.Request) *resp {
	t.Helper()
	r, err := tryDo(c, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return r
}

func tryDo(c *http.Client, req *http.Request) (*resp, error) {
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &resp{res.StatusCode, res.Header, string(b)}, nil
}

func newReq(t *testing.T, method, u, body string, hdr ...string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// post sends a form to path with optional header pairs.
func post(t *testing.T, c *http.Client, base, path, form string, hdr ...string) *resp {
	t.Helper()
	return do(t, c, newReq(t, "POST", base+path, form, hdr...))
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) *resp {
	t.Helper()
	return do(t, c, newReq(t, "GET", u, "", hdr...))
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// oauthError decodes a JSON error answer.
func oauthError(t *testing.T, r *resp) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("HTTP %d: body is not a JSON error: %v\n%s", r.status, err, r.body)
	}
	return e.Error
}

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authQuery is a valid authorization request of clientID, changed by the
// key/value pairs in extra ("" deletes).
func authQuery(clientID, redirect string, extra ...string) url.Values {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirect},
		"state":                 {"st-123"},
		"scope":                 {"read"},
		"code_challenge":        {challenge(codeVerifier)},
		"code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			q.Del(extra[i])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	return q
}

// browser plays a user agent: a client from its own address that keeps
// the session cookie.
type browser struct {
	c      *http.Client
	base   string
	cookie *http.Cookie
}

func newBrowser(tg *target) *browser {
	return &browser{c: client(tg.ip()), base: tg.s.Base}
}

func (b *browser) send(t *testing.T, req *http.Request) *resp {
	t.Helper()
	if b.cookie != nil {
		req.Header.Set("Cookie", b.cookie.Name+"="+b.cookie.Value)
	}
	r := do(t, b.c, req)
	for _, line := range r.header.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("malformed Set-Cookie %q: %v", line, err)
		}
		b.cookie = ck
	}
	return r
}

func (b *browser) authorize(t *testing.T, q url.Values) *resp {
	t.Helper()
	return b.send(t, newReq(t, "GET", b.base+"/oauth2/authorize?"+q.Encode(), ""))
}

// submit posts form to the login endpoint.
func (b *browser) submit(t *testing.T, form url.Values) *resp {
	t.Helper()
	return b.send(t, newReq(t, "POST", b.base+"/oauth2/login", form.Encode()))
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="(oauth2kit_request|csrf_token)" value="([^"]*)">`)

// hidden returns the hidden fields of the login or consent form of page.
func hidden(t *testing.T, r *resp) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(r.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("oauth2kit_request") == "" || v.Get("csrf_token") == "" {
		t.Fatalf("HTTP %d: no hidden oauth2kit_request and csrf_token fields in the page:\n%s", r.status, r.body)
	}
	return v
}

// withFields returns a copy of v with the pairs set.
func withFields(v url.Values, kv ...string) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Set(kv[i], kv[i+1])
	}
	return c
}

// loginPage starts an authorization as b and returns the login page.
func (b *browser) loginPage(t *testing.T, q url.Values) *resp {
	t.Helper()
	r := b.authorize(t, q)
	if r.status != 200 || !strings.Contains(r.body, `name="password"`) {
		t.Fatalf("authorize: HTTP %d, want the login page:\n%s", r.status, r.body)
	}
	return r
}

// checkPageHeaders checks the headers every HTML page of the flow carries.
func checkPageHeaders(t *testing.T, what string, r *resp) {
	t.Helper()
	h := r.header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("%s (HTTP %d): Content-Security-Policy %q lacks frame-ancestors 'none'", what, r.status, csp)
	}
	if v := h.Get("X-Frame-Options"); !strings.EqualFold(v, "DENY") {
		t.Errorf("%s (HTTP %d): X-Frame-Options %q, want DENY", what, r.status, v)
	}
	if v := h.Get("Referrer-Policy"); v != "no-referrer" {
		t.Errorf("%s (HTTP %d): Referrer-Policy %q, want no-referrer", what, r.status, v)
	}
	checkNoStore(t, what, r)
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s (HTTP %d): Content-Type %q, want text/html", what, r.status, ct)
	}
	// No third-party resources: nothing loaded from another origin.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).FindString(r.body); m != "" {
		t.Errorf("%s: loads a resource from another origin (%s)", what, m)
	}
}

func checkNoStore(t *testing.T, what string, r *resp) {
	t.Helper()
	if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("%s (HTTP %d): Cache-Control %q, want no-store", what, r.status, cc)
	}
}

// retryAfter checks a 429 answer's Retry-After: whole seconds, at least 1,
// at most window.
func retryAfter(t *testing.T, what string, r *resp, window time.Duration) {
	t.Helper()
	if r.status != 429 {
		t.Fatalf("%s: HTTP %d, want 429:\n%s", what, r.status, r.body)
	}
	ra := r.header.Get("Retry-After")
	var n int
	if _, err := fmt.Sscanf(ra, "%d", &n); err != nil || fmt.Sprint(n) != ra || n < 1 || time.Duration(n)*time.Second > window+time.Second {
		t.Errorf("%s: Retry-After %q, want whole seconds in [1, %v]", what, ra, window)
	}
}

func buildExample(t *testing.T, name string) string {
	t.Helper()
	return e2etest.Build(t, name)
}
