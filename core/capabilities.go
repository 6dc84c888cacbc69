package core

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Storage capabilities. The base Storage is what every deployment needs;
// a feature that must persist more brings one small interface of its own,
// which New finds on the Storage by type assertion. A store implements the
// capabilities it supports; a feature configured without its capability
// will fail at New, naming the interface (today's capabilities serve
// Server methods, which return ErrNoCapability instead). Each capability has its own sub-suite in core/storagetest.

// ClientRegistry is the capability to manage clients: the examples' client
// command, registration at start-up, and later dynamic client registration
// use it. core/memstore and storage/gorm implement it.
type ClientRegistry interface {
	// SaveClient registers c, replacing every field of a client with the
	// same ID (an upsert, atomic).
	SaveClient(ctx context.Context, c *Client) error
	// DeleteClient removes the client with its consents, codes and refresh
	// tokens (so a client registered later under the same ID inherits
	// none of them), or returns ErrNotFound.
	DeleteClient(ctx context.Context, id string) error
	// ListClients returns every client, ordered by ID (byte order).
	ListClients(ctx context.Context) ([]*Client, error)
}

// RegistrationStore is the capability behind dynamic client registration
// (RFC 7591) and its management API (RFC 7592): a ClientRegistry that can
// also insert a client only if its ID is free, record a client's first
// use, and count and expire dynamically registered clients. core/memstore
// and storage/gorm implement it.
type RegistrationStore interface {
	ClientRegistry
	// CreateClient stores c if no client has its ID, atomically (a unique
	// insert, never find-then-save); otherwise it returns ErrExists and
	// changes nothing.
	CreateClient(ctx context.Context, c *Client) error
	// MarkClientUsed sets the client's UsedAt to at if it is still zero;
	// a client already marked keeps its first use. An absent client is
	// not an error.
	MarkClientUsed(ctx context.Context, id string, at time.Time) error
	// CountDynamicClients returns how many clients have Dynamic set.
	CountDynamicClients(ctx context.Context) (int, error)
	// DeleteUnusedClients removes, as DeleteClient does, every client with
	// Dynamic set, UsedAt zero and CreatedAt before createdBefore, and
	// returns how many it removed.
	DeleteUnusedClients(ctx context.Context, createdBefore time.Time) (int, error)
}

// ReplayCache is the capability behind every "accepted only once" check
// that must hold across instances: DPoP proof jti (RFC 9449 §11.1), client
// assertion jti (RFC 7523 §3), one-time request_uri (RFC 9126). One
// primitive serves them all: remember a key for a while, atomically.
// core/memstore and storage/gorm implement it.
type ReplayCache interface {
	// Remember records key until the time until and reports true, unless
	// key is already recorded with an until after now, in which case it
	// changes nothing and reports false. It is atomic: of any number of
	// concurrent calls with one key, on one instance or many, exactly one
	// reports true (a unique insert whose row count decides, never a
	// lookup followed by a save). Keys are at most 256 bytes; a store may
	// drop records whose until has passed.
	Remember(ctx context.Context, key string, now, until time.Time) (bool, error)
}

// UserGrantStore is the capability behind user-wide grant management
// (Server.RevokeUser, Server.UserClients, Server.ForgetConsent): a
// password change, "sign out of all apps", a user's list of authorised
// apps. core/memstore and storage/gorm implement it.
//
// A store finds a user's families through the grants and refresh tokens it
// keeps: a grant (Grant.KeepUntil) and a refresh token (its ExpiresAt)
// stay until no token of their family can be valid, so every family that
// could still hold a working token is found.
type UserGrantStore interface {
	// RevokeUserGrants revokes every family of the user's grants and
	// refresh tokens (only those of clientID when it is not ""), as
	// RevokeFamily does with keepUntil, and returns the family ids it
	// revoked (each once, in any order). Families made after it returns
	// are not affected. It also expires the user's codes not redeemed
	// yet (ExpiresAt in the past, the grant still kept until its old
	// max(ExpiresAt, KeepUntil)), so RedeemCode answers ErrNotFound for
	// them instead of issuing tokens into a revoked family. Client
	// credentials grants have no user and are never revoked by it.
	RevokeUserGrants(ctx context.Context, userID, clientID string, keepUntil time.Time) ([]string, error)
	// UserClients lists the clients the user has authorised at now: a
	// consent, or a grant or refresh token of a family that is not revoked
	// and may still hold a valid token. Ordered by client ID.
	UserClients(ctx context.Context, userID string, now time.Time) ([]UserClient, error)
	// DeleteConsent forgets the scope the user approved for the client,
	// so the consent page is shown again. Forgetting an absent consent is
	// not an error.
	DeleteConsent(ctx context.Context, userID, clientID string) error
}

// LoginSessionStore is the capability behind the kit's end-user login
// sessions (OpenID Connect prompt=none, max_age, RP-initiated logout): the
// browser holds a random cookie, the store a record under its HMAC, so
// that logging out on one instance ends the session on all of them.
// core/memstore and storage/gorm implement it.
type LoginSessionStore interface {
	// CreateLoginSession stores s. IDs are unique (HMACs of fresh random
	// cookies); storing an existing ID returns ErrExists and stores
	// nothing.
	CreateLoginSession(ctx context.Context, s *LoginSession) error
	// GetLoginSession returns the session with that ID, or ErrNotFound
	// if there is none, it ended, or it expired (ExpiresAt not after now).
	GetLoginSession(ctx context.Context, id string, now time.Time) (*LoginSession, error)
	// EndLoginSession ends the session with that ID: GetLoginSession
	// answers ErrNotFound for it from then on, on every instance. Ending
	// an absent or ended session is not an error.
	EndLoginSession(ctx context.Context, id string) error
}

// LoginSession is an end user's login at the server.
type LoginSession struct {
	// ID is the server's HMAC of the session cookie; the cookie itself is
	// never stored.
	ID string
	// SID is the session's public identifier, the id_token's sid claim.
	SID    string
	UserID string
	// AuthTime is when the user authenticated; ACR and AMR how, as the
	// app reported them.
	AuthTime time.Time
	ACR      string
	AMR      []string
	// CreatedAt and ExpiresAt bound the session; a store may drop it after
	// ExpiresAt.
	CreatedAt time.Time
	ExpiresAt time.Time
	// ClientIDs are the clients that were issued a code in the session
	// (SessionClientStore.AddSessionClient), each once, in the order they
	// came; back-channel logout notifies them when the session ends. At
	// most MaxSessionClients.
	ClientIDs []string
}

// SessionClientStore is the capability behind OpenID Connect Back-Channel
// Logout (Config.BackchannelLogout) and Server.EndUserSessions: a
// LoginSessionStore that also records which clients took part in a
// session, and ends sessions handing back what they were, atomically, so
// that no client recorded in a session escapes the notification of its
// end. core/memstore and storage/gorm implement it.
type SessionClientStore interface {
	LoginSessionStore
	// AddSessionClient adds clientID to the ClientIDs of the live session
	// (ExpiresAt after now) whose SID is sid, unless it is there already;
	// concurrent calls for one session all land. Without such a session
	// (none, ended, expired) it returns ErrNotFound and records nothing. A
	// session that holds MaxSessionClients clients already refuses
	// another with ErrTooManySessionClients.
	AddSessionClient(ctx context.Context, sid, clientID string, now time.Time) error
	// TakeLoginSession ends the session with that ID, as EndLoginSession
	// does, and returns it as it was when it ended (its ClientIDs
	// complete: an AddSessionClient either lands before and is returned,
	// or finds the session ended and returns ErrNotFound). ErrNotFound:
	// there was no live session with that ID (an expired one is ended all
	// the same).
	TakeLoginSession(ctx context.Context, id string, now time.Time) (*LoginSession, error)
	// TakeUserLoginSessions ends every session of the user, as
	// TakeLoginSession does, and returns the live ones (any order; none
	// is no error). Sessions created after it returns are not affected.
	TakeUserLoginSessions(ctx context.Context, userID string, now time.Time) ([]*LoginSession, error)
}

// MaxSessionClients bounds LoginSession.ClientIDs: a browser session that
// signed in to more clients than this is refused another code (a store
// keeps the list on the session's record).
const MaxSessionClients = 64

// ErrTooManySessionClients is returned by
// SessionClientStore.AddSessionClient for a session that holds
// MaxSessionClients clients already.
var ErrTooManySessionClients = errors.New("oauth2kit: the login session has taken part in too many clients")

// UserClient is one client a user has authorised.
type UserClient struct {
	ClientID string
	// ConsentScope is the scope the user approved (empty without a
	// consent record: an Authenticator without consent prompts).
	ConsentScope string
	// Active reports that at least one grant or refresh token of the
	// client may still hold a valid token.
	Active bool
}

// ErrNoCapability is returned (wrapped, naming the interface) by a Server
// method whose Storage lacks the capability the method needs.
var ErrNoCapability = fmt.Errorf("oauth2kit: the Storage lacks a capability")

// capabilities are the optional interfaces found on the Storage at New.
type capabilities struct {
	users    UserGrantStore    // nil without
	sessions LoginSessionStore // nil without
	reg      RegistrationStore // nil without
	replay   ReplayCache       // nil without
	devices  DeviceStore       // nil without

	// sessionClients is sessions when it is a SessionClientStore.
	sessionClients SessionClientStore // nil without
}

func findCapabilities(st Storage) capabilities {
	var c capabilities
	c.users, _ = st.(UserGrantStore)
	c.sessions, _ = st.(LoginSessionStore)
	c.sessionClients, _ = st.(SessionClientStore)
	c.reg, _ = st.(RegistrationStore)
	c.replay, _ = st.(ReplayCache)
	c.devices, _ = st.(DeviceStore)
	return c
}

func missing(name string) error {
	return fmt.Errorf("%w: core.%s", ErrNoCapability, name)
}
