package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// DefaultNoncePeriod is how long a nonce is current when NewNonces is
// given no period.
const DefaultNoncePeriod = 5 * time.Minute

// MinNonceKey is the shortest nonce key NewNonces accepts, in bytes.
const MinNonceKey = 32

// A nonce is a period tag byte and a truncated HMAC, base64url: 21 bytes,
// 28 characters, no padding (so one nonce has exactly one encoding).
const (
	nonceMAC = 20
	nonceLen = (1 + nonceMAC) * 4 / 3
)

// Nonces issues and checks server nonces (RFC 9449 §8) without storage:
// the nonce of a period is an HMAC of the period's index under a key, so
// every instance of the server holding the key issues the same nonce and
// accepts the others'. A nonce limits how far ahead of its use a proof can
// be made (a proof with a nonce cannot predate the nonce's period), which is
// all §8 asks of it; it is not single-use — replay is the jti's business.
//
// Valid accepts the current period's nonce and the previous one's, so a
// nonce stays good for between one and two periods. Instances whose clocks
// differ near a period's boundary may briefly refuse a nonce another just
// issued; the client then gets use_dpop_nonce with the current nonce and
// retries, as §8 expects it to.
type Nonces struct {
	key    []byte
	period time.Duration
}

// NewNonces returns nonces under key (at least MinNonceKey bytes, secret,
// the same on every instance; derive it from the server's keys for this
// purpose alone) that rotate every period (DefaultNoncePeriod if 0; at
// least a second).
func NewNonces(key []byte, period time.Duration) (*Nonces, error) {
	if len(key) < MinNonceKey {
		return nil, errors.New("dpop: the nonce key needs at least 32 bytes")
	}
	if period == 0 {
		period = DefaultNoncePeriod
	}
	if period < time.Second {
		return nil, errors.New("dpop: the nonce period must be at least a second")
	}
	return &Nonces{key: append([]byte(nil), key...), period: period}, nil
}

// Issue is the nonce of the period now is in (the zero time: time.Now()).
func (n *Nonces) Issue(now time.Time) string {
	i := n.index(now)
	var b [1 + nonceMAC]byte
	b[0] = byte(i)
	n.mac(b[1:], i)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Valid reports whether nonce is the nonce of now's period or of the one
// before (the zero time: time.Now()). The tag byte picks which, so one
// HMAC is computed; the comparison is in constant time.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	if len(nonce) != nonceLen {
		return false
	}
	var b [1 + nonceMAC]byte
	if k, err := base64.RawURLEncoding.Decode(b[:], []byte(nonce)); err != nil || k != len(b) {
		return false
	}
	cur := n.index(now)
	for _, i := range [2]int64{cur, cur - 1} {
		if byte(i) != b[0] {
			continue
		}
		var want [nonceMAC]byte
		n.mac(want[:], i)
		return subtle.ConstantTimeCompare(want[:], b[1:]) == 1
	}
	return false
}

// index is the number of the period now is in, rounded down for times
// before the epoch.
func (n *Nonces) index(now time.Time) int64 {
	if now.IsZero() {
		now = time.Now()
	}
	t, p := now.UnixNano(), int64(n.period)
	i := t / p
	if t%p < 0 {
		i--
	}
	return i
}

// mac fills out with the HMAC-SHA256, under the key, of a label, the
// period's length and the index: a nonce of one period, one period length
// or one purpose is no nonce of another.
func (n *Nonces) mac(out []byte, i int64) {
	m := hmac.New(sha256.New, n.key)
	var msg [len("dpop-nonce\x00") + 16]byte
	l := copy(msg[:], "dpop-nonce\x00")
	binary.BigEndian.PutUint64(msg[l:], uint64(n.period))
	binary.BigEndian.PutUint64(msg[l+8:], uint64(i))
	m.Write(msg[:])
	copy(out, m.Sum(nil))
}
