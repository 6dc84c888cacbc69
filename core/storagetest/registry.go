package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

// RegistryStore is what RunClientRegistry needs: a Store with the
// core.ClientRegistry capability.
type RegistryStore interface {
	Store
	core.ClientRegistry
}

// RunClientRegistry runs the sub-suite of the core.ClientRegistry
// capability: ListClients (every client, byte order, copies), DeleteClient
// (the client with its consents, codes and refresh tokens, nothing of
// other clients; ErrNotFound for an absent one), SaveClient racing on one
// ID (one whole version wins), and cancelled contexts. newStore is called
// once per subtest; it may return the same store each time (the suite
// tolerates clients of other tests in ListClients).
func RunClientRegistry(t *testing.T, newStore func(t *testing.T) RegistryStore) {
	t.Helper()
	h := helper(newStore)
	t.Run("ListClients", func(t *testing.T) {
		t.Run("EveryClientInByteOrder", h(testListClients))
		t.Run("CopiesNotShared", h(testListIsolation))
	})
	t.Run("DeleteClient", func(t *testing.T) {
		t.Run("DropsItsStateOnly", h(testDeleteClient))
		t.Run("NotFound", h(testDeleteClientNotFound))
	})
	t.Run("SaveClientRace", h(testSaveClientRace))
	t.Run("CancelledContext", h(testRegistryCancelled))
}

// listed returns the clients ListClients returns whose ID starts with
// prefix, checking the whole list's order on the way.
func listed(t *testing.T, s RegistryStore, prefix string) []*core.Client {
	t.Helper()
	all, err := s.ListClients(bg)
	if err != nil {
		t.Fatalf("ListClients: %v", err)
	}
	if !slices.IsSortedFunc(all, func(a, b *core.Client) int { return strings.Compare(a.ID, b.ID) }) {
		ids := make([]string, len(all))
		for i, c := range all {
			ids[i] = c.ID
		}
		t.Errorf("ListClients is not in byte order of the IDs: %q", ids)
	}
	var out []*core.Client
	for i, c := range all {
		if c == nil {
			t.Fatalf("ListClients returned a nil client at %d", i)
		}
		if i > 0 && all[i-1].ID == c.ID {
			t.Errorf("ListClients returned %q twice", c.ID)
		}
		if strings.HasPrefix(c.ID, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func testListClients(t *testing.T, s RegistryStore) {
	p := uid("reg")
	// IDs that a collation would reorder or merge: case, a trailing
	// space, non-ASCII, a separator.
	suffixes := []string{"/b", "/a", "/B", "/a ", "/é", "/a/", "/A"}
	want := map[string]*core.Client{}
	for i, sfx := range suffixes {
		c := fullClient()
		c.ID = p + sfx
		c.Name = fmt.Sprintf("client %d", i)
		if i%2 == 1 {
			c.Public, c.SecretHash, c.GrantTypes, c.Scopes = true, "", nil, nil
		}
		saveClient(t, s, c)
		want[c.ID] = c
	}
	got := listed(t, s, p)
	ids := make([]string, len(got))
	for i, c := range got {
		ids[i] = c.ID
	}
	wantIDs := make([]string, 0, len(suffixes))
	for id := range want {
		wantIDs = append(wantIDs, id)
	}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("ListClients: %q, want %q", ids, wantIDs)
	}
	for _, c := range got {
		diffClient(t, "client "+c.ID+" in ListClients", want[c.ID], c)
	}
}

func testListIsolation(t *testing.T, s RegistryStore) {
	c := fullClient()
	saveClient(t, s, c)
	want := *c
	got := listed(t, s, c.ID)
	if len(got) != 1 {
		t.Fatalf("ListClients holds %d clients with the saved ID, want 1", len(got))
	}
	got[0].RedirectURIs[0] = "https://evil.example/cb"
	got[0].Name = "changed"
	again, err := s.GetClient(bg, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	diffClient(t, "client after the caller changed what ListClients returned", &want, again)
}

func testDeleteClient(t *testing.T, s RegistryStore) {
	now := base()
	c, other := fullClient(), fullClient()
	saveClient(t, s, c)
	saveClient(t, s, other)
	user := uid("user")
	for _, cl := range []string{c.ID, other.ID} {
		if err := s.SaveConsent(bg, user, cl, "read"); err != nil {
			t.Fatal(err)
		}
	}
	// A pending code and a refresh token of each client.
	code, otherCode := newGrant(now), newGrant(now)
	code.ClientID, otherCode.ClientID = c.ID, other.ID
	createGrant(t, s, code)
	createGrant(t, s, otherCode)
	rt, otherRT := newRefresh(now, uid("family"), c.ID), newRefresh(now, uid("family"), other.ID)
	seedRefresh(t, s, rt, now)
	seedRefresh(t, s, otherRT, now)

	if err := s.DeleteClient(bg, c.ID); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	_, err := s.GetClient(bg, c.ID)
	wantErr(t, "GetClient of a deleted client", err, core.ErrNotFound)
	if l := listed(t, s, c.ID); len(l) != 0 {
		t.Errorf("ListClients still holds the deleted client")
	}
	getConsent(t, s, user, c.ID, "")
	_, err = s.RedeemCode(bg, code.CodeSig, now, neverIssueCode(t))
	wantErr(t, "RedeemCode of a deleted client's code", err, core.ErrNotFound)
	_, err = s.GetRefreshToken(bg, rt.Sig)
	wantErr(t, "GetRefreshToken of a deleted client's token", err, core.ErrNotFound)
	_, err = s.RotateRefreshToken(bg, rt.Sig, now, neverIssueRefresh(t))
	wantErr(t, "RotateRefreshToken of a deleted client's token", err, core.ErrNotFound)

	// The other client keeps everything.
	got, err := s.GetClient(bg, other.ID)
	if err != nil {
		t.Fatalf("GetClient of another client: %v", err)
	}
	diffClient(t, "another client after DeleteClient", other, got)
	getConsent(t, s, user, other.ID, "read")
	diffRefresh(t, "another client's refresh token", otherRT, getRefresh(t, s, otherRT.Sig), true)
	if _, err := s.RedeemCode(bg, otherCode.CodeSig, now, func(*core.Grant) (*core.RefreshToken, error) { return nil, nil }); err != nil {
		t.Errorf("another client's code after DeleteClient: %v", err)
	}

	// Registered again under the same ID, it inherits nothing.
	saveClient(t, s, c)
	getConsent(t, s, user, c.ID, "")
	_, err = s.GetRefreshToken(bg, rt.Sig)
	wantErr(t, "GetRefreshToken after the client was registered again", err, core.ErrNotFound)
	wantErr(t, "DeleteClient of the other client", s.DeleteClient(bg, other.ID), nil)
	wantErr(t, "DeleteClient of a deleted client", s.DeleteClient(bg, other.ID), core.ErrNotFound)
}

func testDeleteClientNotFound(t *testing.T, s RegistryStore) {
	c := fullClient()
	saveClient(t, s, c)
	for _, id := range []string{uid("nobody"), c.ID[:len(c.ID)-1], c.ID + " ", strings.ToUpper(c.ID)} {
		wantErr(t, fmt.Sprintf("DeleteClient(%q)", id), s.DeleteClient(bg, id), core.ErrNotFound)
	}
	if _, err := s.GetClient(bg, c.ID); err != nil {
		t.Errorf("a client was deleted by DeleteClient of another ID: %v", err)
	}
}

func testSaveClientRace(t *testing.T, s RegistryStore) {
	// Concurrent upserts of one ID: every one succeeds and the client read
	// back is one of the versions, whole (no field from another one).
	id := uid("client")
	versions := make([]*core.Client, Racers)
	for i := range versions {
		c := fullClient()
		c.ID = id
		c.Name = fmt.Sprintf("version %d", i)
		c.SecretHash = fmt.Sprintf("sha256$v%d", i)
		c.RedirectURIs = []string{fmt.Sprintf("https://v%d.example/cb", i)}
		c.Scopes = slices.Repeat([]string{fmt.Sprintf("s%d", i)}, i%3+1)
		c.Public = i%2 == 0
		versions[i] = c
	}
	errs := make([]error, Racers)
	race(Racers, func(i int) { errs[i] = s.SaveClient(bg, versions[i]) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("SaveClient of version %d: %v", i, err)
		}
	}
	got, err := s.GetClient(bg, id)
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	var n int
	if _, err := fmt.Sscanf(got.Name, "version %d", &n); err != nil || n < 0 || n >= Racers {
		t.Fatalf("the stored client is none of the versions: %+v", got)
	}
	diffClient(t, "client after racing upserts", versions[n], got)
}

func testRegistryCancelled(t *testing.T, s RegistryStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error %v, want context.Canceled", what, err)
		}
	}
	c := fullClient()
	saveClient(t, s, c)
	canceled("DeleteClient", s.DeleteClient(ctx, c.ID))
	if _, err := s.GetClient(bg, c.ID); err != nil {
		t.Errorf("GetClient after a cancelled DeleteClient: %v", err)
	}
	_, err := s.ListClients(ctx)
	canceled("ListClients", err)
}
