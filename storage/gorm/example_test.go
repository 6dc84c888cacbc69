package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// Open an SQLite database, create the tables, register a client and
// consume a code the way the server does: the first redemption issues, the
// second is recognised as a replay. In an application the store goes to
// core.New(cfg, store, auth), which drives it.
func Example() {
	dir, err := os.MkdirTemp("", "oauth2kit-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	db, err := gorm.Open(sqlite.Open(gormstore.SQLiteDSN(filepath.Join(dir, "oauth2.db"))),
		&gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		panic(err)
	}
	defer sqlDB.Close()
	sqlDB.SetMaxOpenConns(4) // SQLite serialises writers anyway

	ctx := context.Background()
	store := gormstore.New(db)
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}

	client, secret, err := core.NewClient(core.ClientSpec{
		ID:           "reporting",
		RedirectURIs: []string{"https://reporting.example.com/callback"},
	})
	if err != nil {
		panic(err)
	}
	if err := store.SaveClient(ctx, client); err != nil {
		panic(err)
	}
	stored, err := store.GetClient(ctx, "reporting")
	fmt.Println(stored.ID, stored.RedirectURIs, err)
	fmt.Println("secret stored in clear:", stored.SecretHash == secret)

	// The server stores a code by its signature (an HMAC it computes).
	now := time.Now()
	err = store.CreateGrant(ctx, &core.Grant{
		ID: "grant-1", CodeSig: "signature-of-the-code", ClientID: "reporting",
		UserID: "alice", Scope: "read", CreatedAt: now, ExpiresAt: now.Add(time.Minute),
	})
	if err != nil {
		panic(err)
	}
	issue := func(g *core.Grant) (*core.RefreshToken, error) {
		return &core.RefreshToken{
			Sig: "signature-of-the-refresh-token", FamilyID: g.ID, ClientID: g.ClientID,
			UserID: g.UserID, Scope: g.Scope, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		}, nil
	}
	g, err := store.RedeemCode(ctx, "signature-of-the-code", now, issue)
	fmt.Println(g.UserID, g.Scope, err)
	_, err = store.RedeemCode(ctx, "signature-of-the-code", now, issue)
	fmt.Println(errors.Is(err, core.ErrCodeUsed))

	// A day later everything has expired.
	n, err := store.Purge(ctx, now.Add(25*time.Hour))
	fmt.Println(n, err)
	// Output:
	// reporting [https://reporting.example.com/callback] <nil>
	// secret stored in clear: false
	// alice read <nil>
	// true
	// 2 <nil>
}

func ExampleSQLiteDSN() {
	fmt.Println(gormstore.SQLiteDSN("/var/lib/myapp/oauth2.db"))
	// Output:
	// /var/lib/myapp/oauth2.db?_txlock=immediate&_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on&_stmt_cache_size=32
}

// Purge deletes what can no longer matter: codes past max(ExpiresAt,
// KeepUntil), refresh tokens past their expiry, family revocations past
// their keep-until. Run it every few minutes from one instance or all
// (concurrent purges are harmless), with jitter so instances do not purge
// at the same second.
func ExampleStore_Purge() {
	dir, err := os.MkdirTemp("", "oauth2kit-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(gormstore.SQLiteDSN(filepath.Join(dir, "oauth2.db"))), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	sqlDB, _ := db.DB()
	defer sqlDB.Close()
	ctx := context.Background()
	store := gormstore.New(db)
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}

	now := time.Now()
	for i, keep := range []time.Duration{-time.Minute, time.Hour} { // one past its keep-until, one not
		_ = store.CreateGrant(ctx, &core.Grant{
			ID: fmt.Sprint("g", i), CodeSig: fmt.Sprint("sig", i), ClientID: "app", UserID: "alice",
			CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), KeepUntil: now.Add(keep),
		})
	}
	_ = store.RevokeFamily(ctx, "old-family", now.Add(-time.Second))

	n, err := store.Purge(ctx, now)
	fmt.Println(n, err)

	// The loop an app runs (stopped here at once).
	loop, stop := context.WithCancel(ctx)
	stop()
	for loop.Err() == nil {
		jitter := time.Duration(rand.Int64N(int64(30 * time.Second)))
		select {
		case <-loop.Done():
		case <-time.After(5*time.Minute + jitter):
			if _, err := store.Purge(loop, time.Now()); err != nil {
				fmt.Println("purge:", err) // log it; the next round retries
			}
		}
	}
	// Output:
	// 2 <nil>
}
