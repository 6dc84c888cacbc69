package core

import (
	"context"
	"fmt"
	"time"
)

// EventKind names what an Event reports.
type EventKind string

// The events the server reports to Config.Events.
const (
	// EventTokenIssued: the token endpoint issued tokens. GrantType,
	// ClientID, UserID (empty for a grant without a user), GrantID and
	// TokenFormat are set; TokenType is the issued_token_type of a token
	// exchange.
	EventTokenIssued EventKind = "token_issued"
	// EventTokenRefused: the token endpoint refused a request. ErrorCode
	// is the OAuth error code sent, Reason its error_description; ClientID
	// is set once the client has authenticated, GrantType once the request
	// named a grant type the server serves.
	EventTokenRefused EventKind = "token_refused"
	// EventCodeReplay: an authorization code came back after it was
	// redeemed. FamilyRevoked reports whether what the first redemption
	// issued was revoked: it is only when the replay was otherwise valid
	// (right client, right PKCE verifier), so that a stranger holding a
	// stolen code cannot knock out the legitimate client's tokens.
	EventCodeReplay EventKind = "code_replay"
	// EventRefreshReuse: a refresh token came back after it was rotated
	// out, and its whole grant (GrantID) was revoked (FamilyRevoked false
	// only if storage failed to record that).
	EventRefreshReuse EventKind = "refresh_reuse"
	// EventClientAuthFailed: a client failed to authenticate, or was
	// refused for too many failures (Reason "throttled"). ClientID is the
	// client the request claimed to be, which is not verified.
	EventClientAuthFailed EventKind = "client_auth_failed"
	// EventLoginFailed: the app reported a failed sign-in (LoginFailed).
	EventLoginFailed EventKind = "login_failed"
	// EventLoginThrottled: LoginAllowed refused a sign-in attempt for too
	// many recent failures.
	EventLoginThrottled EventKind = "login_throttled"
	// EventConsentGiven and EventConsentDenied: the user approved or
	// denied ClientID's request for Scope on the consent page.
	EventConsentGiven  EventKind = "consent_given"
	EventConsentDenied EventKind = "consent_denied"
	// EventDeviceApproved and EventDeviceDenied: the user settled a
	// device's request (RFC 8628); GrantID is the grant of an approval.
	EventDeviceApproved EventKind = "device_approved"
	EventDeviceDenied   EventKind = "device_denied"
	// EventKeyRotated: the OIDC signing keys changed (RotateKeys, KeyID
	// the key published; or SetSigningKeys, KeyID empty). It is reported
	// while the rotation lock is held: a hook must not rotate keys itself.
	EventKeyRotated EventKind = "key_rotated"
	// EventClientRegistered: dynamic client registration (RFC 7591)
	// created ClientID.
	EventClientRegistered EventKind = "client_registered"
)

// Event is one security-relevant thing the server did, reported to
// Config.Events. Only the fields its Kind documents are set.
//
// An event never carries a token, code, secret, password, assertion or
// DPoP proof, nor any value a client or user typed that could hold one
// (no user name of a failed login: people type passwords there). UserID
// is the subject the app named at login, and is personal data: an app
// that stores or exports events must treat it so.
type Event struct {
	Kind EventKind
	Time time.Time
	// ClientID is the client concerned (for EventClientAuthFailed, the
	// one claimed).
	ClientID string
	// UserID is the user of the grant concerned.
	UserID string
	// GrantType is the token request's grant_type.
	GrantType string
	// TokenFormat is how the access token was minted: TokenFormatSealed or
	// TokenFormatJWT. Empty when no access token of the server's formats
	// was issued (an ID-JAG).
	TokenFormat string
	// TokenType is the issued_token_type of a token exchange (RFC 8693).
	TokenType string
	// GrantID is the grant (token family) concerned.
	GrantID string
	// Scope is the scope issued or consented to.
	Scope string
	// ErrorCode is the OAuth error code sent (EventTokenRefused).
	ErrorCode string
	// Reason says why: the error_description sent, or the detail logged.
	Reason string
	// KeyID is the signing key published (EventKeyRotated).
	KeyID string
	// RemoteAddr is the request's client address, when a request caused
	// the event.
	RemoteAddr string
	// FamilyRevoked reports, for a replay or reuse, whether the grant's
	// tokens were revoked.
	FamilyRevoked bool
}

// The TokenFormat of an Event.
const (
	TokenFormatSealed = "sealed"
	TokenFormatJWT    = "jwt"
)

// emit delivers e to Config.Events. The hook runs on the request's
// goroutine, before the response is written: it must be quick and must not
// block (an app that does I/O hands the event to its own queue). A panic
// in it is logged and dropped, so a broken hook never fails a request.
func (s *Server) emit(ctx context.Context, e Event) {
	h := s.cfg.Events
	if h == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	defer func() {
		if v := recover(); v != nil {
			// The panic value is the app's; only its type is logged, in
			// case it echoes something it should not.
			s.log.ErrorContext(ctx, "oauth2kit: the Events hook panicked; event dropped", "kind", string(e.Kind), "panic", fmt.Sprintf("%T", v))
		}
	}()
	h(ctx, e)
}

// eventsOn reports whether a hook is set: callers on the hot paths check
// it before building an event.
func (s *Server) eventsOn() bool { return s.cfg.Events != nil }

// tokenFormatName is the Event.TokenFormat of an access token minted for c.
func (s *Server) tokenFormatName(c *Client) string {
	if _, ok := s.formatFor(c).(jwtFormat); ok {
		return TokenFormatJWT
	}
	return TokenFormatSealed
}

// clientAuthFailed reports a failed client authentication
// (EventClientAuthFailed). id is the client the request claimed to be:
// an id longer than any the server accepts is left out, since nothing
// bounds what a caller puts there.
func (s *Server) clientAuthFailed(r Request, id, reason string) {
	if !s.eventsOn() {
		return
	}
	if len(id) > 128 {
		id = ""
	}
	s.emit(r.Context(), Event{Kind: EventClientAuthFailed, ClientID: id, Reason: reason, RemoteAddr: r.RemoteAddr()})
}
