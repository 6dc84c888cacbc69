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
	hdrNoStore          = header("Cache-Control", "no-store")
	hdrNoCache          = header("Pragma", "no-cache")
	hdrJSON             = header("Content-Type", "application/json")
	hdrHTML             = header("Content-Type", "text/html; charset=utf-8")
	hdrNoReferrer       = header("Referrer-Policy", "no-referrer")
	hdrPublicMeta       = header("Cache-Control", "public, max-age=3600")
	hdrCSP              = header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	hdrFrameDeny        = header("X-Frame-Options", "DENY")
	hdrNoSniff          = header("X-Content-Type-Options", "nosniff")
	hdrAllowPost        = header("Allow", "POST")
	hdrAllowGetPost     = header("Allow", "GET, POST")
	hdrAllowGetHead     = header("Allow", "GET, HEAD")
	hdrAllowGetHeadPost = header("Allow", "GET, HEAD, POST")
)
