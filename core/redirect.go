package core

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html"
	"net/url"
	"strings"
)

func isLoopbackHost(h string) bool {
	return h == "127.0.0.1" || h == "::1" || h == "localhost"
}

// matchRedirectURI reports whether requested may be used for the registered
// redirect URI: byte-for-byte equality (no case folding, no decoding, no
// normalisation), except that for an http loopback IP literal (127.0.0.1 or
// [::1]) the port may differ (RFC 8252 §7.3).
func matchRedirectURI(registered, requested string) bool {
	if registered == requested {
		return true
	}
	for _, host := range []string{"http://127.0.0.1", "http://[::1]"} {
		rr, ok1 := strings.CutPrefix(registered, host)
		qq, ok2 := strings.CutPrefix(requested, host)
		if !ok1 || !ok2 {
			continue
		}
		rr, ok1 = stripPort(rr)
		qq, ok2 = stripPort(qq)
		return ok1 && ok2 && rr == qq
	}
	return false
}

// stripPort removes a leading ":digits" and demands that what follows
// starts the path or query (or is empty), so "http://127.0.0.1.evil" or
// "http://127.0.0.1@evil" never match.
func stripPort(s string) (string, bool) {
	if strings.HasPrefix(s, ":") {
		i := 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 1 || i > 6 {
			return "", false
		}
		s = s[i:]
	}
	if s != "" && s[0] != '/' && s[0] != '?' {
		return "", false
	}
	return s, true
}

// validateRedirectURI checks a URI offered for registration: absolute, no
// fragment, no userinfo, and http only for loopback hosts (RFC 9700 §2.6,
// OAuth 2.1 §2.3). Custom schemes (native apps) are allowed.
func validateRedirectURI(s string) error {
	if len(s) > 2000 {
		return errors.New("redirect URI too long")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '\\' {
			return errors.New("redirect URI contains a space, control, backslash or non-ASCII character")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("redirect URI does not parse")
	}
	switch {
	case !u.IsAbs():
		return errors.New("redirect URI must be absolute")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("redirect URI must not contain a fragment")
	case u.User != nil:
		return errors.New("redirect URI must not contain userinfo")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return errors.New("http redirect URIs are allowed only for loopback hosts; use https")
	case (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
		return errors.New("redirect URI has no host")
	case u.Scheme == "javascript" || u.Scheme == "data" || u.Scheme == "file" || u.Scheme == "vbscript":
		return errors.New("redirect URI scheme not allowed")
	}
	return nil
}

// redirectURL appends params to a redirect URI, keeping any query the
// registered URI has (RFC 6749 §3.1.2).
func redirectURL(base string, kv ...string) string {
	// Sized up front (worst case: every value byte escaped) and escaped in
	// place: one allocation instead of a growing builder plus a string per
	// escaped value, on every authorization answer.
	n := len(base)
	for i := 0; i+1 < len(kv); i += 2 {
		n += 2 + len(kv[i]) + 3*len(kv[i+1])
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(base)
	sep := byte('?')
	if strings.IndexByte(base, '?') >= 0 {
		sep = '&'
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = 0
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if sep != 0 {
			b.WriteByte(sep)
		}
		sep = '&'
		b.WriteString(kv[i])
		b.WriteByte('=')
		writeQueryEscaped(&b, kv[i+1])
	}
	return b.String()
}

// writeQueryEscaped writes v escaped as url.QueryEscape would: unreserved
// characters as they are, space as '+', every other byte as %XX.
func writeQueryEscaped(b *strings.Builder, v string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}

func (s *Server) redirectError(w Responder, p *pending, code, desc string) {
	if p.pageReq != nil {
		s.errorPage(w, p.pageReq, 400, code, desc)
		return
	}
	s.answer(w, p, "error", code, "error_description", safeDescription(desc), "state", p.state, "iss", s.cfg.Issuer)
}

// answer sends the authorization response kv (name, value pairs; empty
// values left out) to the client: a 303 to the redirect URI with kv in its
// query, or, for response_mode=form_post, a page that POSTs kv there
// (OAuth 2.0 Form Post Response Mode).
func (s *Server) answer(w Responder, p *pending, kv ...string) {
	hdrNoStore.set(w)
	hdrNoReferrer.set(w)
	if p.formPost {
		sendFormPost(w, p.redirect, kv)
		return
	}
	w.SetHeader("Location", redirectURL(p.redirect, kv...))
	_ = w.Send(303, nil)
}

// formPostScript submits the page's one form; its hash is all the page's
// Content-Security-Policy lets run.
const formPostScript = "document.forms[0].submit()"

var hdrFormPostCSP = func() constHeader {
	sum := sha256.Sum256([]byte(formPostScript))
	return header("Content-Security-Policy", "default-src 'none'; script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+
		"'; frame-ancestors 'none'; base-uri 'none'")
}()

func sendFormPost(w Responder, action string, kv []string) {
	hdrFormPostCSP.set(w)
	hdrFrameDeny.set(w)
	hdrNoSniff.set(w)
	hdrNoCache.set(w)
	hdrHTML.set(w)
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>Submit</title></head><body><form method="post" action="`)
	b.WriteString(html.EscapeString(action))
	b.WriteString(`">`)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		b.WriteString(`<input type="hidden" name="` + html.EscapeString(kv[i]) + `" value="` + html.EscapeString(kv[i+1]) + `">`)
	}
	b.WriteString(`<noscript><button type="submit">Continue</button></noscript></form><script>` + formPostScript + `</script></body></html>`)
	_ = w.Send(200, []byte(b.String()))
}
