package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type ruleState struct {
	*Rule
	matched, fired int64
}

// proxy is the fault-injecting reverse proxy. One PRNG, drawn under mu, makes every decision,
// so a run with the same seed and the same request order makes the same decisions.
type proxy struct {
	mu     sync.Mutex
	rng    *rand.Rand
	seed   uint64
	rules  []*ruleState
	paused bool
	seq    int64
	st     counters
	logAll bool
	log    *log.Logger
	part   *partition
	rp     *httputil.ReverseProxy
}

type counters struct {
	requests, faulted, upstreamErrors int64
	faults                            map[string]int64
	byVerb, byResource, byVerbRes     map[string]int64
}

func newCounters() counters {
	return counters{faults: map[string]int64{}, byVerb: map[string]int64{}, byResource: map[string]int64{}, byVerbRes: map[string]int64{}}
}

type planKey struct{}

// plan is the decision for one request.
type plan struct {
	seq        int64
	ri         reqInfo
	rule       *Rule // nil: forward untouched
	when       string
	frac       float64       // reset mid-body: fraction of the body sent before the cut
	closeAfter time.Duration // close-early
}

func newProxy(upstream *url.URL, auth *upstreamAuth, seed uint64, rules []*Rule, logger *log.Logger) *proxy {
	p := &proxy{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed, log: logger, part: newPartition(), st: newCounters()}
	p.setRules(rules)
	transport := &http.Transport{
		Proxy:               nil, // never an environment proxy between us and the apiserver
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     auth.tls,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			switch {
			case auth.token != "":
				pr.Out.Header.Set("Authorization", "Bearer "+auth.token)
			case auth.username != "":
				pr.Out.SetBasicAuth(auth.username, auth.password)
			}
		},
		Transport:      transport,
		FlushInterval:  -1, // flush every chunk: watch events must not wait in a buffer
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       logger,
	}
	return p
}

func (p *proxy) setRules(rules []*Rule) {
	rs := make([]*ruleState, len(rules))
	for i, r := range rules {
		rs[i] = &ruleState{Rule: r}
	}
	p.mu.Lock()
	p.rules = rs
	p.mu.Unlock()
}

func (p *proxy) getRules() []*Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.Rule
	}
	return out
}

func (p *proxy) setPaused(v bool) {
	p.mu.Lock()
	p.paused = v
	p.mu.Unlock()
	p.log.Printf("injection paused=%v", v)
}

func resourceLabel(ri reqInfo) string {
	if !ri.Resource {
		return "(non-resource)"
	}
	return ri.resourcePath()
}

func (p *proxy) decide(r *http.Request, ri reqInfo) *plan {
	fm := r.URL.Query().Get("fieldManager")
	ua, accept := r.UserAgent(), r.Header.Get("Accept")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	pl := &plan{seq: p.seq, ri: ri}
	res := resourceLabel(ri)
	p.st.requests++
	p.st.byVerb[ri.Verb]++
	p.st.byResource[res]++
	p.st.byVerbRes[ri.Verb+" "+res]++
	desc := fmt.Sprintf("#%d %s %s ns=%q name=%q", pl.seq, ri.Verb, res, ri.Namespace, ri.Name)
	if p.paused {
		if p.logAll {
			p.log.Printf("%s paused", desc)
		}
		return pl
	}
	var applying []*ruleState
	for _, rs := range p.rules {
		if rs.Times > 0 && rs.fired >= int64(rs.Times) {
			continue
		}
		if rs.applies(ri, fm, ua, accept) {
			rs.matched++
			applying = append(applying, rs)
		}
	}
	if len(applying) == 0 {
		if p.logAll {
			p.log.Printf("%s no rule", desc)
		}
		return pl
	}
	// One draw per request: the rules that apply share [0,1) in order, each taking its
	// rate, so every rule fires at its own rate (while the applying rates sum to <= 1).
	u := p.rng.Float64()
	var chosen *ruleState
	cum := 0.0
	for _, rs := range applying {
		cum += rs.rate()
		if u < cum {
			chosen = rs
			break
		}
	}
	if chosen == nil {
		p.log.Printf("%s u=%.4f pass", desc, u)
		return pl
	}
	chosen.fired++
	p.st.faulted++
	p.st.faults[chosen.Fault]++
	pl.rule = chosen.Rule
	extra := ""
	switch chosen.Fault {
	case faultReset:
		pl.when = chosen.When
		if pl.when == "" {
			pl.when = []string{"before", "after", "mid-body"}[p.rng.IntN(3)]
		}
		if pl.when == "mid-body" {
			pl.frac = p.rng.Float64()
		}
		extra = " when=" + pl.when
	case faultCloseEarly:
		pl.closeAfter = time.Duration(1 + p.rng.Int64N(int64(chosen.After)))
		extra = " after=" + pl.closeAfter.Round(time.Millisecond).String()
	}
	p.log.Printf("%s u=%.4f rule=%s fault=%s%s", desc, u, chosen.Name, chosen.Fault, extra)
	return pl
}

// status is the apiserver's metav1.Status as JSON.
type status struct {
	Kind       string         `json:"kind"`
	APIVersion string         `json:"apiVersion"`
	Metadata   struct{}       `json:"metadata"`
	Status     string         `json:"status"`
	Message    string         `json:"message,omitempty"`
	Reason     string         `json:"reason,omitempty"`
	Details    *statusDetails `json:"details,omitempty"`
	Code       int            `json:"code"`
}

type statusDetails struct {
	Name              string `json:"name,omitempty"`
	Group             string `json:"group,omitempty"`
	Kind              string `json:"kind,omitempty"`
	RetryAfterSeconds int    `json:"retryAfterSeconds,omitempty"`
}

func newStatus(code int, reason, msg string, d *statusDetails) status {
	return status{Kind: "Status", APIVersion: "v1", Status: "Failure", Code: code, Reason: reason, Message: msg, Details: d}
}

func writeStatus(w http.ResponseWriter, s status) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(s.Code)
	_ = json.NewEncoder(w).Encode(s)
}

// reasonFor gives the Status reason the apiserver uses with an HTTP code.
func reasonFor(code int) (string, string) {
	switch code {
	case 500:
		return "InternalError", "Internal error occurred: injected by api-fault-proxy"
	case 503:
		return "ServiceUnavailable", "the server is currently unable to handle the request (injected by api-fault-proxy)"
	case 504:
		return "Timeout", "the server was unable to return a response in the time allotted (injected by api-fault-proxy)"
	case 429:
		return "TooManyRequests", "Too many requests, please try again later."
	case 404:
		return "NotFound", "the server could not find the requested resource (injected by api-fault-proxy)"
	case 403:
		return "Forbidden", "forbidden (injected by api-fault-proxy)"
	case 401:
		return "Unauthorized", "Unauthorized"
	case 400:
		return "BadRequest", "bad request (injected by api-fault-proxy)"
	}
	return "", fmt.Sprintf("HTTP %d injected by api-fault-proxy", code)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ri := classify(r.Method, r.URL)
	pl := p.decide(r, ri)
	rule := pl.rule
	if rule == nil {
		p.forward(w, r, pl)
		return
	}
	w.Header().Set("X-Api-Fault-Proxy", rule.Name)
	switch rule.Fault {
	case faultStatus:
		reason, msg := reasonFor(rule.Code)
		if rule.Message != "" {
			msg = rule.Message
		}
		if rule.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(rule.RetryAfter))
		}
		writeStatus(w, newStatus(rule.Code, reason, msg, nil))
	case faultThrottle:
		w.Header().Set("Retry-After", strconv.Itoa(rule.RetryAfter))
		msg := "Too many requests, please try again later."
		if rule.Message != "" {
			msg = rule.Message
		}
		if rule.Body == "text" {
			// What the apiserver's max-in-flight and priority-and-fairness filters send
			// (k8s.io/apiserver/pkg/server/filters/priority-and-fairness.go tooManyRequests).
			http.Error(w, msg, http.StatusTooManyRequests)
		} else {
			writeStatus(w, newStatus(429, "TooManyRequests", msg, &statusDetails{RetryAfterSeconds: rule.RetryAfter}))
		}
	case faultConflict:
		// errors.NewConflict(qualifiedResource, name, OptimisticLockError) as the registry
		// writes it when the resourceVersion precondition fails.
		writeStatus(w, newStatus(409, "Conflict",
			fmt.Sprintf("Operation cannot be fulfilled on %s %q: the object has been modified; please apply your changes to the latest version and try again", ri.qualified(), ri.Name),
			&statusDetails{Name: ri.Name, Group: ri.Group, Kind: ri.ResourceN}))
	case faultGone:
		// The watch cache answers a watch from a compacted resourceVersion with HTTP 200 and
		// one ERROR event (cacher.Watch -> newErrWatcher(errors.NewResourceExpired(...)),
		// k8s.io/apiserver/pkg/storage/cacher), then ends the stream.
		rv, _ := strconv.ParseInt(ri.RV, 10, 64)
		s := newStatus(410, "Expired", fmt.Sprintf("too old resource version: %d (%d)", rv, rv+1), nil)
		if rule.Mode == "http" {
			writeStatus(w, s)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache, private")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(struct {
			Type   string `json:"type"`
			Object status `json:"object"`
		}{"ERROR", s})
	case faultDelay:
		if rule.Delay > 0 && !sleepCtx(r.Context(), time.Duration(rule.Delay)) {
			return
		}
		p.forward(w, r, pl)
	case faultReset:
		if pl.when == "before" {
			resetConn(w)
			return
		}
		p.forward(w, r, pl)
	default: // close-early
		p.forward(w, r, pl)
	}
}

var errResetAfter = errors.New("api-fault-proxy: reset after the upstream answered")

func (p *proxy) forward(w http.ResponseWriter, r *http.Request, pl *plan) {
	r = r.WithContext(context.WithValue(r.Context(), planKey{}, pl))
	if rule := pl.rule; rule != nil && (rule.ChunkDelay > 0 || pl.when == "mid-body") {
		fw := &faultWriter{ResponseWriter: w, pl: pl, ctx: r.Context(), cutAt: -1}
		p.rp.ServeHTTP(fw, r)
		if pl.when == "mid-body" && !fw.cut {
			fw.cutNow() // an empty body: cut after the headers
		}
		return
	}
	p.rp.ServeHTTP(w, r)
}

func (p *proxy) modifyResponse(resp *http.Response) error {
	pl, _ := resp.Request.Context().Value(planKey{}).(*plan)
	if pl == nil || pl.rule == nil {
		return nil
	}
	switch {
	case pl.rule.Fault == faultReset && pl.when == "after":
		return errResetAfter // the apiserver did the work; the client never hears of it
	case pl.rule.Fault == faultCloseEarly && resp.StatusCode == http.StatusOK:
		resp.Body = newCloseAfterBody(resp.Body, pl.closeAfter)
	}
	return nil
}

func (p *proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errResetAfter) {
		resetConn(w)
		return
	}
	if r.Context().Err() != nil {
		return // the client went away
	}
	p.mu.Lock()
	p.st.upstreamErrors++
	p.mu.Unlock()
	p.log.Printf("upstream error: %s %s: %v", r.Method, r.URL.Path, err)
	writeStatus(w, newStatus(http.StatusBadGateway, "", "api-fault-proxy: upstream: "+err.Error(), nil))
}

// resetConn answers with a TCP reset instead of a response (HTTP/2: the stream is reset).
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // HTTP/2 cannot hijack; the server resets the stream
	}
	rstConn(conn)
}

func rstConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if fc, ok := c.(*faultConn); ok {
		fc.reset()
		return
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST, not FIN
	}
	_ = c.Close()
}

// faultWriter delays every chunk (delay.chunkDelay) or cuts the body (reset mid-body).
type faultWriter struct {
	http.ResponseWriter
	pl      *plan
	ctx     context.Context
	written int64
	cutAt   int64
	cut     bool
}

var errCut = errors.New("api-fault-proxy: body cut")

func (fw *faultWriter) Unwrap() http.ResponseWriter { return fw.ResponseWriter }
func (fw *faultWriter) Flush()                      { _ = http.NewResponseController(fw.ResponseWriter).Flush() }

func (fw *faultWriter) Write(b []byte) (int, error) {
	if fw.cut {
		return 0, errCut
	}
	if fw.pl.rule != nil && fw.pl.rule.ChunkDelay > 0 && !sleepCtx(fw.ctx, time.Duration(fw.pl.rule.ChunkDelay)) {
		return 0, fw.ctx.Err()
	}
	if fw.pl.when == "mid-body" {
		if fw.cutAt < 0 {
			if cl, err := strconv.ParseInt(fw.Header().Get("Content-Length"), 10, 64); err == nil && cl > 0 {
				fw.cutAt = int64(fw.pl.frac * float64(cl))
			} else {
				fw.cutAt = int64(fw.pl.frac * float64(len(b)))
			}
		}
		if n := fw.cutAt - fw.written; n < int64(len(b)) {
			m, _ := fw.ResponseWriter.Write(b[:n])
			fw.written += int64(m)
			fw.cutNow()
			return m, errCut
		}
	}
	n, err := fw.ResponseWriter.Write(b)
	fw.written += int64(n)
	return n, err
}

// cutNow sends what was written and closes the connection: the client gets a truncated body.
func (fw *faultWriter) cutNow() {
	fw.cut = true
	rc := http.NewResponseController(fw.ResponseWriter)
	_ = rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// closeAfterBody ends an upstream body with a clean EOF after d: the client sees the watch
// end normally, as when the apiserver's watch timeout expires.
type closeAfterBody struct {
	io.ReadCloser
	fired atomic.Bool
	t     *time.Timer
}

func newCloseAfterBody(rc io.ReadCloser, d time.Duration) *closeAfterBody {
	b := &closeAfterBody{ReadCloser: rc}
	b.t = time.AfterFunc(d, func() {
		b.fired.Store(true)
		_ = rc.Close()
	})
	return b
}

func (b *closeAfterBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.fired.Load() {
		return n, io.EOF
	}
	return n, err
}

func (b *closeAfterBody) Close() error {
	b.t.Stop()
	return b.ReadCloser.Close()
}

// ---- network partition, at the connection level ----

type partition struct {
	mu     sync.Mutex
	mode   string // "", "hang" or "reset"
	healed chan struct{}
	conns  map[*faultConn]struct{}
	timer  *time.Timer
	resets atomic.Int64 // connections reset by the partition
	holds  atomic.Int64 // reads/writes held until heal
	count  atomic.Int64 // partitions started
}

func newPartition() *partition {
	return &partition{conns: map[*faultConn]struct{}{}, healed: make(chan struct{})}
}

func (pt *partition) state() (string, chan struct{}) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.mode, pt.healed
}

// set starts (or changes) a partition; with d > 0 it heals by itself after d.
func (pt *partition) set(mode string, d time.Duration) {
	pt.mu.Lock()
	if pt.mode == "" {
		pt.healed = make(chan struct{})
		pt.count.Add(1)
	}
	pt.mode = mode
	if pt.timer != nil {
		pt.timer.Stop()
		pt.timer = nil
	}
	if d > 0 {
		pt.timer = time.AfterFunc(d, pt.heal)
	}
	var victims []*faultConn
	if mode == "reset" {
		for c := range pt.conns {
			victims = append(victims, c)
		}
	}
	pt.mu.Unlock()
	for _, c := range victims {
		c.reset()
		pt.resets.Add(1)
	}
}

func (pt *partition) heal() {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.mode != "" {
		pt.mode = ""
		close(pt.healed)
	}
	if pt.timer != nil {
		pt.timer.Stop()
		pt.timer = nil
	}
}

type faultListener struct {
	net.Listener
	pt *partition
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if mode, _ := l.pt.state(); mode == "reset" {
			rstConn(c)
			l.pt.resets.Add(1)
			continue
		}
		fc := &faultConn{Conn: c, pt: l.pt, closed: make(chan struct{})}
		l.pt.mu.Lock()
		l.pt.conns[fc] = struct{}{}
		l.pt.mu.Unlock()
		return fc, nil
	}
}

// faultConn passes bytes through unless a partition is on: then in "hang" mode nothing goes
// through in either direction (bytes that arrive are held) until heal, and in "reset" mode
// the connection is reset.
type faultConn struct {
	net.Conn
	pt        *partition
	closed    chan struct{}
	closeOnce sync.Once
}

func (c *faultConn) gate() error {
	held := false
	for {
		mode, healed := c.pt.state()
		switch mode {
		case "":
			return nil
		case "reset":
			c.reset()
			return syscall.ECONNRESET
		}
		if !held {
			held = true
			c.pt.holds.Add(1)
		}
		select {
		case <-healed:
		case <-c.closed:
			return net.ErrClosed
		}
	}
}

func (c *faultConn) Read(b []byte) (int, error) {
	if err := c.gate(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		if gerr := c.gate(); gerr != nil {
			return 0, gerr
		}
	}
	return n, err
}

func (c *faultConn) Write(b []byte) (int, error) {
	if err := c.gate(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *faultConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closed)
		c.pt.mu.Lock()
		delete(c.pt.conns, c)
		c.pt.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

func (c *faultConn) reset() {
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

// ---- statistics ----

type ruleStats struct {
	Name    string  `json:"name"`
	Fault   string  `json:"fault"`
	Rate    float64 `json:"rate"`
	Matched int64   `json:"matched"` // requests the rule applied to
	Fired   int64   `json:"fired"`
}

type statsJSON struct {
	Seed           uint64           `json:"seed"`
	Requests       int64            `json:"requests"`
	Faulted        int64            `json:"faulted"`
	UpstreamErrors int64            `json:"upstreamErrors"`
	Paused         bool             `json:"paused"`
	Partition      string           `json:"partition"` // "", "hang", "reset"
	Partitions     int64            `json:"partitions"`
	PartitionReset int64            `json:"partitionResets"`
	PartitionHeld  int64            `json:"partitionHolds"`
	Faults         map[string]int64 `json:"faults"` // by fault kind, since start or the last reset
	Rules          []ruleStats      `json:"rules"`
	ByVerb         map[string]int64 `json:"byVerb"`
	ByResource     map[string]int64 `json:"byResource"`
	ByVerbResource map[string]int64 `json:"byVerbResource"` // "patch rollouts/status"
}

func cloneMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (p *proxy) stats() statsJSON {
	mode, _ := p.part.state()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := statsJSON{
		Seed: p.seed, Requests: p.st.requests, Faulted: p.st.faulted, UpstreamErrors: p.st.upstreamErrors,
		Paused: p.paused, Partition: mode, Partitions: p.part.count.Load(),
		PartitionReset: p.part.resets.Load(), PartitionHeld: p.part.holds.Load(),
		Faults: cloneMap(p.st.faults), ByVerb: cloneMap(p.st.byVerb), ByResource: cloneMap(p.st.byResource),
		ByVerbResource: cloneMap(p.st.byVerbRes), Rules: []ruleStats{},
	}
	for _, k := range faultKinds {
		if _, ok := s.Faults[k]; !ok {
			s.Faults[k] = 0
		}
	}
	for _, r := range p.rules {
		s.Rules = append(s.Rules, ruleStats{Name: r.Name, Fault: r.Fault, Rate: r.rate(), Matched: r.matched, Fired: r.fired})
	}
	return s
}

func (p *proxy) resetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st = newCounters()
	for _, r := range p.rules {
		r.matched, r.fired = 0, 0
	}
	p.part.resets.Store(0)
	p.part.holds.Store(0)
	p.part.count.Store(0)
}

// ---- admin API (plain HTTP on loopback) ----

func (p *proxy) adminHandler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /rules", func(w http.ResponseWriter, r *http.Request) { reply(w, p.getRules()) })
	mux.HandleFunc("PUT /rules", func(w http.ResponseWriter, r *http.Request) {
		var rules []*Rule
		if name := r.URL.Query().Get("profile"); name != "" {
			mk, ok := profiles[name]
			if !ok {
				http.Error(w, "unknown profile "+name, http.StatusBadRequest)
				return
			}
			rules = mk()
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(b) > 0 {
			more, err := decodeRules(b)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rules = append(rules, more...)
		}
		if rules == nil {
			rules = []*Rule{}
		}
		p.setRules(rules)
		p.log.Printf("rules replaced: %d rules", len(rules))
		reply(w, rules)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { reply(w, p.stats()) })
	mux.HandleFunc("POST /stats/reset", func(w http.ResponseWriter, r *http.Request) { p.resetStats(); reply(w, p.stats()) })
	mux.HandleFunc("POST /pause", func(w http.ResponseWriter, r *http.Request) { p.setPaused(true); reply(w, p.stats()) })
	mux.HandleFunc("POST /resume", func(w http.ResponseWriter, r *http.Request) { p.setPaused(false); reply(w, p.stats()) })
	mux.HandleFunc("POST /partition", func(w http.ResponseWriter, r *http.Request) {
		mode := r.URL.Query().Get("mode")
		if mode == "" {
			mode = "hang"
		}
		if mode != "hang" && mode != "reset" {
			http.Error(w, "mode must be hang or reset", http.StatusBadRequest)
			return
		}
		var d time.Duration
		if s := r.URL.Query().Get("for"); s != "" {
			var err error
			if d, err = time.ParseDuration(s); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		p.part.set(mode, d)
		p.log.Printf("partition mode=%s for=%v", mode, d)
		reply(w, p.stats())
	})
	mux.HandleFunc("POST /heal", func(w http.ResponseWriter, r *http.Request) {
		p.part.heal()
		p.log.Printf("partition healed")
		reply(w, p.stats())
	})
	return mux
}

// sortedKeys is used by the tests and the log.
func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
