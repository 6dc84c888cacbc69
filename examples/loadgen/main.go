// Command loadgen drives examples/bench (or any server honouring its
// contract) with closed-loop workers over keep-alive connections, and
// compares every scenario with the bare form-POST baseline measured in the
// same run: each round runs the baseline, then the scenario, for every
// scenario, and the medians over the rounds are reported.
//
//	go run ./examples/loadgen -url http://127.0.0.1:18090 -c 32 -d 5s -rounds 3 \
//	    -scenario cc,code,introspect,resource -pid $(pgrep -n bench)
//
// Scenarios:
//
//	baseline    POST /baseline a small form (always run before each scenario)
//	cc          POST /oauth2/token grant_type=client_credentials (Basic auth)
//	code        GET /oauth2/authorize with PKCE → 303 → POST /oauth2/token
//	            with the code: one operation
//	refresh     POST /oauth2/token grant_type=refresh_token (one chain per worker)
//	introspect  POST /oauth2/introspect an access token
//	resource    GET /api/me with a Bearer access token
//
// Answers other than the expected status are counted per class; any 5xx
// or transport error makes the command exit 1. -pid reads the server's CPU
// time from /proc/PID/stat around each measurement (server CPU per op).
// Tokens and secrets are never printed.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// The bench server's client (examples/bench).
const (
	defClientID     = "bench-client"
	defClientSecret = "bench-secret-0123456789abcdef0123"
	defRedirectURI  = "http://127.0.0.1:9/cb"
)

type config struct {
	base        string
	workers     int
	dur         time.Duration
	warmup      time.Duration
	rounds      int
	scenarios   []string
	pid         int
	clientID    string
	secret      string
	redirectURI string
	scope       string
	noBaseline  bool
	rssEvery    time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.base, "url", "http://127.0.0.1:18090", "base URL of the server")
	fs.IntVar(&c.workers, "c", 32, "concurrent closed-loop workers (one keep-alive connection each)")
	fs.DurationVar(&c.dur, "d", 5*time.Second, "measured duration of each scenario run")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured load before each run")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds (each: baseline then scenario, for every scenario)")
	sc := fs.String("scenario", "cc,code,introspect,resource", "comma-separated: cc, code, refresh, introspect, resource, baseline")
	fs.IntVar(&c.pid, "pid", 0, "server process id: report server CPU µs per operation from /proc/PID/stat")
	fs.StringVar(&c.clientID, "client-id", defClientID, "client id")
	fs.StringVar(&c.secret, "client-secret", defClientSecret, "client secret")
	fs.StringVar(&c.redirectURI, "redirect-uri", defRedirectURI, "registered redirect URI")
	fs.StringVar(&c.scope, "scope", "read", "scope to request")
	fs.BoolVar(&c.noBaseline, "no-baseline", false, "skip the baseline runs (scale tests, long soak runs)")
	fs.DurationVar(&c.rssEvery, "rss-every", 0, "with -pid: print the server's resident memory (VmRSS, VmHWM) at this interval (soak runs)")
	cpuProfile := fs.String("cpuprofile", "", "write the driver's own CPU profile to this file (to keep the driver light)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c.base = strings.TrimSuffix(c.base, "/")
	for _, s := range strings.Split(*sc, ",") {
		s = strings.TrimSpace(s)
		if s == "" || s == "baseline" {
			continue
		}
		if _, ok := scenarios[s]; !ok {
			fmt.Fprintf(stderr, "loadgen: unknown scenario %q\n", s)
			return 2
		}
		c.scenarios = append(c.scenarios, s)
	}
	if c.workers < 1 || c.rounds < 1 || c.dur <= 0 {
		fmt.Fprintln(stderr, "loadgen: -c, -rounds and -d must be positive")
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "loadgen: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "loadgen: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	ok, err := drive(&c, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	if !ok {
		fmt.Fprintln(stderr, "loadgen: failures (5xx or transport errors) occurred")
		return 1
	}
	return 0
}

// result is one measured run of one scenario.
type result struct {
	scenario  string
	ops       int64
	secs      float64
	p50, p99  time.Duration
	cpuUsPer  float64 // server CPU µs per op; <0 when unknown
	status    map[string]int64
	transport int64
}

func (r *result) rate() float64 { return float64(r.ops) / r.secs }

func (r *result) failed() bool { return r.status["5xx"] > 0 || r.transport > 0 }

func drive(c *config, out io.Writer) (bool, error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c.workers * 2,
		MaxIdleConnsPerHost: c.workers * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	client := &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	fmt.Fprintf(out, "loadgen: %s, %d workers, %v per run (+%v warm-up), %d rounds, scenarios %s\n",
		c.base, c.workers, c.dur, c.warmup, c.rounds, strings.Join(c.scenarios, ","))
	if c.rssEvery > 0 && c.pid > 0 {
		stop := watchRSS(c.pid, c.rssEvery, out)
		defer stop()
	}
	var all []*result
	ratios := map[string][]float64{}
	// cpuRatios: baseline server CPU per op over the scenario's, the same
	// comparison by cost rather than throughput (less sensitive to what
	// else runs on the machine).
	cpuRatios := map[string][]float64{}
	allOK := true
	for round := 1; round <= c.rounds; round++ {
		names := c.scenarios
		if len(names) == 0 {
			names = []string{"baseline"}
		}
		for _, name := range names {
			var base *result
			if !c.noBaseline || name == "baseline" {
				b, err := measure(c, client, "baseline")
				if err != nil {
					return false, err
				}
				base = b
				all = append(all, b)
				printRun(out, round, b, nil)
				allOK = allOK && !b.failed()
			}
			if name == "baseline" {
				continue
			}
			r, err := measure(c, client, name)
			if err != nil {
				return false, err
			}
			all = append(all, r)
			printRun(out, round, r, base)
			allOK = allOK && !r.failed()
			if base != nil && base.rate() > 0 {
				ratios[name] = append(ratios[name], r.rate()/base.rate())
			}
			if base != nil && base.cpuUsPer > 0 && r.cpuUsPer > 0 {
				cpuRatios[name] = append(cpuRatios[name], base.cpuUsPer/r.cpuUsPer)
			}
		}
	}
	printSummary(out, c, all, ratios, cpuRatios)
	return allOK, nil
}

func printRun(out io.Writer, round int, r, base *result) {
	ratio := ""
	if base != nil && base.rate() > 0 {
		ratio = fmt.Sprintf(" ratio=%.3f", r.rate()/base.rate())
	}
	cpu := ""
	if r.cpuUsPer >= 0 {
		cpu = fmt.Sprintf(" cpu=%.1fµs/op", r.cpuUsPer)
	}
	fmt.Fprintf(out, "round %d %-10s %9.0f ops/s p50=%-9v p99=%-9v%s%s%s\n",
		round, r.scenario, r.rate(), r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), cpu, ratio, statusNote(r))
}

func statusNote(r *result) string {
	var parts []string
	for _, k := range []string{"unexpected", "4xx", "5xx"} {
		if n := r.status[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, n))
		}
	}
	if r.transport > 0 {
		parts = append(parts, fmt.Sprintf("transport_errors=%d", r.transport))
	}
	if len(parts) == 0 {
		return ""
	}
	return " [" + strings.Join(parts, " ") + "]"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printSummary(out io.Writer, c *config, all []*result, ratios, cpuRatios map[string][]float64) {
	fmt.Fprintf(out, "\nmedians over %d rounds:\n", c.rounds)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tops/s\tp50\tp99\tserver CPU µs/op\tratio to baseline (per round)\tCPU-cost ratio\tnon-2xx/3xx\t")
	names := append([]string{"baseline"}, c.scenarios...)
	for _, name := range names {
		var rate, p50, p99, cpu []float64
		var bad int64
		for _, r := range all {
			if r.scenario != name {
				continue
			}
			rate = append(rate, r.rate())
			p50 = append(p50, float64(r.p50))
			p99 = append(p99, float64(r.p99))
			if r.cpuUsPer >= 0 {
				cpu = append(cpu, r.cpuUsPer)
			}
			bad += r.status["4xx"] + r.status["5xx"] + r.status["unexpected"] + r.transport
		}
		if len(rate) == 0 {
			continue
		}
		cpuS, ratioS := "-", "-"
		if len(cpu) > 0 {
			cpuS = fmt.Sprintf("%.1f", median(cpu))
		}
		if rs := ratios[name]; len(rs) > 0 {
			ratioS = fmt.Sprintf("%.3f (%s)", median(rs), fmtList(rs))
		}
		cpuRatioS := "-"
		if rs := cpuRatios[name]; len(rs) > 0 {
			cpuRatioS = fmt.Sprintf("%.3f", median(rs))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%s\t%s\t%s\t%d\t\n", name, median(rate),
			time.Duration(median(p50)).Round(time.Microsecond), time.Duration(median(p99)).Round(time.Microsecond), cpuS, ratioS, cpuRatioS, bad)
	}
	tw.Flush()
}

func fmtList(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(s, " ")
}

// ---- measurement ---------------------------------------------------------------

// op performs one operation; it returns the final HTTP status (0 with err
// for a transport failure). Each worker owns its op (state such as a
// refresh token chain lives in the closure).
type op func(ctx context.Context) (status int, want int, err error)

type scenarioFunc func(c *config, client *http.Client) (op, error)

var scenarios = map[string]scenarioFunc{
	"baseline":   baselineOp,
	"cc":         ccOp,
	"code":       codeOp,
	"refresh":    refreshOp,
	"introspect": introspectOp,
	"resource":   resourceOp,
}

// cpuTicks returns utime+stime of pid in clock ticks (USER_HZ, 100 on
// Linux).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: fields count from
	// after its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	// After ')': state(3) ppid(4) ... utime is field 14, stime 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat")
	}
	return u + st, nil
}

const userHZ = 100

// watchRSS prints the process's resident set (and its peak so far) every
// interval until the returned stop is called: a soak run shows whether
// memory levels off once expired state is reclaimed.
func watchRSS(pid int, every time.Duration, out io.Writer) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	report := func() {
		rss, hwm, err := memKiB(pid)
		if err != nil {
			fmt.Fprintf(out, "rss t=%4.0fs unavailable: %v\n", time.Since(start).Seconds(), err)
			return
		}
		fmt.Fprintf(out, "rss t=%4.0fs rss=%.1fMiB peak=%.1fMiB\n", time.Since(start).Seconds(), float64(rss)/1024, float64(hwm)/1024)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		report()
		for {
			select {
			case <-done:
				report()
				return
			case <-t.C:
				report()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// memKiB reads VmRSS and VmHWM (kB) from /proc/PID/status.
func memKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("malformed %s line", k)
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("no VmRSS in /proc status")
	}
	return rss, hwm, nil
}

func measure(c *config, client *http.Client, name string) (*result, error) {
	ops := make([]op, c.workers)
	for i := range ops {
		o, err := scenarios[name](c, client)
		if err != nil {
			return nil, fmt.Errorf("%s: setting up: %w", name, err)
		}
		ops[i] = o
	}
	// Warm-up: same load, nothing recorded. Operations finishing after the
	// deadline still count; the rate divides by the time until the last one
	// finished.
	if c.warmup > 0 {
		runWorkers(ops, c.warmup, false)
	}
	var t0, t1 int64 = -1, -1
	if c.pid > 0 {
		t, err := cpuTicks(c.pid)
		if err != nil {
			return nil, err
		}
		t0 = t
	}
	w := runWorkers(ops, c.dur, true)
	if c.pid > 0 {
		t, err := cpuTicks(c.pid)
		if err != nil {
			return nil, err
		}
		t1 = t
	}
	r := &result{scenario: name, ops: w.ops, secs: w.elapsed.Seconds(), status: w.status, transport: w.transport, cpuUsPer: -1}
	if len(w.lat) > 0 {
		slices.Sort(w.lat)
		r.p50 = w.lat[len(w.lat)*50/100]
		r.p99 = w.lat[min(len(w.lat)-1, len(w.lat)*99/100)]
	}
	if t0 >= 0 && r.ops > 0 {
		r.cpuUsPer = float64(t1-t0) * (1e6 / userHZ) / float64(r.ops)
	}
	return r, nil
}

type workResult struct {
	ops       int64
	elapsed   time.Duration
	lat       []time.Duration
	status    map[string]int64
	transport int64
}

func runWorkers(ops []op, d time.Duration, record bool) *workResult {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu        sync.Mutex
		res       = &workResult{status: map[string]int64{}}
		wg        sync.WaitGroup
		stop      atomic.Bool
		transport atomic.Int64
	)
	start := time.Now()
	for _, o := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			st := map[string]int64{}
			var n int64
			for !stop.Load() {
				t := time.Now()
				status, want, err := o(context.Background())
				el := time.Since(t)
				switch {
				case err != nil:
					transport.Add(1)
					time.Sleep(time.Millisecond) // no hot loop on a dead server
				case status >= 500:
					st["5xx"]++
				case status >= 400:
					st["4xx"]++
				case status != want:
					st["unexpected"]++
				}
				n++
				if record {
					lat = append(lat, el)
				}
			}
			mu.Lock()
			res.ops += n
			res.lat = append(res.lat, lat...)
			for k, v := range st {
				res.status[k] += v
			}
			mu.Unlock()
		}()
	}
	<-ctx.Done()
	stop.Store(true)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.transport = transport.Load()
	return res
}

// ---- scenarios -----------------------------------------------------------------

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// do sends a request and drains the body (so the connection is reused),
// returning the status and, when keep is set, the body.
func do(client *http.Client, req *http.Request, keep bool) (int, []byte, http.Header, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	var body []byte
	if keep {
		body, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, body, resp.Header, err
}

func postForm(client *http.Client, u, auth, form string, keep bool) (int, []byte, error) {
	req, err := http.NewRequest("POST", u, strings.NewReader(form))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	st, body, _, err := do(client, req, keep)
	return st, body, err
}

func baselineOp(c *config, client *http.Client) (op, error) {
	u := c.base + "/baseline"
	return func(context.Context) (int, int, error) {
		st, _, err := postForm(client, u, "", "a=1&b=two", false)
		return st, 200, err
	}, nil
}

func ccOp(c *config, client *http.Client) (op, error) {
	u, auth := c.base+"/oauth2/token", basicAuth(c.clientID, c.secret)
	form := "grant_type=client_credentials&scope=" + url.QueryEscape(c.scope)
	return func(context.Context) (int, int, error) {
		st, _, err := postForm(client, u, auth, form, false)
		return st, 200, err
	}, nil
}

// accessToken gets one access token with client_credentials.
func accessToken(c *config, client *http.Client) (string, error) {
	st, body, err := postForm(client, c.base+"/oauth2/token", basicAuth(c.clientID, c.secret),
		"grant_type=client_credentials&scope="+url.QueryEscape(c.scope), true)
	if err != nil {
		return "", err
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if st != 200 || json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		return "", fmt.Errorf("client_credentials answered %d", st)
	}
	return tr.AccessToken, nil
}

func introspectOp(c *config, client *http.Client) (op, error) {
	at, err := accessToken(c, client)
	if err != nil {
		return nil, err
	}
	u, auth := c.base+"/oauth2/introspect", basicAuth(c.clientID, c.secret)
	form := "token=" + url.QueryEscape(at)
	return func(context.Context) (int, int, error) {
		st, body, err := postForm(client, u, auth, form, true)
		if err == nil && st == 200 && !strings.Contains(string(body), `"active":true`) {
			return -1, 200, nil // counted as unexpected
		}
		return st, 200, err
	}, nil
}

func resourceOp(c *config, client *http.Client) (op, error) {
	at, err := accessToken(c, client)
	if err != nil {
		return nil, err
	}
	u, bearer := c.base+"/api/me", "Bearer "+at
	return func(context.Context) (int, int, error) {
		req, err := http.NewRequest("GET", u, nil)
		if err != nil {
			return 0, 200, err
		}
		req.Header.Set("Authorization", bearer)
		st, _, _, err := do(client, req, false)
		return st, 200, err
	}, nil
}

// codeFlow runs one authorization code flow: authorize (303 with the
// code) and the token request. It returns both statuses and the token
// response's body.
//
// The driver shares the server's cores, so every microsecond it spends is
// one the server does not get: the query and the form are built from
// prefixes computed once, and the code is cut out of Location instead of
// parsing the URL into maps. The HTTP work is the same as any client's.
type codeFlow struct {
	client         *http.Client
	authPrefix     string // authorize URL up to "code_challenge="
	tokenURL, auth string
	formPrefix     string // token form up to "code_verifier="
}

func newCodeFlow(c *config, client *http.Client) *codeFlow {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.clientID},
		"redirect_uri":          {c.redirectURI},
		"scope":                 {c.scope},
		"state":                 {"st"},
		"code_challenge_method": {"S256"},
	}
	return &codeFlow{
		client:     client,
		authPrefix: c.base + "/oauth2/authorize?" + q.Encode() + "&code_challenge=",
		tokenURL:   c.base + "/oauth2/token",
		auth:       basicAuth(c.clientID, c.secret),
		formPrefix: "grant_type=authorization_code&redirect_uri=" + url.QueryEscape(c.redirectURI) + "&code_verifier=",
	}
}

// run runs one flow; keep keeps the token response's body (else it is
// drained unread).
func (f *codeFlow) run(keep bool) (authStatus, tokStatus int, body []byte, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return 0, 0, nil, err
	}
	var vb [43]byte
	base64.RawURLEncoding.Encode(vb[:], raw[:])
	verifier := string(vb[:])
	sum := sha256.Sum256(vb[:])
	req, err := http.NewRequest("GET", f.authPrefix+base64.RawURLEncoding.EncodeToString(sum[:]), nil)
	if err != nil {
		return 0, 0, nil, err
	}
	st, _, hdr, err := do(f.client, req, false)
	if err != nil || st != http.StatusSeeOther {
		return st, 0, nil, err
	}
	code, ok := queryParam(hdr.Get("Location"), "code")
	if !ok || code == "" {
		return -1, 0, nil, nil
	}
	ts, body, err := postForm(f.client, f.tokenURL, f.auth, f.formPrefix+verifier+"&code="+url.QueryEscape(code), keep)
	return st, ts, body, err
}

// queryParam returns the first value of name in the query of a URL.
func queryParam(u, name string) (string, bool) {
	_, q, ok := strings.Cut(u, "?")
	if !ok {
		return "", false
	}
	q, _, _ = strings.Cut(q, "#")
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if k, v, _ := strings.Cut(kv, "="); k == name {
			v, err := url.QueryUnescape(v)
			return v, err == nil
		}
	}
	return "", false
}

func codeOp(c *config, client *http.Client) (op, error) {
	f := newCodeFlow(c, client)
	return func(context.Context) (int, int, error) {
		as, ts, _, err := f.run(false)
		if err != nil || as != http.StatusSeeOther {
			return as, 303, err
		}
		return ts, 200, nil
	}, nil
}

func refreshOp(c *config, client *http.Client) (op, error) {
	_, ts, body, err := newCodeFlow(c, client).run(true)
	if err != nil || ts != 200 {
		return nil, fmt.Errorf("code flow for a refresh token: %v (status %d)", err, ts)
	}
	var tr struct {
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &tr) != nil || tr.RefreshToken == "" {
		return nil, errors.New("no refresh token issued")
	}
	rt := tr.RefreshToken
	u, auth := c.base+"/oauth2/token", basicAuth(c.clientID, c.secret)
	return func(context.Context) (int, int, error) {
		st, body, err := postForm(client, u, auth, "grant_type=refresh_token&refresh_token="+url.QueryEscape(rt), true)
		if err == nil && st == 200 {
			var tr struct {
				RefreshToken string `json:"refresh_token"`
			}
			if json.Unmarshal(body, &tr) == nil && tr.RefreshToken != "" {
				rt = tr.RefreshToken
			}
		}
		return st, 200, err
	}, nil
}
