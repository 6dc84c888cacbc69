package core

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/usercode"
)

// The device authorization grant (RFC 8628): a device without a browser
// (a CLI, a TV, a CI agent) asks for a device code and a user code, shows
// the user code, and polls the token endpoint while the user enters the
// code on the verification page, signs in and consents in a browser.
//
// The pieces map onto the code flow's: the verification page starts a
// pending authorization request as authorize does, the login and consent
// pages are the app's as ever, and the user's approval stores a Grant
// whose code signature is the device code's, which the device's polling
// then redeems with the store's atomic RedeemCode. So one device code
// yields one token response, on any number of instances, by the same
// property that makes codes single use.

// GrantDeviceCode is the device authorization grant's grant_type.
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// Device polling errors (RFC 8628 §3.5); expired_token is ErrExpiredToken.
const (
	ErrAuthorizationPending = "authorization_pending"
	ErrSlowDown             = "slow_down"
)

// DeviceFlow configures the device authorization grant (RFC 8628). Off by
// default; on, it needs a store with the DeviceStore capability and an
// Authenticator that asks for consent (the consent
// page is the user's explicit confirmation, RFC 8628 §5.4).
type DeviceFlow struct {
	Enabled bool
	// Lifetime of a device code and its user code. Default 10 minutes,
	// at most 30 (the user code's entropy is sized for it).
	Lifetime time.Duration
	// Interval is the polling interval devices are told (RFC 8628 §3.2);
	// a device polling faster gets slow_down and 5 s more. Default 5 s.
	Interval time.Duration
	// VerificationURI is the verification page's URL as shown to users,
	// when a shorter one redirects to the kit's (Paths.DeviceVerification).
	// Default: the issuer's URL of that path.
	VerificationURI string
	// WrongCodesPerAddr bounds the wrong user codes one address (IPv6:
	// one /64) may enter in 10 minutes before the page answers 429
	// (SECURITY.md R70). Default 10.
	WrongCodesPerAddr int
}

// DeviceStore is the capability behind the device authorization grant:
// device codes between the device's request and the user's decision.
// core/memstore and storage/gorm implement it; core/storagetest has its
// suite. The redemption itself goes through Storage.RedeemCode.
type DeviceStore interface {
	// CreateDeviceCode stores a new device authorization, to be kept until
	// DeviceCodeKeep after its ExpiresAt. If one with the same Sig or
	// UserCodeSig exists (until the store dropped it), it
	// stores nothing and returns ErrExists: the server draws another user
	// code.
	CreateDeviceCode(ctx context.Context, d *DeviceCode) error
	// GetDeviceCode returns the device authorization whose device code
	// signature is sig, whatever its state, or ErrNotFound.
	GetDeviceCode(ctx context.Context, sig string) (*DeviceCode, error)
	// GetDeviceCodeByUserCode returns the device authorization whose user
	// code signature is userCodeSig, whatever its state, or ErrNotFound.
	GetDeviceCodeByUserCode(ctx context.Context, userCodeSig string) (*DeviceCode, error)
	// DecideDeviceCode records the user's decision on the device code sig,
	// once and atomically: if it is undecided and unexpired at now, it sets
	// DecidedAt (now), Approved and UserID and, when approving, stores g
	// (whose CodeSig is sig) in the same transaction. A decided code gets
	// ErrCodeUsed, an unknown or expired one ErrNotFound. Of N concurrent
	// calls for one code exactly one succeeds.
	DecideDeviceCode(ctx context.Context, sig string, now time.Time, approve bool, userID string, g *Grant) error
	// PollDeviceCode records a poll of the device code sig, atomically:
	// if its NextPollAt is not after now (or unset), it sets NextPollAt
	// to next and reports true; otherwise it changes nothing and reports
	// false (the device polled too soon). Of N concurrent calls at most
	// one reports true. ErrNotFound for an unknown code.
	PollDeviceCode(ctx context.Context, sig string, now, next time.Time) (bool, error)
	// SlowDownDeviceCode records the longer interval a device was told
	// with slow_down and when it may poll next.
	SlowDownDeviceCode(ctx context.Context, sig string, interval time.Duration, next time.Time) error
}

// DeviceCode is a stored device authorization (by signatures only: the
// device code and the user code themselves are never stored).
type DeviceCode struct {
	// Sig is the server's HMAC of the device code.
	Sig string
	// UserCodeSig is the server's HMAC of the canonical user code.
	UserCodeSig string
	ClientID    string
	Scope       string
	// Resource lists the RFC 8707 resources asked for (canonical,
	// space-separated), empty for none.
	Resource  string
	CreatedAt time.Time
	ExpiresAt time.Time
	// Interval is the polling interval the device was last told.
	Interval time.Duration
	// NextPollAt is the earliest time the next poll is not too soon (zero
	// before the first poll).
	NextPollAt time.Time
	// DecidedAt is set when the user approved or denied; Approved says
	// which, UserID who.
	DecidedAt *time.Time
	Approved  bool
	UserID    string
}

// Device code tokens: "dc1.<kid>.<random+tag>", like refresh tokens.
const prefixDevice = "dc1"

// DeviceCodeKeep is how long past its expiry a store keeps a device code,
// so that a device still polling learns expired_token rather than
// invalid_grant (a store may drop the code after it).
const DeviceCodeKeep = 30 * time.Minute

func (s *Server) setupDevice() error {
	c := &s.cfg.Device
	if !c.Enabled {
		return nil
	}
	if s.caps.devices == nil {
		return fmt.Errorf("%w (Config.Device)", missing("DeviceStore"))
	}
	if _, ok := s.auth.(ConsentPrompter); !ok {
		return errors.New("oauth2kit: Config.Device needs an Authenticator that asks for consent (ConsentPrompter): the consent page is the user's confirmation of the device (RFC 8628 §5.4)")
	}
	if c.Lifetime <= 0 {
		c.Lifetime = 10 * time.Minute
	}
	if c.Lifetime > 30*time.Minute {
		return errors.New("oauth2kit: Config.Device.Lifetime is at most 30 minutes")
	}
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.Interval < time.Second || c.Interval%time.Second != 0 {
		return errors.New("oauth2kit: Config.Device.Interval is a whole number of seconds, at least 1")
	}
	if c.WrongCodesPerAddr <= 0 {
		c.WrongCodesPerAddr = 10
	}
	if c.VerificationURI == "" {
		c.VerificationURI = s.cfg.Issuer + s.cfg.Paths.DeviceVerification
	}
	if u, err := url.Parse(c.VerificationURI); err != nil || !u.IsAbs() || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("oauth2kit: Config.Device.VerificationURI must be an absolute URL without query or fragment")
	}
	s.deviceThrottle = newThrottle(1<<30, c.WrongCodesPerAddr, false, 10*time.Minute)
	return nil
}

// userCodeSig is how a user code is stored and found: a MAC under the
// primary key generation, so a reader of the table cannot enter the
// pending codes.
func (s *Server) userCodeSig(code string) string {
	var buf [32]byte
	return base64.RawURLEncoding.EncodeToString(s.keys.primary.mac(buf[:0], 's', "device-user-code", code))
}

// DeviceAuthorization is the device authorization endpoint (RFC 8628
// §3.1): a client (public ones by client_id) asks for a device code.
func (s *Server) DeviceAuthorization(w Responder, r Request) { s.serve(&epDeviceAuthorization, w, r) }

var epDeviceAuthorization = endpoint{field: "Paths.DeviceAuthorization", path: func(c *Config) *string { return &c.Paths.DeviceAuthorization },
	def: "/oauth2/device_authorization", methods: []string{"POST"}, allow: hdrAllowPost, meta: "device_authorization_endpoint",
	serve: (*Server).deviceAuthorization}

var epDeviceVerification = endpoint{field: "Paths.DeviceVerification", path: func(c *Config) *string { return &c.Paths.DeviceVerification },
	def: "/device", methods: []string{"GET", "HEAD", "POST"}, allow: hdrAllowGetHeadPost, page: true, serve: (*Server).deviceVerification}

func (s *Server) deviceAuthorization(w Responder, r Request) {
	f := s.getParams()
	defer s.putParams(f)
	if e := s.readPost(r, f); e != nil {
		sendError(w, e, false)
		return
	}
	ca, e := s.authenticateClient(r, f, true)
	if e != nil {
		sendError(w, e, false)
		return
	}
	c := ca.client
	s.corsForClient(w, r, c)
	if !c.AllowsGrant(GrantDeviceCode) {
		sendError(w, oerr(400, ErrUnauthorizedClient, "the client may not use the device authorization grant"), false)
		return
	}
	scope, e := s.allowedScope(c, f.get("scope"))
	if e != nil {
		sendError(w, e, false)
		return
	}
	resources, e := s.checkResources(resourceParam(f), scope)
	if e != nil {
		sendError(w, e, false)
		return
	}
	ctx := r.Context()
	now := s.now()
	cfg := &s.cfg.Device
	tok, sig, err := s.keys.newOpaque(prefixDevice)
	if err != nil {
		sendError(w, oerr(500, ErrServerError, "the server could not complete the request"), false)
		return
	}
	d := &DeviceCode{
		Sig: sig, ClientID: c.ID, Scope: scope, Resource: strings.Join(resources, " "),
		CreatedAt: now, ExpiresAt: now.Add(cfg.Lifetime), Interval: cfg.Interval,
	}
	// A user code is 34.6 bits: among live codes a collision is rare but
	// possible, and the store's unique index says so. A few draws settle
	// it; needing more means the store is failing, not unlucky.
	var code string
	for range 5 {
		if code, err = usercode.New(); err != nil {
			break
		}
		d.UserCodeSig = s.userCodeSig(code)
		if err = s.caps.devices.CreateDeviceCode(ctx, d); !errors.Is(err, ErrExists) {
			break
		}
	}
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: storing a device code failed", "err", err)
		sendError(w, storageError(err), false)
		return
	}
	shown := usercode.Format(code)
	o := newJSON(384)
	o.str("device_code", tok)
	o.str("user_code", shown)
	o.str("verification_uri", cfg.VerificationURI)
	o.str("verification_uri_complete", cfg.VerificationURI+"?user_code="+url.QueryEscape(shown))
	o.num("expires_in", int64(cfg.Lifetime/time.Second))
	o.num("interval", int64(cfg.Interval/time.Second))
	sendJSON(w, 200, o.bytes())
}

// deviceGrant is the token request of a polling device (RFC 8628 §3.4).
var deviceGrant = grantType{
	name:     GrantDeviceCode,
	required: []string{"device_code"},
	public:   true,
	enabled:  func(c *Config) bool { return c.Device.Enabled },
	handle:   (*Server).deviceToken,
}

func (s *Server) deviceToken(ctx context.Context, c *Client, f *params) (*tokenResult, *oauthError) {
	sig, ok := s.keys.opaqueSig(prefixDevice, f.get("device_code"))
	if !ok {
		return nil, badGrant("the device code is invalid")
	}
	d, err := s.caps.devices.GetDeviceCode(ctx, sig)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, badGrant("the device code is invalid")
	case err != nil:
		s.log.ErrorContext(ctx, "oauth2kit: reading a device code failed", "err", err)
		return nil, storageError(err)
	case d.ClientID != c.ID:
		return nil, badGrant("the device code was not issued to this client")
	}
	now := s.now()
	switch {
	case !now.Before(d.ExpiresAt):
		// Checked first: an approval the device never collected expires
		// with its code.
		return nil, oerr(400, ErrExpiredToken, "the device code expired; start again")
	case d.DecidedAt != nil && d.Approved:
		// The grant the approval stored, redeemed once in all: the first
		// poll after approval gets the tokens, any other the code's
		// invalid_grant (and a replay revokes them, as for codes).
		return s.redeemCode(ctx, c, f, []string{sig})
	case d.DecidedAt != nil:
		return nil, oerr(400, ErrAccessDenied, "the user denied the request")
	}
	// Pending. One poll per interval, whichever instances the polls
	// reach (the store decides); a poll inside the interval slows the
	// device down for this and every later poll (RFC 8628 §3.5). A second
	// of slack: devices time their polls from when the answer arrived,
	// the server from when the request did.
	interval := d.Interval
	if interval <= 0 {
		interval = s.cfg.Device.Interval
	}
	next := func(iv time.Duration) time.Time { return now.Add(max(iv-time.Second, time.Second)) }
	inTime, err := s.caps.devices.PollDeviceCode(ctx, sig, now, next(interval))
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: recording a device poll failed", "err", err)
		return nil, storageError(err)
	}
	if !inTime {
		interval += 5 * time.Second
		if err := s.caps.devices.SlowDownDeviceCode(ctx, sig, interval, next(interval)); err != nil {
			s.log.ErrorContext(ctx, "oauth2kit: recording a device's interval failed", "err", err)
			return nil, storageError(err)
		}
		return nil, oerr(400, ErrSlowDown, "poll less often: wait 5 seconds more between requests")
	}
	return nil, oerr(400, ErrAuthorizationPending, "the user has not yet approved the request")
}

// DeviceStep is what the verification page shows.
type DeviceStep int

const (
	// DeviceEnterCode: the form asking for the user code (prefilled from
	// verification_uri_complete, still to be submitted by the user).
	DeviceEnterCode DeviceStep = iota
	// DeviceApproved: the device is signed in; the user may close the page.
	DeviceApproved
	// DeviceDenied: the user denied the device.
	DeviceDenied
)

// DevicePage is the device verification page for the app to render
// (DeviceVerifier) or the kit's default page.
type DevicePage struct {
	Step DeviceStep
	// UserCode prefills the form (as the user should see it, XXXX-XXXX);
	// may be empty.
	UserCode string
	// Error says why the last code entered was refused ("" for none):
	// safe text, still to be HTML-escaped.
	Error string
	// ActionURL is where the form posts (the page's own path).
	ActionURL string
	// ClientName names the device's client on the result steps.
	ClientName string
	csrf       string
}

// FieldUserCode is the verification form's field holding the user code.
const FieldUserCode = "user_code"

// HiddenFields returns the hidden form fields the verification form must
// carry, HTML-escaped (for html/template, wrap in template.HTML).
func (p *DevicePage) HiddenFields() string {
	return `<input type="hidden" name="` + FieldCSRF + `" value="` + html.EscapeString(p.csrf) + `">`
}

// DeviceVerifier is implemented by an Authenticator that renders the
// device verification page itself: a form with an input named
// FieldUserCode and p.HiddenFields(), POSTed to p.ActionURL. The kit has
// set the security headers.
type DeviceVerifier interface {
	DevicePage(w Responder, r Request, p *DevicePage)
}

// deviceVerification serves the verification page: GET shows the form,
// POST reads a user code and starts the login for its device.
func (s *Server) deviceVerification(w Responder, r Request) {
	sess, ok := s.ensureSession(w, r)
	if !ok {
		s.errorPage(w, r, 500, ErrServerError, "the server could not complete the request")
		return
	}
	page := &DevicePage{ActionURL: s.cfg.Paths.DeviceVerification, csrf: csrfToken(s.keys.primary, sess, "device")}
	if r.Method() != "POST" {
		q, _ := url.ParseQuery(r.RawQuery())
		if c, ok := usercode.Normalize(q.Get(FieldUserCode)); ok {
			page.UserCode = usercode.Format(c)
		}
		s.devicePage(w, r, 200, page)
		return
	}
	var f params
	if err := readForm(r, s.cfg.Limits.MaxBodyBytes, s.cfg.Limits.MaxParams, s.cfg.Limits.MaxValueLength, &f); err != nil {
		s.errorPage(w, r, 400, ErrInvalidRequest, "malformed or oversized form")
		return
	}
	if !hmac.Equal([]byte(f.get(FieldCSRF)), []byte(page.csrf)) {
		s.errorPage(w, r, 403, ErrAccessDenied, "the form does not belong to this browser session; reload the page")
		return
	}
	now := s.now()
	if wait := s.deviceThrottle.blocked("", r.RemoteAddr(), now); wait > 0 {
		w.SetHeader("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		s.errorPage(w, r, 429, "too_many_attempts", "too many wrong codes; wait a few minutes and try again")
		return
	}
	ctx := r.Context()
	refuse := func(msg string) {
		s.deviceThrottle.fail("", r.RemoteAddr(), now)
		page.Error, page.UserCode = msg, ""
		s.devicePage(w, r, 400, page)
	}
	code, ok := usercode.Normalize(f.get(FieldUserCode))
	if !ok {
		refuse("That is not a code: it has 8 letters, like BCDF-GHJK.")
		return
	}
	d, err := s.caps.devices.GetDeviceCodeByUserCode(ctx, s.userCodeSig(code))
	switch {
	case errors.Is(err, ErrNotFound):
		refuse("No device is waiting for that code. Check it and try again.")
		return
	case err != nil:
		s.log.ErrorContext(ctx, "oauth2kit: reading a device code failed", "err", err)
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
		return
	case !now.Before(d.ExpiresAt):
		refuse("That code has expired. Start again on your device.")
		return
	case d.DecidedAt != nil:
		refuse("That code was used already. Start again on your device.")
		return
	}
	c, err := s.getClient(ctx, d.ClientID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			refuse("No device is waiting for that code. Check it and try again.")
			return
		}
		s.log.ErrorContext(ctx, "oauth2kit: client lookup failed", "err", err)
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
		return
	}
	// The device's request, carried through login and consent like an
	// authorization request: no redirect URI (every answer is a page) and
	// the device code's signature to decide on.
	exp := now.Add(s.cfg.Lifetimes.Login)
	if d.ExpiresAt.Before(exp) {
		exp = d.ExpiresAt
	}
	p := &pending{
		exp:      exp.Unix(),
		clientID: c.ID, clientName: c.Name, scope: d.Scope, resource: d.Resource,
		device: d.Sig, pageReq: r,
	}
	if s.cfg.OIDC.enabled() && hasScope(d.Scope, ScopeOpenID) {
		p.oidc = &oidcContext{}
	}
	ar := s.newAuthorizationRequest(p, sess, w, r)
	setPageHeaders(w)
	s.auth.Login(w, r, ar)
	ar.detach()
}

// devicePage renders the verification page: the app's, or the default.
func (s *Server) devicePage(w Responder, r Request, status int, p *DevicePage) {
	setPageHeaders(w)
	if dv, ok := s.auth.(DeviceVerifier); ok {
		dv.DevicePage(w, r, p)
		return
	}
	hdrHTML.set(w)
	var body string
	switch p.Step {
	case DeviceApproved:
		body = "<h1>Device connected</h1><p>" + html.EscapeString(p.ClientName) + " is signed in. You can close this page and return to your device.</p>"
	case DeviceDenied:
		body = "<h1>Device not connected</h1><p>You denied " + html.EscapeString(p.ClientName) + ". You can close this page.</p>"
	default:
		msg := ""
		if p.Error != "" {
			msg = `<p role="alert">` + html.EscapeString(p.Error) + `</p>`
		}
		body = `<h1>Connect a device</h1><p>Enter the code shown on your device.</p>` + msg +
			`<form method="post" action="` + html.EscapeString(p.ActionURL) + `">` + p.HiddenFields() +
			`<input name="` + FieldUserCode + `" value="` + html.EscapeString(p.UserCode) + `" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="` +
			strconv.Itoa(usercode.MaxInput) + `" required> <button type="submit">Continue</button></form>`
	}
	_ = w.Send(status, []byte(`<!doctype html><html><head><meta charset="utf-8"><title>Connect a device</title></head><body>`+body+`</body></html>`))
}

// decideDevice settles the consent step of a device's request: approve
// stores the grant the device's next poll redeems; deny records the
// refusal. Either is once per device code, whichever instance, tab or
// form the decision comes from.
func (s *Server) decideDevice(w Responder, r Request, p *pending, approve bool) {
	ctx := r.Context()
	now := s.now()
	var g *Grant
	if approve {
		gid, err := newID()
		if err != nil {
			s.errorPage(w, r, 500, ErrServerError, "the server could not complete the request")
			return
		}
		d, err := s.caps.devices.GetDeviceCode(ctx, p.device)
		if err != nil {
			s.deviceDecisionFailed(w, r, err)
			return
		}
		if p.oidc != nil {
			// As for a code (issueCode): a client the session's end would
			// not reach gets no grant in it.
			if e := s.recordSessionClient(ctx, p.oidc.SID, p.clientID); e != nil {
				s.errorPage(w, r, e.status, e.code, e.desc)
				return
			}
		}
		g = &Grant{
			ID: gid, CodeSig: p.device, ClientID: p.clientID, UserID: p.userID, Scope: p.scope,
			OIDC: grantOIDCOf(p), Resource: p.resource, AdditionalInfo: p.info,
			CreatedAt: now, ExpiresAt: d.ExpiresAt, KeepUntil: d.ExpiresAt.Add(s.cfg.Lifetimes.AccessToken),
		}
	}
	if err := s.caps.devices.DecideDeviceCode(ctx, p.device, now, approve, p.userID, g); err != nil {
		s.deviceDecisionFailed(w, r, err)
		return
	}
	step, ev := DeviceDenied, Event{Kind: EventDeviceDenied, ClientID: p.clientID, UserID: p.userID, Scope: p.scope, RemoteAddr: r.RemoteAddr()}
	if approve {
		step, ev.Kind, ev.GrantID = DeviceApproved, EventDeviceApproved, g.ID
	}
	s.emit(ctx, ev)
	s.devicePage(w, r, 200, &DevicePage{Step: step, ClientName: p.clientName, ActionURL: s.cfg.Paths.DeviceVerification})
}

func (s *Server) deviceDecisionFailed(w Responder, r Request, err error) {
	switch {
	case errors.Is(err, ErrCodeUsed):
		s.errorPage(w, r, 400, ErrInvalidRequest, "this device was already approved or denied")
	case errors.Is(err, ErrNotFound):
		s.errorPage(w, r, 400, ErrExpiredToken, "the device's request expired; start again on the device")
	default:
		s.log.ErrorContext(r.Context(), "oauth2kit: recording a device decision failed", "err", err)
		e := storageError(err)
		s.errorPage(w, r, e.status, e.code, e.desc)
	}
}
