package gormstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	gormstore "github.com/oauth2kit/oauth2kit/storage/gorm"
)

func mustRemember(t *testing.T, s *gormstore.Store, what, key string, now, until time.Time, want bool) {
	t.Helper()
	got, err := s.Remember(bg, key, now, until)
	if err != nil || got != want {
		t.Errorf("%s: Remember = %v, %v; want %v", what, got, err, want)
	}
}

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// replayUntil reads the keep_until stored for key (zero: no row).
func replayUntil(t *testing.T, db *gorm.DB, key string) time.Time {
	t.Helper()
	var until []time.Time
	if err := db.Table("oauth2_replay").Where("key_hash = ?", keyHash(key)).Pluck("keep_until", &until).Error; err != nil {
		t.Fatal(err)
	}
	if len(until) == 0 {
		return time.Time{}
	}
	return until[0].UTC()
}

// TestRememberClientFoundRows: on MySQL/MariaDB, Remember tells a
// remembered key from a fresh one whether the DSN counts changed rows or
// matched rows (clientFoundRows), and the duplicate update its INSERT
// makes on a remembered key is rolled back: the record keeps its until.
func TestRememberClientFoundRows(t *testing.T) {
	for _, found := range []bool{false, true} {
		d := mysqlDBWith(t, func(c *mysqldriver.Config) { c.ClientFoundRows = found })
		s, db := newStore(t, d)
		what := fmt.Sprintf("clientFoundRows=%v", found)
		now := time.Now().UTC().Truncate(time.Second)
		until := now.Add(time.Minute)
		mustRemember(t, s, what+": a fresh key", "k", now, until, true)
		mustRemember(t, s, what+": the key again", "k", now, until.Add(time.Hour), false)
		if got := replayUntil(t, db, "k"); !got.Equal(until) {
			t.Errorf("%s: keep_until after a refused Remember is %v, want %v", what, got, until)
		}
		// Expired: taken over once, with the new until.
		next := until.Add(time.Minute)
		mustRemember(t, s, what+": the key at its until", "k", until, next, true)
		mustRemember(t, s, what+": the key again at its until", "k", until, next, false)
		if got := replayUntil(t, db, "k"); !got.Equal(next) {
			t.Errorf("%s: keep_until after the takeover is %v, want %v", what, got, next)
		}
		if n := countRows(t, db, "oauth2_replay", ""); n != 1 {
			t.Errorf("%s: %d replay rows, want 1", what, n)
		}
	}
}

// TestRememberAcrossInstances: keys raced from two connection pools (two
// server instances) on one database: exactly one Remember reports true,
// for fresh keys and for expired ones.
func TestRememberAcrossInstances(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		a, db := newStore(t, d)
		b := gormstore.New(d.connect(t))
		const rounds, racers = 20, 16
		for _, expired := range []bool{false, true} {
			winners := make([]int, rounds)
			for round := range rounds {
				now := time.Now().UTC().Truncate(time.Second)
				key := fmt.Sprintf("jti|%v-%d-%d", expired, round, now.UnixNano())
				if expired {
					mustRemember(t, a, "remembering the key a minute ago", key, now.Add(-time.Minute), now, true)
				}
				got := make([]bool, racers)
				errs := make([]error, racers)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range racers {
					s := []*gormstore.Store{a, b}[i%2]
					wg.Go(func() {
						<-start
						got[i], errs[i] = s.Remember(bg, key, now, now.Add(5*time.Minute))
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Errorf("round %d: racer %d: %v", round, i, err)
					}
					if got[i] {
						winners[round]++
					}
				}
				if winners[round] != 1 {
					t.Errorf("expired=%v round %d: %d racers remembered the key, want exactly 1", expired, round, winners[round])
				}
				if n := countRows(t, db, "oauth2_replay", "key_hash = ?", keyHash(key)); n != 1 {
					t.Errorf("expired=%v round %d: %d rows for the key, want 1", expired, round, n)
				}
			}
			t.Logf("%s: expired=%v: %d rounds × %d racers over 2 instances; true per round %v", d.name, expired, rounds, racers, winners)
		}
	})
}

// TestPurgeReplay: Purge deletes the replay records past their until (and
// counts them) and keeps live ones; a purged key is free again.
func TestPurgeReplay(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, db := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)
		mustRemember(t, s, "an old key", "old", now.Add(-time.Hour), now, true)
		mustRemember(t, s, "a live key", "live", now, now.Add(time.Second), true)
		n, err := s.Purge(bg, now)
		if err != nil || n != 1 {
			t.Fatalf("Purge: %d, %v; want 1 (the expired record)", n, err)
		}
		if n := countRows(t, db, "oauth2_replay", ""); n != 1 {
			t.Errorf("%d replay rows after Purge, want 1 (the live one)", n)
		}
		mustRemember(t, s, "the live key after Purge", "live", now, now.Add(time.Minute), false)
		// Judged by the now given, a purged key is free again either way;
		// this checks that Purge left no trace of it.
		earlier := now.Add(-30 * time.Minute)
		mustRemember(t, s, "the purged key, at a time before its until", "old", earlier, now.Add(time.Minute), true)
	})
}

// TestRememberStoresHashes: the table holds the SHA-256 hex of each key,
// never the key, so keys a text column would refuse (a NUL byte, invalid
// UTF-8) or keys longer than the contract's 256 bytes are remembered all
// the same, on every database.
func TestRememberStoresHashes(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		s, db := newStore(t, d)
		now := time.Now().UTC().Truncate(time.Second)
		keys := []string{"jti|plain", "jti|nul\x00byte", "jti|bad\xff\xfeutf8", strings.Repeat("é", 300)}
		for _, k := range keys {
			mustRemember(t, s, fmt.Sprintf("Remember(%q)", k), k, now, now.Add(time.Minute), true)
			mustRemember(t, s, fmt.Sprintf("Remember(%q) again", k), k, now, now.Add(time.Minute), false)
		}
		var stored []string
		if err := db.Table("oauth2_replay").Order("key_hash").Pluck("key_hash", &stored).Error; err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, k := range keys {
			want[keyHash(k)] = true
		}
		if len(stored) != len(keys) {
			t.Fatalf("%d rows, want %d", len(stored), len(keys))
		}
		for _, h := range stored {
			if !want[h] {
				t.Errorf("stored key %q is not the SHA-256 hex of a remembered key", h)
			}
		}
	})
}

// TestReplayPurgeUsesIndex: on SQLite, the SELECT of Purge over
// oauth2_replay searches idx_oauth2_replay_keep_until (no table scan,
// whatever the table's size).
func TestReplayPurgeUsesIndex(t *testing.T) {
	rec := &sqlRecorder{}
	db := sqliteDB(t).connect(t)
	s := gormstore.New(db.Session(&gorm.Session{Logger: rec}))
	if err := s.Migrate(bg); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	rec.reset()
	if _, err := s.Purge(bg, now); err != nil {
		t.Fatal(err)
	}
	checked := false
	for _, q := range rec.all() {
		if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), "SELECT") || !strings.Contains(q, "oauth2_replay") {
			continue
		}
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = now
		}
		var plan []struct {
			ID, Parent, Notused int
			Detail              string
		}
		if err := db.Raw("EXPLAIN QUERY PLAN "+q, args...).Scan(&plan).Error; err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		for _, p := range plan {
			checked = true
			if !strings.HasPrefix(p.Detail, "SEARCH") || !strings.Contains(p.Detail, "idx_oauth2_replay_keep_until") {
				t.Errorf("%s\n  plan %q, want a SEARCH using idx_oauth2_replay_keep_until", q, p.Detail)
			}
		}
	}
	if !checked {
		t.Error("no SELECT of oauth2_replay recorded during Purge")
	}
}
