package gormstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/oauth2kit/oauth2kit/core"
	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

// grantWithSig returns a grant whose code signature starts with prefix
// (the tests' gorm callbacks act on it).
func grantWithSig(now time.Time, prefix string) *core.Grant {
	g := grantAt(now, time.Minute)
	g.CodeSig = uniq(prefix)
	return g
}

// waitQueued waits until n writes wait for the next group of s.
func waitQueued(t *testing.T, s *gormstore.Store, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); gormstore.QueuedWrites(s) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", gormstore.QueuedWrites(s), n)
		}
	}
}

// TestSQLiteGroupCommit: on SQLite, writes that queue while a transaction
// runs share the next one, and each is still atomic on its own. The first
// write is held inside its transaction until the others have queued; the
// second group then holds successful inserts, failing ones, one that
// panics, two redemptions of one code and a write whose caller went away.
// Only the successful writes are committed; the failures and the panic
// reach their own callers only; one redemption wins; the abandoned write is
// skipped.
func TestSQLiteGroupCommit(t *testing.T) {
	d := sqliteDB(t)
	rec := &sqlRecorder{}
	db := d.connect(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var txMu sync.Mutex
	txOf := map[string]gorm.ConnPool{} // the transaction each insert ran in
	// After the INSERT: a failure must undo a row already written.
	err := db.Callback().Create().After("gorm:create").Register("test:group", func(tx *gorm.DB) {
		if tx.Statement.Table != "oauth2_grants" {
			return
		}
		sig := tx.Statement.ReflectValue.FieldByName("CodeSig").String()
		txMu.Lock()
		txOf[sig] = tx.Statement.ConnPool
		txMu.Unlock()
		switch {
		case strings.HasPrefix(sig, "block"):
			close(entered)
			<-release
		case strings.HasPrefix(sig, "fail"):
			_ = tx.AddError(errInjected)
		case strings.HasPrefix(sig, "panic"):
			panic("boom")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s := gormstore.New(db.Session(&gorm.Session{Logger: rec}))
	if err := s.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	grant := func(prefix string) *core.Grant { return grantWithSig(now, prefix) }
	redeemed := grant("code")
	mustCreate(t, s, redeemed)
	rec.reset()

	var wg sync.WaitGroup
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	blocker := grant("block")
	var blockErr error
	run(func() { blockErr = s.CreateGrant(bg, blocker) })
	<-entered // the first group's transaction is open and held

	var (
		mu     sync.Mutex
		errs   = map[string]error{}
		panics = map[string]any{}
	)
	record := func(sig string, err error) { mu.Lock(); errs[sig] = err; mu.Unlock() }
	var ok, failing []*core.Grant
	for range 5 {
		ok = append(ok, grant("ok"))
	}
	failing = append(failing, grant("fail"), grant("fail"))
	for _, g := range append(append([]*core.Grant{}, ok...), failing...) {
		run(func() { record(g.CodeSig, s.CreateGrant(bg, g)) })
	}
	panicky := grant("panic")
	run(func() {
		defer func() { mu.Lock(); panics[panicky.CodeSig] = recover(); mu.Unlock() }()
		record(panicky.CodeSig, s.CreateGrant(bg, panicky))
	})
	rts := []*core.RefreshToken{refreshFor(redeemed, now, time.Hour), refreshFor(redeemed, now, time.Hour)}
	redeemErrs := make([]error, 2)
	for i := range rts {
		run(func() { _, redeemErrs[i] = s.RedeemCode(bg, redeemed.CodeSig, now, issueRefresh(rts[i])) })
	}
	ctx, cancel := context.WithCancel(bg)
	abandoned := grant("ok")
	run(func() { record(abandoned.CodeSig, s.CreateGrant(ctx, abandoned)) })
	const queued = 5 + 2 + 1 + 2 + 1
	waitQueued(t, s, queued)
	cancel() // the caller goes away while its write waits
	close(release)
	wg.Wait()

	if blockErr != nil {
		t.Errorf("first write: %v", blockErr)
	}
	for _, g := range ok {
		if err := errs[g.CodeSig]; err != nil {
			t.Errorf("CreateGrant in a group: %v", err)
		}
	}
	for _, g := range failing {
		if err := errs[g.CodeSig]; !errors.Is(err, errInjected) {
			t.Errorf("failing CreateGrant in a group: %v, want the injected error", err)
		}
	}
	if p := panics[panicky.CodeSig]; p != "boom" {
		t.Errorf("panicking write: the caller recovered %v, want the write's own panic", p)
	}
	if err := errs[abandoned.CodeSig]; !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned write: %v, want context.Canceled", err)
	}
	wins := 0
	for _, err := range redeemErrs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, core.ErrCodeUsed):
			t.Errorf("second redemption in one group: %v, want ErrCodeUsed", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d redemptions of one code succeeded, want 1", wins)
	}

	// The database holds exactly what succeeded.
	for _, g := range append([]*core.Grant{blocker}, ok...) {
		if n := countRows(t, db, "oauth2_grants", "code_sig = ?", g.CodeSig); n != 1 {
			t.Errorf("grant %s: %d rows, want 1", g.CodeSig[:10], n)
		}
	}
	for _, g := range append([]*core.Grant{panicky, abandoned}, failing...) {
		if n := countRows(t, db, "oauth2_grants", "code_sig = ?", g.CodeSig); n != 0 {
			t.Errorf("grant %s of a failed write: %d rows, want 0", g.CodeSig[:10], n)
		}
	}
	if !codeUsed(t, db, redeemed.CodeSig) {
		t.Error("the redeemed code is not marked used")
	}
	if n := countRows(t, db, "oauth2_refresh_tokens", "family_id = ?", redeemed.ID); n != 1 {
		t.Errorf("%d refresh tokens for one redeemed code, want 1", n)
	}

	// The queued writes ran as one group: in one transaction, apart from
	// the first write's; one savepoint each, except the abandoned one
	// (skipped), and none for the first write (a group of one).
	shared := txOf[ok[0].CodeSig]
	for _, g := range append(append([]*core.Grant{panicky}, ok...), failing...) {
		if txOf[g.CodeSig] != shared || shared == txOf[blocker.CodeSig] {
			t.Errorf("grant %s was inserted in a transaction of its own", g.CodeSig[:10])
		}
	}
	savepoints := 0
	for _, q := range rec.all() {
		if strings.HasPrefix(q, "SAVEPOINT") {
			savepoints++
		}
	}
	if savepoints != queued-1 {
		t.Errorf("%d savepoints, want %d (the queued writes in one group)", savepoints, queued-1)
	}

	// The store goes on after a group with failures.
	mustCreate(t, s, grant("ok"))
	if gormstore.QueuedWrites(s) != 0 {
		t.Error("writes left queued")
	}
}

// TestSQLiteGroupAbort: when one write's failure makes SQLite end the whole
// transaction (as SQLITE_FULL or an I/O error do), that write gets its own
// error and the others of its group, rolled back with it, are run again in
// another group: they are committed, the failed write is not.
func TestSQLiteGroupAbort(t *testing.T) {
	db := sqliteDB(t).connect(t)
	entered, release := make(chan struct{}), make(chan struct{})
	err := db.Callback().Create().After("gorm:create").Register("test:abort", func(tx *gorm.DB) {
		if tx.Statement.Table != "oauth2_grants" {
			return
		}
		sig := tx.Statement.ReflectValue.FieldByName("CodeSig").String()
		switch {
		case strings.HasPrefix(sig, "block"):
			close(entered)
			<-release
		case strings.HasPrefix(sig, "abort"):
			// What SQLite does on SQLITE_FULL: the transaction is gone.
			if _, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, "ROLLBACK"); err != nil {
				t.Errorf("ROLLBACK: %v", err)
			}
			_ = tx.AddError(errInjected)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s := gormstore.New(db)
	if err := s.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	grant := func(prefix string) *core.Grant { return grantWithSig(now, prefix) }
	var wg sync.WaitGroup
	go1 := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	go1(func() { mustCreate(t, s, grant("block")) })
	<-entered
	// before: ahead of the failing write in the group (its insert is
	// undone with the transaction); after: behind it.
	gs := []*core.Grant{grant("before"), grant("abort"), grant("after")}
	errs := make([]error, len(gs))
	for i, g := range gs {
		go1(func() { errs[i] = s.CreateGrant(bg, g) })
		waitQueued(t, s, i+1) // in this order
	}
	close(release)
	wg.Wait()
	if !errors.Is(errs[1], errInjected) {
		t.Errorf("the failing write: %v, want its own error", errs[1])
	}
	for _, i := range []int{0, 2} {
		if errs[i] != nil {
			t.Errorf("write %s of the aborted group: %v, want it run again and committed", gs[i].CodeSig[:6], errs[i])
		}
		if n := countRows(t, db, "oauth2_grants", "code_sig = ?", gs[i].CodeSig); n != 1 {
			t.Errorf("write %s of the aborted group: %d rows, want 1", gs[i].CodeSig[:6], n)
		}
	}
	if n := countRows(t, db, "oauth2_grants", "code_sig = ?", gs[1].CodeSig); n != 0 {
		t.Errorf("the failing write left %d rows", n)
	}
}

// TestSQLiteGroupSurvivesAPanic: a panic around the group's own statements
// (here in a gorm callback on SAVEPOINT) reaches every caller of the group,
// in its own goroutine, commits nothing, and the store goes on writing.
func TestSQLiteGroupSurvivesAPanic(t *testing.T) {
	db := sqliteDB(t).connect(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Callback().Create().After("gorm:create").Register("test:block", func(tx *gorm.DB) {
		if tx.Statement.Table == "oauth2_grants" && strings.HasPrefix(tx.Statement.ReflectValue.FieldByName("CodeSig").String(), "block") {
			close(entered)
			<-release
		}
	}))
	must(db.Callback().Raw().Before("gorm:raw").Register("test:panic", func(tx *gorm.DB) {
		if armed.Load() && strings.HasPrefix(tx.Statement.SQL.String(), "SAVEPOINT") {
			panic("savepoint boom")
		}
	}))
	s := gormstore.New(db)
	must(s.Migrate(bg))
	now := time.Now()
	grant := func(prefix string) *core.Grant { return grantWithSig(now, prefix) }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); mustCreate(t, s, grant("block")) }()
	<-entered
	gs := []*core.Grant{grant("ok"), grant("ok")}
	panics := make([]any, len(gs))
	for i, g := range gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			_ = s.CreateGrant(bg, g)
		}()
	}
	waitQueued(t, s, len(gs))
	armed.Store(true)
	close(release)
	wg.Wait()
	armed.Store(false)
	for i, g := range gs {
		if panics[i] != "savepoint boom" {
			t.Errorf("caller %d recovered %v, want the group's panic", i, panics[i])
		}
		if n := countRows(t, db, "oauth2_grants", "code_sig = ?", g.CodeSig); n != 0 {
			t.Errorf("write %d of the panicked group left %d rows", i, n)
		}
	}
	mustCreate(t, s, grant("later"))
}

// TestSQLiteDSNIsDurable: a connection opened with SQLiteDSN runs in WAL
// mode with synchronous=FULL (2). The driver's default in WAL mode is
// NORMAL (1), which can lose the last commits on a power loss.
func TestSQLiteDSNIsDurable(t *testing.T) {
	db := sqliteDB(t).connect(t)
	var sync int
	var mode string
	if err := db.Raw("PRAGMA synchronous").Scan(&sync).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Raw("PRAGMA journal_mode").Scan(&mode).Error; err != nil {
		t.Fatal(err)
	}
	if sync != 2 || mode != "wal" {
		t.Errorf("SQLiteDSN: synchronous=%d journal_mode=%s, want 2 (FULL) and wal", sync, mode)
	}
}
