package abuse

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// margin is how much later than its timeout a server may cut a slow
// client off (scheduling on a loaded test machine, the race detector).
const margin = 4 * time.Second

// slowConn is a connection that writes head at once and then one byte of
// trickle at a time, every interval, until the server closes it.
type slowConn struct {
	start  time.Time
	closed time.Duration // when the server closed it (or answered and closed)
	answer string        // the first line of an answer, if any
	err    error
}

func dialFrom(ip, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// trickle runs one slow client on conn and reports when the server let
// go of it, giving up at limit.
func trickle(conn net.Conn, head, body string, interval, limit time.Duration) *slowConn {
	sc := &slowConn{start: time.Now()}
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = conn.SetReadDeadline(sc.start.Add(limit))
		line, err := bufio.NewReader(conn).ReadString('\n')
		sc.answer = strings.TrimSpace(line)
		if sc.answer != "" {
			// Answered: wait for the close that should follow.
			_, err = bufio.NewReader(conn).ReadString(0)
		}
		sc.closed = time.Since(sc.start)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			sc.err = fmt.Errorf("still open after %v", limit)
		}
	}()
	if _, err := conn.Write([]byte(head)); err != nil {
		conn.Close()
		<-done
		sc.err = err
		return sc
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-done:
			return sc
		case <-tick.C:
			b := byte('a' + i%26)
			if i < len(body) {
				b = body[i]
			}
			// A write error means the server closed: the reader sees it.
			_, _ = conn.Write([]byte{b})
		}
	}
}

// testSlowHeaders: clients that send their headers a byte at a time are
// cut off by the header timeout and, meanwhile, do not keep the server
// from answering others.
func testSlowHeaders(t *testing.T, tg *target) {
	timeout := headerTimeout(tg.example)
	if testing.Short() && timeout > 5*time.Second {
		t.Skipf("-short: %s's header timeout is %v", tg.example, timeout)
	}
	const n = 50
	ip := tg.ip()
	head := "GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\nX-Slow: "
	results := make([]*slowConn, n)
	var wg sync.WaitGroup
	for i := range n {
		conn, err := dialFrom(ip, tg.s.Addr)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		wg.Go(func() { results[i] = trickle(conn, head, "", 500*time.Millisecond, timeout+margin) })
	}
	// While they hang on, others are served promptly.
	time.Sleep(time.Second)
	c := client(tg.ip())
	for range 5 {
		start := time.Now()
		r := get(t, c, tg.s.Base+"/.well-known/oauth-authorization-server")
		if r.status != 200 || time.Since(start) > 3*time.Second {
			t.Errorf("metadata while %d slow clients hang on: HTTP %d after %v", n, r.status, time.Since(start))
		}
	}
	wg.Wait()
	worst := time.Duration(0)
	for i, sc := range results {
		if sc.err != nil {
			t.Errorf("slow client %d: %v (header timeout %v)", i, sc.err, timeout)
			continue
		}
		if strings.Contains(sc.answer, " 2") {
			t.Errorf("slow client %d got %q, want no answer or a 4xx", i, sc.answer)
		}
		worst = max(worst, sc.closed)
	}
	t.Logf("%d slow-header clients cut off after at most %v (header timeout %v)", n, worst.Round(100*time.Millisecond), timeout)
}

// testSlowBody: a client that sends a token request's body a byte at a
// time is cut off by the read timeout.
func testSlowBody(t *testing.T, tg *target) {
	if testing.Short() {
		t.Skipf("-short: waits for the %v read timeout", bodyTimeout)
	}
	body := "grant_type=client_credentials&scope=read&pad=" + strings.Repeat("x", 200)
	head := "POST /oauth2/token HTTP/1.1\r\nHost: " + tg.s.Addr + "\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\n" +
		"Authorization: " + basic(tg.s.ClientID, tg.s.ClientSecret) + "\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	conn, err := dialFrom(tg.ip(), tg.s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	sc := trickle(conn, head, body, 300*time.Millisecond, bodyTimeout+margin)
	if sc.err != nil {
		t.Fatalf("slow body: %v (read timeout %v)", sc.err, bodyTimeout)
	}
	if sc.answer != "" && !strings.Contains(sc.answer, " 4") {
		t.Errorf("slow body got %q, want no answer or a 4xx", sc.answer)
	}
	t.Logf("slow-body client cut off after %v (answer %q; read timeout %v)", sc.closed.Round(100*time.Millisecond), sc.answer, bodyTimeout)
}

// rawExchange sends request on a fresh connection from ip, writing in the
// background (the server may answer and close before it has read it all,
// as fasthttp does with an oversized body or header), and returns the
// status code of the answer, or 0 and the error if the server closed the
// connection without one.
func rawExchange(ip, addr, request string) (int, error) {
	conn, err := dialFrom(ip, addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	go func() { _, _ = conn.Write([]byte(request)) }()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, err
	}
	var proto string
	var code int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &code); err != nil {
		return 0, fmt.Errorf("status line %q: %v", line, err)
	}
	return code, nil
}
