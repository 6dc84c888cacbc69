// Package demo is what every example server shares: flags, storage, key
// material, the demo user, the login and consent pages, the client
// commands, the protected API's answers and graceful shutdown. Each
// example's main.go only mounts the kit in its framework.
package demo

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// Demo client registered at every start (its secret derives from the key
// file, so it is stable and never stored in clear).
const (
	DemoClientID = "demo-client"
	DefaultAddr  = "127.0.0.1:8080"
)

// DemoRedirectURIs are the demo client's redirect URIs: loopback, so any
// port works (RFC 8252 §7.3).
var DemoRedirectURIs = []string{"http://127.0.0.1:9000/callback", "http://[::1]:9000/callback"}

// DemoPostLogoutRedirectURIs are where RP-initiated logout may send the
// browser back to for the demo client.
var DemoPostLogoutRedirectURIs = []string{"http://127.0.0.1:9000/logged-out"}

// App is a configured demo server, handed to the example's mount function.
type App struct {
	Server *core.Server
	Store  *gormstore.Store
	Issuer string
	Addr   string
	Log    *slog.Logger
}

// Runner serves on a listener until Shutdown; *http.Server is one, and a
// framework with its own server (fiber) wraps itself in a few lines.
type Runner interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// HTTPServer wraps h in an http.Server with timeouts, so slow clients
// cannot hold connections.
func (a *App) HTTPServer(h http.Handler) *http.Server { return NewHTTPServer(h, a.Log) }

// NewHTTPServer is the examples' http.Server: timeouts on every phase,
// bounded headers, and net/http's own errors logged through log.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// PurgeEvery runs purge at every interval until ctx ends, logging
// failures (expired grants and tokens are dropped in the background).
func PurgeEvery(ctx context.Context, every time.Duration, purge func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := purge(ctx); err != nil && ctx.Err() == nil {
				log.Warn("purge failed", "err", err)
			}
		}
	}
}

// Me is the protected API's answer: {"sub","client_id","scope"}.
func Me(info *core.TokenInfo) []byte {
	b, _ := json.Marshal(map[string]string{"sub": info.Subject(), "client_id": info.ClientID, "scope": info.Scope})
	return b
}

// Main runs an example: "client …" commands, or the server, mounted by
// mount. It exits the process.
func Main(mount func(*App) Runner) {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, mount, nil))
}

// MainWith is Main for an example that adds to the server's
// configuration (the MCP example's resource and scope): configure runs
// on the demo's Config just before core.New.
func MainWith(configure func(*core.Config), mount func(*App) Runner) {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, mount, configure))
}

// options are the server flags beyond address, database, issuer and keys.
type options struct {
	registration       string // off, open, token
	initialAccessToken string
	cimdAllowLoopback  bool
	bcAllowLoopback    bool
	dpopNonce          bool
	deviceLifetime     time.Duration
	configure          func(*core.Config)
}

// apply sets registration and client ID metadata documents on cfg.
func (o *options) apply(cfg *core.Config) error {
	switch o.registration {
	case "off":
	case "open":
		cfg.Registration.Policy = core.RegistrationOpen
	case "token":
		if len(o.initialAccessToken) < 16 {
			return errors.New("-registration token needs -initial-access-token (at least 16 characters)")
		}
		want := []byte(o.initialAccessToken)
		cfg.Registration.Policy = core.RegistrationInitialToken
		cfg.Registration.InitialAccessToken = func(_ context.Context, tok string) (bool, error) {
			return subtle.ConstantTimeCompare([]byte(tok), want) == 1, nil
		}
	default:
		return fmt.Errorf("-registration %q: want off, open or token", o.registration)
	}
	cfg.CIMD = core.CIMD{Enabled: true, AllowLoopbackForTests: o.cimdAllowLoopback}
	// Sender-constrained tokens for clients that send a DPoP proof.
	cfg.DPoP = core.DPoP{Enabled: true, RequireNonce: o.dpopNonce}
	// Pushed authorization requests, required per client (-require-par).
	cfg.PAR = core.PAR{Enabled: true}
	// Back-channel logout to clients added with -backchannel-logout-uri.
	cfg.BackchannelLogout = core.BackchannelLogout{Enabled: true, AllowLoopbackForTests: o.bcAllowLoopback}
	// Token exchange (RFC 8693) for clients added with -grant-type
	// urn:ietf:params:oauth:grant-type:token-exchange; the default policy
	// only narrows.
	cfg.TokenExchange = core.TokenExchange{Enabled: true}
	// The device grant (RFC 8628) for clients added with -grant-type
	// urn:ietf:params:oauth:grant-type:device_code.
	cfg.Device = core.DeviceFlow{Enabled: true, Lifetime: o.deviceLifetime}
	if o.configure != nil {
		o.configure(cfg)
	}
	return nil
}

func run(args []string, stdout, stderr io.Writer, mount func(*App) Runner, configure func(*core.Config)) int {
	if len(args) > 0 && args[0] == "client" {
		return clientCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "keys" {
		return keysCommand(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", DefaultAddr, "listen address host:port")
	dsn := fs.String("db", "oauth2kit-demo.db", "SQLite file path, or postgres://… / mysql://… DSN")
	issuer := fs.String("issuer", "", "issuer URL (default http://<addr>)")
	keys := fs.String("keys", "", "key file (generated if absent; default oauth2kit-demo.keys next to a SQLite file)")
	opts := options{configure: configure}
	fs.StringVar(&opts.registration, "registration", "open", "dynamic client registration: open, token (initial access token) or off")
	fs.StringVar(&opts.initialAccessToken, "initial-access-token", "", "the initial access token of -registration token")
	fs.BoolVar(&opts.cimdAllowLoopback, "cimd-allow-loopback", false, "tests only: fetch client ID metadata documents from loopback addresses")
	fs.BoolVar(&opts.bcAllowLoopback, "backchannel-allow-loopback", false, "tests only: post logout tokens to loopback addresses (http too)")
	fs.BoolVar(&opts.dpopNonce, "dpop-nonce", false, "demand DPoP server nonces (use_dpop_nonce) at the token endpoint")
	fs.DurationVar(&opts.deviceLifetime, "device-lifetime", 10*time.Minute, "how long a device code and its user code live (at most 30m)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, *addr, *dsn, *issuer, *keys, &opts, stdout, log, mount); err != nil {
		log.Error("demo: server failed", "err", err)
		return 1
	}
	return 0
}

// defaultKeys is the -keys file: as given, else next to a SQLite file (the
// database and the keys that sign its tokens travel together), else in the
// working directory, where instances sharing a server database find it.
func defaultKeys(dsn, keys string) string {
	if keys != "" {
		return keys
	}
	if isSQLite(dsn) {
		return filepath.Join(filepath.Dir(dsn), "oauth2kit-demo.keys")
	}
	return "oauth2kit-demo.keys"
}

// openStore opens and migrates the database.
func openStore(ctx context.Context, dsn string) (*gormstore.Store, func(), error) {
	db, err := OpenDB(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, err
	}
	st := gormstore.New(db)
	if err := st.Migrate(ctx); err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("migrating the database: %w", err)
	}
	return st, func() { sqlDB.Close() }, nil
}

func serve(ctx context.Context, addr, dsn, issuer, keysPath string, opts *options, stdout io.Writer, log *slog.Logger, mount func(*App) Runner) error {
	// Listen first, so "-addr 127.0.0.1:0" gets a real port into the
	// default issuer.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	if issuer == "" {
		issuer = "http://" + ln.Addr().String()
	}
	keysPath = defaultKeys(dsn, keysPath)
	kf, err := loadKeys(keysPath)
	if err != nil {
		return fmt.Errorf("loading keys: %w", err)
	}
	st, closeDB, err := openStore(ctx, dsn)
	if err != nil {
		return err
	}
	defer closeDB()

	auth := &authenticator{users: demoUsers(), log: log}
	cfg := core.Config{
		Issuer:       issuer,
		Scopes:       demoScopes,
		DefaultScope: "read",
		Logger:       log,
		OIDC:         core.OIDC{Claims: demoClaims, PublishAhead: PublishAhead},
	}
	kf.Apply(&cfg)
	if err := kf.ApplySigning(&cfg); err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	if err := opts.apply(&cfg); err != nil {
		return err
	}
	srv, err := core.New(cfg, st, auth)
	if err != nil {
		return err
	}
	auth.srv = srv
	secret := demoSecret(kf)
	if err := ensureDemoClient(ctx, st, secret); err != nil {
		return fmt.Errorf("registering the demo client: %w", err)
	}

	app := &App{Server: srv, Store: st, Issuer: srv.Config().Issuer, Addr: ln.Addr().String(), Log: log}
	runner := mount(app)

	fmt.Fprintf(stdout, "oauth2kit demo authorization server\n")
	fmt.Fprintf(stdout, "  listening on:  %s\n", app.Addr)
	fmt.Fprintf(stdout, "  issuer:        %s\n", app.Issuer)
	fmt.Fprintf(stdout, "  metadata:      %s%s\n", app.Issuer, srv.Config().Paths.Metadata)
	fmt.Fprintf(stdout, "  demo user:     %s / %s\n", DemoUser, DemoPassword)
	fmt.Fprintf(stdout, "  demo client:   client_id=%s client_secret=%s\n", DemoClientID, secret)
	fmt.Fprintf(stdout, "  redirect URIs: %v (any port)\n", DemoRedirectURIs)

	// Expired grants and tokens are purged in the background.
	purgeCtx, stopPurge := context.WithCancel(context.Background())
	defer stopPurge()
	go PurgeEvery(purgeCtx, time.Minute, func(ctx context.Context) error {
		if _, err := st.Purge(ctx, time.Now()); err != nil {
			return err
		}
		// Registered clients nobody used expire (open registration is an
		// abuse target).
		_, err := srv.PurgeRegistrations(ctx)
		return err
	}, log)

	// Signing keys follow the key file: a rotation by "keys rotate" (or
	// another instance) and the clock's promotions reach this instance
	// without a restart.
	go reloadSigningKeys(purgeCtx, keysPath, srv, 10*time.Second, log)

	err = ServeUntil(ctx, runner, ln, 15*time.Second)
	log.Info("demo: stopped")
	return err
}

// ServeUntil serves r on ln until ctx ends, then shuts it down, letting
// in-flight requests finish within grace. A server that stops by itself
// with http.ErrServerClosed is a clean stop.
func ServeUntil(ctx context.Context, r Runner, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- r.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := r.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ensureDemoClient registers the demo client, or brings its secret hash in
// line with the key file.
func ensureDemoClient(ctx context.Context, st *gormstore.Store, secret string) error {
	c, err := st.GetClient(ctx, DemoClientID)
	if err == nil && (!slices.Equal(c.Scopes, demoScopes) || !slices.Equal(c.PostLogoutRedirectURIs, DemoPostLogoutRedirectURIs)) {
		// Registered by an older demo: give it what this one registers.
		c.Scopes, c.PostLogoutRedirectURIs = demoScopes, DemoPostLogoutRedirectURIs
		if err := st.SaveClient(ctx, c); err != nil {
			return err
		}
	}
	if err == nil {
		if core.VerifySecret(c.SecretHash, secret) {
			return nil
		}
		h, err := core.HashSecret(secret)
		if err != nil {
			return err
		}
		return st.SetClientSecretHash(ctx, DemoClientID, h)
	}
	if !errors.Is(err, core.ErrNotFound) {
		return err
	}
	c, _, err = core.NewClient(core.ClientSpec{
		ID:           DemoClientID,
		Name:         "Demo Client",
		RedirectURIs: DemoRedirectURIs,
		GrantTypes:   []string{core.GrantAuthorizationCode, core.GrantRefreshToken, core.GrantClientCredentials},
		Scopes:       demoScopes,
		Secret:       secret,

		PostLogoutRedirectURIs: DemoPostLogoutRedirectURIs,
	})
	if err != nil {
		return err
	}
	return st.SaveClient(ctx, c)
}
