package storagetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core"
)

// RegistrationsStore is what RunRegistrations needs: a Store with the
// core.RegistrationStore capability.
type RegistrationsStore interface {
	Store
	core.RegistrationStore
}

// RunRegistrations runs the sub-suite of the core.RegistrationStore
// capability (Run runs it too when the store has the capability): the
// registration fields (Dynamic, RegistrationTokenHash, Metadata byte for
// byte, UsedAt) round-trip through CreateClient, GetClient, SaveClient and
// ListClients; CreateClient refuses a taken ID (byte for byte) with
// ErrExists and changes nothing, and of racing creations of one ID
// exactly one stores its client, whole; MarkClientUsed keeps the first
// use, also when calls race, and ignores an absent client;
// CountDynamicClients counts Dynamic clients only; DeleteUnusedClients
// removes exactly the dynamic, never used clients created before its
// cutoff, with their consents, codes and refresh tokens, and returns how
// many; cancelled contexts change nothing. newStore is called once per
// subtest; it may return the same store each time (the counts are
// checked as differences, and the expiry test dates its clients years
// back, where no other test of the suite puts one).
func RunRegistrations(t *testing.T, newStore func(t *testing.T) RegistrationsStore) {
	t.Helper()
	h := helper(newStore)
	t.Run("RoundTripEveryField", h(testRegRoundTrip))
	t.Run("RoundTripMinimal", h(testRegMinimal))
	t.Run("ExistingID", h(testRegExisting))
	t.Run("CopiesNotShared", h(testRegIsolation))
	t.Run("MarkClientUsed", h(testMarkUsed))
	t.Run("MarkClientUsedAbsent", h(testMarkUsedAbsent))
	t.Run("CountDynamicClients", h(testCountDynamic))
	t.Run("DeleteUnusedClients", h(testDeleteUnused))
	t.Run("CancelledContext", h(testRegCancelled))
	t.Run("Concurrency", func(t *testing.T) {
		t.Run("CreateClient", h(testRaceCreateClient))
		t.Run("MarkClientUsed", h(testRaceMarkUsed))
	})
}

// runRegistrationsIfAble is Run's entry to the sub-suite: skipped for a
// store without the capability.
func runRegistrationsIfAble(newStore func(t *testing.T) Store) func(t *testing.T) {
	return func(t *testing.T) {
		if _, ok := newStore(t).(RegistrationsStore); !ok {
			t.Skip("the store does not implement core.RegistrationStore")
		}
		RunRegistrations(t, func(t *testing.T) RegistrationsStore {
			s, ok := newStore(t).(RegistrationsStore)
			if !ok {
				t.Fatal("newStore returned a store without core.RegistrationStore")
			}
			return s
		})
	}
}

// registeredMetadata is a JSON object shaped like what the server stores
// in Client.Metadata, written the way no encoder would rewrite it: members
// out of order, spaces around colons, a newline and a tab between
// members, a \u escape, a number with a trailing zero and a few KB of
// mixed text. A store that parses it (a JSON column type) or trims it
// gives back another string. seed varies the content.
func registeredMetadata(seed int) string {
	long, err := json.Marshal(oidcText(4096, seed))
	if err != nil {
		panic(err)
	}
	md := `{"redirect_uris" : ["https://z.example/cb?x=1,2&y=a%20b", "com.example.app:/oauth"],` + "\n\t" +
		`"client_name":"Caf\u00e9 \"Ünïcode\", App", "token_endpoint_auth_method":"client_secret_basic",` +
		`"z":{"b":1.50,"a":[]}, "software_version":` + string(long) + `, "seed": ` + fmt.Sprint(seed) + `}`
	if !json.Valid([]byte(md)) {
		panic("storagetest: registeredMetadata is not JSON")
	}
	return md
}

// dynamicClient is fullClient registered dynamically: every registration
// field set, UsedAt included (whole seconds, as every time of the suite).
func dynamicClient() *core.Client {
	c := fullClient()
	tok := sha256.Sum256([]byte(sig()))
	c.Dynamic = true
	c.RegistrationTokenHash = hex.EncodeToString(tok[:])
	c.Metadata = registeredMetadata(len(c.ID))
	c.UsedAt = base().Add(-time.Hour)
	return c
}

func createClient(t *testing.T, s RegistrationsStore, c *core.Client) {
	t.Helper()
	if err := s.CreateClient(bg, c); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
}

func getClient(t *testing.T, s Store, id string) *core.Client {
	t.Helper()
	c, err := s.GetClient(bg, id)
	if err != nil {
		t.Fatalf("GetClient(%q): %v", id, err)
	}
	return c
}

// listedOne returns the client ListClients holds under id.
func listedOne(t *testing.T, s RegistrationsStore, id string) *core.Client {
	t.Helper()
	for _, c := range listed(t, s, id) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("ListClients does not hold %q", id)
	return nil
}

func testRegRoundTrip(t *testing.T, s RegistrationsStore) {
	want := dynamicClient()
	createClient(t, s, want)
	diffClient(t, "GetClient after CreateClient", want, getClient(t, s, want.ID))
	diffClient(t, "ListClients after CreateClient", want, listedOne(t, s, want.ID))

	// SaveClient replaces every field, the registration fields included:
	// cleared ones come back cleared, not as they were.
	cleared := fullClient()
	cleared.ID = want.ID
	saveClient(t, s, cleared)
	diffClient(t, "GetClient after SaveClient cleared the registration fields", cleared, getClient(t, s, want.ID))
	diffClient(t, "ListClients after SaveClient cleared the registration fields", cleared, listedOne(t, s, want.ID))

	// And set ones are set, with other values than the first time.
	again := dynamicClient()
	again.ID = want.ID
	again.Metadata = registeredMetadata(7)
	again.UsedAt = base().Add(-30 * time.Minute)
	saveClient(t, s, again)
	diffClient(t, "GetClient after SaveClient set the registration fields", again, getClient(t, s, want.ID))
	diffClient(t, "ListClients after SaveClient set the registration fields", again, listedOne(t, s, want.ID))
}

func testRegMinimal(t *testing.T, s RegistrationsStore) {
	// A dynamic public client that was never used: UsedAt must stay zero.
	want := &core.Client{ID: uid("dyn"), RedirectURIs: []string{"http://127.0.0.1/cb"}, Public: true, Dynamic: true,
		Metadata: `{"redirect_uris":["http://127.0.0.1/cb"]}`, CreatedAt: base()}
	createClient(t, s, want)
	diffClient(t, "GetClient of a dynamic client never used", want, getClient(t, s, want.ID))
	// And CreateClient of a client without any registration field.
	plain := &core.Client{ID: uid("plain"), RedirectURIs: []string{"https://plain.example/cb"}, CreatedAt: base()}
	createClient(t, s, plain)
	diffClient(t, "GetClient of a client created without registration fields", plain, getClient(t, s, plain.ID))
}

func testRegExisting(t *testing.T, s RegistrationsStore) {
	first := dynamicClient()
	first.UsedAt = time.Time{}
	createClient(t, s, first)
	// Another client under the same ID: refused, the first kept whole.
	second := dynamicClient()
	second.ID, second.Name, second.RedirectURIs = first.ID, "intruder", []string{"https://evil.example/cb"}
	wantErr(t, "CreateClient of an existing ID", s.CreateClient(bg, second), core.ErrExists)
	diffClient(t, "the client after a second CreateClient of its ID", first, getClient(t, s, first.ID))
	// The very same client again: refused too.
	cp := *first
	wantErr(t, "CreateClient of the same client twice", s.CreateClient(bg, &cp), core.ErrExists)
	diffClient(t, "the client after it was created twice", first, getClient(t, s, first.ID))

	// A client registered by SaveClient holds its ID as well.
	static := fullClient()
	saveClient(t, s, static)
	taken := dynamicClient()
	taken.ID = static.ID
	wantErr(t, "CreateClient of the ID of a client SaveClient registered", s.CreateClient(bg, taken), core.ErrExists)
	diffClient(t, "a client SaveClient registered, after CreateClient of its ID", static, getClient(t, s, static.ID))

	// IDs are compared byte for byte: another case, a prefix or a trailing
	// space is another ID, free to create.
	for _, id := range []string{strings.ToUpper(first.ID), first.ID[:len(first.ID)-1], first.ID + " "} {
		c := dynamicClient()
		c.ID = id
		wantErr(t, fmt.Sprintf("CreateClient(%q) next to %q", id, first.ID), s.CreateClient(bg, c), nil)
		diffClient(t, fmt.Sprintf("GetClient(%q)", id), c, getClient(t, s, id))
	}
	diffClient(t, "the client after CreateClient of IDs like its own", first, getClient(t, s, first.ID))

	// A deleted client's ID is free again.
	wantErr(t, "DeleteClient", s.DeleteClient(bg, first.ID), nil)
	wantErr(t, "CreateClient of a deleted client's ID", s.CreateClient(bg, second), nil)
	diffClient(t, "the client created under a deleted client's ID", second, getClient(t, s, first.ID))
}

func testRegIsolation(t *testing.T, s RegistrationsStore) {
	c := dynamicClient()
	want := *c
	want.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	want.Scopes = append([]string(nil), c.Scopes...)
	createClient(t, s, c)
	// The caller's value is the caller's own once CreateClient returned.
	c.RedirectURIs[0], c.Scopes[0], c.Metadata, c.Dynamic = "https://evil.example/cb", "admin", "{}", false
	diffClient(t, "client after the caller changed the value it created", &want, getClient(t, s, want.ID))
}

func testMarkUsed(t *testing.T, s RegistrationsStore) {
	now := base()
	c, other := dynamicClient(), dynamicClient()
	c.UsedAt, other.UsedAt = time.Time{}, time.Time{}
	createClient(t, s, c)
	createClient(t, s, other)

	first := now.Add(-10 * time.Minute)
	wantErr(t, "MarkClientUsed", s.MarkClientUsed(bg, c.ID, first), nil)
	want := *c
	want.UsedAt = first
	diffClient(t, "the client after MarkClientUsed", &want, getClient(t, s, c.ID))
	diffClient(t, "the client in ListClients after MarkClientUsed", &want, listedOne(t, s, c.ID))
	// Later uses, and an earlier time, leave the first use as it was.
	for _, at := range []time.Time{now, now.Add(time.Hour), first.Add(-time.Hour), first.In(time.FixedZone("UTC+5", 5*3600)).Add(time.Minute)} {
		wantErr(t, "MarkClientUsed of a used client", s.MarkClientUsed(bg, c.ID, at), nil)
		diffClient(t, fmt.Sprintf("the client after MarkClientUsed(%v) of a used client", at), &want, getClient(t, s, c.ID))
	}
	// Other clients are not marked.
	diffClient(t, "another client after MarkClientUsed", other, getClient(t, s, other.ID))

	// A client created with UsedAt set keeps it.
	used := dynamicClient()
	createClient(t, s, used)
	wantErr(t, "MarkClientUsed of a client created used", s.MarkClientUsed(bg, used.ID, now), nil)
	diffClient(t, "a client created used, after MarkClientUsed", used, getClient(t, s, used.ID))
}

func testMarkUsedAbsent(t *testing.T, s RegistrationsStore) {
	c := dynamicClient()
	c.UsedAt = time.Time{}
	createClient(t, s, c)
	for _, id := range []string{uid("nobody"), c.ID[:len(c.ID)-1], strings.ToUpper(c.ID), ""} {
		wantErr(t, fmt.Sprintf("MarkClientUsed(%q) of an absent client", id), s.MarkClientUsed(bg, id, base()), nil)
		if _, err := s.GetClient(bg, id); !errors.Is(err, core.ErrNotFound) {
			t.Errorf("GetClient(%q) after MarkClientUsed of an absent client: error %v, want ErrNotFound", id, err)
		}
	}
	diffClient(t, "a client after MarkClientUsed of IDs like its own", c, getClient(t, s, c.ID))
}

func countDynamic(t *testing.T, s RegistrationsStore) int {
	t.Helper()
	n, err := s.CountDynamicClients(bg)
	if err != nil {
		t.Fatalf("CountDynamicClients: %v", err)
	}
	return n
}

func testCountDynamic(t *testing.T, s RegistrationsStore) {
	n0 := countDynamic(t, s)
	var dyn []*core.Client
	for i := range 3 {
		c := dynamicClient()
		if i == 0 {
			c.UsedAt = time.Time{} // used or not, it counts
		}
		createClient(t, s, c)
		dyn = append(dyn, c)
	}
	// Dynamic is what counts, not how the client was stored.
	saved := dynamicClient()
	saveClient(t, s, saved)
	dyn = append(dyn, saved)
	// Clients without Dynamic do not count, whatever else they have.
	saveClient(t, s, fullClient())
	notDyn := dynamicClient()
	notDyn.Dynamic = false
	createClient(t, s, notDyn)
	if n := countDynamic(t, s); n != n0+4 {
		t.Errorf("CountDynamicClients after 4 dynamic and 2 other clients: %d, want %d", n, n0+4)
	}
	// A client saved without Dynamic stops counting; a deleted one too.
	cp := *dyn[1]
	cp.Dynamic = false
	saveClient(t, s, &cp)
	wantErr(t, "DeleteClient", s.DeleteClient(bg, dyn[2].ID), nil)
	if n := countDynamic(t, s); n != n0+2 {
		t.Errorf("CountDynamicClients after one dynamic client was saved as not dynamic and one deleted: %d, want %d", n, n0+2)
	}
}

// withState gives client id a consent of user, a pending code and a
// refresh token, and returns the code and the token.
func withState(t *testing.T, s RegistrationsStore, now time.Time, user, id string) (*core.Grant, *core.RefreshToken) {
	t.Helper()
	if err := s.SaveConsent(bg, user, id, "read"); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	code := newGrant(now)
	code.ClientID = id
	createGrant(t, s, code)
	rt := newRefresh(now, uid("family"), id)
	seedRefresh(t, s, rt, now)
	return code, rt
}

func testDeleteUnused(t *testing.T, s RegistrationsStore) {
	now := base()
	// Years back, where no other test of the suite dates a client: the
	// clients other tests left in a shared store are all after the cutoff.
	cutoff := now.AddDate(-10, 0, 0)
	user := uid("user")
	unused := func(created time.Time) *core.Client {
		c := dynamicClient()
		c.UsedAt, c.CreatedAt = time.Time{}, created
		return c
	}

	// Expired: dynamic, never used, created before the cutoff (a zero
	// CreatedAt is the earliest time of all).
	gone := []*core.Client{unused(cutoff.Add(-time.Second)), unused(cutoff.AddDate(-1, 0, 0)), unused(time.Time{})}
	for _, c := range gone {
		createClient(t, s, c)
	}
	code, rt := withState(t, s, now, user, gone[0].ID)
	if err := s.SaveConsent(bg, user, gone[1].ID, "read write"); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}

	// Kept: used (created so, or marked before the call), not dynamic,
	// created at the cutoff or after it.
	used := unused(cutoff.Add(-time.Hour))
	used.UsedAt = cutoff
	marked := unused(cutoff.Add(-time.Hour))
	static := unused(cutoff.Add(-time.Hour))
	static.Dynamic = false
	atCutoff, recent := unused(cutoff), unused(cutoff.Add(time.Hour))
	kept := []*core.Client{used, marked, static, atCutoff, recent}
	for _, c := range kept {
		createClient(t, s, c)
	}
	wantErr(t, "MarkClientUsed", s.MarkClientUsed(bg, marked.ID, now), nil)
	marked.UsedAt = now
	usedCode, usedRT := withState(t, s, now, user, used.ID)
	_, staticRT := withState(t, s, now, user, static.ID)

	before := countDynamic(t, s)
	n, err := s.DeleteUnusedClients(bg, cutoff)
	if err != nil {
		t.Fatalf("DeleteUnusedClients: %v", err)
	}
	if n != len(gone) {
		t.Errorf("DeleteUnusedClients returned %d, want %d", n, len(gone))
	}
	if after := countDynamic(t, s); after != before-len(gone) {
		t.Errorf("CountDynamicClients after DeleteUnusedClients: %d, want %d", after, before-len(gone))
	}

	// The expired clients are gone with their state, as after DeleteClient.
	for _, c := range gone {
		_, err := s.GetClient(bg, c.ID)
		wantErr(t, fmt.Sprintf("GetClient of an expired client created %v", c.CreatedAt), err, core.ErrNotFound)
		if l := listed(t, s, c.ID); len(l) != 0 {
			t.Errorf("ListClients still holds the expired client %q", c.ID)
		}
		getConsent(t, s, user, c.ID, "")
	}
	_, err = s.RedeemCode(bg, code.CodeSig, now, neverIssueCode(t))
	wantErr(t, "RedeemCode of an expired client's code", err, core.ErrNotFound)
	_, err = s.GetRefreshToken(bg, rt.Sig)
	wantErr(t, "GetRefreshToken of an expired client's token", err, core.ErrNotFound)
	_, err = s.RotateRefreshToken(bg, rt.Sig, now, neverIssueRefresh(t))
	wantErr(t, "RotateRefreshToken of an expired client's token", err, core.ErrNotFound)

	// The others keep everything.
	for _, c := range kept {
		diffClient(t, "a client DeleteUnusedClients must keep", c, getClient(t, s, c.ID))
	}
	getConsent(t, s, user, used.ID, "read")
	getConsent(t, s, user, static.ID, "read")
	diffRefresh(t, "a used client's refresh token", usedRT, getRefresh(t, s, usedRT.Sig), true)
	diffRefresh(t, "a static client's refresh token", staticRT, getRefresh(t, s, staticRT.Sig), true)
	if _, err := s.RedeemCode(bg, usedCode.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Errorf("a used client's code after DeleteUnusedClients: %v", err)
	}

	// Nothing more to delete; and an expired client registered again
	// inherits nothing.
	if n, err := s.DeleteUnusedClients(bg, cutoff); err != nil || n != 0 {
		t.Errorf("DeleteUnusedClients a second time: %d, %v; want 0", n, err)
	}
	createClient(t, s, gone[0])
	getConsent(t, s, user, gone[0].ID, "")
	_, err = s.GetRefreshToken(bg, rt.Sig)
	wantErr(t, "GetRefreshToken after the expired client was registered again", err, core.ErrNotFound)
	wantErr(t, "DeleteClient", s.DeleteClient(bg, gone[0].ID), nil)
}

func testRegCancelled(t *testing.T, s RegistrationsStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error %v, want context.Canceled", what, err)
		}
	}
	c := dynamicClient()
	c.UsedAt, c.CreatedAt = time.Time{}, base().AddDate(-20, 0, 0)
	cp := *c
	canceled("CreateClient", s.CreateClient(ctx, &cp))
	_, err := s.GetClient(bg, c.ID)
	wantErr(t, "GetClient of a client created with a cancelled context", err, core.ErrNotFound)
	createClient(t, s, c)
	canceled("MarkClientUsed", s.MarkClientUsed(ctx, c.ID, base()))
	_, err = s.CountDynamicClients(ctx)
	canceled("CountDynamicClients", err)
	_, err = s.DeleteUnusedClients(ctx, base())
	canceled("DeleteUnusedClients", err)
	diffClient(t, "the client after cancelled calls", c, getClient(t, s, c.ID))
	wantErr(t, "DeleteClient", s.DeleteClient(bg, c.ID), nil)
}

func testRaceCreateClient(t *testing.T, s RegistrationsStore) {
	winners := make([]int, 0, Rounds)
	for round := 0; round < Rounds; round++ {
		// Distinct clients (names, URIs, metadata) under one ID.
		id := uid("race")
		cs := make([]*core.Client, Racers)
		for i := range cs {
			cs[i] = dynamicClient()
			cs[i].ID = id
			cs[i].Name = fmt.Sprintf("racer %d", i)
			cs[i].RedirectURIs = []string{fmt.Sprintf("https://r%d.example/cb", i)}
			cs[i].Metadata = registeredMetadata(i)
		}
		errs := make([]error, Racers)
		race(Racers, func(i int) { errs[i] = s.CreateClient(bg, cs[i]) })
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
		// The stored client is the winner's, whole.
		diffClient(t, fmt.Sprintf("round %d: the client stored by the race", round), cs[winner], getClient(t, s, id))
	}
	t.Logf("CreateClient: %d rounds × %d racers on one ID; created per round %v", Rounds, Racers, winners)
}

func testRaceMarkUsed(t *testing.T, s RegistrationsStore) {
	now := base()
	for round := 0; round < Rounds; round++ {
		c := dynamicClient()
		c.UsedAt = time.Time{}
		createClient(t, s, c)
		// Each racer records another time; one of them must be kept, and
		// stay.
		at := func(i int) time.Time { return now.Add(-time.Duration(i+1) * time.Minute) }
		errs := make([]error, Racers)
		race(Racers, func(i int) { errs[i] = s.MarkClientUsed(bg, c.ID, at(i)) })
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: MarkClientUsed of racer %d: %v", round, i, err)
			}
		}
		got := getClient(t, s, c.ID)
		kept := -1
		for i := range Racers {
			if sameTime(got.UsedAt, at(i)) {
				kept = i
			}
		}
		if kept < 0 {
			t.Errorf("round %d: UsedAt %v after the race is none of the racers' times", round, got.UsedAt)
			continue
		}
		want := *c
		want.UsedAt = at(kept)
		diffClient(t, fmt.Sprintf("round %d: the client after racing MarkClientUsed", round), &want, got)
		wantErr(t, "MarkClientUsed after the race", s.MarkClientUsed(bg, c.ID, now), nil)
		diffClient(t, fmt.Sprintf("round %d: the client after one more MarkClientUsed", round), &want, getClient(t, s, c.ID))
	}
}
