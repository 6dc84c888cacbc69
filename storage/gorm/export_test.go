package gormstore

// Transient exposes the lock-conflict classification to the tests.
var Transient = transient

// SetPurgeBatch changes the Purge batch size and returns a function that
// restores it.
func SetPurgeBatch(n int) (restore func()) {
	old := purgeBatch
	purgeBatch = n
	return func() { purgeBatch = old }
}
