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

// QueuedWrites returns how many writes wait for the next SQLite group
// transaction.
func QueuedWrites(s *Store) int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue)
}
