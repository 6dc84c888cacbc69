package usercode

import (
	"strings"
	"testing"
)

func TestNewAndFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		c, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := Normalize(c); !ok || n != c || len(c) != Len {
			t.Fatalf("New gave %q, which does not normalise to itself", c)
		}
		if f := Format(c); len(f) != 9 || f[4] != '-' {
			t.Fatalf("Format(%q) = %q", c, f)
		}
		seen[c] = true
	}
	// 2000 draws from 2^34.6 collide with probability about 1e-4.
	if len(seen) < 1999 {
		t.Errorf("%d distinct codes in 2000", len(seen))
	}
	// Every letter appears: the draw covers the alphabet.
	all := strings.Join(mapKeys(seen), "")
	for _, c := range Alphabet {
		if !strings.ContainsRune(all, c) {
			t.Errorf("letter %c never drawn", c)
		}
	}
}

func mapKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"WDJB-MJHT": "WDJBMJHT", "wdjb-mjht": "WDJBMJHT", "WdJb MjHt": "WDJBMJHT", "WDJBMJHT": "WDJBMJHT",
		"  wdjb--mjht ": "WDJBMJHT", "W-D-J-B-M-J-H-T": "WDJBMJHT",
	} {
		if got, ok := Normalize(in); !ok || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "WDJB-MJH", "WDJB-MJHTB", "WDJB-MJH0", "AEIO-UBCD", "WDJB_MJHT", "ＷDJB-MJHT", strings.Repeat("-", 70) + "WDJBMJHT", "WDJB\x00MJHT"} {
		if got, ok := Normalize(in); ok {
			t.Errorf("Normalize(%q) = %q, want refused", in, got)
		}
	}
}

// FuzzNormalize: whatever the input, an accepted one is canonical and
// stable, and it is the input with case and separators changed only — so
// different codes never normalise to one, and every variant of a code
// (case, dashes, spaces) maps to it.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"WDJB-MJHT", "wdjb mjht", "BCDF-GHJK", "", "----", "ZZZZZZZZ", "zzzz-zzzz-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := Normalize(in)
		if !ok {
			return
		}
		if len(got) != Len || strings.Trim(got, Alphabet) != "" {
			t.Fatalf("Normalize(%q) = %q: not canonical", in, got)
		}
		if again, ok := Normalize(got); !ok || again != got {
			t.Fatalf("Normalize(%q) = %q, but it normalises to %q", in, got, again)
		}
		if Format(got) != got[:4]+"-"+got[4:] {
			t.Fatalf("Format(%q)", got)
		}
		// The input minus separators, upper-cased, is the code: nothing
		// else was dropped or changed.
		stripped := strings.ToUpper(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(in))
		if stripped != got {
			t.Fatalf("Normalize(%q) = %q, but the input's letters are %q", in, got, stripped)
		}
		// Variants of the code map to it.
		for _, v := range []string{strings.ToLower(got), Format(got), " " + strings.ToLower(Format(got)) + " ", got[:2] + "-" + got[2:]} {
			if n, ok := Normalize(v); !ok || n != got {
				t.Fatalf("variant %q of %q normalises to %q, %v", v, got, n, ok)
			}
		}
	})
}
