package keyfile_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/core/keyfile"
)

// The tests re-execute their own binary as helper processes: a real
// second process is what two instances starting at once are, and the test
// binary starts in milliseconds where `go run` takes seconds.
const (
	helperEnv = "KEYFILE_TEST_HELPER" // "create" or "rotate"
	pathEnv   = "KEYFILE_TEST_PATH"
	gateEnv   = "KEYFILE_TEST_GATE" // the helpers start once this file exists
	countEnv  = "KEYFILE_TEST_COUNT"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper is a helper process: it waits for the gate, then either creates
// the key file and prints "<id> <fingerprint>", or rotates it count times
// and prints the id of each generation it made.
func helper(mode string) int {
	path := os.Getenv(pathEnv)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(os.Getenv(gateEnv)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "the gate never opened")
			return 3
		}
	}
	switch mode {
	case "create":
		f, err := keyfile.LoadOrCreate(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(f.Current.ID, fingerprint(f.Current))
	case "rotate":
		n, _ := strconv.Atoi(os.Getenv(countEnv))
		for range n {
			f, err := keyfile.Rotate(path, time.Hour)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Println(f.Current.ID)
		}
	default:
		return 2
	}
	return 0
}

// fingerprint stands for a generation's key material in comparisons and
// failure messages, which must not print the keys themselves.
func fingerprint(g keyfile.Generation) string {
	h := sha256.Sum256(append(append([]byte(g.ID+"\x00"), g.CryptKey...), g.SignKey...))
	return hex.EncodeToString(h[:8])
}

// helpers starts n helper processes in mode on path, opens the gate so
// they run at once (closing opened, when given, for goroutines to join
// in), and returns their stdout lines.
func helpers(t *testing.T, n int, mode, path string, count int, opened chan struct{}) (lines []string) {
	t.Helper()
	gate := filepath.Join(t.TempDir(), "gate")
	type proc struct {
		cmd         *exec.Cmd
		out, stderr bytes.Buffer
	}
	procs := make([]*proc, n)
	for i := range procs {
		p := &proc{cmd: exec.Command(os.Args[0], "-test.run=^$")}
		p.cmd.Env = append(os.Environ(), helperEnv+"="+mode, pathEnv+"="+path, gateEnv+"="+gate, countEnv+"="+strconv.Itoa(count))
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if opened != nil {
		close(opened)
	}
	for i, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("helper %d: %v: %s", i, err, p.stderr.String())
		}
		sc := bufio.NewScanner(&p.out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// readUntil calls keyfile.Load on path until stop is closed and reports
// any failure other than "not there yet": a reader must never see a
// partly written or half-replaced file.
func readUntil(t *testing.T, path string, stop <-chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := keyfile.Load(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a concurrent Load: %v", err)
				return
			}
		}
	}()
}

// noLeftovers checks that dir holds only want (no temporary files).
func noLeftovers(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "demo.keys")
	if _, err := keyfile.Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v, want fs.ErrNotExist", err)
	}
	f, err := keyfile.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if len(f.Current.CryptKey) != 32 || len(f.Current.SignKey) != 32 || len(f.Current.ID) != 8 || len(f.Previous) != 0 {
		t.Errorf("new file %v: want one generation of two 32-byte keys and an 8-character id", f)
	}
	if bytes.Equal(f.Current.CryptKey, f.Current.SignKey) {
		t.Error("crypt_key equals sign_key")
	}
	if c := f.Current.Created; c.IsZero() || time.Since(c) > time.Minute || c.Location() != time.UTC {
		t.Errorf("created %v, want now in UTC", c)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Version *int            `json:"version"`
		Current json.RawMessage `json:"current"`
	}
	if err := json.Unmarshal(data, &raw); err != nil || raw.Version == nil || *raw.Version != keyfile.FormatVersion || !bytes.HasPrefix(data, []byte("{\n  \"version\": 1,\n  \"current\": {\n    \"id\": ")) || !bytes.HasSuffix(data, []byte("}\n")) {
		t.Errorf("file does not start with the version and current, indented, and end in a newline: %v", err)
	}
	again, err := keyfile.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(again.Current) != fingerprint(f.Current) {
		t.Error("a second LoadOrCreate returned other keys")
	}
	noLeftovers(t, dir, "demo.keys")

	if _, err := keyfile.LoadOrCreate(filepath.Join(dir, "missing-dir", "k")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadOrCreate in a missing directory: %v, want fs.ErrNotExist", err)
	}
}

// Many goroutines creating one file at once all get the winner's keys,
// and readers meanwhile see no file or a whole one.
func TestLoadOrCreateGoroutines(t *testing.T) {
	const rounds, creators = 25, 12
	for round := range rounds {
		dir := t.TempDir()
		path := filepath.Join(dir, "k")
		start, stop := make(chan struct{}), make(chan struct{})
		var readers, wg sync.WaitGroup
		readUntil(t, path, stop, &readers)
		got := make([]string, creators)
		for i := range creators {
			wg.Go(func() {
				<-start
				f, err := keyfile.LoadOrCreate(path)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = fingerprint(f.Current)
			})
		}
		close(start)
		wg.Wait()
		close(stop)
		readers.Wait()
		onDisk, err := keyfile.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range got {
			if g != fingerprint(onDisk.Current) {
				t.Fatalf("round %d: goroutine %d got keys %s, the file holds %s", round, i, g, fingerprint(onDisk.Current))
			}
		}
		noLeftovers(t, dir, "k")
	}
}

// Processes starting at once on one missing file all end up with the same
// keys.
func TestLoadOrCreateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	const rounds, procs = 3, 8
	for round := range rounds {
		dir := t.TempDir()
		path := filepath.Join(dir, "k")
		lines := helpers(t, procs, "create", path, 0, nil)
		onDisk, err := keyfile.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		want := onDisk.Current.ID + " " + fingerprint(onDisk.Current)
		if len(lines) != procs {
			t.Fatalf("round %d: %d answers from %d processes", round, len(lines), procs)
		}
		for i, l := range lines {
			if l != want {
				t.Fatalf("round %d: process %d got %q, the file holds %q", round, i, l, want)
			}
		}
		noLeftovers(t, dir, "k")
	}
}

// Rotations racing in goroutines and processes all land: every generation
// any of them made is in the file afterwards, and readers never fail.
func TestRotateConcurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	first, err := keyfile.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, procs, each = 4, 3, 5
	stop, opened := make(chan struct{}), make(chan struct{})
	var readers, wg sync.WaitGroup
	readUntil(t, path, stop, &readers)
	var mu sync.Mutex
	made := []string{first.Current.ID}
	for range goroutines {
		wg.Go(func() {
			<-opened
			for range each {
				f, err := keyfile.Rotate(path, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				made = append(made, f.Current.ID)
				mu.Unlock()
			}
		})
	}
	lines := helpers(t, procs, "rotate", path, each, opened)
	wg.Wait()
	close(stop)
	readers.Wait()
	made = append(made, lines...)
	f, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	inFile := []string{f.Current.ID}
	for _, g := range f.Previous {
		inFile = append(inFile, g.ID)
		if g.RetireAfter.IsZero() {
			t.Errorf("previous generation %s has no retire time", g.ID)
		}
	}
	if want := 1 + (goroutines+procs)*each; len(made) != want {
		t.Fatalf("the rotators report %d generations, want %d", len(made), want)
	}
	slices.Sort(made)
	slices.Sort(inFile)
	if !slices.Equal(made, inFile) {
		t.Errorf("generations made %q, in the file %q", made, inFile)
	}
	if got := f.Previous[len(f.Previous)-1].ID; got != first.Current.ID {
		t.Errorf("the oldest previous generation is %s, want the first, %s", got, first.Current.ID)
	}
	noLeftovers(t, dir, "k", "k.lock")
}

func TestRotateAndPrune(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	first, err := keyfile.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	rotated, err := keyfile.Rotate(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated.Previous) != 1 || fingerprint(rotated.Previous[0]) != fingerprint(first.Current) {
		t.Fatalf("after Rotate: %v, want the first generation as the only previous", rotated)
	}
	if fingerprint(rotated.Current) == fingerprint(first.Current) || rotated.Current.ID == first.Current.ID {
		t.Fatal("Rotate kept the current generation")
	}
	if r := rotated.Previous[0].RetireAfter; r.Before(before.Add(time.Hour)) || r.After(time.Now().Add(time.Hour+time.Second)) {
		t.Errorf("retire_after %v, want an hour from the rotation, rounded up to the second", r)
	}
	if onDisk, err := keyfile.Load(path); err != nil || onDisk.String() != rotated.String() {
		t.Fatalf("the file holds %v (%v), Rotate returned %v", onDisk, err, rotated)
	}

	// Nothing has retired: Prune leaves the file alone, not even
	// rewriting it.
	fi, _ := os.Stat(path)
	if f, err := keyfile.Prune(path); err != nil || len(f.Previous) != 1 {
		t.Fatalf("Prune before the retire time: %v, %v", f, err)
	}
	if fi2, _ := os.Stat(path); !os.SameFile(fi, fi2) {
		t.Error("Prune with nothing to prune rewrote the file")
	}
	// In memory, at a time after the retire time: Keys leaves it out
	// before Prune deletes it.
	later := rotated.Previous[0].RetireAfter.Add(time.Second)
	if _, verify := rotated.Keys(later); len(verify) != 0 {
		t.Errorf("Keys after the retire time still has %d verify generations", len(verify))
	}
	if _, verify := rotated.Keys(time.Now()); len(verify) != 1 || verify[0].ID != first.Current.ID {
		t.Errorf("Keys before the retire time: %v", verify)
	}
	if n := rotated.Prune(later); n != 1 || len(rotated.Previous) != 0 {
		t.Errorf("Prune after the retire time deleted %d, left %v", n, rotated)
	}
	// On disk: a generation whose retire time passed is pruned.
	past, err := keyfile.Update(path, func(f *keyfile.File) error {
		f.Previous[0].RetireAfter = time.Now().Add(-time.Second).UTC()
		return nil
	})
	if err != nil || len(past.Previous) != 1 {
		t.Fatal(past, err)
	}
	if f, err := keyfile.Prune(path); err != nil || len(f.Previous) != 0 {
		t.Fatalf("Prune after the retire time: %v, %v", f, err)
	}
	if f, err := keyfile.Load(path); err != nil || len(f.Previous) != 0 || fingerprint(f.Current) != fingerprint(rotated.Current) {
		t.Fatalf("after Prune the file holds %v, %v", f, err)
	}

	if _, err := keyfile.Rotate(path, -time.Second); err == nil {
		t.Error("Rotate with a negative keepFor succeeded")
	}
	if f, err := keyfile.Rotate(path, 0); err != nil || time.Until(f.Previous[0].RetireAfter) < keyfile.DefaultKeepFor-time.Minute {
		t.Errorf("Rotate with keepFor 0: %v, %v; want DefaultKeepFor", f, err)
	}
	if _, err := keyfile.Rotate(filepath.Join(dir, "missing"), time.Hour); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Rotate of a missing file: %v, want fs.ErrNotExist", err)
	}
	noLeftovers(t, dir, "k", "k.lock")
}

// Rotation keeps the file's permission bits, and Update returns its
// callback's error untouched, leaving the file alone.
func TestUpdate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	if _, err := keyfile.LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := keyfile.Rotate(path, time.Hour); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("after Rotate the mode is %v (%v), want 0640 kept", fi.Mode().Perm(), err)
	}
	before, _ := os.ReadFile(path)
	mine := errors.New("mine")
	if _, err := keyfile.Update(path, func(f *keyfile.File) error { f.Previous = nil; return mine }); err != mine {
		t.Errorf("Update returned %v, want the callback's error", err)
	}
	if _, err := keyfile.Update(path, func(f *keyfile.File) error { f.Current.SignKey = f.Current.SignKey[:16]; return nil }); !errors.Is(err, keyfile.ErrMalformed) {
		t.Errorf("Update to a short key: %v, want ErrMalformed", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed Update changed the file")
	}

	// Through a symbolic link, the target is rewritten and the link stays.
	link := filepath.Join(dir, "link")
	if err := os.Symlink("k", link); err != nil {
		t.Skip(err)
	}
	f, err := keyfile.Rotate(link, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Errorf("the link was replaced: %v, %v", fi.Mode(), err)
	}
	if g, err := keyfile.Load(path); err != nil || g.Current.ID != f.Current.ID {
		t.Errorf("the link's target was not rotated: %v, %v", g, err)
	}
}

// oldKeyFile is the examples' key file from before this package, as
// examples/internal/demo/keys.go declared it: the format existing
// deployments have on disk.
type oldKeyFile struct {
	Current  oldKeyJSON   `json:"current"`
	Previous []oldKeyJSON `json:"previous,omitempty"`
}

type oldKeyJSON struct {
	ID       string `json:"id"`
	CryptKey []byte `json:"crypt_key"`
	SignKey  []byte `json:"sign_key"`
}

func oldKey(id string, b byte) oldKeyJSON {
	return oldKeyJSON{ID: id, CryptKey: bytes.Repeat([]byte{b}, 32), SignKey: bytes.Repeat([]byte{b + 1}, 32)}
}

// writeOld writes kf as the old examples did (MarshalIndent, a newline,
// mode 0600).
func writeOld(t *testing.T, path string, kf oldKeyFile) {
	t.Helper()
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Files the examples wrote before this package load unchanged, rotate,
// and a rotated file is still readable by the old examples' code.
func TestOldFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth2kit-demo.keys")
	old := oldKeyFile{Current: oldKey("0a1b2c3d", 1), Previous: []oldKeyJSON{oldKey("99aa88bb", 3)}}
	writeOld(t, path, old)
	for _, load := range []func(string) (*keyfile.File, error){keyfile.Load, keyfile.LoadOrCreate} {
		f, err := load(path)
		if err != nil {
			t.Fatal(err)
		}
		c := f.Current
		if c.ID != "0a1b2c3d" || !bytes.Equal(c.CryptKey, old.Current.CryptKey) || !bytes.Equal(c.SignKey, old.Current.SignKey) || !c.Created.IsZero() {
			t.Errorf("current loaded as %v", c)
		}
		if len(f.Previous) != 1 || f.Previous[0].ID != "99aa88bb" || !bytes.Equal(f.Previous[0].SignKey, old.Previous[0].SignKey) || !f.Previous[0].RetireAfter.IsZero() {
			t.Errorf("previous loaded as %v", f.Previous)
		}
		// Without a retire time the old previous generation stays.
		if n := f.Prune(time.Now().Add(1000 * time.Hour)); n != 0 {
			t.Errorf("Prune deleted %d generations without a retire time", n)
		}
	}
	f, err := keyfile.Rotate(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Previous) != 2 || f.Previous[0].ID != "0a1b2c3d" || f.Previous[1].ID != "99aa88bb" {
		t.Fatalf("after Rotate: %v", f)
	}
	for _, g := range f.Previous {
		if g.RetireAfter.IsZero() {
			t.Errorf("after Rotate %s has no retire time", g.ID)
		}
	}
	// An instance not yet upgraded reads the new file.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back oldKeyFile
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Current.ID != f.Current.ID || !bytes.Equal(back.Current.CryptKey, f.Current.CryptKey) || len(back.Previous) != 2 || !bytes.Equal(back.Previous[0].SignKey, old.Current.SignKey) {
		t.Error("the old examples' decoder reads the rotated file differently")
	}
}

// Members this version does not know, and the reserved signing keys,
// survive a rewrite.
func TestUnknownMembersKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	in := `{"version": 1,
 "current": {"id": "c1", "crypt_key": "` + k + `", "sign_key": "` + k + `", "hsm": {"slot": 3}},
 "signing_keys": [{"kid": "rsa-1", "alg": "RS256", "state": "current", "not_before": "2026-01-01T00:00:00Z",
   "jwk": {"kty": "RSA", "n": "AQAB", "d": "c2VjcmV0"}, "x5c": ["MIIB"]}],
 "audit": [1, 2]}`
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := keyfile.Rotate(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sk := f.SigningKeys
	if len(sk) != 1 || sk[0].KID != "rsa-1" || sk[0].Alg != "RS256" || sk[0].State != "current" || !sk[0].NotBefore.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("signing keys read as %v", sk)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Audit       json.RawMessage `json:"audit"`
		Previous    []map[string]json.RawMessage
		SigningKeys []map[string]json.RawMessage `json:"signing_keys"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	compact := func(r json.RawMessage) string {
		var b bytes.Buffer
		_ = json.Compact(&b, r)
		return b.String()
	}
	if compact(out.Audit) != "[1,2]" || len(out.Previous) != 1 || compact(out.Previous[0]["hsm"]) != `{"slot":3}` ||
		len(out.SigningKeys) != 1 || compact(out.SigningKeys[0]["jwk"]) != `{"kty":"RSA","n":"AQAB","d":"c2VjcmV0"}` || compact(out.SigningKeys[0]["x5c"]) != `["MIIB"]` {
		t.Errorf("unknown members lost or changed:\n%s", data)
	}
}

func TestMalformed(t *testing.T) {
	k32 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k16 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16))
	gen := func(id, crypt, sign string) string {
		return `{"id":"` + id + `","crypt_key":"` + crypt + `","sign_key":"` + sign + `"}`
	}
	good := gen("a", k32, k32)
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "the file is empty"},
		{"spaces", " \n", "the file is empty"},
		{"truncated", `{"current":` + good[:20], "unexpected end of JSON input"},
		{"not an object", `[1,2]`, "cannot unmarshal array"},
		{"trailing garbage", `{"current":` + good + `} x`, "invalid character 'x'"},
		{"no current", `{"previous":[` + good + `]}`, `no "current" generation`},
		{"null", `null`, `no "current" generation`},
		{"short crypt_key", `{"current":` + gen("a", k16, k32) + `}`, "current: crypt_key has 16 bytes and sign_key 32; each needs at least 32"},
		{"short previous sign_key", `{"current":` + good + `,"previous":[` + gen("b", k32, k16) + `]}`, "previous[0]: crypt_key has 32 bytes and sign_key 16"},
		{"missing key", `{"current":{"id":"a","crypt_key":"` + k32 + `"}}`, "sign_key 0"},
		{"bad base64", `{"current":` + gen("a", "!!!!", k32) + `}`, "illegal base64"},
		{"bad id", `{"current":` + gen("a.b", k32, k32) + `}`, `current: id "a.b": use 1-32 characters`},
		{"long id", `{"current":` + gen(strings.Repeat("a", 33), k32, k32) + `}`, "use 1-32 characters"},
		{"duplicate id", `{"current":` + good + `,"previous":[` + good + `]}`, `previous[0]: id "a" is used twice`},
		{"newer version", `{"version":2,"current":` + good + `}`, "version 2: this oauth2kit reads versions up to 1; upgrade it"},
		{"negative version", `{"version":-1,"current":` + good + `}`, "version -1"},
		{"string version", `{"version":"1","current":` + good + `}`, "cannot unmarshal string"},
		{"bad time", `{"current":{"id":"a","crypt_key":"` + k32 + `","sign_key":"` + k32 + `","created":"yesterday"}}`, "cannot parse"},
		{"bad signing key", `{"current":` + good + `,"signing_keys":[{"kid":5}]}`, "cannot unmarshal number"},
		{"too large", `{"current":` + good + `,"pad":"` + strings.Repeat("x", keyfile.MaxFileSize) + `"}`, "more than the 1048576 a key file may have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(tc.data), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := keyfile.Load(path)
			if !errors.Is(err, keyfile.ErrMalformed) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "keyfile: "+path+": malformed key file: ") {
				t.Errorf("Load: %v; want ErrMalformed naming the file and saying %q", err, tc.want)
			}
			// LoadOrCreate must not replace a file it cannot read, nor
			// Rotate: that would throw away keys in use.
			if _, err := keyfile.LoadOrCreate(path); !errors.Is(err, keyfile.ErrMalformed) {
				t.Errorf("LoadOrCreate: %v, want ErrMalformed", err)
			}
			if _, err := keyfile.Rotate(path, time.Hour); !errors.Is(err, keyfile.ErrMalformed) {
				t.Errorf("Rotate: %v, want ErrMalformed", err)
			}
			if data, _ := os.ReadFile(path); string(data) != tc.data {
				t.Error("the file was changed")
			}
			if _, err := keyfile.Parse([]byte(tc.data)); tc.name != "too large" && !errors.Is(err, keyfile.ErrMalformed) {
				t.Errorf("Parse: %v, want ErrMalformed", err)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		if _, err := keyfile.LoadOrCreate(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadOrCreate of a directory: %v", err)
		}
	})
}

func TestPermissions(t *testing.T) {
	if os.PathSeparator == '\\' {
		t.Skip("no Unix permission bits")
	}
	path := filepath.Join(t.TempDir(), "k")
	if _, err := keyfile.LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode fs.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, true}, {0o660, true}, {0o604, false}, {0o644, false}, {0o602, false}, {0o666, false}} {
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		for name, load := range map[string]func(string) (*keyfile.File, error){"Load": keyfile.Load, "LoadOrCreate": keyfile.LoadOrCreate} {
			_, err := load(path)
			if tc.ok && err != nil {
				t.Errorf("%s of a %04o file: %v", name, tc.mode, err)
			}
			if !tc.ok && (!errors.Is(err, keyfile.ErrPermissions) || !strings.Contains(err.Error(), fmt.Sprintf("mode %04o; chmod 600 %s", tc.mode, path))) {
				t.Errorf("%s of a %04o file: %v, want ErrPermissions with the fix", name, tc.mode, err)
			}
		}
	}
}

// Printing or logging a key file, a generation or a signing key never
// shows key material.
func TestRedacted(t *testing.T) {
	f, err := keyfile.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Rotate(time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	f.SigningKeys = []keyfile.SigningKey{{KID: "k1", Alg: "ES256", State: "next", JWK: json.RawMessage(`{"d":"UNIQUEPRIVATE"}`)}}
	var secrets []string
	for _, g := range append([]keyfile.Generation{f.Current}, f.Previous...) {
		for _, k := range [][]byte{g.CryptKey, g.SignKey} {
			secrets = append(secrets, base64.StdEncoding.EncodeToString(k), base64.RawURLEncoding.EncodeToString(k), hex.EncodeToString(k), fmt.Sprint(k), fmt.Sprint(k[0], k[1], k[2]))
		}
	}
	secrets = append(secrets, "UNIQUEPRIVATE", fmt.Sprint([]byte("UNIQUEPRIVATE")[:4]))
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{f, *f, f.Current, &f.Current, f.Previous, f.SigningKeys[0], f.SigningKeys} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	for _, h := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		slog.New(h).Info("keys", "file", f, "file value", *f, "gen", f.Current, "prev", f.Previous[0], "sk", f.SigningKeys[0])
	}
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Fatalf("key material %q printed in:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), f.Current.ID) || !strings.Contains(out.String(), "[redacted]") {
		t.Errorf("the output names no generation:\n%s", out.String())
	}
}
