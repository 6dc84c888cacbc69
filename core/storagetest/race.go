package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// race runs f(0..n-1) in n goroutines released together: every goroutine
// is started and waiting on the barrier before any of them calls f.
func race(n int, f func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// outcome tallies the results of one round.
type outcome struct {
	winners, lost int
	other         []string
}

func (o *outcome) String() string {
	s := fmt.Sprintf("%d won, %d refused", o.winners, o.lost)
	if len(o.other) > 0 {
		s += fmt.Sprintf(", %d unexpected: %v", len(o.other), o.other)
	}
	return s
}

func testRaceRedeem(t *testing.T, s Store) {
	winners := make([]int, 0, Rounds)
	for round := 0; round < Rounds; round++ {
		now := base()
		g := newGrant(now)
		createGrant(t, s, g)
		// Each racer's issue offers its own refresh token; exactly the
		// winner's may end up stored.
		rts := make([]*core.RefreshToken, Racers)
		for i := range rts {
			rts[i] = newRefresh(now, g.ID, g.ClientID)
		}
		var issued atomic.Int32
		errs := make([]error, Racers)
		race(Racers, func(i int) {
			_, errs[i] = s.RedeemCode(bg, g.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) {
				issued.Add(1)
				cp := *rts[i]
				return &cp, nil
			})
		})
		var o outcome
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				o.winners++
				winner = i
			case errors.Is(err, core.ErrCodeUsed):
				o.lost++
			default:
				o.other = append(o.other, err.Error())
			}
		}
		winners = append(winners, o.winners)
		if o.winners != 1 || o.lost != Racers-1 || issued.Load() != 1 {
			t.Errorf("round %d: %s, issue called %d times; want 1 winner, %d ErrCodeUsed, 1 issue", round, &o, issued.Load(), Racers-1)
		}
		for i, rt := range rts {
			_, err := s.GetRefreshToken(bg, rt.Sig)
			if stored := err == nil; stored != (i == winner) {
				t.Errorf("round %d: refresh token of racer %d stored=%v (winner %d, err %v)", round, i, stored, winner, err)
			}
		}
	}
	t.Logf("RedeemCode: %d rounds × %d racers; winners per round %v", Rounds, Racers, winners)
}

func testRaceRotate(t *testing.T, s Store) {
	winners := make([]int, 0, Rounds)
	for round := 0; round < Rounds; round++ {
		now := base()
		old := newRefresh(now, uid("family"), uid("client"))
		seedRefresh(t, s, old, now)
		next := make([]*core.RefreshToken, Racers)
		for i := range next {
			next[i] = newRefresh(now, old.FamilyID, old.ClientID)
		}
		at := now.Add(time.Second)
		var issued atomic.Int32
		errs := make([]error, Racers)
		race(Racers, func(i int) {
			_, errs[i] = s.RotateRefreshToken(bg, old.Sig, at, func(*core.RefreshToken) (*core.RefreshToken, error) {
				issued.Add(1)
				cp := *next[i]
				return &cp, nil
			})
		})
		var o outcome
		for _, err := range errs {
			switch {
			case err == nil:
				o.winners++
			case errors.Is(err, core.ErrTokenRotated):
				o.lost++
			default:
				o.other = append(o.other, err.Error())
			}
		}
		winners = append(winners, o.winners)
		if o.winners != 1 || o.lost != Racers-1 || issued.Load() != 1 {
			t.Errorf("round %d: %s, issue called %d times; want 1 winner, %d ErrTokenRotated, 1 issue", round, &o, issued.Load(), Racers-1)
		}
		stored := 0
		for i, rt := range next {
			_, err := s.GetRefreshToken(bg, rt.Sig)
			if err == nil {
				stored++
			} else if !errors.Is(err, core.ErrNotFound) {
				t.Errorf("round %d: GetRefreshToken of racer %d's token: %v", round, i, err)
			}
		}
		if stored != 1 {
			t.Errorf("round %d: %d new refresh tokens stored, want exactly 1", round, stored)
		}
		if r := getRefresh(t, s, old.Sig); r.RotatedAt == nil {
			t.Errorf("round %d: the raced token is not marked rotated", round)
		}
	}
	t.Logf("RotateRefreshToken: %d rounds × %d racers; winners per round %v", Rounds, Racers, winners)
}

func testRaceCreate(t *testing.T, s Store) {
	winners := make([]int, 0, Rounds)
	for round := 0; round < Rounds; round++ {
		now := base()
		// Distinct grants (ids, users, clients) under one signature.
		sg := sig()
		gs := make([]*core.Grant, Racers)
		for i := range gs {
			gs[i] = newGrant(now)
			gs[i].CodeSig = sg
		}
		errs := make([]error, Racers)
		race(Racers, func(i int) { errs[i] = s.CreateGrant(bg, gs[i]) })
		var o outcome
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				o.winners++
				winner = i
			case errors.Is(err, core.ErrExists):
				o.lost++
			default:
				o.other = append(o.other, err.Error())
			}
		}
		winners = append(winners, o.winners)
		if o.winners != 1 || o.lost != Racers-1 {
			t.Errorf("round %d: %s; want 1 created, %d ErrExists", round, &o, Racers-1)
			continue
		}
		// The stored grant is the winner's, whole.
		got, err := s.RedeemCode(bg, sg, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil })
		if err != nil {
			t.Errorf("round %d: RedeemCode of the raced signature: %v", round, err)
			continue
		}
		diffGrant(t, fmt.Sprintf("round %d: the grant stored by the race", round), gs[winner], got, false)
	}
	t.Logf("CreateGrant: %d rounds × %d racers on one signature; created per round %v", Rounds, Racers, winners)
}
