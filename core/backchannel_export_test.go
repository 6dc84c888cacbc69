package core

// BackchannelIdle returns a channel closed once no logout token of s is
// pending (queued, in delivery or waiting for a retry), for tests that
// must know that nothing more will be sent. A server without back-channel
// logout is idle.
func BackchannelIdle(s *Server) <-chan struct{} {
	ch := make(chan struct{})
	b := s.backchannel
	if b == nil {
		close(ch)
		return ch
	}
	go func() {
		b.mu.Lock()
		for b.pending > 0 {
			b.idle.Wait()
		}
		b.mu.Unlock()
		close(ch)
	}()
	return ch
}
