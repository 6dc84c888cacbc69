package core

import "strconv"

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// jsonObj builds a flat JSON object without reflection.
type jsonObj struct{ b []byte }

func newJSON(size int) *jsonObj {
	o := &jsonObj{b: make([]byte, 0, size)}
	o.b = append(o.b, '{')
	return o
}

func (o *jsonObj) key(k string) {
	if len(o.b) > 1 {
		o.b = append(o.b, ',')
	}
	o.b = appendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *jsonObj) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

func (o *jsonObj) strIf(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *jsonObj) num(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *jsonObj) boolean(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObj) strList(k string, vs []string) {
	o.key(k)
	o.b = append(o.b, '[')
	for i, v := range vs {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, v)
	}
	o.b = append(o.b, ']')
}

func (o *jsonObj) bytes() []byte { return append(o.b, '}') }

// sendJSON writes a JSON answer that must not be cached (RFC 6749 §5.1).
func sendJSON(w Responder, status int, body []byte) {
	hdrJSON.set(w)
	hdrNoStore.set(w)
	hdrNoCache.set(w)
	_ = w.Send(status, body)
}
