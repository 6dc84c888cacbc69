package core

// constHeader is a response header with a constant value, set through
// HeaderValuesSetter when the Responder has it (no allocation) and through
// SetHeader otherwise.
type constHeader struct {
	name string
	v    []string // len == cap == 1: an append elsewhere copies
}

func header(name, value string) constHeader {
	return constHeader{name: name, v: []string{value}[:1:1]}
}

func (h constHeader) set(w Responder) {
	if hs, ok := w.(HeaderValuesSetter); ok {
		hs.SetHeaderValues(h.name, h.v)
		return
	}
	w.SetHeader(h.name, h.v[0])
}

var (
	hdrNoStore      = header("Cache-Control", "no-store")
	hdrNoCache      = header("Pragma", "no-cache")
	hdrJSON         = header("Content-Type", "application/json")
	hdrHTML         = header("Content-Type", "text/html; charset=utf-8")
	hdrNoReferrer   = header("Referrer-Policy", "no-referrer")
	hdrPublicMeta   = header("Cache-Control", "public, max-age=3600")
	hdrCSP          = header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	hdrFrameDeny    = header("X-Frame-Options", "DENY")
	hdrNoSniff      = header("X-Content-Type-Options", "nosniff")
	hdrAllowPost    = header("Allow", "POST")
	hdrAllowGetPost = header("Allow", "GET, POST")
	hdrAllowGetHead = header("Allow", "GET, HEAD")
)

// pageWriter is the Responder handed to the Authenticator's Login and
// ProcessLogin and to Consent. It sets the page protection headers
// (setPageHeaders) when the app sends a page, not before: an app that
// calls SendGrant at once answers with a bare 303, where framing and
// sniffing protections mean nothing, and every header costs the server an
// allocation and the client a parse.
type pageWriter struct {
	Responder
	done bool
}

func (p *pageWriter) Send(status int, body []byte) error {
	if !p.done {
		p.done = true
		setPageHeaders(p.Responder)
	}
	return p.Responder.Send(status, body)
}

// SetHeaderValues forwards to the wrapped Responder (so that an app's
// SetHeaderValues-aware code keeps working through the wrapper).
func (p *pageWriter) SetHeaderValues(name string, values []string) {
	if hs, ok := p.Responder.(HeaderValuesSetter); ok {
		hs.SetHeaderValues(name, values)
		return
	}
	p.Responder.SetHeader(name, values[0])
}

// pageResponder wraps w in a pageWriter unless it is one already.
func pageResponder(w Responder) *pageWriter {
	if pw, ok := w.(*pageWriter); ok {
		return pw
	}
	return &pageWriter{Responder: w}
}

// direct returns the Responder under a pageWriter, for answers that are not
// pages (redirects) or that set the page headers themselves.
func direct(w Responder) Responder {
	if pw, ok := w.(*pageWriter); ok {
		return pw.Responder
	}
	return w
}
