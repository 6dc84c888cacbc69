package core

import (
	"bytes"
	"io"
)

// BodyRecorder wraps a request body so that what CheckRequest reads of it
// (a form body may carry the token, RFC 6750 §2.2) can be handed to the
// handler afterwards. Adapters whose frameworks stream bodies use it:
//
//	rec := core.NewBodyRecorder(r.Body)
//	r.Body = rec
//	info, rerr := srv.CheckRequest(...)
//	r.Body = rec.Replay()
type BodyRecorder struct {
	r   io.ReadCloser
	buf bytes.Buffer
}

// NewBodyRecorder wraps body.
func NewBodyRecorder(body io.ReadCloser) *BodyRecorder { return &BodyRecorder{r: body} }

// Read reads from the body and keeps a copy.
func (b *BodyRecorder) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.buf.Write(p[:n])
	return n, err
}

// Close closes the body.
func (b *BodyRecorder) Close() error { return b.r.Close() }

// Replay is the body as the handler should see it: what was read, then
// the rest. When nothing was read (a JSON body, say) it is the original
// body itself.
func (b *BodyRecorder) Replay() io.ReadCloser {
	if b.buf.Len() == 0 {
		return b.r
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(&b.buf, b.r), b.r}
}
