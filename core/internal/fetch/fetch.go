// Package fetch is the kit's one way out to the network: every document
// the server fetches from a URL someone else chose (client ID metadata
// documents, jwks_uri, sector identifiers, logout notifications) goes
// through a Fetcher, which makes such a URL useless for server-side
// request forgery:
//
//   - https only, no userinfo, no fragment;
//   - the address is checked when the connection is made, after DNS
//     resolution (code.dny.dev/ssrf over the IANA special-purpose
//     registries: no loopback, private, link-local or cloud metadata
//     address, ports 443 only), so a name that resolves to an internal
//     address — or rebinds to one between two lookups — is refused;
//   - no proxy from the environment (it would connect for us, past the
//     check), no redirects;
//   - bounded: response size, time, header size, and how many fetches run
//     at once; concurrent fetches of one URL share one request.
package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"code.dny.dev/ssrf"
)

// Errors a Fetch reports (wrapped, with the detail).
var (
	ErrURL      = errors.New("fetch: URL not allowed")
	ErrStatus   = errors.New("fetch: the answer is not 200")
	ErrTooLarge = errors.New("fetch: the document is too large")
	// ErrAddress is a connection the address check refused: the name
	// resolved to a loopback, private or other special-use address, or
	// the port is not 443.
	ErrAddress = errors.New("fetch: the address may not be connected to")
)

// Options bound a Fetcher; zero values are the defaults.
type Options struct {
	// MaxBytes bounds a response body. Default 64 KiB.
	MaxBytes int64
	// Timeout bounds one fetch, from dial to the last byte. Default 5 s.
	Timeout time.Duration
	// MaxConcurrent bounds the fetches in flight (distinct URLs); more
	// wait, within their context. Default 16.
	MaxConcurrent int

	// Tests only: allow loopback addresses and any port, and trust
	// RootCAs-like settings from TLS (httptest servers listen on
	// 127.0.0.1). Never set in a server.
	AllowLoopbackForTests bool
	TLS                   *tls.Config
	// anyPortForTests lifts the port rule only (this package's tests).
	anyPortForTests bool
}

// Result is a fetched document.
type Result struct {
	Body []byte
	// CacheControl and Expires are the answer's caching headers, for the
	// caller's own bounded cache.
	CacheControl, Expires string
}

// Fetcher fetches documents safely; it is safe for concurrent use.
type Fetcher struct {
	opts   Options
	client *http.Client
	sem    chan struct{}

	mu       sync.Mutex
	inflight map[string]*call
}

type call struct {
	done chan struct{}
	res  *Result
	err  error
}

// New returns a Fetcher with opts.
func New(opts Options) *Fetcher {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 10
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 16
	}
	guard := ssrf.New(ssrf.WithPorts(443))
	if opts.anyPortForTests {
		// This package's tests: every port, no other exception, so the
		// address rules alone decide.
		guard = ssrf.New(ssrf.WithAnyPort())
	}
	if opts.AllowLoopbackForTests {
		guard = ssrf.New(ssrf.WithAnyPort(),
			ssrf.WithAllowedV4Prefixes(netip.MustParsePrefix("127.0.0.0/8")),
			ssrf.WithAllowedV6Prefixes(netip.MustParsePrefix("::1/128")))
	}
	dialer := &net.Dialer{Timeout: opts.Timeout, Control: guard.Safe}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        opts.TLS,
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &Fetcher{
		opts: opts,
		client: &http.Client{
			Transport: tr,
			Timeout:   opts.Timeout,
			// A redirect is an answer, not an instruction: following it
			// would take the fetch to a URL nobody checked.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sem:      make(chan struct{}, opts.MaxConcurrent),
		inflight: map[string]*call{},
	}
}

// CheckURL reports whether raw may be fetched at all: an absolute https
// URL with a host, without userinfo or fragment.
func CheckURL(raw string) (*url.URL, error) {
	if len(raw) > 2048 {
		return nil, fmt.Errorf("%w: longer than 2048 bytes", ErrURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	case u.Scheme != "https":
		return nil, fmt.Errorf("%w: not https", ErrURL)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%w: no host", ErrURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: userinfo", ErrURL)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, fmt.Errorf("%w: fragment", ErrURL)
	}
	return u, nil
}

// Get fetches raw (GET, Accept: application/json). Only a 200 with a body
// within MaxBytes counts. Concurrent Gets of one URL share one request.
func (f *Fetcher) Get(ctx context.Context, raw string) (*Result, error) {
	if _, err := CheckURL(raw); err != nil {
		return nil, err
	}
	f.mu.Lock()
	if c, ok := f.inflight[raw]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	f.inflight[raw] = c
	f.mu.Unlock()

	// The shared request is not bound to the first caller's context (its
	// cancellation must not fail the others); Timeout bounds it.
	c.res, c.err = f.fetch(raw)
	f.mu.Lock()
	delete(f.inflight, raw)
	f.mu.Unlock()
	close(c.done)
	return c.res, c.err
}

func (f *Fetcher) fetch(raw string) (*Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), f.opts.Timeout)
	defer cancel()
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch: too many fetches in flight: %w", ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrURL, err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ssrf.ErrProhibitedIP) || errors.Is(err, ssrf.ErrProhibitedPort) || errors.Is(err, ssrf.ErrProhibitedNetwork) {
			return nil, fmt.Errorf("%w: %w", ErrAddress, err)
		}
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %d", ErrStatus, res.StatusCode)
	}
	if res.ContentLength > f.opts.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes announced", ErrTooLarge, res.ContentLength)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, f.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch: reading: %w", err)
	}
	if int64(len(body)) > f.opts.MaxBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, f.opts.MaxBytes)
	}
	// An answer that raced in as the deadline passed is still late: the
	// time bound is a promise about every answer the fetcher accepts.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return &Result{Body: body, CacheControl: res.Header.Get("Cache-Control"), Expires: res.Header.Get("Expires")}, nil
}

// PostForm posts form (application/x-www-form-urlencoded) to raw: a
// notification the server sends a client, such as a logout token. It
// returns the answer's status: a 2xx is success; any other comes with an
// error wrapping ErrStatus (a redirect is an answer, not followed); a
// failure to connect, or to get the whole answer within Timeout, has
// status 0. The answer's body is read, up to MaxBytes, and discarded.
// Posts are never shared between callers; they count against
// MaxConcurrent, waiting for a slot within ctx and Timeout. The form is
// at most MaxBytes.
//
// raw is an https URL as CheckURL says; with AllowLoopbackForTests, also
// http on a loopback host (test relying parties listen on 127.0.0.1).
func (f *Fetcher) PostForm(ctx context.Context, raw string, form url.Values) (int, error) {
	if err := f.checkPostURL(raw); err != nil {
		return 0, err
	}
	body := form.Encode()
	if int64(len(body)) > f.opts.MaxBytes {
		return 0, fmt.Errorf("%w: the form is over %d bytes", ErrTooLarge, f.opts.MaxBytes)
	}
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	case <-ctx.Done():
		return 0, fmt.Errorf("fetch: too many fetches in flight: %w", ctx.Err())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, raw, strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, ssrf.ErrProhibitedIP) || errors.Is(err, ssrf.ErrProhibitedPort) || errors.Is(err, ssrf.ErrProhibitedNetwork) {
			return 0, fmt.Errorf("%w: %w", ErrAddress, err)
		}
		return 0, fmt.Errorf("fetch: %w", err)
	}
	defer res.Body.Close()
	// Read (bounded) so that the connection can serve the next post; an
	// answer whose body does not arrive in time is no answer.
	if _, err := io.Copy(io.Discard, io.LimitReader(res.Body, f.opts.MaxBytes)); err != nil {
		return 0, fmt.Errorf("fetch: reading: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("%w: %d", ErrStatus, res.StatusCode)
	}
	return res.StatusCode, nil
}

// checkPostURL is CheckURL, which PostForm widens to http on a loopback
// host for tests.
func (f *Fetcher) checkPostURL(raw string) error {
	if rest, ok := strings.CutPrefix(raw, "http://"); ok && f.opts.AllowLoopbackForTests {
		u, err := CheckURL("https://" + rest)
		if err != nil {
			return err
		}
		if !LoopbackHost(u.Hostname()) {
			return fmt.Errorf("%w: http only to a loopback host", ErrURL)
		}
		return nil
	}
	_, err := CheckURL(raw)
	return err
}

// LoopbackHost reports whether host (as url.URL.Hostname returns it) is
// localhost or a loopback IP address.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback() && a.Zone() == ""
}
