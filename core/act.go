package core

// The delegation chain of an exchanged token (RFC 8693 §4.1, the act
// claim): how a new link is added, and how the chain is written into and
// read back from both access token formats.

// delegation is the act claim of a new token: with an actor, the actor on
// top of the subject's own chain (RFC 8693 §4.1: the current actor
// outermost); without one, the subject's chain unchanged, so no exchange
// erases a delegation.
func delegation(chain *Actor, actor *exchangeToken) (*Actor, *oauthError) {
	if actor == nil {
		return chain, nil
	}
	a := &Actor{Subject: actor.info.Subject(), ClientID: actor.info.ClientID, Act: chain}
	if len(a.Subject) > maxActorSubject {
		return nil, badGrant("the actor's subject is too long")
	}
	if actDepth(a) > maxActDepth {
		return nil, badGrant("the delegation chain is too long")
	}
	return a, nil
}

func cloneAct(a *Actor) *Actor {
	if a == nil {
		return nil
	}
	return &Actor{Subject: a.Subject, ClientID: a.ClientID, Act: cloneAct(a.Act)}
}

func actDepth(a *Actor) int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// writeAct writes a delegation chain into a sealed access token: its
// length, then sub and client_id per actor, outermost first.
func writeAct(w *fieldWriter, a *Actor) {
	w.num(int64(actDepth(a)))
	for ; a != nil; a = a.Act {
		w.str(a.Subject)
		w.str(a.ClientID)
	}
}

// readAct reads what writeAct wrote; nil for anything malformed.
func readAct(r *fieldReader) *Actor {
	n := r.num()
	if r.bad || n < 1 || n > maxActDepth {
		return nil
	}
	var head *Actor
	link := &head
	for range n {
		a := &Actor{Subject: r.str(), ClientID: r.str()}
		if r.bad || a.Subject == "" {
			return nil
		}
		*link, link = a, &a.Act
	}
	return head
}

// actClaim is the act claim of an RFC 9068 access token as read back.
type actClaim struct {
	Sub      string    `json:"sub"`
	ClientID string    `json:"client_id"`
	Act      *actClaim `json:"act"`
}

// actor converts the claim; nil when a link has no sub or the chain is
// longer than any this server issues.
func (c *actClaim) actor() *Actor {
	var head *Actor
	link := &head
	for n := 0; c != nil; c, n = c.Act, n+1 {
		if n == maxActDepth || c.Sub == "" {
			return nil
		}
		a := &Actor{Subject: c.Sub, ClientID: c.ClientID}
		*link, link = a, &a.Act
	}
	return head
}

// appendAct adds the act claim (RFC 8693 §4.1) of a delegated token to a
// JWT or an introspection answer; nothing without one.
func appendAct(o *jsonObj, a *Actor) {
	if a == nil {
		return
	}
	o.key("act")
	o.b = appendActObject(o.b, a)
}

func appendActObject(b []byte, a *Actor) []byte {
	b = append(b, `{"sub":`...)
	b = appendJSONString(b, a.Subject)
	if a.ClientID != "" {
		b = append(b, `,"client_id":`...)
		b = appendJSONString(b, a.ClientID)
	}
	if a.Act != nil {
		b = append(b, `,"act":`...)
		b = appendActObject(b, a.Act)
	}
	return append(b, '}')
}
