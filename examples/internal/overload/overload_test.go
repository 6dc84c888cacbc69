package overload

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauth2kit/oauth2kit/examples/internal/e2etest"
)

const (
	envEnable      = "OAUTH2KIT_OVERLOAD"
	envDuration    = "OAUTH2KIT_OVERLOAD_DURATION"
	envConcurrency = "OAUTH2KIT_OVERLOAD_CONCURRENCY"
	redirectURI    = "http://127.0.0.1:9000/callback"
	verifier       = "overload-test-code-verifier-0123456789-abcdefghijklmnop"
	// grace is how long the server may take to settle after the load.
	grace = 30 * time.Second
)

// kind is one sort of request of the mix, with its share and the statuses
// it may get: its normal answer, and the deliberate 429 (throttling) and
// 503 (storage busy) of an overloaded server.
type kind struct {
	name    string
	weight  int
	allowed []int
}

var mix = []kind{
	{"token client_credentials", 30, []int{200, 429, 503}},
	{"introspect", 20, []int{200, 429, 503}},
	{"api/me", 25, []int{200, 503}},
	{"authorize page", 15, []int{200, 503}},
	{"bad login", 10, []int{200, 429, 503}},
}

// stats is what the load loop records.
type stats struct {
	mu        sync.Mutex
	latencies [][]time.Duration // per kind
	status    []map[int]int     // per kind
	errors    []map[string]int  // per kind: transport errors
	bad       []string          // unexpected answers (first few)
	total     atomic.Int64
}

func (s *stats) record(k int, d time.Duration, status int, err error, body string) {
	s.total.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		s.errors[k][msg]++
		return
	}
	s.latencies[k] = append(s.latencies[k], d)
	s.status[k][status]++
	if !slices.Contains(mix[k].allowed, status) && len(s.bad) < 10 {
		s.bad = append(s.bad, fmt.Sprintf("%s: HTTP %d %.200s", mix[k].name, status, body))
	}
}

// proc reads a process's /proc/PID/status and fd count.
type procStat struct {
	threads, fds int
	rssKB, hwmKB int
}

func readProc(t *testing.T, pid int) procStat {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's /proc status: %v", err)
	}
	var ps procStat
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Threads:":
			ps.threads = n
		case "VmRSS:":
			ps.rssKB = n
		case "VmHWM:":
			ps.hwmKB = n
		}
	}
	ps.fds = sockets(pid)
	if ps.fds < 0 {
		t.Fatalf("reading the server's fds")
	}
	return ps
}

// sockets counts the open sockets of pid (the listener and one per
// connection, each served by a goroutine), -1 if it cannot tell.
func sockets(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func (p procStat) String() string {
	return fmt.Sprintf("threads=%d sockets=%d rss=%.1fMiB hwm=%.1fMiB", p.threads, p.fds, float64(p.rssKB)/1024, float64(p.hwmKB)/1024)
}

// pidOf finds the process running bin (e2etest.Start does not expose
// it; the binary's path is unique to the test).
func pidOf(t *testing.T, bin string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin {
			return pid
		}
	}
	t.Fatalf("no process runs %s", bin)
	return 0
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func clientFrom(ip string, conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, MaxIdleConns: conns},
		Timeout:   15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="(oauth2kit_request|csrf_token)" value="([^"]*)">`)

// loginForm is a pending login of one simulated attacker address.
type loginForm struct {
	c      *http.Client
	cookie string
	fields url.Values
}

func TestOverload(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("set %s=1 to drive an example server past saturation (60 s of full CPU; not for normal CI)", envEnable)
	}
	duration := 60 * time.Second
	if v := os.Getenv(envDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", envDuration, v, err)
		}
		duration = d
	}
	concurrency := envInt(t, envConcurrency, 128)

	bin := e2etest.Build(t, "nethttp")
	db := filepath.Join(t.TempDir(), "demo.db")
	s := e2etest.Start(t, bin, "-addr", "127.0.0.1:0", "-db", db)
	pid := pidOf(t, bin)
	base := s.Base
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(s.ClientID)+":"+url.QueryEscape(s.ClientSecret)))
	sum := sha256.Sum256([]byte(verifier))
	authURL := base + "/oauth2/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {s.ClientID}, "redirect_uri": {redirectURI},
		"state": {"overload"}, "scope": {"read"}, "code_challenge_method": {"S256"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
	}.Encode()

	api := clientFrom("", concurrency)
	// A token for the API and introspection.
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader("grant_type=client_credentials&scope=read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth)
	res, err := api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("client_credentials: HTTP %d %v", res.StatusCode, err)
	}

	// Attackers at 64 addresses, each with a login form of its own.
	var forms []*loginForm
	for i := range 64 {
		c := clientFrom(fmt.Sprintf("127.0.%d.%d", 100+i/200, 2+i%200), 4)
		res, err := c.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		f := &loginForm{c: c, fields: url.Values{}}
		for _, m := range hiddenRe.FindAllStringSubmatch(string(body), -1) {
			f.fields.Set(m[1], html.UnescapeString(m[2]))
		}
		for _, ck := range res.Cookies() {
			f.cookie = ck.Name + "=" + ck.Value
		}
		if res.StatusCode != 200 || f.cookie == "" || len(f.fields) != 2 {
			t.Fatalf("login page for attacker %d: HTTP %d, cookie %q, fields %v", i, res.StatusCode, f.cookie, f.fields)
		}
		forms = append(forms, f)
	}

	// Warm up briefly, let the server settle, then take the baseline.
	time.Sleep(2 * time.Second)
	api.CloseIdleConnections()
	for _, f := range forms {
		f.c.CloseIdleConnections()
	}
	time.Sleep(time.Second)
	before := readProc(t, pid)
	t.Logf("before the load: %v", before)

	st := &stats{
		latencies: make([][]time.Duration, len(mix)),
		status:    make([]map[int]int, len(mix)),
		errors:    make([]map[string]int, len(mix)),
	}
	for i := range mix {
		st.status[i], st.errors[i] = map[int]int{}, map[string]int{}
	}
	totalWeight := 0
	for _, k := range mix {
		totalWeight += k.weight
	}
	pick := func(r *rand.Rand) int {
		n := r.IntN(totalWeight)
		for i, k := range mix {
			if n < k.weight {
				return i
			}
			n -= k.weight
		}
		return 0
	}
	send := func(c *http.Client, method, u, body string, hdr ...string) (int, string, error) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, u, rd)
		if err != nil {
			return 0, "", err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err
	}

	// Sample the server while the load runs.
	var peak procStat
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
				if err != nil {
					continue
				}
				var p procStat
				for line := range strings.SplitSeq(string(b), "\n") {
					f := strings.Fields(line)
					if len(f) >= 2 {
						n, _ := strconv.Atoi(f[1])
						switch f[0] {
						case "Threads:":
							p.threads = n
						case "VmRSS:":
							p.rssKB = n
						}
					}
				}
				p.fds = sockets(pid)
				peak.threads, peak.rssKB, peak.fds = max(peak.threads, p.threads), max(peak.rssKB, p.rssKB), max(peak.fds, p.fds)
			}
		}
	}()

	t.Logf("load: %d concurrent clients for %v on %s", concurrency, duration, base)
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for n := 0; time.Now().Before(deadline); n++ {
				k := pick(r)
				t0 := time.Now()
				var status int
				var body string
				var err error
				switch k {
				case 0:
					status, body, err = send(api, "POST", base+"/oauth2/token", "grant_type=client_credentials&scope=read", "Authorization", basicAuth)
				case 1:
					status, body, err = send(api, "POST", base+"/oauth2/introspect", "token="+url.QueryEscape(tok.AccessToken), "Authorization", basicAuth)
				case 2:
					status, body, err = send(api, "GET", base+"/api/me", "", "Authorization", "Bearer "+tok.AccessToken)
				case 3:
					status, body, err = send(api, "GET", authURL, "")
				case 4:
					f := forms[r.IntN(len(forms))]
					form := url.Values{}
					for k, v := range f.fields {
						form[k] = v
					}
					form.Set("username", fmt.Sprintf("user-%d-%d", w, n))
					form.Set("password", "wrong")
					status, body, err = send(f.c, "POST", base+"/oauth2/login", form.Encode(), "Cookie", f.cookie)
					if err == nil && status == 200 && !strings.Contains(body, "Invalid username or password.") {
						status = 299 // not the failed-login page: reported as unexpected
					}
				}
				st.record(k, time.Since(t0), status, err, body)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	<-sampled

	// Report.
	var all []time.Duration
	t.Logf("%-26s %9s %8s %8s %8s  %s", "request", "count", "p50", "p99", "max", "statuses / errors")
	for i, k := range mix {
		l := st.latencies[i]
		all = append(all, l...)
		t.Logf("%-26s %9d %8v %8v %8v  %v %v", k.name, len(l), pct(l, 50), pct(l, 99), pct(l, 100), st.status[i], st.errors[i])
	}
	t.Logf("%-26s %9d %8v %8v %8v", "all", len(all), pct(all, 50), pct(all, 99), pct(all, 100))
	t.Logf("throughput: %.0f requests/s over %v", float64(st.total.Load())/elapsed.Seconds(), elapsed.Round(time.Millisecond))

	// The verdict on the answers.
	transport := 0
	for i, k := range mix {
		for status, n := range st.status[i] {
			if !slices.Contains(k.allowed, status) {
				t.Errorf("%s: %d answers with HTTP %d (allowed: %v)", k.name, n, status, k.allowed)
			}
		}
		for _, n := range st.errors[i] {
			transport += n
		}
	}
	for _, b := range st.bad {
		t.Logf("unexpected: %s", b)
	}
	if total := st.total.Load(); transport > 0 && float64(transport) > 0.001*float64(total) {
		t.Errorf("%d of %d requests failed at the transport (timeouts, resets): more than 0.1%%", transport, total)
	}
	if s.Exited() {
		t.Fatalf("the server exited under the load:\n%s", s.Log())
	}

	// After the load: connections closed, the server settles.
	api.CloseIdleConnections()
	for _, f := range forms {
		f.c.CloseIdleConnections()
	}
	during := readProc(t, pid)
	t.Logf("at the end of the load: %v; peak during the load: threads=%d sockets=%d rss=%.1fMiB", during, peak.threads, peak.fds, float64(peak.rssKB)/1024)
	settled := false
	var after procStat
	stopped := time.Now()
	for end := stopped.Add(grace); time.Now().Before(end); time.Sleep(time.Second) {
		// The server still answers promptly.
		t0 := time.Now()
		status, _, err := send(api, "GET", base+e2etest.MetadataPath, "")
		if err != nil || status != 200 || time.Since(t0) > time.Second {
			continue
		}
		api.CloseIdleConnections()
		after = readProc(t, pid)
		if settledNear(before, after, peak) {
			settled = true
			break
		}
	}
	t.Logf("after the load (settled: %t, after %v): %v", settled, time.Since(stopped).Round(100*time.Millisecond), after)
	if !settled {
		t.Errorf("the server did not settle within %v: before %v, after %v (peak rss %.1fMiB)", grace, before, after, float64(peak.rssKB)/1024)
	}
}

// settledNear: connections (sockets, each served by a goroutine) back to
// the baseline, OS threads not above the peak (Go parks idle threads rather
// than end them), and RSS down from the peak to within 64 MiB or 2x of
// the baseline.
func settledNear(before, after, peak procStat) bool {
	return after.fds <= before.fds+1 &&
		after.threads <= max(peak.threads, before.threads) &&
		(after.rssKB <= 2*before.rssKB || after.rssKB <= before.rssKB+64<<10)
}

func pct(l []time.Duration, p int) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond)
}
