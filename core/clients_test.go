package core

import (
	"encoding/base64"
	"testing"
)

// A generated client id is handed to command-line tools ("client remove ID");
// one that starts with '-' would be read as a flag. 4 000 draws would hit a
// leading '-' with probability 1 - (63/64)^4000 if ids were plain base64url.
func TestGeneratedClientIDNeverStartsWithDash(t *testing.T) {
	seen := make(map[string]bool)
	first := make(map[byte]bool)
	for range 4000 {
		c, _, err := NewClient(ClientSpec{RedirectURIs: []string{"https://app.example/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		if c.ID[0] == '-' {
			t.Fatalf("generated client id %q starts with '-'", c.ID)
		}
		raw, err := base64.RawURLEncoding.DecodeString(c.ID)
		if err != nil || len(raw) != 16 {
			t.Fatalf("client id %q: want 16 random bytes in base64url, got %d bytes (%v)", c.ID, len(raw), err)
		}
		if seen[c.ID] {
			t.Fatalf("client id %q generated twice", c.ID)
		}
		seen[c.ID] = true
		first[c.ID[0]] = true
	}
	// The rejection must not skew the rest: the other 63 first characters
	// all turn up (each is missed by 4 000 draws with probability ~e^-63).
	if len(first) != 63 {
		t.Errorf("%d distinct first characters over 4000 ids, want 63", len(first))
	}
	// An explicit id is the operator's choice and is kept as given.
	c, _, err := NewClient(ClientSpec{ID: "-legacy", RedirectURIs: []string{"https://app.example/cb"}})
	if err != nil || c.ID != "-legacy" {
		t.Errorf("explicit id: got %v, %v", c, err)
	}
}
