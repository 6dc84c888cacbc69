package core

import "html"

// setPageHeaders protects every HTML page of the flow: no framing
// (clickjacking), no Referer leak of the query, no caching. No
// form-action directive: browsers apply it to the redirect that answers
// the form POST, which would break the flow.
func setPageHeaders(w Responder) {
	hdrCSP.set(w)
	hdrFrameDeny.set(w)
	hdrNoReferrer.set(w)
	hdrNoStore.set(w)
	hdrNoCache.set(w)
	hdrNoSniff.set(w)
}

// errorPage answers with an HTML error page: never a redirect, for errors
// that make the redirect URI untrustworthy (RFC 6749 §4.1.2.1).
func (s *Server) errorPage(w Responder, r Request, status int, code, desc string) {
	setPageHeaders(w)
	if ep, ok := s.auth.(ErrorPager); ok {
		ep.ErrorPage(w, r, status, code, safeDescription(desc))
		return
	}
	hdrHTML.set(w)
	body := "<!doctype html><html><head><meta charset=\"utf-8\"><title>Authorization error</title></head><body><h1>Authorization error</h1><p><code>" +
		html.EscapeString(code) + "</code></p><p>" + html.EscapeString(safeDescription(desc)) + "</p></body></html>"
	_ = w.Send(status, []byte(body))
}
