//go:build unix

package keyfile

import (
	"fmt"
	"io/fs"
	"os"
)

// checkPerm refuses a key file other users may access: anyone who can read
// it can mint tokens, anyone who can write it can choose the keys.
func checkPerm(path string, m fs.FileMode) error {
	if m.Perm()&0o007 != 0 {
		return fmt.Errorf("%w: mode %04o; chmod 600 %s", ErrPermissions, m.Perm(), path)
	}
	return nil
}

// syncDir makes a new or renamed directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
