//go:build !unix

package keyfile

import "io/fs"

// checkPerm accepts every file: outside Unix the permission bits Go reports
// do not say who may read the file (Windows uses ACLs).
func checkPerm(path string, m fs.FileMode) error { return nil }

// syncDir does nothing: Windows cannot open a directory for fsync, and
// renames there are made durable by the file system's own journal.
func syncDir(dir string) error { return nil }
