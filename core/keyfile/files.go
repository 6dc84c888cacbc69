package keyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Load reads and validates the key file at path. It refuses a file larger
// than MaxFileSize, one that is not a regular file, and, on Unix, one that
// other users may access (ErrPermissions). A missing file is an error
// wrapping fs.ErrNotExist.
func Load(path string) (*File, error) {
	f, _, err := read(path)
	if err != nil {
		return nil, pathError(path, err)
	}
	return f, nil
}

// LoadOrCreate loads the key file at path, creating it with one fresh
// generation (mode 0600) when it does not exist. Any number of processes
// and goroutines may call it at once on one path: they all return the
// same keys, and none sees a partly written file. The directory must
// exist.
func LoadOrCreate(path string) (*File, error) {
	f, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	nf, err := New()
	if err != nil {
		return nil, err
	}
	if f, err = create(path, nf); err != nil {
		return nil, pathError(path, err)
	}
	return f, nil
}

// create puts nf at path unless a file is there already, and returns
// whichever file path then holds.
func create(path string, nf *File) (*File, error) {
	data, err := nf.encode()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data, 0o600)
	if err != nil {
		return nil, err
	}
	// link(2) publishes the complete file under its name, or fails with
	// EEXIST when another instance got there first; rename would replace
	// the winner's file.
	err = os.Link(tmp, path)
	switch {
	case err == nil:
		// The keys are published; a leftover second name would only be
		// clutter, so failing to remove it fails nothing.
		os.Remove(tmp)
		if err := syncDir(dir); err != nil {
			return nil, err
		}
		return nf, nil
	case errors.Is(err, fs.ErrExist):
		os.Remove(tmp)
		f, _, err := read(path)
		return f, err
	default:
		// A file system without hard links (FAT, some FUSE and network
		// file systems): the same decision under the sidecar lock.
		return createLocked(path, tmp, nf)
	}
}

func createLocked(path, tmp string, nf *File) (*File, error) {
	unlock, err := lock(path)
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	defer unlock()
	if f, _, err := read(path); !errors.Is(err, fs.ErrNotExist) {
		os.Remove(tmp)
		return f, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return nf, nil
}

// Update changes the key file at path under an exclusive lock: it reads
// the file afresh, calls change, validates the result and, if anything
// changed, replaces the file atomically, keeping its permission bits. Two
// Updates on one path, in one process or several, run one after the
// other, so neither loses the other's change. A symbolic link at path is
// followed, so the file it points to is the one rewritten. change's error
// is returned as is, and the file is left alone.
func Update(path string, change func(*File) error) (*File, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, pathError(path, err)
	}
	f, err := update(real, change)
	if err != nil {
		return nil, pathError(path, err)
	}
	return f, nil
}

// changeError marks change's own error, which Update passes on unwrapped.
type changeError struct{ err error }

func (e changeError) Error() string { return e.err.Error() }

func update(path string, change func(*File) error) (*File, error) {
	unlock, err := lock(path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	f, perm, err := read(path)
	if err != nil {
		return nil, err
	}
	before, err := f.encode()
	if err != nil {
		return nil, err
	}
	if err := change(f); err != nil {
		return nil, changeError{err}
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("after the change: %w", err)
	}
	after, err := f.encode()
	if err != nil {
		return nil, err
	}
	if bytes.Equal(before, after) {
		return f, nil
	}
	return f, replace(path, after, perm)
}

// Rotate makes a fresh generation current in the key file at path and
// keeps the replaced one for verification for keepFor (0: DefaultKeepFor;
// see File.Rotate and KeepFor). Concurrent Rotates each add their own
// generation. Servers pick the new generation up when they are next built
// from the file.
func Rotate(path string, keepFor time.Duration) (*File, error) {
	return Update(path, func(f *File) error { return f.Rotate(time.Now(), keepFor) })
}

// Prune deletes from the key file at path the previous generations whose
// retire time has passed. The file is not rewritten when none has.
func Prune(path string) (*File, error) {
	return Update(path, func(f *File) error { f.Prune(time.Now()); return nil })
}

// read opens, checks and parses a key file, returning its permission bits
// for a rewrite to keep.
func read(path string) (*File, fs.FileMode, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if err := checkPerm(path, fi.Mode()); err != nil {
		return nil, 0, err
	}
	if fi.Size() > MaxFileSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, more than the %d a key file may have", ErrMalformed, fi.Size(), MaxFileSize)
	}
	// Bounded again while reading: the file may grow after Stat.
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, 0, err
	}
	if len(data) > MaxFileSize {
		return nil, 0, fmt.Errorf("%w: more than the %d bytes a key file may have", ErrMalformed, MaxFileSize)
	}
	f, err := parse(data)
	if err != nil {
		return nil, 0, err
	}
	return f, fi.Mode().Perm(), nil
}

// replace puts data at path atomically: readers see the old file or the
// new one, and after a crash the file is one of the two.
func replace(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, filepath.Base(path), data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	// The rename is durable only once the directory is.
	return syncDir(dir)
}

// writeTemp writes data to a new file in dir (so a rename or link to the
// final name stays within one file system), flushed to disk, and returns
// its name. The name starts with a dot and base, so a leftover from a
// crash is easy to tell for what it is.
func writeTemp(dir, base string, data []byte, perm fs.FileMode) (name string, err error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*") // mode 0600
	if err != nil {
		return "", err
	}
	name = f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	if perm != 0o600 {
		if err := f.Chmod(perm); err != nil {
			return "", err
		}
	}
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return name, f.Close()
}

// pathError names path once: os errors already carry it.
func pathError(path string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	var ce changeError
	switch {
	case errors.As(err, &ce):
		return ce.err
	case errors.As(err, &pe), errors.As(err, &le):
		return fmt.Errorf("keyfile: %w", err)
	default:
		return fmt.Errorf("keyfile: %s: %w", path, err)
	}
}
