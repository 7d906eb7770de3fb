package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// Fault kinds.
const (
	faultStatus     = "status"      // 500/503/any code with a Status body, not forwarded
	faultThrottle   = "throttle"    // 429 with Retry-After, not forwarded
	faultConflict   = "conflict"    // 409 Conflict (resourceVersion conflict), update/patch/delete only, not forwarded
	faultDelay      = "delay"       // wait before forwarding and/or between response chunks
	faultReset      = "reset"       // TCP reset: before forwarding, after the upstream answered, or mid-body
	faultCloseEarly = "close-early" // watches only: forward, end the stream cleanly after a random time
	faultGone       = "gone"        // watches with a resourceVersion only: ERROR event with a 410 Expired Status
)

var faultKinds = []string{faultStatus, faultThrottle, faultConflict, faultDelay, faultReset, faultCloseEarly, faultGone}

// duration is a time.Duration written as a Go duration string in JSON ("300ms", "2s").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"300ms\": %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

func (d duration) String() string { return time.Duration(d).String() }

func (d duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Rule is one entry of the rules list (see README.md for the format).
type Rule struct {
	Name string `json:"name,omitempty"` // for /stats and the log; default "<index>:<fault>"
	// Matching; an empty list matches everything.
	Verbs         []string `json:"verbs,omitempty"`         // get list watch create update patch delete deletecollection
	Resources     []string `json:"resources,omitempty"`     // "rollouts", "rollouts/status", "rollouts.argoproj.io", "*/status"
	Namespaces    []string `json:"namespaces,omitempty"`    // exact namespace names
	Names         []string `json:"names,omitempty"`         // object names (also metadata.name field selectors)
	FieldManagers []string `json:"fieldManagers,omitempty"` // ?fieldManager= of writes
	UserAgents    []string `json:"userAgents,omitempty"`    // substrings of the User-Agent header
	// Firing.
	Fault string   `json:"fault"`
	Rate  *float64 `json:"rate,omitempty"`  // probability per matching request, default 1
	Times int      `json:"times,omitempty"` // fire at most this many times (0: unlimited)
	// Parameters of the fault kinds.
	Code       int      `json:"code,omitempty"`       // status: HTTP code, default 503
	RetryAfter int      `json:"retryAfter,omitempty"` // throttle: Retry-After seconds, default 1; status: adds Retry-After if set
	Body       string   `json:"body,omitempty"`       // throttle: "text" (default, as the apiserver's APF filter) or "status"
	Message    string   `json:"message,omitempty"`    // status/throttle: message of the Status
	Delay      duration `json:"delay,omitempty"`      // delay: wait before forwarding
	ChunkDelay duration `json:"chunkDelay,omitempty"` // delay: wait before every chunk of the response body
	When       string   `json:"when,omitempty"`       // reset: "before", "after", "mid-body"; default: one of them at random
	After      duration `json:"after,omitempty"`      // close-early: end the stream after a uniform random time in (0, after]; default 2s
	Mode       string   `json:"mode,omitempty"`       // gone: "event" (default, what the apiserver does) or "http" (HTTP 410)
}

func (r *Rule) rate() float64 {
	if r.Rate == nil {
		return 1
	}
	return *r.Rate
}

func (r *Rule) validate(i int) error {
	if r.Name == "" {
		r.Name = fmt.Sprintf("%d:%s", i, r.Fault)
	}
	known := false
	for _, k := range faultKinds {
		known = known || k == r.Fault
	}
	if !known {
		return fmt.Errorf("rule %s: unknown fault %q (one of %s)", r.Name, r.Fault, strings.Join(faultKinds, ", "))
	}
	if r.Rate != nil && (*r.Rate < 0 || *r.Rate > 1) {
		return fmt.Errorf("rule %s: rate %v is not in [0, 1]", r.Name, *r.Rate)
	}
	for _, v := range r.Verbs {
		switch v {
		case "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection":
		default:
			return fmt.Errorf("rule %s: unknown verb %q", r.Name, v)
		}
	}
	switch r.Fault {
	case faultStatus:
		if r.Code == 0 {
			r.Code = 503
		}
		if r.Code < 400 || r.Code > 599 {
			return fmt.Errorf("rule %s: code %d is not an error code", r.Name, r.Code)
		}
	case faultThrottle:
		if r.RetryAfter == 0 {
			r.RetryAfter = 1
		}
		if r.Body == "" {
			r.Body = "text"
		}
		if r.Body != "text" && r.Body != "status" {
			return fmt.Errorf("rule %s: body must be \"text\" or \"status\"", r.Name)
		}
	case faultDelay:
		if r.Delay <= 0 && r.ChunkDelay <= 0 {
			return fmt.Errorf("rule %s: delay needs \"delay\" and/or \"chunkDelay\"", r.Name)
		}
	case faultReset:
		switch r.When {
		case "", "before", "after", "mid-body":
		default:
			return fmt.Errorf("rule %s: when must be before, after or mid-body", r.Name)
		}
	case faultCloseEarly:
		if r.After <= 0 {
			r.After = duration(2 * time.Second)
		}
	case faultGone:
		if r.Mode == "" {
			r.Mode = "event"
		}
		if r.Mode != "event" && r.Mode != "http" {
			return fmt.Errorf("rule %s: mode must be \"event\" or \"http\"", r.Name)
		}
	}
	return nil
}

func matchResource(patterns []string, ri reqInfo) bool {
	if len(patterns) == 0 {
		return true
	}
	rp := ri.resourcePath()
	for _, p := range patterns {
		base, sub, hasSub := strings.Cut(p, "/")
		if hasSub != (ri.Subresource != "") && p != "*" {
			continue
		}
		if p == "*" || p == rp {
			return true
		}
		okBase := base == "*" || base == ri.ResourceN || base == ri.qualified()
		okSub := !hasSub || sub == "*" || sub == ri.Subresource
		if okBase && okSub {
			return true
		}
	}
	return false
}

func matchList(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x == v || x == "*" {
			return true
		}
	}
	return false
}

// applies tells whether the rule matches the request and its fault can be applied to it:
// conflicts only to writes, close-early only to watches, gone only to watches that resume
// from a resourceVersion (the apiserver never answers "" or "0" with 410).
func (r *Rule) applies(ri reqInfo, fieldManager, userAgent, accept string) bool {
	if !ri.Resource && (len(r.Verbs) > 0 || len(r.Resources) > 0 || len(r.Namespaces) > 0 || len(r.Names) > 0) {
		return false
	}
	if !matchList(r.Verbs, ri.Verb) || !matchResource(r.Resources, ri) ||
		!matchList(r.Namespaces, ri.Namespace) || !matchList(r.Names, ri.Name) {
		return false
	}
	if len(r.FieldManagers) > 0 && !matchList(r.FieldManagers, fieldManager) {
		return false
	}
	if len(r.UserAgents) > 0 {
		ok := false
		for _, ua := range r.UserAgents {
			ok = ok || strings.Contains(userAgent, ua)
		}
		if !ok {
			return false
		}
	}
	switch r.Fault {
	case faultConflict:
		return ri.canConflict()
	case faultCloseEarly:
		return ri.Watch
	case faultGone:
		// The ERROR event is written as JSON; a client asking for protobuf watches is left alone.
		jsonOK := accept == "" || strings.Contains(accept, "json") || strings.Contains(accept, "*/*")
		return ri.Watch && ri.RV != "" && ri.RV != "0" && (jsonOK || r.Mode == "http")
	}
	return true
}

// parseRules reads a rules list from inline JSON (starts with '[') or a file.
func parseRules(arg string) ([]*Rule, error) {
	b := []byte(arg)
	if t := bytes.TrimSpace(b); len(t) == 0 || (t[0] != '[' && t[0] != '{') {
		var err error
		if b, err = os.ReadFile(arg); err != nil {
			return nil, err
		}
	}
	return decodeRules(b)
}

func decodeRules(b []byte) ([]*Rule, error) {
	var rules []*Rule
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a typo in a field name must not silently disable a fault
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	for i, r := range rules {
		if r == nil {
			return nil, fmt.Errorf("rules: entry %d is null", i)
		}
		if err := r.validate(i); err != nil {
			return nil, err
		}
	}
	return rules, nil
}

func f(v float64) *float64 { return &v }

// profiles are named rule sets. In "ten-percent" the rates of the rules that apply to a
// request add up to 10% for every verb, so about one request in ten is faulted.
var profiles = map[string]func() []*Rule{
	"ten-percent": func() []*Rule {
		rs := []*Rule{
			{Name: "10pct:503", Fault: faultStatus, Code: 503, Rate: f(0.02)},
			{Name: "10pct:500", Fault: faultStatus, Code: 500, Rate: f(0.01)},
			{Name: "10pct:throttle", Fault: faultThrottle, RetryAfter: 1, Rate: f(0.02)},
			{Name: "10pct:delay", Fault: faultDelay, Delay: duration(300 * time.Millisecond), Rate: f(0.02)},
			{Name: "10pct:reset", Fault: faultReset, Rate: f(0.01)},
			{Name: "10pct:conflict", Verbs: []string{"update", "patch", "delete"}, Fault: faultConflict, Rate: f(0.02)},
			// A create that succeeds upstream but whose answer is lost: the retry meets AlreadyExists.
			{Name: "10pct:create-lost", Verbs: []string{"create"}, Fault: faultReset, When: "after", Rate: f(0.02)},
			{Name: "10pct:read-delay", Verbs: []string{"get", "list", "deletecollection"}, Fault: faultDelay,
				Delay: duration(100 * time.Millisecond), ChunkDelay: duration(50 * time.Millisecond), Rate: f(0.02)},
			{Name: "10pct:close-early", Verbs: []string{"watch"}, Fault: faultCloseEarly, After: duration(5 * time.Second), Rate: f(0.01)},
			{Name: "10pct:gone", Verbs: []string{"watch"}, Fault: faultGone, Rate: f(0.01)},
		}
		for i, r := range rs {
			_ = r.validate(i)
		}
		return rs
	},
}
