package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/oauth2kit/oauth2kit/core/internal/fetch"
)

// BackchannelLogout configures OpenID Connect Back-Channel Logout 1.0:
// when a login session ends (RP-initiated logout, another user's login
// replacing the browser's session, Server.EndUserSessions), every client that was
// issued a code in it and registered a BackchannelLogoutURI is POSTed a
// signed logout token, through the SSRF-safe fetcher, in the background:
// the user's logout never waits for a relying party. Off by default; it
// needs Config.OIDC (the tokens are signed with its keys), the kit's own
// login sessions (an Authenticator that is not a SessionAuthenticator)
// and the SessionClientStore capability.
//
// Delivery is best effort within bounds: a network failure or a 5xx
// answer is retried (Attempts, Backoff), a 4xx is final, and when
// QueueSize notifications (or 8 of one client's) are waiting a new one is
// dropped and logged, never waited for. Notifications live in this
// process only: those still queued when it exits are lost.
type BackchannelLogout struct {
	Enabled bool
	// Attempts bounds the deliveries of one notification: the first and
	// its retries. Default 3, at most 5.
	Attempts int
	// Backoff is the wait before the first retry; each further retry
	// waits four times the one before, at most 10 minutes. Default 1 s
	// (retries after 1 s and 4 s); at most 1 minute.
	Backoff time.Duration
	// Timeout bounds one delivery, from dial to the end of the answer.
	// Default 5 s, at most 30 s.
	Timeout time.Duration
	// MaxConcurrent bounds the deliveries in flight. Default 4, at most
	// 64.
	MaxConcurrent int
	// QueueSize bounds the notifications accepted and not yet done
	// (waiting, in flight, or waiting to be retried). Default 1024, at
	// most 65536.
	QueueSize int

	// AllowLoopbackForTests lets deliveries go to loopback addresses on
	// any port, over http too, and TLS sets the fetcher's TLS
	// configuration, so tests can run relying parties on httptest. Never
	// set them in a server that faces the Internet.
	AllowLoopbackForTests bool
	TLS                   *tls.Config
}

const (
	// backchannelEvent is the logout token's events member (Back-Channel
	// Logout §2.4).
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenTyp is the logout token's JOSE typ (§2.4 recommends it,
	// so that no other JWT of ours can pass for one).
	logoutTokenTyp = "logout+jwt"
	// logoutTokenLifetime is its exp after iat: long enough for the
	// retries, short for a token that ends sessions.
	logoutTokenLifetime = 2 * time.Minute
	// maxBackchannelURI bounds a registered backchannel_logout_uri.
	maxBackchannelURI = 2048
	// backchannelLookup bounds the client lookup before a delivery.
	backchannelLookup = 5 * time.Second
	// maxPendingPerClient bounds one client's pending notifications: a
	// relying party that never answers (a tarpit registered by anyone,
	// with open registration) holds at most this many queue places and
	// workers, so the other clients' notifications are not dropped.
	maxPendingPerClient = 8
	// maxRetryWait bounds one wait between attempts.
	maxRetryWait = 10 * time.Minute
)

func (s *Server) setupBackchannel() error {
	c := &s.cfg.BackchannelLogout
	if !c.Enabled {
		return nil
	}
	switch {
	case !s.cfg.OIDC.enabled():
		return errors.New("oauth2kit: Config.BackchannelLogout needs Config.OIDC.SigningKeys")
	case s.caps.sessionClients == nil:
		return fmt.Errorf("oauth2kit: Config.BackchannelLogout: %w", missing("SessionClientStore"))
	}
	if _, own := s.auth.(SessionAuthenticator); own {
		// The app's sessions end where the kit cannot see them.
		return errors.New("oauth2kit: Config.BackchannelLogout needs the kit's login sessions; the Authenticator keeps its own (SessionAuthenticator)")
	}
	def := func(p *int, v, most int, name string) error {
		if *p <= 0 {
			*p = v
		}
		if *p > most {
			return fmt.Errorf("oauth2kit: Config.BackchannelLogout.%s is at most %d", name, most)
		}
		return nil
	}
	dur := func(p *time.Duration, v, most time.Duration, name string) error {
		if *p <= 0 {
			*p = v
		}
		if *p > most {
			return fmt.Errorf("oauth2kit: Config.BackchannelLogout.%s is at most %s", name, most)
		}
		return nil
	}
	for _, err := range []error{
		def(&c.Attempts, 3, 5, "Attempts"),
		def(&c.MaxConcurrent, 4, 64, "MaxConcurrent"),
		def(&c.QueueSize, 1024, 1<<16, "QueueSize"),
		dur(&c.Backoff, time.Second, time.Minute, "Backoff"),
		dur(&c.Timeout, 5*time.Second, 30*time.Second, "Timeout"),
	} {
		if err != nil {
			return err
		}
	}
	b := &backchannel{
		srv: s,
		// A logout token is under 2 KiB; an answer is read only to be
		// discarded.
		fetcher: fetch.New(fetch.Options{MaxBytes: 16 << 10, Timeout: c.Timeout, MaxConcurrent: c.MaxConcurrent,
			AllowLoopbackForTests: c.AllowLoopbackForTests, TLS: c.TLS}),
		attempts:   c.Attempts,
		backoff:    c.Backoff,
		maxWorkers: c.MaxConcurrent,
		maxPending: c.QueueSize,
		jobs:       make(chan *logoutJob, c.QueueSize),
	}
	b.idle = sync.NewCond(&b.mu)
	s.backchannel = b
	return nil
}

// checkBackchannelURI validates a backchannel_logout_uri ("" is none): an
// absolute https URL without userinfo or fragment, or, with loopbackHTTP,
// one over http on a loopback host.
func checkBackchannelURI(raw string, loopbackHTTP bool) error {
	if raw == "" {
		return nil
	}
	if len(raw) > maxBackchannelURI {
		return fmt.Errorf("longer than %d bytes", maxBackchannelURI)
	}
	if rest, ok := strings.CutPrefix(raw, "http://"); ok && loopbackHTTP {
		u, err := fetch.CheckURL("https://" + rest)
		if err != nil {
			return err
		}
		if !fetch.LoopbackHost(u.Hostname()) {
			return errors.New("http only on a loopback host")
		}
		return nil
	}
	_, err := fetch.CheckURL(raw)
	return err
}

// checkBackchannelMetadata validates the registration members of
// Back-Channel Logout §2.2, accepted only when the server has it on (as
// the DPoP and PAR members are).
func (s *Server) checkBackchannelMetadata(md *ClientMetadata) *oauthError {
	bad := func(desc string) *oauthError { return regError(ErrInvalidClientMetadata, desc) }
	switch {
	case md.BackchannelLogoutURI == "" && md.BackchannelLogoutSessionRequired:
		return bad("backchannel_logout_session_required needs a backchannel_logout_uri")
	case md.BackchannelLogoutURI == "":
		return nil
	case !s.cfg.BackchannelLogout.Enabled:
		return bad("backchannel_logout_uri: this server does not offer back-channel logout")
	}
	if err := checkBackchannelURI(md.BackchannelLogoutURI, s.cfg.BackchannelLogout.AllowLoopbackForTests); err != nil {
		return bad("backchannel_logout_uri must be an https URL without userinfo or fragment, at most 2048 bytes")
	}
	return nil
}

// recordSessionClient records, before a code is issued in the login
// session sid, that the client takes part in it, so that the session's
// end reaches it; an error is the authorization's answer. Only with
// back-channel logout on: nothing reads the record otherwise.
func (s *Server) recordSessionClient(ctx context.Context, sid, clientID string) *oauthError {
	if s.backchannel == nil || sid == "" {
		return nil
	}
	err := s.caps.sessionClients.AddSessionClient(ctx, sid, clientID, s.now())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		// The session ended (a logout in another tab) after this request
		// used it: a code in it would escape the end's notification.
		s.log.InfoContext(ctx, "oauth2kit: the login session ended during the authorization; no code issued", "client_id", clientID)
		return oerr(400, ErrLoginRequired, "the login session has ended; sign in again")
	case errors.Is(err, ErrTooManySessionClients):
		s.log.WarnContext(ctx, "oauth2kit: a login session reached MaxSessionClients; no code issued", "client_id", clientID)
		return oerr(500, ErrServerError, "this sign-in session has been used for too many applications; sign in again")
	}
	s.log.ErrorContext(ctx, "oauth2kit: recording the client of a login session failed", "err", err)
	return storageError(err)
}

// endLoginSession ends the kit's login session id (the HMAC of its
// cookie) on every instance and, with back-channel logout on, notifies
// the clients that took part in it.
// replaceLoginSession ends the browser's login session id for a new login
// of userID. With back-channel logout on, a session of another user ends
// as a logout does (its clients are told); one of the same user is
// returned, so that the new session continues it (same sid and clients).
func (s *Server) replaceLoginSession(ctx context.Context, id, userID string) (*LoginSession, error) {
	if s.backchannel == nil {
		return nil, s.caps.sessions.EndLoginSession(ctx, id)
	}
	ls, err := s.caps.sessionClients.TakeLoginSession(ctx, id, s.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case ls.UserID == userID:
		return ls, nil
	}
	s.backchannel.notify(ctx, ls)
	return nil, nil
}

func (s *Server) endLoginSession(ctx context.Context, id string) error {
	if s.backchannel == nil {
		return s.caps.sessions.EndLoginSession(ctx, id)
	}
	ls, err := s.caps.sessionClients.TakeLoginSession(ctx, id, s.now())
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.backchannel.notify(ctx, ls)
	return nil
}

// EndUserSessions ends every login session of the user, on every
// instance: a later prompt=none gets login_required and OIDC.SSO shows
// the login page again. With Config.BackchannelLogout on, every client
// that took part in one of them is sent a logout token (in the
// background). It returns how many live sessions it ended. Tokens already
// issued stay valid: on a password change or an account takeover call
// RevokeUser too. The Storage must implement SessionClientStore.
func (s *Server) EndUserSessions(ctx context.Context, userID string) (int, error) {
	if s.caps.sessionClients == nil {
		return 0, missing("SessionClientStore")
	}
	if userID == "" {
		return 0, errors.New("oauth2kit: a user id is required")
	}
	sessions, err := s.caps.sessionClients.TakeUserLoginSessions(ctx, userID, s.now())
	if err != nil {
		s.log.ErrorContext(ctx, "oauth2kit: ending a user's login sessions failed", "err", err)
		return 0, err
	}
	if s.backchannel != nil {
		for _, ls := range sessions {
			s.backchannel.notify(ctx, ls)
		}
	}
	s.log.InfoContext(ctx, "oauth2kit: user login sessions ended", "sessions", len(sessions))
	return len(sessions), nil
}

// backchannel delivers logout tokens. Workers are started on demand, at
// most maxWorkers, and exit when the queue is empty, so a Server that is
// dropped leaves no goroutine behind once its notifications are done.
type backchannel struct {
	srv      *Server
	fetcher  *fetch.Fetcher
	attempts int
	backoff  time.Duration

	// jobs holds up to maxPending jobs: as many as may be pending, so a
	// send under mu never blocks.
	jobs chan *logoutJob

	mu         sync.Mutex
	idle       *sync.Cond // signalled when pending drops to 0
	workers    int
	maxWorkers int
	// pending counts the jobs accepted and not done: queued, in
	// delivery, or waiting for a retry.
	pending    int
	maxPending int
	// perClient counts each client's pending jobs (maxPendingPerClient).
	perClient map[string]int
}

// logoutJob is one logout token for one client.
type logoutJob struct {
	clientID, userID, sid string
	// uri and token are set at the first attempt and kept for the
	// retries while the token is fresh (same jti, which a relying party
	// may recognise); a retry after half its lifetime gets a new one, so
	// no token is sent expired.
	uri, token string
	minted     time.Time
	attempt    int // attempts made
}

// notify queues a logout token for every client of the ended session ls.
func (b *backchannel) notify(ctx context.Context, ls *LoginSession) {
	dropped := 0
	for _, id := range ls.ClientIDs {
		if !b.enqueue(&logoutJob{clientID: id, userID: ls.UserID, sid: ls.SID}) {
			dropped++
		}
	}
	if dropped > 0 {
		b.srv.log.WarnContext(ctx, "oauth2kit: back-channel logout queue full; notifications dropped",
			"dropped", dropped, "clients", len(ls.ClientIDs))
	}
}

// enqueue accepts j unless maxPending jobs, or maxPendingPerClient of
// its client's, are pending already.
func (b *backchannel) enqueue(j *logoutJob) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending >= b.maxPending || b.perClient[j.clientID] >= maxPendingPerClient {
		return false
	}
	if b.perClient == nil {
		b.perClient = map[string]int{}
	}
	b.pending++
	b.perClient[j.clientID]++
	b.pushLocked(j)
	return true
}

// pushLocked queues a pending job and makes sure a worker will take it.
func (b *backchannel) pushLocked(j *logoutJob) {
	b.jobs <- j // never blocks: at most maxPending jobs are pending
	if b.workers < b.maxWorkers {
		b.workers++
		go b.work()
	}
}

// work delivers queued jobs until the queue is empty. The emptiness check
// is made under mu, where every push happens, so a job pushed as the
// worker leaves finds another worker started for it.
func (b *backchannel) work() {
	for {
		select {
		case j := <-b.jobs:
			b.deliver(j)
			continue
		default:
		}
		b.mu.Lock()
		if len(b.jobs) == 0 {
			b.workers--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
}

// done retires j.
func (b *backchannel) done(j *logoutJob) {
	b.mu.Lock()
	if b.perClient[j.clientID]--; b.perClient[j.clientID] <= 0 {
		delete(b.perClient, j.clientID)
	}
	b.pending--
	if b.pending == 0 {
		b.idle.Broadcast()
	}
	b.mu.Unlock()
}

// retry queues j again after its backoff, or retires it when its attempts
// are used up.
func (b *backchannel) retry(j *logoutJob, why ...any) {
	s := b.srv
	if j.attempt >= b.attempts {
		s.log.Warn("oauth2kit: back-channel logout not delivered; giving up",
			append([]any{"client_id", j.clientID, "attempts", j.attempt}, why...)...)
		b.done(j)
		return
	}
	wait := min(b.backoff<<(2*(j.attempt-1)), maxRetryWait) // 1, 4, 16 × Backoff
	s.log.Info("oauth2kit: back-channel logout not delivered; retrying",
		append([]any{"client_id", j.clientID, "attempt", j.attempt, "retry_in", wait}, why...)...)
	time.AfterFunc(wait, func() {
		b.mu.Lock()
		b.pushLocked(j)
		b.mu.Unlock()
	})
}

// deliver makes one attempt at j.
func (b *backchannel) deliver(j *logoutJob) {
	s := b.srv
	if j.token == "" || s.now().Sub(j.minted) > logoutTokenLifetime/2 {
		ok, err := b.prepare(j)
		if err != nil {
			j.attempt++
			b.retry(j, "err", err)
			return
		}
		if !ok {
			b.done(j)
			return
		}
	}
	// Not the logout request's context: the user's request is long
	// answered; Timeout bounds the attempt.
	status, err := b.fetcher.PostForm(context.Background(), j.uri, url.Values{"logout_token": {j.token}})
	j.attempt++
	switch {
	case err == nil:
		s.log.Debug("oauth2kit: back-channel logout delivered", "client_id", j.clientID, "attempt", j.attempt)
		b.done(j)
	case status >= 500 || status == 0 && !errors.Is(err, fetch.ErrURL) && !errors.Is(err, fetch.ErrAddress) && !errors.Is(err, fetch.ErrTooLarge):
		// The relying party or the network failed: it may work later.
		b.retry(j, "status", status, "err", err)
	default:
		// A 4xx (the relying party refused the token) or a URL or
		// address that will never be allowed: retrying changes nothing.
		s.log.Warn("oauth2kit: back-channel logout refused", "client_id", j.clientID, "status", status, "err", err)
		b.done(j)
	}
}

// prepare looks the client up and mints its logout token. It reports
// false, with a nil error, for a client that is not to be notified: gone,
// without a BackchannelLogoutURI, or requiring a sid the session lacks.
func (b *backchannel) prepare(j *logoutJob) (bool, error) {
	s := b.srv
	ctx, cancel := context.WithTimeout(context.Background(), backchannelLookup)
	defer cancel()
	c, err := s.getClient(ctx, j.clientID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("client lookup: %w", err)
	}
	if c.BackchannelLogoutURI == "" {
		return false, nil
	}
	if c.BackchannelLogoutSessionRequired && j.sid == "" {
		s.log.Warn("oauth2kit: back-channel logout skipped: the client requires a sid and the session has none", "client_id", c.ID)
		return false, nil
	}
	tok, err := s.mintLogoutToken(c, j.userID, j.sid, s.now())
	if err != nil {
		s.log.Error("oauth2kit: minting a logout token failed; not sent", "client_id", c.ID, "err", err)
		return false, nil
	}
	j.uri, j.token, j.minted = c.BackchannelLogoutURI, tok, s.now()
	return true, nil
}

// mintLogoutToken signs the logout token (Back-Channel Logout §2.4) for
// client c of the session sid of user sub: with the key of the client's
// id_token algorithm, which is what it verifies our tokens with. It never
// carries a nonce (§2.4: that would let it pass for an id_token).
func (s *Server) mintLogoutToken(c *Client, sub, sid string, now time.Time) (string, error) {
	sg := s.signing.Load().signer(s.fapiIDTokenAlg(c))
	if sg == nil {
		return "", fmt.Errorf("no signing key for the client's id_token algorithm %q", c.IDTokenSignedResponseAlg)
	}
	jti, err := newID()
	if err != nil {
		return "", err
	}
	o := newJSON(384)
	o.str("iss", s.cfg.Issuer)
	o.str("sub", sub)
	o.str("aud", c.ID)
	o.num("iat", now.Unix())
	o.num("exp", now.Add(logoutTokenLifetime).Unix())
	o.str("jti", jti)
	o.key("events")
	o.b = append(o.b, `{"`+backchannelEvent+`":{}}`...)
	o.strIf("sid", sid)
	return sg.Sign(logoutTokenTyp, o.bytes())
}
