package gormstore_test

import (
	"bytes"
	"errors"
	"log"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// defaultConfig is logger.Default's configuration (gorm/logger/logger.go):
// Warn level, slow statements from 200 ms, and record-not-found errors NOT
// ignored, so that any Take or First that misses prints an error.
var defaultConfig = logger.Config{
	SlowThreshold:             200 * time.Millisecond,
	LogLevel:                  logger.Warn,
	IgnoreRecordNotFoundError: false,
	Colorful:                  true,
}

// lockedBuffer is an io.Writer safe for the concurrent writes of a
// logger.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// missFixture is a migrated store with one registered client ("conf")
// whose database logs through lg, and a server on it.
type missFixture struct {
	store *gormstore.Store
	in    *instance
}

func newMissFixture(t *testing.T, d *testDB, lg logger.Interface) *missFixture {
	t.Helper()
	setup, _ := newStore(t, d) // migrated and seeded with a quiet logger
	secret := registerClient(t, setup)
	s := gormstore.New(d.connect(t).Session(&gorm.Session{Logger: lg}))
	return &missFixture{store: s, in: newInstance(t, s, secret)}
}

// misses looks up what does not exist, through every method that reads by
// key and through the server's endpoints, and returns what went wrong
// (without failing: it may run while standard output is redirected).
func (f *missFixture) misses() []string {
	var bad []string
	want := func(what string, err, target error) {
		if !errors.Is(err, target) {
			bad = append(bad, what+": "+errString(err))
		}
	}
	s, now := f.store, time.Now()
	_, err := s.GetClient(bg, "no-such-client")
	want("GetClient", err, core.ErrNotFound)
	_, err = s.GetConsent(bg, "nobody", "no-such-client")
	want("GetConsent", err, core.ErrNotFound)
	_, err = s.GetRefreshToken(bg, uniq("rt"))
	want("GetRefreshToken", err, core.ErrNotFound)
	_, err = s.RedeemCode(bg, uniq("code"), now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil })
	want("RedeemCode", err, core.ErrNotFound)
	_, err = s.RotateRefreshToken(bg, uniq("rt"), now, func(*core.RefreshToken) (*core.RefreshToken, error) { return nil, nil })
	want("RotateRefreshToken", err, core.ErrNotFound)
	want("DeleteClient", s.DeleteClient(bg, "no-such-client"), core.ErrNotFound)
	want("SetClientSecretHash", s.SetClientSecretHash(bg, "no-such-client", "x"), core.ErrNotFound)
	if r, err := s.IsFamilyRevoked(bg, uniq("fam")); r || err != nil {
		bad = append(bad, "IsFamilyRevoked: "+errString(err))
	}
	if ucs, err := s.UserClients(bg, "nobody", now); len(ucs) != 0 || err != nil {
		bad = append(bad, "UserClients: "+errString(err))
	}
	// A signature that exists is refused without a database error.
	g := grantAt(now, time.Minute)
	if err := s.CreateGrant(bg, g); err != nil {
		bad = append(bad, "CreateGrant: "+err.Error())
	}
	want("CreateGrant of an existing signature", s.CreateGrant(bg, g), core.ErrExists)

	// The server: a token request naming an unknown client_id, an
	// authorization request naming one, and a known client with an
	// unknown code and refresh token.
	w := f.in.do(&fakeReq{method: "POST", path: "/oauth2/token",
		body: url.Values{"grant_type": {"client_credentials"}}.Encode(),
		hdr: http.Header{
			"Content-Type":  {"application/x-www-form-urlencoded"},
			"Authorization": {core.EncodeBasic("no-such-client", "secret")},
		}})
	if w.status != 401 || !strings.Contains(string(w.body), `"invalid_client"`) {
		bad = append(bad, "token request of an unknown client: "+string(w.body))
	}
	w = f.in.do(&fakeReq{method: "GET", path: "/oauth2/authorize", query: url.Values{
		"response_type": {"code"}, "client_id": {"no-such-client"}, "redirect_uri": {testCallback},
		"code_challenge": {core.S256Challenge(testVerifier)}, "code_challenge_method": {"S256"},
	}.Encode()})
	if w.status != 400 || w.hdr.Get("Location") != "" {
		bad = append(bad, "authorization request of an unknown client: "+string(w.body))
	}
	if w := f.in.exchange("unknown-code"); w.status != 400 {
		bad = append(bad, "exchange of an unknown code: "+string(w.body))
	}
	if w := f.in.refresh("unknown-refresh-token"); w.status != 400 {
		bad = append(bad, "refresh with an unknown token: "+string(w.body))
	}
	return bad
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestMissesLogNothing: with a logger configured as GORM's default one, a
// lookup that finds nothing (an unknown client, code, token or consent,
// also through the server) writes no log line: anyone can send such
// requests, and a miss is not an error.
func TestMissesLogNothing(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		buf := &lockedBuffer{}
		f := newMissFixture(t, d, logger.New(log.New(buf, "\r\n", log.LstdFlags), defaultConfig))
		for _, b := range f.misses() {
			t.Error(b)
		}
		if out := buf.String(); out != "" {
			t.Errorf("GORM's default logger wrote %d lines for lookups that found nothing:\n%s", strings.Count(out, "\n"), out)
		}
	})
}
