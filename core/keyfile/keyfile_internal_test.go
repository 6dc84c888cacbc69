package keyfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The losing side of the creation race, made deterministic: another
// instance's file appears between the first Load and the link. create
// must return that file, not its own keys, and leave no temporary file.
func TestCreateLosesTheRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	winner, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := New()
	if err != nil {
		t.Fatal(err)
	}
	got, err := create(path, mine)
	if err != nil {
		t.Fatal(err)
	}
	if got.Current.ID != winner.Current.ID || string(got.Current.SignKey) != string(winner.Current.SignKey) {
		t.Error("the loser returned its own keys")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("left %d entries in the directory", len(ents))
	}
}

// The fallback for file systems without hard links makes the same
// decision under the lock.
func TestCreateLocked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	first, err := New()
	if err != nil {
		t.Fatal(err)
	}
	put := func(f *File) (*File, error) {
		data, err := f.encode()
		if err != nil {
			t.Fatal(err)
		}
		tmp, err := writeTemp(dir, "k", data, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return createLocked(path, tmp, f)
	}
	got, err := put(first)
	if err != nil || got != first {
		t.Fatalf("creating: %v, %v", got, err)
	}
	second, _ := New()
	got, err = put(second)
	if err != nil || got.Current.ID != first.Current.ID {
		t.Fatalf("creating again: %v, %v; want the first file", got, err)
	}
	if onDisk, err := Load(path); err != nil || onDisk.Current.ID != first.Current.ID {
		t.Fatalf("on disk: %v, %v", onDisk, err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "k" && e.Name() != "k.lock" {
			t.Errorf("left %s behind", e.Name())
		}
	}
}

func TestCeilSecond(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z"},
		{"2026-03-01T10:00:00.000000001Z", "2026-03-01T10:00:01Z"},
		{"2026-03-01T11:59:59.5+02:00", "2026-03-01T10:00:00Z"},
	} {
		in, err := time.Parse(time.RFC3339Nano, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ceilSecond(in); got.Format(time.RFC3339Nano) != tc.want {
			t.Errorf("ceilSecond(%s) = %v, want %s", tc.in, got, tc.want)
		}
	}
}
