package e2etest

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A browser for the tests: an http.Client with a cookie jar that follows
// no redirect, and a small HTML form reader, enough to sign in and answer
// the consent page the way a person with a browser does.

type browser struct {
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{c: &http.Client{
		Jar:           jar,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is one answer the browser got.
type page struct {
	status int
	header http.Header
	body   string
	url    *url.URL // what was requested, to resolve a form's action
}

func (p *page) location(t *testing.T) *url.URL {
	t.Helper()
	loc := p.header.Get("Location")
	if loc == "" {
		t.Fatalf("HTTP %d without a Location header:\n%s", p.status, p.body)
	}
	u, err := p.url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	return u
}

func (b *browser) do(t *testing.T, req *http.Request) *page {
	t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &page{status: res.StatusCode, header: res.Header, body: string(body), url: req.URL}
}

func (b *browser) get(t *testing.T, u string) *page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b.do(t, req)
}

// attrs are a tag's attributes, names lower-cased, values unescaped.
type attrs map[string]string

// form is an HTML form: its action, hidden fields, other inputs and
// buttons.
type form struct {
	action  string
	hidden  url.Values
	inputs  []attrs
	buttons []attrs
}

var (
	formRe = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	tagRe  = regexp.MustCompile(`(?is)<(input|button)\b([^>]*)>`)
	attrRe = regexp.MustCompile(`(?s)([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>` + "`" + `]+)))?`)
)

func parseAttrs(s string) attrs {
	a := attrs{}
	for _, m := range attrRe.FindAllStringSubmatch(s, -1) {
		a[strings.ToLower(m[1])] = html.UnescapeString(m[2] + m[3] + m[4])
	}
	return a
}

// form returns the page's only form.
func (p *page) form(t *testing.T) *form {
	t.Helper()
	ms := formRe.FindAllStringSubmatch(p.body, -1)
	if len(ms) != 1 {
		t.Fatalf("want one form on the page, found %d:\n%s", len(ms), p.body)
	}
	fa := parseAttrs(ms[0][1])
	if m := strings.ToLower(fa["method"]); m != "post" {
		t.Fatalf("form method %q, want post", fa["method"])
	}
	f := &form{action: fa["action"], hidden: url.Values{}}
	for _, tag := range tagRe.FindAllStringSubmatch(ms[0][2], -1) {
		a := parseAttrs(tag[2])
		switch {
		case strings.EqualFold(tag[1], "button"), strings.EqualFold(a["type"], "submit"):
			f.buttons = append(f.buttons, a)
		case strings.EqualFold(a["type"], "hidden"):
			f.hidden.Add(a["name"], a["value"])
		default:
			f.inputs = append(f.inputs, a)
		}
	}
	return f
}

func (f *form) input(name string) attrs {
	for _, a := range f.inputs {
		if a["name"] == name {
			return a
		}
	}
	return nil
}

func (f *form) hasButton(name, value string) bool {
	for _, a := range f.buttons {
		if a["name"] == name && a["value"] == value {
			return true
		}
	}
	return false
}

// submit posts f (found on p) with its hidden fields plus fields, as a
// browser does.
func (b *browser) submit(t *testing.T, p *page, f *form, fields url.Values) *page {
	t.Helper()
	action, err := p.url.Parse(f.action)
	if err != nil {
		t.Fatalf("form action %q: %v", f.action, err)
	}
	v := url.Values{}
	for k, vs := range f.hidden {
		v[k] = append([]string(nil), vs...)
	}
	for k, vs := range fields {
		v[k] = vs
	}
	req, err := http.NewRequest(http.MethodPost, action.String(), strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(t, req)
}

// checkPageHeaders checks the anti-framing headers of a login, consent or
// error page (PROTOCOL.md §2.9).
func checkPageHeaders(t *testing.T, what string, p *page) {
	t.Helper()
	if got := p.header.Get("X-Frame-Options"); !strings.EqualFold(got, "DENY") {
		t.Errorf("%s: X-Frame-Options %q, want DENY", what, got)
	}
	if got := p.header.Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("%s: Content-Security-Policy %q lacks frame-ancestors 'none'", what, got)
	}
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q, want text/html", what, ct)
	}
}
