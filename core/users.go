package core

import (
	"context"
	"errors"
)

// RevokeUser ends every grant of one user, for all clients: every refresh
// token of their families stops rotating and every access token fails
// CheckToken and introspection (on other instances within
// Config.Caches.Revocation, at once here). Use it on a password change,
// an account takeover, or "sign out of all apps". It returns how many
// families it revoked. The Storage must implement UserGrantStore. The
// user's login sessions stay: EndUserSessions ends them (and sends
// back-channel logout tokens).
func (s *Server) RevokeUser(ctx context.Context, userID string) (int, error) {
	return s.revokeUser(ctx, userID, "")
}

// RevokeUserClient ends the user's grants of one client (the user's "remove
// this app"). The consent stays: ForgetConsent drops it.
func (s *Server) RevokeUserClient(ctx context.Context, userID, clientID string) (int, error) {
	if clientID == "" {
		return 0, errors.New("oauth2kit: RevokeUserClient needs a client id")
	}
	return s.revokeUser(ctx, userID, clientID)
}

func (s *Server) revokeUser(ctx context.Context, userID, clientID string) (int, error) {
	if s.caps.users == nil {
		return 0, missing("UserGrantStore")
	}
	if userID == "" {
		return 0, errors.New("oauth2kit: a user id is required")
	}
	// Kept past every token the families can still get: a code not yet
	// redeemed (the stores expire those, but a third-party one may not)
	// would mint a refresh token living up to Code + RefreshToken.
	now := s.now()
	fams, err := s.caps.users.RevokeUserGrants(ctx, userID, clientID, s.familyKeep(now).Add(s.cfg.Lifetimes.Code))
	for _, f := range fams {
		s.revCache.forget(f)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: revoking a user's grants failed", "err", err)
		return len(fams), err
	}
	s.log.InfoContext(ctx, "oauth2kit: user grants revoked", "families", len(fams), "client_id", clientID)
	return len(fams), nil
}

// UserClients lists the clients the user has authorised (a consent, or a
// grant that may still hold a valid token), for a "connected apps" page.
// The Storage must implement UserGrantStore.
func (s *Server) UserClients(ctx context.Context, userID string) ([]UserClient, error) {
	if s.caps.users == nil {
		return nil, missing("UserGrantStore")
	}
	return s.caps.users.UserClients(ctx, userID, s.now())
}

// ForgetConsent forgets what the user approved for the client: the next
// authorization request of that client shows the consent page again.
// Tokens already issued stay valid (RevokeUserClient ends them). The
// Storage must implement UserGrantStore.
func (s *Server) ForgetConsent(ctx context.Context, userID, clientID string) error {
	if s.caps.users == nil {
		return missing("UserGrantStore")
	}
	return s.caps.users.DeleteConsent(ctx, userID, clientID)
}
