// Command bench is the benchmark server: the kit on one adapter with a
// fixed client and an Authenticator that approves user u1 at once, so that
// a load driver (examples/loadgen) can run whole code flows without a
// browser. It also serves a bare form-POST handler on the same adapter as
// the baseline every scenario is compared with.
//
//	go run ./examples/bench -adapter nethttp -store memory
//	go run ./examples/bench -adapter fiber -store sqlite
//	go run ./examples/bench -store 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// The contract the load tools rely on:
//
//   - -addr (default 127.0.0.1:18090), -adapter nethttp|gin|echo|fiber,
//     -store memory|sqlite|DSN (postgres:// or mysql://; sqlite is a fresh
//     file in a temporary directory);
//   - client bench-client / bench-secret-0123456789abcdef0123, redirect URI
//     http://127.0.0.1:9/cb, scope read, grant types authorization_code,
//     refresh_token and client_credentials;
//   - GET /oauth2/authorize answers the 303 redirect with the code at once
//     (no login page, no consent);
//   - GET /healthz is 200 once the server is ready;
//   - /oauth2/{authorize,token,introspect,revoke}, the metadata, GET /api/me
//     behind the adapter's token check, and POST /baseline (parse a small
//     form, answer a small JSON).
//
// Not for production: the keys are random at every start and the client
// secret is public.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served on -pprof only (http.DefaultServeMux)
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/oauth2kit/oauth2kit/examples/internal/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// options are the server's flags.
type options struct {
	addr, adapter, store string
	pprof                string
	accessTTL            time.Duration
	refreshTTL           time.Duration
	codeTTL              time.Duration
	purgeEvery           time.Duration
	seed                 int
	explain              bool
	sqliteSync           string
	sqliteConns          int
	clientCache          time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:18090", "listen address host:port")
	fs.StringVar(&o.adapter, "adapter", "nethttp", "nethttp, gin, echo or fiber")
	fs.StringVar(&o.store, "store", "memory", "memory, sqlite (a fresh file in a temp directory), or a postgres:// or mysql:// DSN")
	fs.StringVar(&o.pprof, "pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); off when empty")
	fs.DurationVar(&o.accessTTL, "access-ttl", time.Hour, "access token lifetime")
	fs.DurationVar(&o.refreshTTL, "refresh-ttl", 30*24*time.Hour, "refresh token lifetime (shorten it for memory tests)")
	fs.DurationVar(&o.codeTTL, "code-ttl", 60*time.Second, "authorization code lifetime")
	fs.DurationVar(&o.purgeEvery, "purge", time.Minute, "how often expired state is dropped (memory: sweep interval; SQL: Purge)")
	fs.IntVar(&o.seed, "seed", 0, "SQL stores: insert this many extra grants and as many refresh tokens before serving (scale tests)")
	fs.BoolVar(&o.explain, "explain", false, "SQL stores: print the query plans of the hot queries after seeding and exit")
	fs.IntVar(&o.sqliteConns, "sqlite-conns", 2, "sqlite: connection pool size")
	fs.StringVar(&o.sqliteSync, "sqlite-sync", "", "sqlite: PRAGMA synchronous value (default FULL, from gormstore.SQLiteDSN); NORMAL trades durability of the last commits across power loss for speed")
	fs.DurationVar(&o.clientCache, "client-cache", 0, "core.Config.Caches.Client: keep looked-up clients this long (0: every request reads the store)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch o.adapter {
	case "nethttp", "gin", "echo", "fiber":
	default:
		return nil, fmt.Errorf("unknown -adapter %q (nethttp, gin, echo or fiber)", o.adapter)
	}
	return o, nil
}

// run serves until ctx ends. ready, when set, receives the listen address
// once /healthz answers 200 (tests).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := serve(ctx, o, stdout, log, ready); err != nil {
		log.Error("bench: server failed", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, o *options, stdout io.Writer, log *slog.Logger, ready chan<- string) error {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	addr := ln.Addr().String()

	b, err := newBackend(ctx, o, log)
	if err != nil {
		return err
	}
	defer b.close()
	if o.explain {
		return b.explain(ctx, stdout)
	}
	srv, err := newServer(o, "http://"+addr, b.store, log)
	if err != nil {
		return err
	}
	if err := registerClient(ctx, b.store); err != nil {
		return fmt.Errorf("registering the bench client: %w", err)
	}
	if o.pprof != "" {
		pln, err := net.Listen("tcp", o.pprof)
		if err != nil {
			return fmt.Errorf("pprof listener: %w", err)
		}
		ps := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = ps.Serve(pln) }()
		defer ps.Close()
		fmt.Fprintf(stdout, "bench: pprof on http://%s/debug/pprof/\n", pln.Addr())
	}

	purgeCtx, stopPurge := context.WithCancel(context.Background())
	defer stopPurge()
	go demo.PurgeEvery(purgeCtx, o.purgeEvery, b.purge, log)

	rn := mount(o.adapter, srv, log)
	// The listener is bound already: connections queue until Serve runs.
	fmt.Fprintf(stdout, "bench: %s adapter, %s store, listening on http://%s\n", o.adapter, b.name, addr)
	if ready != nil {
		go func() {
			if waitHealthy(ctx, addr) {
				ready <- addr
			}
		}()
	}
	return demo.ServeUntil(ctx, rn, ln, 10*time.Second)
}

// waitHealthy polls /healthz until it answers 200 or ctx ends.
func waitHealthy(ctx context.Context, addr string) bool {
	c := &http.Client{Timeout: time.Second}
	for ctx.Err() == nil {
		resp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
