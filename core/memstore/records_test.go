package memstore

import (
	"testing"
	"unsafe"

	"github.com/oauth2kit/oauth2kit/core"
)

// The runtime stores a map value larger than 128 bytes in a separate
// allocation, which would give the collector one more object per stored
// record: a field added to a record must not cross that line.
func TestRecordsFitInMapSlots(t *testing.T) {
	if n := unsafe.Sizeof(grantRec{}); n > 128 {
		t.Errorf("grantRec is %d bytes, more than 128", n)
	}
	if n := unsafe.Sizeof(refreshRec{}); n > 128 {
		t.Errorf("refreshRec is %d bytes, more than 128", n)
	}
}

// The three lists of a cloned client share one array: appending to one
// must not write into the next.
func TestCloneClientListsIndependent(t *testing.T) {
	c := cloneClient(&core.Client{
		ID:           "c",
		RedirectURIs: []string{"https://a/cb"},
		GrantTypes:   []string{core.GrantAuthorizationCode},
		Scopes:       []string{"read", "write"},
	})
	c.RedirectURIs = append(c.RedirectURIs, "https://evil/cb")
	c.GrantTypes = append(c.GrantTypes, core.GrantClientCredentials)
	if c.GrantTypes[0] != core.GrantAuthorizationCode || c.Scopes[0] != "read" || c.Scopes[1] != "write" {
		t.Errorf("append overwrote a neighbouring list: %q %q", c.GrantTypes, c.Scopes)
	}
	empty := cloneClient(&core.Client{ID: "e", GrantTypes: []string{}})
	if empty.RedirectURIs != nil || empty.Scopes != nil || empty.GrantTypes == nil {
		t.Errorf("nil lists must stay nil and empty ones empty: %#v", empty)
	}
}
