package main

import (
	"os"
	"testing"
)

func TestQueryParam(t *testing.T) {
	for _, c := range []struct {
		u, name, want string
		ok            bool
	}{
		{"http://127.0.0.1:9/cb?code=ac2.k.abc&state=st&iss=x", "code", "ac2.k.abc", true},
		{"http://127.0.0.1:9/cb?state=st&code=a%2Bb", "code", "a+b", true},
		{"http://127.0.0.1:9/cb?error=access_denied&state=st", "code", "", false},
		{"http://127.0.0.1:9/cb?xcode=1&code=2", "code", "2", true},
		{"http://127.0.0.1:9/cb?code=1#code=2", "code", "1", true},
		{"http://127.0.0.1:9/cb#code=2", "code", "", false},
		{"http://127.0.0.1:9/cb?code=%zz", "code", "", false},
	} {
		got, ok := queryParam(c.u, c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("queryParam(%q, %q) = %q, %v; want %q, %v", c.u, c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestMemKiBOfSelf(t *testing.T) {
	rss, hwm, err := memKiB(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if rss <= 0 || hwm < rss {
		t.Fatalf("rss %d kB, peak %d kB", rss, hwm)
	}
}
