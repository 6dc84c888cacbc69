// Package e2etest drives the example servers from the outside, as a user,
// a browser and a client library do: it builds an example's binary, starts
// it, reads what it prints at start and waits until it serves. The tests of
// this package run one body against every example; the browser test
// (examples/browsertest) uses the same helpers.
//
// This is test support code: it needs a Go toolchain on PATH and is not
// used by the example servers themselves.
package e2etest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// MetadataPath is where every example serves its RFC 8414 metadata.
const MetadataPath = "/.well-known/oauth-authorization-server"

// ModuleDir is the examples module's directory: the nearest directory at
// or above the working directory (a test's package directory) holding a
// go.mod.
func ModuleDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build builds the example ./<name> of the examples module with the go
// command on PATH into a temporary directory of t, and returns the
// binary's path. When the test itself runs with -race, so is the example
// built, so races in the servers show (the race detector then makes the
// process exit 66).
func Build(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	args := []string{"build", "-buildvcs=false", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./"+name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = ModuleDir(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// SyncBuffer is a bytes.Buffer safe for concurrent use: it collects a
// process's output, or a server's log, while it runs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Server is a running example server.
type Server struct {
	// Base is where it listens ("http://127.0.0.1:port"); requests go
	// there. Issuer is the issuer it printed (Base unless -issuer says
	// otherwise).
	Base, Addr, Issuer string
	// ClientID and ClientSecret are the demo client's printed credentials.
	ClientID, ClientSecret string

	cmd    *exec.Cmd
	stdout SyncBuffer
	stderr SyncBuffer
	done   chan struct{} // closed when the process has exited
	state  *os.ProcessState
}

var (
	listenRe = regexp.MustCompile(`(?m)^\s*listening on:\s+(\S+)\s*$`)
	issuerRe = regexp.MustCompile(`(?m)^\s*issuer:\s+(\S+)\s*$`)
	clientRe = regexp.MustCompile(`(?m)^\s*demo client:\s+client_id=(\S+) client_secret=(\S+)\s*$`)
)

// Start runs bin with args (in a temporary working directory, so nothing
// lands in the source tree), reads the listen address, issuer and demo
// client credentials it prints, and waits until its metadata endpoint
// answers 200. The process is killed at the end of the test if it is
// still running; its log (stderr) is shown if the test failed.
func Start(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	return StartEnv(t, bin, nil, args...)
}

// StartEnv is Start with env ("NAME=value") added to the process's
// environment (SSL_CERT_FILE, for a test CA).
func StartEnv(t testing.TB, bin string, env []string, args ...string) *Server {
	t.Helper()
	s := &Server{done: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = t.TempDir()
	if env != nil {
		s.cmd.Env = append(os.Environ(), env...)
	}
	s.cmd.Stdout = &s.stdout
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		_ = s.cmd.Wait()
		s.state = s.cmd.ProcessState
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("%s %s: log:\n%s", filepath.Base(bin), strings.Join(args, " "), s.stderr.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		out := s.stdout.String()
		l, i, c := listenRe.FindStringSubmatch(out), issuerRe.FindStringSubmatch(out), clientRe.FindStringSubmatch(out)
		if l != nil && i != nil && c != nil {
			s.Addr, s.Issuer, s.ClientID, s.ClientSecret = l[1], i[1], c[1], c[2]
			s.Base = "http://" + s.Addr
			break
		}
		select {
		case <-s.done:
			t.Fatalf("%s exited (%v) before printing its address, issuer and demo client:\n%s", filepath.Base(bin), s.state, s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no address, issuer and demo client within 30s", filepath.Base(bin))
		}
	}

	client := &http.Client{Timeout: 2 * time.Second}
	for {
		res, err := client.Get(s.Base + MetadataPath)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%s did not answer 200 within 30s (last: %v)", s.Base, MetadataPath, statusOrErr(res, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusOrErr(res *http.Response, err error) any {
	if err != nil {
		return err
	}
	return res.Status
}

// Signal sends sig to the server process.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Exited reports whether the process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code (-1 if a signal killed it); it fails the test on timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-s.done:
		return s.state.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("the server did not exit within %v", timeout)
		return -1
	}
}

// Log is what the server wrote to stderr so far (its log).
func (s *Server) Log() string { return s.stderr.String() }

// Run runs bin with args to completion (at most one minute) and returns
// its stdout, stderr and exit code.
func Run(t testing.TB, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitCode()
	default:
		t.Fatalf("running %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
		return "", "", -1
	}
}
