//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd || illumos)

package keyfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockWait bounds how long lock waits for another holder.
const lockWait = 30 * time.Second

// lock is the portable fallback where the standard library has no flock:
// it creates path+".lock" with O_EXCL, waiting while another holds it, and
// removes it on unlock. A holder that dies leaves the file behind; after
// lockWait the error names it, for an operator to remove once sure that
// no rotation is running.
func lock(path string) (unlock func(), err error) {
	name := path + ".lock"
	deadline := time.Now().Add(lockWait)
	delay := time.Millisecond
	for {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(name) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s held for over %v: if no rotation is running (a crashed one left it), remove it", name, lockWait)
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}
