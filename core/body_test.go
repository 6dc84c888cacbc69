package core_test

import (
	"io"
	"strings"
	"testing"

	"github.com/oauth2kit/oauth2kit/core"
)

func TestBodyRecorderReplays(t *testing.T) {
	orig := io.NopCloser(strings.NewReader("access_token=x&a=b"))
	rec := core.NewBodyRecorder(orig)
	if rec.Replay() != orig {
		t.Fatal("nothing read: Replay must give the original body back")
	}
	head := make([]byte, 5)
	if _, err := io.ReadFull(rec, head); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(rec.Replay())
	if err != nil || string(all) != "access_token=x&a=b" {
		t.Fatalf("replayed %q, %v", all, err)
	}
}
