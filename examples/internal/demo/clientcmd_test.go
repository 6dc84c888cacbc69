package demo

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		db   string
		pos  []string
	}{
		{[]string{"ID", "-db", "x"}, "x", []string{"ID"}},
		{[]string{"-db", "x", "ID"}, "x", []string{"ID"}},
		{[]string{"-db", "x", "--", "-dashid"}, "x", []string{"-dashid"}},
		{[]string{"--", "-dashid", "-db", "y"}, "d", []string{"-dashid", "-db", "y"}},
		{[]string{"a", "--", "-b"}, "d", []string{"a", "-b"}},
		{nil, "d", nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		db := fs.String("db", "d", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || *db != tc.db || !slices.Equal(pos, tc.pos) {
			t.Errorf("%q: got db %q, positional %q, err %v; want db %q, positional %q", tc.args, *db, pos, err, tc.db, tc.pos)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("db", "d", "")
	if _, err := parseInterspersed(fs, []string{"-dashid"}); err == nil {
		t.Error("an unknown flag without \"--\" parsed")
	}
}
