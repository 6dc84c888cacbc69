//go:build linux

package gormstore_test

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"gorm.io/gorm/logger"
)

// captureStdout runs f with file descriptor 1 redirected to a pipe and
// returns what was written to it. logger.Default holds the *os.File it
// was built with at init, so only the descriptor itself can be redirected.
// f must not fail the test (t.Fatal) nor start subtests: the testing
// package writes to standard output too.
func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	saved, err := syscall.Dup(1)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		out <- string(b)
	}()
	if err := syscall.Dup3(int(w.Fd()), 1, 0); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if err := syscall.Dup3(saved, 1, 0); err != nil {
				panic(err) // standard output is lost: nothing sensible is left to do
			}
			_ = syscall.Close(saved)
			_ = w.Close()
		}()
		f()
	}()
	return <-out
}

// TestMissesLogNothingDefaultLogger is TestMissesLogNothing with the
// literal logger.Default, which writes to standard output.
func TestMissesLogNothingDefaultLogger(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *testDB) {
		f := newMissFixture(t, d, logger.Default)
		var bad []string
		out := captureStdout(t, func() { bad = f.misses() })
		for _, b := range bad {
			t.Error(b)
		}
		if out != "" {
			t.Errorf("logger.Default wrote %d lines to standard output for lookups that found nothing:\n%s", strings.Count(out, "\n"), out)
		}
	})
}
