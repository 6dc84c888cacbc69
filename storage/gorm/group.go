package gormstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"gorm.io/gorm"
)

// maxGroup bounds how many writes share one SQLite transaction, so that a
// write that arrives during a long queue waits for at most one full group.
const maxGroup = 32

// groupCommit runs the store's writes on SQLite in shared transactions
// (group commit). SQLite has one writer at a time: the writes of a process
// queue for its lock anyway, and each commit costs a WAL append of every
// page it touched (and an fsync with synchronous=FULL). Here one goroutine
// takes the writes that queued while the previous transaction ran and runs
// them in the next one, each inside its own savepoint: a write that fails
// is rolled back alone, the others commit together, with one BEGIN, one
// COMMIT and one WAL append of the pages they share (the tables' right-most
// leaves, the expiry indexes).
//
// Each write sees the ones before it in its group, exactly as it would see
// them committed one by one. If the group's transaction fails as a whole
// (BEGIN, a savepoint statement, or COMMIT), every write in it gets that
// error: none of them was committed. Some SQLite errors of one write
// (SQLITE_FULL, SQLITE_IOERR) end the whole transaction: that write gets
// its error, and the others are run again in a later group (retry sees
// errGroupAborted as transient), unless their issue callback already ran.
//
// A write must not call the store's write methods (it would wait for its
// own group); the core's issue callbacks only mint tokens.
type groupCommit struct {
	db *gorm.DB

	mu      sync.Mutex
	queue   []*groupWrite
	running bool // a goroutine is draining queue
}

// groupWrite is one write waiting for, or done by, a group.
type groupWrite struct {
	ctx      context.Context
	fn       func(tx *gorm.DB) error
	err      error
	panicked any // a panic in fn, re-raised in the caller's goroutine
	done     chan struct{}
}

// errGroupRollback rolls back a group of one whose write failed.
var errGroupRollback = errors.New("gormstore: roll back the write")

// do runs fn in the next group transaction and returns its error, or the
// group's if the transaction failed as a whole.
func (g *groupCommit) do(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &groupWrite{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	if !g.running {
		// The drainer exits when the queue is empty, so an idle store
		// holds no goroutine (a Store has no Close).
		g.running = true
		go g.drain()
	}
	g.mu.Unlock()
	// Not abandoned on ctx cancellation: the caller learns the outcome of
	// a write that may already be running (a group is short); a write still
	// queued when its context ends is skipped.
	<-w.done
	if w.panicked != nil {
		panic(w.panicked)
	}
	return w.err
}

func (g *groupCommit) drain() {
	var group []*groupWrite
	normal := false
	defer func() {
		if normal {
			return
		}
		// A panic outside the writes' own code (in gorm or a logger
		// around the group's statements), or runtime.Goexit in a write:
		// the transaction was rolled back (gorm's Transaction does so on
		// the way out). Its callers must not wait forever, nor the
		// process die in this goroutine: each caller gets the panic (or
		// an error), and a new goroutine takes over the queue.
		p := recover()
		for _, w := range group {
			if p != nil {
				w.panicked = p
			}
			w.err = errGroupAbandoned
			close(w.done)
		}
		g.mu.Lock()
		more := len(g.queue) > 0
		g.running = more
		g.mu.Unlock()
		if more {
			go g.drain()
		}
	}()
	for {
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		if n == 0 {
			g.queue = nil // drop the finished writes' backing array
			g.running = false
			g.mu.Unlock()
			normal = true
			return
		}
		group = g.queue[:n:n] // appends to queue cannot reach group
		g.queue = g.queue[n:]
		g.mu.Unlock()
		g.run(group)
		for _, w := range group {
			close(w.done)
		}
		// The queue's backing array outlives the group: let go of the
		// finished writes (their closures hold what the callers issued).
		clear(group)
		group = nil
	}
}

// errGroupAbandoned is what the writes of a group get when the goroutine
// running it ended abnormally (see drain).
var errGroupAbandoned = errors.New("gormstore: the write's group transaction was abandoned")

// errGroupAborted is what the other writes of a group get when one write's
// failure rolled back the whole transaction (SQLite does so for some
// errors: SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM, an interrupt). Nothing
// of theirs was committed; it is transient, so they are retried unless
// their issue callback already ran.
var errGroupAborted = errors.New("gormstore: another write aborted the group transaction")

// run runs one group's transaction and records each write's outcome.
func (g *groupCommit) run(group []*groupWrite) {
	single := len(group) == 1
	var culprit *groupWrite // the write whose failure ended the transaction
	// The group belongs to no single caller: its statements run without
	// their contexts (so no cancellation, and no request values such as a
	// tracing span reach gorm's plugins); each write's context is checked
	// before and after it runs.
	err := g.db.WithContext(context.Background()).Transaction(func(tx *gorm.DB) error {
		for _, w := range group {
			if err := w.ctx.Err(); err != nil {
				w.err = err
				continue
			}
			if single {
				// A group of one needs no savepoint: its failure rolls
				// back the transaction.
				if w.call(tx) {
					return errGroupRollback
				}
				return nil
			}
			if err := tx.Exec("SAVEPOINT oauth2kit_write").Error; err != nil {
				return err
			}
			if w.call(tx) {
				if err := tx.Exec("ROLLBACK TO SAVEPOINT oauth2kit_write").Error; err != nil {
					// The write's failure ended the transaction.
					culprit = w
					return err
				}
			}
			// RELEASE after ROLLBACK TO too: the savepoint stays on the
			// stack until released.
			if err := tx.Exec("RELEASE SAVEPOINT oauth2kit_write").Error; err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil, errors.Is(err, errGroupRollback):
	case culprit != nil:
		for _, w := range group {
			if w != culprit {
				w.err = errGroupAborted
			}
		}
	default:
		for _, w := range group {
			w.err = err
		}
	}
}

// call runs the write and reports whether it failed (an error or a panic),
// so that its statements are to be rolled back.
func (w *groupWrite) call(tx *gorm.DB) (failed bool) {
	defer func() {
		if p := recover(); p != nil {
			w.panicked = p
			if w.err == nil {
				w.err = fmt.Errorf("gormstore: panic in a write: %v", p)
			}
			failed = true
		}
	}()
	w.err = w.fn(tx)
	if w.err == nil {
		// The statements ran without the caller's context: a cancellation
		// would interrupt the connection, and SQLite then rolls back the
		// whole group. A caller that went away meanwhile gets nothing
		// committed, as with a transaction of its own.
		w.err = w.ctx.Err()
	}
	return w.err != nil
}
