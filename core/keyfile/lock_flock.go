//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd || illumos

package keyfile

import (
	"os"
	"syscall"
)

// lock takes an exclusive flock(2) on path+".lock", waiting for a holder
// to let go. The kernel releases it when the holder's descriptor closes,
// also when the process dies, so a crash leaves no stale lock. Each call
// opens its own descriptor, so goroutines of one process exclude each
// other too. Linux also honours flock on NFS (as a whole-file fcntl lock).
//
// The file stays after unlock: removing it would let a process that
// opened it before the removal and one that creates it afresh both hold a
// lock.
func lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return func() { f.Close() }, nil
}
